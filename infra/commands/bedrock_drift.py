"""`residency models --stack S`: is the live Bedrock catalog still what stacks/catalog.yaml says?

AWS changes model availability and (for non-geographic profiles) routing. In the stack's home
region, with the caller's credentials, this checks the stack's configured ZM+ models:

- each inference profile is still offered (`ListInferenceProfiles`, paginated) and its
  destination regions (`GetInferenceProfile`: one model ARN per destination) all lie inside the
  geography *and* equal the catalogued destinations (the workload role grants exactly those, so a
  new in-geography destination would fail invocations routed there);
- each in-region model is still listed by `ListFoundationModels` with on-demand (in-region)
  inference; a model offered only through a profile is not in-region.

Exit codes (README "Exit codes"), each with a message and no traceback: 0 clean (or a stack
without ZM+: nothing to check); 1 drift, each difference printed; 2 bad input (unknown stack,
unknown --profile, broken AWS config, no credentials at all, a malformed --endpoint-url);
3 not checked: a fault while reading the live catalog (endpoint unreachable or timing out,
throttled, access denied or credentials rejected, an answer that is not Bedrock's).
"""

from __future__ import annotations

import sys

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from infra.commands.exit_codes import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK  # bad input (2) is an InputError
from infra.program.catalog import BedrockModel, Geography
from infra.engine.credentials import aws_session
from infra.program.errors import InputError
from infra.program.stackfiles import load_stack_config

HELP = "check the stack's Bedrock profiles and in-region models against the live account (1 = drift)"
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
          "InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"}


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--profile", help="AWS named profile to use (default: the usual credential chain)")
    parser.add_argument("--endpoint-url", help="Bedrock control-plane endpoint (default: the home region's)")


# Faults while reading: nothing was checked. ResponseParserError (an HTML or malformed answer) is
# not a BotoCoreError.
READ_FAULTS = (BotoCoreError, ClientError, ResponseParserError)


def make_client(region: str, profile: str | None = None, endpoint_url: str | None = None):
    """A Bedrock client; what the caller got wrong (profile, config, credentials, endpoint URL)
    is bad input, raised as InputError before anything is read."""
    session = aws_session(profile)
    try:
        return session.client("bedrock", region_name=region, endpoint_url=endpoint_url, config=Config(
            connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"}))
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise InputError(f"--endpoint-url: {exc}") from exc


def _region(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[3] if len(parts) == 6 else ""


def check(client, geo: Geography, models: tuple[BedrockModel, ...]) -> list[str]:
    """Drift messages (empty when the live account matches the catalog)."""
    drift: list[str] = []
    prefix, home = geo.zm_plus.profile_prefix, geo.home_region
    profiles = [m for m in models if m.access == "inference_profile"]
    if profiles:
        offered = set()
        for page in client.get_paginator("list_inference_profiles").paginate(typeEquals="SYSTEM_DEFINED"):
            offered |= {s["inferenceProfileId"] for s in page.get("inferenceProfileSummaries", [])}
        for m in profiles:
            pid = m.profile_id(prefix)
            if pid not in offered:
                drift.append(f"{m.key}: profile {pid} is no longer offered in {home}")
                continue
            try:
                live = client.get_inference_profile(inferenceProfileIdentifier=pid)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                drift.append(f"{m.key}: profile {pid} is no longer offered in {home}")
                continue
            if live.get("status", "ACTIVE") != "ACTIVE":
                drift.append(f"{m.key}: profile {pid} is {live['status']} in {home}")
            regions = [_region(x.get("modelArn", "")) or "unspecified" for x in live.get("models", [])]
            outside = sorted({r for r in regions if r not in geo.regions})
            if outside:
                drift.append(f"{m.key}: profile {pid} routes to {', '.join(outside)}, outside {geo.code} "
                             f"({', '.join(geo.regions)}); remove the model from the stack")
            added = sorted(set(regions) - set(m.destinations) - set(outside))
            gone = sorted(set(m.destinations) - set(regions))
            if added or gone:
                drift.append(f"{m.key}: profile {pid} destinations changed (new: {', '.join(added) or 'none'}; "
                             f"gone: {', '.join(gone) or 'none'}); update stacks/catalog.yaml and redeploy")
    in_region = [m for m in models if m.access == "in_region"]
    if in_region:
        listed = {s["modelId"]: s for s in client.list_foundation_models().get("modelSummaries", [])}
        for m in in_region:
            summary = listed.get(m.model_id)
            if summary is None:
                drift.append(f"{m.key}: {m.model_id} is no longer offered in {home}")
            elif "ON_DEMAND" not in summary.get("inferenceTypesSupported", []):
                drift.append(f"{m.key}: {m.model_id} is offered in {home} only through an inference profile, "
                             f"not in-region (inference types: {', '.join(summary.get('inferenceTypesSupported', [])) or 'none'})")
    return drift


def _reason(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, pass --profile, or provide credentials)"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "error")
        op = exc.operation_name
        if code in DENIED:
            return f"access denied calling {op} ({code}); the caller needs bedrock:List*/GetInferenceProfile"
        return f"{op} failed: {code}: {err.get('Message', '')}".rstrip(": ")
    return str(exc)


def run(args) -> int:
    cfg = load_stack_config(args.stack)
    geo = cfg.geography
    if not cfg.has("zm_plus") or geo.zm_plus is None:
        # Not an error: a loop over every stack must not stop at the ZMO-only ones.
        print(f"{args.stack}: no zm_plus (options: {', '.join(cfg.options)}); nothing to check")
        return EXIT_OK
    client = make_client(geo.home_region, args.profile, args.endpoint_url)
    try:
        drift = check(client, geo, cfg.bedrock_models)
    except NoCredentialsError as exc:  # the chain found none when the first call was signed
        raise InputError(_reason(exc)) from exc
    except READ_FAULTS as exc:
        print(f"residency models: INCOMPLETE, not checked: stack {args.stack} in {geo.home_region}: "
              f"{_reason(exc)}", file=sys.stderr)
        return EXIT_INCOMPLETE
    checked = ", ".join(m.key for m in cfg.bedrock_models)
    if drift:
        print(f"{args.stack}: Bedrock drift in {geo.home_region} ({len(drift)}):")
        for line in drift:
            print(f"  DRIFT {line}")
        return EXIT_FINDINGS
    print(f"{args.stack}: {checked} match the catalog in {geo.home_region} (all destinations inside {geo.code})")
    return EXIT_OK
