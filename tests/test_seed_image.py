"""The image half of `residency seed`: reference parsing, the skopeo command, and one real copy.

What is tested: the source/destination references, the ECR URL check, the skopeo command line,
and (where `skopeo` and `docker-registry` are installed: Debian packages `skopeo`,
`docker-registry`) a real `skopeo copy` by the console script between two repositories of a
registry on 127.0.0.1, checking that the printed digest is the one the registry serves.
What is not: ECR itself (its token exchange and TLS endpoint cannot be reached offline); the
ECR host is mapped to the local registry by a wrapper around the real skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from infra.program.errors import InputError
from infra.commands.seed import write_digest
from infra.commands.seed_image import parse_repository, platform_digest, skopeo_command, source_reference
from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT
from live_fixtures import aws_env, moto  # noqa: F401
from cli_run import run_script

REPO = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/ai-companion/eu/vllm"


@pytest.mark.parametrize("image, source, tag", [
    ("vllm/vllm-openai:v0.10.1", "docker://vllm/vllm-openai:v0.10.1", "v0.10.1"),
    ("docker://docker.io/vllm/vllm-openai:v0.10.1", "docker://docker.io/vllm/vllm-openai:v0.10.1", "v0.10.1"),
    ("localhost:5000/vllm", "docker://localhost:5000/vllm", "latest"),
    ("vllm/vllm-openai@sha256:" + "0f" * 32, "docker://vllm/vllm-openai@sha256:" + "0f" * 32, "sha256-0f0f0f0f0f0f"),
])
def test_source_reference_and_tag(image, source, tag):
    assert source_reference(image) == (source, tag)


@pytest.mark.parametrize("image", ["oci:/tmp/layout", "https://example.com/x", "vllm@sha256:abc", ""])
def test_non_registry_references_are_refused(image):
    with pytest.raises(InputError, match="--image"):
        source_reference(image)


def test_repository_url_is_parsed_and_checked():
    repo = parse_repository(REPO)
    assert (repo.account, repo.region, repo.name) == ("123456789012", "eu-central-1", "ai-companion/eu/vllm")
    assert repo.registry == "123456789012.dkr.ecr.eu-central-1.amazonaws.com" and repo.url == REPO
    for bad in ("public.ecr.aws/x/y", "123.dkr.ecr.eu-central-1.amazonaws.com/x", REPO.split("/")[0]):
        with pytest.raises(InputError, match="is not an ECR repository URL"):
            parse_repository(bad)


def test_skopeo_command_picks_the_nodes_platform_and_keeps_the_credential_off_the_command_line():
    command = skopeo_command("docker://a/b:1", f"docker://{REPO}:1", Path("/tmp/auth.json"), Path("/tmp/d"))
    assert command[:5] == ["skopeo", "--override-os", "linux", "--override-arch", "amd64"]
    assert command[5] == "copy" and "--preserve-digests" in command
    assert command[command.index("--dest-authfile") + 1] == "/tmp/auth.json"
    assert command[command.index("--digestfile") + 1] == "/tmp/d"
    assert command[-2:] == ["docker://a/b:1", f"docker://{REPO}:1"]


def test_platform_digest_of_an_image_and_of_a_multi_arch_list():
    image = b'{"schemaVersion": 2, "layers": []}'
    assert platform_digest(image) == "sha256:" + hashlib.sha256(image).hexdigest()
    listing = json.dumps({"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    assert platform_digest(listing) == "sha256:" + "2" * 64
    with pytest.raises(InputError, match="lists no linux/amd64 image"):
        platform_digest(json.dumps({"manifests": [{"digest": "sha256:" + "1" * 64,
                                                   "platform": {"os": "linux", "architecture": "arm64"}}]}).encode())


def test_write_digest_sets_one_line_and_keeps_the_rest(tmp_path, monkeypatch):
    for name in ("Pulumi.yaml", "Pulumi.us.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path))
    before = (tmp_path / "Pulumi.us.yaml").read_text()
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    write_digest("us", first)
    write_digest("us", second)
    after = (tmp_path / "Pulumi.us.yaml").read_text()
    assert after.count("modelImageDigest") == 1 and first not in after
    assert after.replace(f"  ai-companion:modelImageDigest: {second}\n", "") == before
    assert "# US is the global data cluster" in after  # comments survive


# --- a real skopeo copy against a registry on 127.0.0.1 ------------------------------------------

TOOLS = shutil.which("skopeo") and shutil.which("docker-registry")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _oci_layout(path: Path) -> None:
    """A one-layer linux/amd64 OCI image, built by hand (no daemon, no network)."""
    (path / "blobs" / "sha256").mkdir(parents=True)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("model-server.txt")
        payload = b"vllm stand-in\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = _blob(path, gzip.compress(tar_bytes.getvalue(), mtime=0))
    config = _blob(path, json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes.getvalue()).hexdigest()]},
        "config": {}}).encode())
    manifest = _blob(path, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))


@pytest.fixture
def registry(tmp_path):
    if not TOOLS:
        # CI installs them (.ci/run): there this test is required, never skipped.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"skopeo/docker-registry missing, and CI requires this test: {TOOLS_HINT}")
        pytest.skip(TOOLS_HINT)
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'storage'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    process = subprocess.Popen(["docker-registry", "serve", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _served_digest(registry: str, name: str, tag: str) -> str:
    request = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Docker-Content-Digest"]


TOOLS_HINT = "needs skopeo and docker-registry on PATH (.ci/install-test-tools, or apt-get install skopeo docker-registry)"


def test_real_skopeo_copy_prints_the_digest_the_registry_serves(moto, registry, tmp_path):  # noqa: F811
    # skopeo pushes to the host on its command line, so a wrapper maps the ECR host to the local
    # registry (plain HTTP: TLS verification off) and runs the real skopeo with our arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "skopeo").write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"args = [a.replace({REPO.split('/')[0]!r}, {registry!r}) for a in sys.argv[1:]]\n"
        "verb = 'copy' if 'copy' in args else 'inspect'\n"
        "at = args.index(verb) + 1\n"
        "args[at:at] = ['--src-tls-verify=false', '--dest-tls-verify=false'] if verb == 'copy' else ['--tls-verify=false']\n"
        f"os.execv({shutil.which('skopeo')!r}, ['skopeo', *args])\n")
    (bin_dir / "skopeo").chmod(0o755)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.url, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    _oci_layout(tmp_path / "layout")
    setup = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v1",
                            f"docker://{registry}/upstream/vllm:v1"], capture_output=True, text=True, env=env, timeout=60)
    assert setup.returncode == 0, setup.stderr
    upstream = _served_digest(registry, "upstream/vllm", "v1")

    ecr = moto.client("ecr", "eu-central-1")
    ecr.create_repository(repositoryName="ai-companion/eu/vllm", imageTagMutability="IMMUTABLE")
    argv = ["seed", "--stack", "eu", "--image", f"{registry}/upstream/vllm:v1", "--repository", REPO]
    result = run_script(argv, env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"digest: {upstream}" in result.stdout.splitlines()
    assert _served_digest(registry, "ai-companion/eu/vllm", "v1") == upstream

    # ECR (moto here) now lists the tag: a rerun compares it with the source (real `skopeo
    # inspect --raw`) instead of pushing an immutable tag again.
    ecr.put_image(repositoryName="ai-companion/eu/vllm", imageTag="v1", imageDigest=upstream,
                  imageManifest=json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                            "config": {}, "layers": []}))
    again = run_script(argv, env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{REPO}:v1 already holds" in again.stderr and f"digest: {upstream}" in again.stdout.splitlines()
