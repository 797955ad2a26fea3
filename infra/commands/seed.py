"""`residency seed`: put what the workload needs into the stack's region before it is applied.

    residency seed --stack S [--weights DIR | s3://bucket/prefix] [--image REF]
                   [--outputs FILE] [--bucket NAME] [--repository URL] [--write-config]
                   [--part-size MIB] [--workers N] [--profile NAME]

Weights go to `s3://<weightsBucket>/<servedModel>/` (infra/commands/seed_weights.py); the image goes to the
stack's ECR repository and is printed as a digest with the `pulumi config set` line that pins it
(infra/commands/seed_image.py). `--outputs` is `pulumi stack output --json` (weightsBucket,
modelRepositoryUrl, region); `--bucket`/`--repository` override it.

Everything is checked before anything is written: the stack, the destinations (they must exist,
in the stack's region), the source (an S3 source must be in a region of the stack's geography)
and skopeo. Exit codes: 0 done; 2 bad input (unknown stack, missing bucket/outputs, a source
outside the geography); 3 incomplete (an AWS fault or a checksum mismatch: rerun to resume);
4 internal error (a bug); 130 interrupted.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.commands.exit_codes import EXIT_INCOMPLETE, EXIT_OK
from infra.program.config import DIGEST_KEY, StackConfig
from infra.engine.credentials import aws_session
from infra.program.errors import InputError
from infra.commands.output import write_atomic
from infra.commands.seed_image import copy_image, parse_repository, require_skopeo, source_reference, tag_digest
from infra.commands.seed_weights import (MIB, MIN_PART_SIZE, PART_SIZE, Copier, Incomplete, Progress, Uploader, local_files,
                                source_objects)
from infra.program.stackfiles import load_stack_config, project_root

HELP = "seed the stack's region: model weights into the weights bucket, the model-server image into ECR"
RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--weights", metavar="DIR|s3://BUCKET/PREFIX",
                        help="model weights: a local directory, or an S3 prefix in the stack's geography")
    parser.add_argument("--image", metavar="REF", help="model-server image to copy into ECR (a registry reference)")
    parser.add_argument("--outputs", metavar="FILE", help="`pulumi stack output --json` of the stack")
    parser.add_argument("--bucket", metavar="NAME", help="weights bucket (overrides --outputs weightsBucket)")
    parser.add_argument("--repository", metavar="URL",
                        help="ECR repository URL (overrides --outputs modelRepositoryUrl)")
    parser.add_argument("--write-config", action="store_true",
                        help=f"also write {DIGEST_KEY} into Pulumi.<stack>.yaml")
    parser.add_argument("--part-size", metavar="MIB", type=int, default=PART_SIZE // MIB,
                        help=f"multipart part size in MiB (default {PART_SIZE // MIB}, minimum 5)")
    parser.add_argument("--workers", metavar="N", type=int, default=8, help="parts uploaded at once (default 8)")
    parser.add_argument("--profile", metavar="NAME", help="AWS shared-config profile")


@dataclass(frozen=True)
class Targets:
    bucket: str | None
    repository: str | None


def read_targets(args, cfg: StackConfig) -> Targets:
    outputs: dict = {}
    if args.outputs:
        try:
            outputs = json.loads(Path(args.outputs).read_text())
        except OSError as exc:
            raise InputError(f"--outputs: cannot read {args.outputs}: {exc.strerror}") from exc
        except ValueError as exc:
            raise InputError(f"--outputs: {args.outputs} is not JSON (`pulumi stack output --json`): {exc}") from exc
        if not isinstance(outputs, dict):
            raise InputError(f"--outputs: {args.outputs}: expected a JSON object of stack outputs")
        if outputs.get("region") not in (None, cfg.region):
            raise InputError(f"--outputs: region '{outputs['region']}' is not stack {cfg.stack}'s region "
                             f"'{cfg.region}': outputs of another stack?")
    targets = Targets(args.bucket or outputs.get("weightsBucket"), args.repository or outputs.get("modelRepositoryUrl"))
    if args.weights and not targets.bucket:
        raise InputError("no weights bucket: pass --bucket NAME or --outputs FILE (`pulumi stack output --json` "
                         "with weightsBucket)")
    if args.image and not targets.repository:
        raise InputError("no ECR repository: pass --repository URL or --outputs FILE (`pulumi stack output --json` "
                         "with modelRepositoryUrl)")
    return targets


def bucket_region(s3, bucket: str, role: str) -> str:
    """The region a bucket lives in (GetBucketLocation: null is us-east-1, 'EU' is eu-west-1)."""
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise InputError(f"{role} bucket '{bucket}' does not exist") from exc
        raise Incomplete(f"cannot read the region of {role} bucket '{bucket}' (GetBucketLocation: "
                         f"{exc.response.get('Error', {}).get('Code')}); nothing was written") from exc
    except BotoCoreError as exc:
        raise Incomplete(f"cannot read the region of {role} bucket '{bucket}': {exc}; nothing was written") from exc
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", uri)
    if not m:
        raise InputError(f"--weights: '{uri}' is not an s3://bucket/prefix URI")
    return m[1], (m[2] or "").strip("/")


def check_destination(s3, bucket: str, cfg: StackConfig) -> None:
    region = bucket_region(s3, bucket, "weights")
    if region != cfg.region:
        raise InputError(f"weights bucket '{bucket}' is in {region}, not stack {cfg.stack}'s region {cfg.region}")


def copy_from_s3(session, s3, args, cfg: StackConfig, bucket: str) -> tuple[list[str], Progress]:
    src_bucket, src_prefix = parse_s3_uri(args.weights)
    region = bucket_region(s3, src_bucket, "source")
    if not cfg.geography.contains(region):
        raise InputError(f"--weights: s3://{src_bucket} is in {region}, outside geography {cfg.geography.code} "
                         f"({', '.join(cfg.geography.regions)}); refused, nothing was written")
    check_destination(s3, bucket, cfg)
    source = session.client("s3", region_name=region, config=RETRIES)
    objects = source_objects(source, src_bucket, src_prefix, cfg.served_model)
    if not objects:
        raise InputError(f"--weights: no objects under {args.weights}")
    progress = Progress(sum(o.size for o in objects))
    copier = Copier(s3, bucket, progress, part_size=args.part_size * MIB)
    return [copier.copy(o) for o in objects], progress


def upload_directory(s3, args, cfg: StackConfig, bucket: str) -> tuple[list[str], Progress]:
    root = Path(args.weights)
    if not root.is_dir():
        raise InputError(f"--weights: {root} is not a directory (or use s3://bucket/prefix)")
    files = local_files(root, cfg.served_model)
    if not files:
        raise InputError(f"--weights: {root} holds no files")
    check_destination(s3, bucket, cfg)
    progress = Progress(sum(f.size for f in files))
    uploader = Uploader(s3, bucket, progress, part_size=args.part_size * MIB, workers=args.workers)
    return [uploader.upload(f) for f in files], progress


def seed_weights(session, args, cfg: StackConfig, bucket: str) -> str:
    """Weights into s3://bucket/<servedModel>/; returns the summary line."""
    s3 = session.client("s3", region_name=cfg.region, config=RETRIES)
    if args.weights.startswith("s3://"):
        results, progress = copy_from_s3(session, s3, args, cfg, bucket)
    else:
        results, progress = upload_directory(s3, args, cfg, bucket)
    progress.finish()
    summary = ", ".join(f"{results.count(r)} {r}" for r in dict.fromkeys(results))
    return (f"weights: s3://{bucket}/{cfg.served_model}/ ({len(results)} objects, "
            f"{progress.total / MIB:,.1f} MiB: {summary})")


