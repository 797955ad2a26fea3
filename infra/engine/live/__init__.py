"""Live account scan: map what is really deployed into the normalized model (source "live").

`scan_account` reads (never writes) the stack's home region and the other regions of its
geography (EC2/VPC, KMS, Bedrock, firewalls, logs, ECR, Secrets Manager, DynamoDB, load balancers,
EKS, Lambda, API Gateway, SNS, SQS, EventBridge, RDS/Aurora, OpenSearch, Redshift, AWS Backup, DMS,
Direct Connect),
plus account-wide IAM, S3 (with account Block Public Access), Organizations (the SCPs in force)
and the global edge services (CloudFront, Global Accelerator, S3 Multi-Region Access Points, in
their API home regions), with boto3's standard credential chain.
Every resource found becomes a `model.Resource` with its pulumi-aws type token and camelCase input
names and `inputs["region"]` set to where it was found, so the one rule set (infra/engine/rules) judges it
exactly as it judges a stack export. Anything that could not be read is listed in
`LiveScan.not_checked` (the audit exits 3): a scan never passes by accident.

The unit of work is one service in one region (or one account-wide service): any failure inside
it, whatever the exception, marks that unit alone "not checked" and the scan goes on. The first
call, EC2 DescribeRegions in the home region, also proves the endpoint answers like AWS at all:
when it fails (no AWS behind --endpoint-url, network down) nothing else is tried, and every unit
is reported not checked with that one reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from botocore.exceptions import ClientError

from infra.program.config import StackConfig
from infra.engine.live import (bedrock, compute, data, databases, directconnect, ec2, edge, firewall, iam, kms, lb, messaging,
                        delivery, images, org, s3, sweep)
from infra.engine.live.core import (ALLOWED_OPERATIONS, Clients, NotChecked, ReadOnlyViolation, Scan, Timeouts, fault,
                             fault_kind)
from infra.engine.credentials import aws_session
from infra.program.errors import InputError
from infra.engine.model import Snapshot

__all__ = ["LiveScan", "NotChecked", "ReadOnlyViolation", "Timeouts", "scan_account", "ALLOWED_OPERATIONS",
           "SERVICES"]

def _each(*scanners: Callable) -> Callable:
    """One unit that runs several scanners of the same service in turn."""
    def scan(unit) -> None:
        for scanner in scanners:
            scanner(unit)
    return scan


# Service name (botocore's, also the "not checked" label) -> scanner. Regional ones run in every
# scanned region; account-wide ones once.
REGIONAL: dict[str, Callable] = {
    "ec2": ec2.scan,
    "kms": kms.scan,
    "bedrock": bedrock.scan,
    "network-firewall": firewall.scan_network_firewall,
    "route53resolver": _each(firewall.scan_dns_firewall, delivery.scan_resolver_rules),
    "logs": data.scan_logs,
    "ecr": data.scan_ecr,
    "secretsmanager": data.scan_secrets,
    "dynamodb": data.scan_dynamodb,
    "elbv2": lb.scan_elbv2,
    "elb": lb.scan_elb,
    "eks": compute.scan_eks,
    "lambda": compute.scan_lambda,
    "apigateway": messaging.scan_apigateway,
    "apigatewayv2": messaging.scan_apigatewayv2,
    "sns": messaging.scan_sns,
    "sqs": messaging.scan_sqs,
    "events": messaging.scan_events,
    "rds": databases.scan_rds,
    "opensearch": databases.scan_opensearch,
    "redshift": databases.scan_redshift,
    "backup": databases.scan_backup,
    "dms": databases.scan_dms,
    "directconnect": directconnect.scan,
    "firehose": delivery.scan_firehose,
    images.SERVICE: images.scan_public_images,
}
ACCOUNT_WIDE: dict[str, Callable] = {
    "iam": iam.scan, "s3": s3.scan,  # s3: also the account-level Block Public Access (s3control)
    "organizations": org.scan,  # the SCPs in force on the account
    # Global edge services: read once, in their API home region (edge.HOME_REGIONS), even when that
    # region is outside the stack's geography (see infra/engine/live/edge.py).
    "cloudfront": edge.scan_cloudfront, "globalaccelerator": edge.scan_global_accelerator,
    "s3control": edge.scan_mrap,
}
# Every enabled region outside the geography: a cheap inventory of what holds data (sweep.py).
SERVICES = tuple(REGIONAL) + tuple(ACCOUNT_WIDE) + (sweep.SERVICE,)
PARALLEL_UNITS = 8  # units read at once; AWS throttles per service and region, so this stays modest


def recorded_types() -> frozenset[str]:
    """The pulumi-aws type tokens the scanner can record: the quoted tokens in its modules (each is
    recorded through `Unit.add`). docs/rules.md's "live" column is derived from them."""
    import re
    from pathlib import Path

    token = re.compile(r'"(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)"')
    return frozenset(t for f in Path(__file__).parent.glob("*.py") for t in token.findall(f.read_text()))


