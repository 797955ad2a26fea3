"""The model-server image into the stack's in-region ECR repository, referenced by digest.

The copy is skopeo's (`skopeo copy`, Debian/Ubuntu package `skopeo`): registry to registry with
no Docker daemon, every blob and manifest digest-checked, blobs already in ECR skipped (so a rerun
resumes), and `--digestfile` reports the digest of the manifest it pushed. `--preserve-digests`
makes skopeo fail rather than re-encode (a changed digest would not be the image that was
reviewed upstream). The push credential is ECR's `GetAuthorizationToken`, written to a
private, temporary auth file: never on the command line, where `ps` would show it. A tag already
in the repository (its tags are immutable) is compared with the source (`skopeo inspect --raw`)
instead of pushed again, so reruns are idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from infra.program.errors import InputError
from infra.program.config import IMAGE_DIGEST
from infra.commands.seed_weights import Incomplete

SKOPEO = "skopeo"
ECR_REPOSITORY = re.compile(
    r"(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)"
    r"/(?P<name>[a-z0-9][a-z0-9._/-]*)")
# The GPU nodes (EKS Auto Mode, x86_64 GPU instances): from a multi-arch list, copy the linux/amd64 image.
PLATFORM = ("linux", "amd64")


@dataclass(frozen=True)
class Repository:
    registry: str
    account: str
    region: str
    name: str

    @property
    def url(self) -> str:
        return f"{self.registry}/{self.name}"


def parse_repository(url: str) -> Repository:
    m = ECR_REPOSITORY.fullmatch(url or "")
    if not m:
        raise InputError(f"--repository: '{url}' is not an ECR repository URL "
                         "(<account>.dkr.ecr.<region>.amazonaws.com/<name>)")
    return Repository(m["registry"], m["account"], m["region"], m["name"])


# The image reference grammar of distribution/reference (reference.go), which docker, skopeo and
# containerd parse: [domain[:port]/]path-component(/path-component)*[:tag][@digest].
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?")


def source_reference(image: str) -> tuple[str, str]:
    """(skopeo source `docker://...`, destination tag) for a registry image reference.

    The tag is the source's, or `sha256-<12 hex>` for a reference by digest (ECR tags may not
    contain ':'); the deployment refers to the digest either way."""
    ref = image[len("docker://"):] if image.startswith("docker://") else image
    if "://" in ref or not ref or ref.startswith(("oci:", "oci-archive:", "docker-archive:", "dir:")):
        raise InputError(f"--image: '{image}' is not a registry image reference "
                         "(e.g. docker.io/vllm/vllm-openai:v0.10.1 or ...@sha256:<digest>)")
    name, _, digest = ref.partition("@")
    if digest and not IMAGE_DIGEST.fullmatch(digest):
        raise InputError(f"--image: '{digest}' is not a sha256:<64 hex> digest")
    if not IMAGE_REFERENCE.fullmatch(ref):
        raise InputError(f"--image: '{image}' is not a valid image reference: [registry[:port]/]name[:tag][@sha256:<digest>], "
                         "lowercase name components (e.g. docker.io/vllm/vllm-openai:v0.10.1)")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if digest:
        tag = f"sha256-{digest[7:19]}"
    return f"docker://{ref}", tag or "latest"


def skopeo_command(source: str, destination: str, authfile: Path, digestfile: Path) -> list[str]:
    return [SKOPEO, "--override-os", PLATFORM[0], "--override-arch", PLATFORM[1], "copy",
            "--preserve-digests", "--retry-times", "3", "--dest-authfile", str(authfile),
            "--digestfile", str(digestfile), source, destination]


def require_skopeo() -> None:
    if shutil.which(SKOPEO) is None:
        raise InputError("--image needs skopeo on PATH (Debian/Ubuntu: apt-get install -y skopeo)")


def ecr_auth(ecr, repo: Repository) -> dict:
    """A containers auth file (`{"auths": {registry: {"auth": ...}}}`) for the ECR registry.

    ECR's token is already base64("AWS:<password>"), the form the auth file's `auth` field takes."""
    try:
        data = ecr.get_authorization_token(registryIds=[repo.account])["authorizationData"][0]
    except (ClientError, BotoCoreError) as exc:
        raise Incomplete(f"ECR GetAuthorizationToken in {repo.region}: {exc}") from exc
    return {"auths": {repo.registry: {"auth": data["authorizationToken"]}}}


def tag_digest(ecr, repo: Repository, tag: str) -> str | None:
    """The digest the ECR repository holds under `tag`, or None; the repository must exist."""
    try:
        images = ecr.describe_images(registryId=repo.account, repositoryName=repo.name,
                                     imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ImageNotFoundException":
            return None
        if code == "RepositoryNotFoundException":
            raise InputError(f"ECR repository {repo.url} does not exist (run the AWS layer's `pulumi up` first)") from exc
        raise Incomplete(f"ECR DescribeImages {repo.url}:{tag}: {code}: {exc}") from exc
    except BotoCoreError as exc:
        raise Incomplete(f"ECR DescribeImages {repo.url}:{tag}: {exc}") from exc
    return images[0]["imageDigest"] if images else None


def platform_digest(raw: bytes) -> str:
    """The digest `skopeo copy` (without --all) pushes for a source manifest: the manifest's own,
    or, for a multi-arch list, that of its PLATFORM entry."""
    manifest = json.loads(raw)
    if "manifests" not in manifest:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    for entry in manifest["manifests"]:
        platform = entry.get("platform", {})
        if (platform.get("os"), platform.get("architecture")) == PLATFORM:
            return entry["digest"]
    raise InputError(f"--image: the source lists no {'/'.join(PLATFORM)} image (the GPU nodes' platform)")


def source_digest(source: str, timeout: float) -> str:
    command = [SKOPEO, "inspect", "--raw", "--retry-times", "3", source]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise Incomplete(f"skopeo inspect {source} did not finish in {timeout:.0f} s") from exc
    if result.returncode != 0:
        raise Incomplete(f"skopeo inspect {source} failed (exit {result.returncode}): "
                         f"{result.stderr.decode(errors='replace').strip()}")
    try:
        return platform_digest(result.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        raise Incomplete(f"skopeo inspect {source}: not a manifest: {exc}") from exc


def copy_image(ecr, image: str, repo: Repository, timeout: float = 3600) -> str:
    """Copy `image` into `repo`; return the digest (`sha256:...`) that `repo` holds for it.

    The repository's tags are immutable (ECR refuses to push a tag again, even the same image),
    so a tag already there is compared with the source instead: the same image is done, another
    one is bad input (a new upstream image needs a new tag)."""
    source, tag = source_reference(image)
    existing = tag_digest(ecr, repo, tag)
    if existing is not None:
        wanted = source_digest(source, timeout=300)
        if wanted != existing:
            raise InputError(f"--image: {repo.url}:{tag} already holds {existing}, but {image} is {wanted} "
                             "(for linux/amd64); tags are immutable: copy it under a new tag")
        print(f"residency seed: {repo.url}:{tag} already holds {image} ({existing})", file=sys.stderr)
        return existing
    auth = ecr_auth(ecr, repo)
    with tempfile.TemporaryDirectory(prefix="residency-seed-") as tmp:
        authfile, digestfile = Path(tmp, "auth.json"), Path(tmp, "digest")
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(auth, fh)
        command = skopeo_command(source, f"docker://{repo.url}:{tag}", authfile, digestfile)
        try:
            # skopeo's own progress goes straight to our stderr.
            result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=None, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise Incomplete(f"skopeo copy {source} did not finish in {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise Incomplete(f"skopeo copy {source} -> {repo.url}:{tag} failed (exit {result.returncode}); "
                             "see its message above")
        digest = digestfile.read_text().strip() if digestfile.exists() else ""
    if not IMAGE_DIGEST.fullmatch(digest):
        raise Incomplete(f"skopeo reported no sha256 digest for {repo.url}:{tag} (got {digest!r})")
    return digest