def write_digest(stack: str, digest: str) -> Path:
    """Set DIGEST_KEY in Pulumi.<stack>.yaml, editing one line so comments and layout stay."""
    path = project_root() / f"Pulumi.{stack}.yaml"
    lines = path.read_text().splitlines(keepends=True)
    entry = re.compile(rf"^(\s+){re.escape(DIGEST_KEY)}:.*$")
    for i, line in enumerate(lines):
        if m := entry.match(line):
            lines[i] = f"{m[1]}{DIGEST_KEY}: {digest}\n"
            break
    else:
        at = next((i for i, line in enumerate(lines) if line.rstrip() == "config:"), None)
        if at is None:
            raise InputError(f"--write-config: {path.name} has no top-level 'config:' section")
        lines.insert(at + 1, f"  {DIGEST_KEY}: {digest}\n")
    text = "".join(lines)
    if (yaml.safe_load(text).get("config") or {}).get(DIGEST_KEY) != digest:
        raise InputError(f"--write-config: could not place {DIGEST_KEY} in {path.name}; set it with pulumi config set")
    write_atomic(path, text, "--write-config", edits=path)
    return path


def _seed(args) -> int:
    cfg = load_stack_config(args.stack)
    if not (args.weights or args.image):
        raise InputError("nothing to seed: pass --weights and/or --image")
    if args.image:
        source_reference(args.image)  # a malformed reference is refused before anything is read
    if args.part_size * MIB < MIN_PART_SIZE or args.workers < 1:
        raise InputError("--part-size must be at least 5 (MiB) and --workers at least 1")
    if args.write_config and not args.image:
        raise InputError("--write-config writes the image digest: it needs --image")
    targets = read_targets(args, cfg)
    repo = parse_repository(targets.repository) if args.image else None
    if repo is not None:
        if repo.region != cfg.region:
            raise InputError(f"ECR repository {repo.url} is in {repo.region}, not stack {cfg.stack}'s region {cfg.region}")
        require_skopeo()
    session = aws_session(args.profile)
    ecr = session.client("ecr", region_name=cfg.region, config=RETRIES)
    if repo is not None:
        tag_digest(ecr, repo, source_reference(args.image)[1])  # the image reference and the repository are good
    if args.weights:
        print(seed_weights(session, args, cfg, targets.bucket), flush=True)
    if repo is not None:
        digest = copy_image(ecr, args.image, repo)
        print(f"image: {repo.url}@{digest}")
        print(f"digest: {digest}")
        print(f"pulumi config set {DIGEST_KEY} {digest} --stack {args.stack}")
        if args.write_config:
            print(f"wrote {DIGEST_KEY} to {write_digest(args.stack, digest)}", file=sys.stderr)
    return EXIT_OK


def run(args) -> int:
    try:
        return _seed(args)
    except Incomplete as exc:
        print(f"\nresidency seed: incomplete: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    # Bad input (exit 2), Ctrl-C (130) and a bug (4) are mapped by infra.cli for every command.