@dataclass
class LiveScan:
    snapshot: Snapshot
    not_checked: list[NotChecked] = field(default_factory=list)
    regions: tuple[str, ...] = ()
    aborted: str | None = None  # why nothing could be scanned (the first call failed)
    account: str = ""  # the scanned account (STS GetCallerIdentity), "" when unknown

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


class _FirstCallFailed(Exception):
    """No AWS answered the first call: nothing else is tried."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def _region_status(clients: Clients, home: str, progress) -> dict[str, str] | None:
    """Each region's opt-in status, from EC2 DescribeRegions(AllRegions): the first call.
    None when that alone is denied (each service then reports its own faults).

    Any failure but access denied means no AWS answers at this endpoint, and `_FirstCallFailed`
    stops the scan.
    """
    try:
        found = clients("ec2", home).describe_regions(AllRegions=True)["Regions"]
        return {r["RegionName"]: r.get("OptInStatus") or "opt-in-not-required" for r in found}
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- whatever it is, the endpoint did not answer like AWS
        if isinstance(exc, ClientError) and fault_kind(exc) == "access denied":
            progress(f"opt-in status of regions unknown ({fault(exc)}); scanning them all")
            return None
        where = f" at {clients.endpoint_url}" if clients.endpoint_url else ""
        raise _FirstCallFailed(f"the first call, ec2:DescribeRegions in {home}{where}, failed: {fault(exc)}",
                               fault_kind(exc)) from None


def _outside(cfg: StackConfig, status: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(enabled, disabled) regions of the geography's partition outside the geography."""
    geo = cfg.geography
    others = sorted(r for r in status if r not in geo.regions and sweep.partition_of(r) == geo.partition)
    return (tuple(r for r in others if status[r] != "not-opted-in"),
            tuple(r for r in others if status[r] == "not-opted-in"))


