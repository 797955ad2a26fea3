"""Live account scan: map what is really deployed into the normalized model (source "live").

`scan_account` reads (never writes) the stack's home region and the other regions of its
geography, plus account-wide IAM, S3 and the global edge services (CloudFront, Global Accelerator,
S3 Multi-Region Access Points, in their API home regions), with boto3's standard credential chain.
Every resource found becomes a `model.Resource` with its pulumi-aws type token and camelCase input
names and `inputs["region"]` set to where it was found, so the one rule set (infra/rules) judges it
exactly as it judges a stack export. Anything that could not be read is listed in
`LiveScan.not_checked` (the audit exits 3): a scan never passes by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from infra.config import StackConfig
from infra.live import bedrock, data, ec2, edge, firewall, iam, kms, lb, s3
from infra.live.core import ALLOWED_OPERATIONS, Clients, NotChecked, ReadOnlyViolation, Scan
from infra.loaders import InputError
from infra.model import Snapshot

__all__ = ["LiveScan", "NotChecked", "ReadOnlyViolation", "scan_account", "ALLOWED_OPERATIONS", "SERVICES"]

# Service name (botocore's, also the "not checked" label) -> scanner. Regional ones run in every
# scanned region; account-wide ones once.
REGIONAL: dict[str, Callable] = {
    "ec2": ec2.scan,
    "kms": kms.scan,
    "bedrock": bedrock.scan,
    "network-firewall": firewall.scan_network_firewall,
    "route53resolver": firewall.scan_dns_firewall,
    "logs": data.scan_logs,
    "ecr": data.scan_ecr,
    "secretsmanager": data.scan_secrets,
    "dynamodb": data.scan_dynamodb,
    "elbv2": lb.scan_elbv2,
    "elb": lb.scan_elb,
}
ACCOUNT_WIDE: dict[str, Callable] = {
    "iam": iam.scan, "s3": s3.scan,
    # Global edge services: read once, in their API home region (edge.HOME_REGIONS), even when that
    # region is outside the stack's geography (see infra/live/edge.py).
    "cloudfront": edge.scan_cloudfront, "globalaccelerator": edge.scan_global_accelerator,
    "s3control": edge.scan_mrap,
}
SERVICES = tuple(REGIONAL) + tuple(ACCOUNT_WIDE)


@dataclass
class LiveScan:
    snapshot: Snapshot
    not_checked: list[NotChecked] = field(default_factory=list)
    regions: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.not_checked


def scan_regions(cfg: StackConfig, regions: Iterable[str] | str | None) -> tuple[str, ...]:
    """The regions to scan: the geography's (home first), or the given subset of them."""
    geo = cfg.geography
    allowed = (cfg.region,) + tuple(r for r in geo.regions if r != cfg.region)
    if regions is None:
        return allowed
    wanted = [r.strip() for r in (regions.split(",") if isinstance(regions, str) else regions) if r.strip()]
    if not wanted:
        raise InputError(f"--regions: empty; allowed: {', '.join(allowed)}")
    outside = [r for r in wanted if r not in allowed]
    if outside:
        raise InputError(
            f"--regions: {', '.join(repr(r) for r in outside)} not in geography {geo.code} of stack "
            f"'{cfg.stack}'; allowed: {', '.join(allowed)}"
        )
    return tuple(r for r in allowed if r in wanted)


def _session(profile: str | None):
    try:
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
    except ProfileNotFound as exc:
        raise InputError(f"--profile: {exc}") from exc
    except BotoCoreError as exc:  # broken shared config, expired SSO token, ...
        raise InputError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise InputError("no AWS credentials found (environment, --profile, shared config, SSO or instance role)")
    return session


def _disabled_regions(clients: Clients, home: str, regions: tuple[str, ...]) -> set[str]:
    """Opt-in regions this account has not enabled, from EC2 DescribeRegions (best effort)."""
    try:
        found = clients("ec2", home).describe_regions(AllRegions=True)["Regions"]
    except (ClientError, BotoCoreError):
        return set()  # each service call will then report its own fault
    status = {r["RegionName"]: r.get("OptInStatus") for r in found}
    return {r for r in regions if status.get(r) == "not-opted-in"}


def scan_account(cfg: StackConfig, profile: str | None = None, regions: Iterable[str] | str | None = None,
                 endpoint_url: str | None = None, progress: Callable[[str], None] | None = None, *,
                 session=None, services: Iterable[str] | None = None) -> LiveScan:
    """Scan the account for the stack's geography. `session`/`services` exist for tests."""
    scanned = scan_regions(cfg, regions)
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise InputError(f"--endpoint-url: '{endpoint_url}' is not an http(s) URL")
    wanted = tuple(services) if services is not None else SERVICES
    unknown = [s for s in wanted if s not in SERVICES]
    if unknown:
        raise InputError(f"unknown service(s) {', '.join(unknown)}; allowed: {', '.join(SERVICES)}")
    clients = Clients(session or _session(profile), endpoint_url)
    scan = Scan(cfg, clients, scanned, progress or (lambda _msg: None))

    disabled = _disabled_regions(clients, cfg.region, scanned) if any(s in REGIONAL for s in wanted) else set()
    for region in scanned:
        for service, fn in REGIONAL.items():
            if service not in wanted:
                continue
            unit = scan.for_region(service, region)
            if region in disabled:
                entry = NotChecked(service, region, "opt-in region not enabled for this account")
                scan.not_checked.append(entry)
                scan.progress(str(entry))
                continue
            _run(scan, unit, fn)
    for service, fn in ACCOUNT_WIDE.items():
        if service in wanted:
            _run(scan, scan.for_region(service, edge.HOME_REGIONS.get(service, "global")), fn)

    notes = [f"live scan of {', '.join(scanned)} and account-wide IAM, S3, CloudFront, Global Accelerator "
             "and S3 Multi-Region Access Points"]
    snapshot = Snapshot(resources=sorted(scan.resources.values(), key=lambda r: r.urn), source="live",
                        stack=cfg.stack, notes=notes)
    return LiveScan(snapshot, list(scan.not_checked), scanned)


def _run(scan: Scan, unit, fn: Callable) -> None:
    scan.progress(f"scanning {unit.service} in {unit.region}")
    before = len(scan.resources)
    try:
        fn(unit)
    except (ClientError, BotoCoreError) as exc:  # a failure outside any finer-grained step
        unit.skip("scan", exc)
    scan.progress(f"  {unit.service} in {unit.region}: {len(scan.resources) - before} resource(s)")