def scan_account(cfg: StackConfig, profile: str | None = None, regions: Iterable[str] | str | None = None,
                 endpoint_url: str | None = None, progress: Callable[[str], None] | None = None, *,
                 session=None, services: Iterable[str] | None = None,
                 timeouts: Timeouts = Timeouts(), overrides: dict[str, Callable] | None = None,
                 shard: tuple[int, int] | None = None, clients: Clients | None = None) -> LiveScan:
    """Scan the account for the stack's geography. `session`/`services`/`clients` exist for tests
    (`clients`: one set of guarded clients reused over many scans of one emulator, as building a
    client is half a scan's CPU); `overrides` replaces a service's scanner (the organization scan
    reads SCPs from the top)."""
    scanned = scan_regions(cfg, regions)
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise InputError(f"--endpoint-url: '{endpoint_url}' is not an http(s) URL")
    wanted = tuple(services) if services is not None else SERVICES
    unknown = [s for s in wanted if s not in SERVICES]
    if unknown:
        raise InputError(f"unknown service(s) {', '.join(unknown)}; allowed: {', '.join(SERVICES)}")
    clients = clients or Clients(session or aws_session(profile), endpoint_url, timeouts)
    scan = Scan(cfg, clients, scanned, progress or (lambda _msg: None))
    units = [(service, region, fn) for region in scanned for service, fn in REGIONAL.items() if service in wanted]
    units += [(service, edge.HOME_REGIONS.get(service, "global"), fn)
              for service, fn in ACCOUNT_WIDE.items() if service in wanted]
    # The sweep outside the geography belongs to a full scan; `--regions` narrows the scan on purpose.
    sweeping = sweep.SERVICE in wanted and regions is None

    try:
        status = _region_status(clients, cfg.region, scan.progress)
    except _FirstCallFailed as failed:
        scan.progress(f"cannot read the account: {failed.reason}; nothing was scanned")
        units += [(sweep.SERVICE, "outside the geography", None)] if sweeping else []
        scan.order = {(service, region): i for i, (service, region, _fn) in enumerate(units)}
        for service, region, _fn in units:
            scan.mark(service, region, f"not scanned: {failed.reason}", failed.kind)
        return LiveScan(Snapshot([], source="live", stack=cfg.stack), scan.not_checked, scanned, failed.reason)
    notes = [f"live scan of {', '.join(scanned)} and account-wide services "
             f"({', '.join(s for s in ACCOUNT_WIDE if s in wanted)})"]
    if sweeping:
        units += _plan_sweep(scan, status, notes)
    # The account id places units in shards; otherwise the S3 and Organizations units read it.
    account = _account(clients, cfg.region, scan.progress) if shard is not None else ""
    if shard is not None:
        planned = len(units)
        units = [u for u in units if in_shard(account, u[1], shard)]
        notes.append(f"shard {shard[0]}/{shard[1]} of account {account or 'unknown'}: {len(units)} of {planned} "
                     f"units (account x region, by hash)")
    scan.order = {(service, region): i for i, (service, region, _fn) in enumerate(units)}
    disabled = {r for r in scanned if (status or {}).get(r) == "not-opted-in"}
    for service, region, _fn in units:
        if region in disabled:
            scan.mark(service, region, "opt-in region not enabled for this account", "opt-in region not enabled")
    todo = [scan.for_region(service, region) for service, region, _fn in units if region not in disabled]
    functions = {(service, region): (overrides or {}).get(service, fn) for service, region, fn in units}
    # Units are independent reads: run them side by side so one slow service or region does not
    # hold up the rest (each call is still bounded by `timeouts`).
    with ThreadPoolExecutor(max_workers=PARALLEL_UNITS) as pool:
        for _ in pool.map(lambda unit: _run(scan, unit, functions[(unit.service, unit.region)]), todo):
            pass

    snapshot = Snapshot(resources=sorted(scan.resources.values(), key=lambda r: r.urn), source="live",
                        stack=cfg.stack, notes=notes)
    return LiveScan(snapshot, scan.not_checked, scanned, account=account or scan.account)


def in_shard(account: str, region: str, shard: tuple[int, int]) -> bool:
    """Does the (account, region) unit belong to shard K of N: by a stable hash, so every shard
    of every run agrees, and each unit is in exactly one shard."""
    import hashlib

    k, n = shard
    return int(hashlib.sha256(f"{account}/{region}".encode()).hexdigest()[:12], 16) % n == k - 1


def _account(clients: Clients, home: str, progress) -> str:
    """The scanned account's id, for attributing findings (unknown is not a fault of the scan)."""
    try:
        return clients("sts", home).get_caller_identity()["Account"]
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- the findings then carry the stack's accountId
        progress(f"account id unknown ({fault(exc)})")
        return ""


def _plan_sweep(scan: Scan, status: dict[str, str] | None, notes: list[str]) -> list[tuple]:
    """The sweep's units: one aggregator-index read, or one inventory per enabled region outside
    the geography. Without the region list nothing outside can be proven empty: not checked."""
    if status is None:
        scan.mark(sweep.SERVICE, "outside the geography", "the enabled regions are unknown "
                  "(ec2:DescribeRegions was denied)", "access denied")
        return []
    enabled, disabled = _outside(scan.cfg, status)
    scan.sweeping, scan.sweep_regions = True, enabled
    if disabled:
        notes.append(f"regions outside the geography not enabled for this account (they hold nothing; not "
                     f"swept): {', '.join(disabled)}")
    index = sweep.aggregator_region(scan.clients, scan.cfg.region)
    if index is not None:
        notes.append(f"outside the geography: swept {len(enabled)} enabled region(s) through the Resource Explorer "
                     f"aggregator index in {index}: {', '.join(enabled)}")
        return [(sweep.INDEX_SERVICE, index, sweep.scan_index)]
    notes.append(f"outside the geography: swept {len(enabled)} enabled region(s) for data-bearing resources "
                 f"(list calls and the tagging API): {', '.join(enabled)}")
    return [(sweep.SERVICE, region, sweep.scan_region) for region in enabled]


def _run(scan: Scan, unit, fn: Callable) -> None:
    scan.progress(f"scanning {unit.service} in {unit.region}")
    try:
        fn(unit)
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- a failure outside any finer-grained step: this unit only
        unit.skip("scan", exc)
