"""Rule class 2: regional references outside the geography, anywhere in a resource's properties.

The walk descends into nested maps, lists and JSON documents stored as strings (IAM, bucket and
endpoint policies). One classified walk per resource (engine.Facts.foreign_refs) feeds all four
rules; it only runs when the prescreen found a foreign region token at all.
"""

from __future__ import annotations

import re

from infra.engine.model import AWS_PROVIDER_TYPE, Resource, Secret
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, rule

ALL = ("*", AWS_PROVIDER_TYPE)
_SEGMENT_RE = re.compile(r"[.\[\]]+")


def _short(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _refs(kind: str, res: Resource, scope: Scope):
    for k, region, path, value in scope.facts(res).foreign_refs:
        if k == kind:
            yield f"{path}: {region} is outside {scope.ctx.geography.code} ({_short(value)})"


_COMMON_FIX = """Reference only resources, endpoints and regions of the stack's geography; build ARNs and
hostnames from the stack's region instead of hard-coding them."""


@rule("RSD-010", "arn_region_in_geography", "ARN points at a region outside the geography", "HIGH",
      rationale="""An ARN names a resource in its region: a policy, target or destination that
      references it sends data or grants access there. Region-less ARNs (S3, IAM, CloudFront,
      Route 53) carry no region and are not flagged here.""",
      remediation=_COMMON_FIX, category="references", types=ALL, gates=("foreign",))
def arn_region_in_geography(res: Resource, scope: Scope):
    yield from _refs("arn", res, scope)


@rule("RSD-011", "endpoint_service_in_geography",
      "VPC endpoint service name of a region outside the geography", "HIGH",
      rationale="""`com.amazonaws.<region>.<service>` connects the VPC to that region's service
      (cross-Region PrivateLink); the traffic leaves the geography.""",
      remediation="Use `com.amazonaws.<home region>.<service>` and do not set `serviceRegion`.",
      category="references", types=ALL, gates=("foreign",))
def endpoint_service_in_geography(res: Resource, scope: Scope):
    yield from _refs("endpoint_service", res, scope)


@rule("RSD-012", "region_field_in_geography",
      "Region field names a region outside the geography, or cannot be read", "HIGH",
      rationale="""Fields such as `serviceRegion`, `destinationRegion`, `peerRegion`,
      `replicaRegions`, `regionName`, availability zones, or an environment variable `AWS_REGION`,
      direct a resource or workload at that region (a copy, a replica, a peer, a failover or
      secondary site). Inside the geography they pass; outside it they fail; a value that is not
      a region (a template, an expression, `global`, a value not known yet) fails closed.""",
      remediation="Set region fields only to regions of the stack's geography, as literal region codes.",
      category="references", types=ALL, gates=("foreign", "region_field"), fails_closed=True)
def region_field_in_geography(res: Resource, scope: Scope):
    yield from _refs("region_field", res, scope)
    for path, value in P.unreadable_region_fields(res.props, scope.key_memo_regions):
        yield f"{path}: {_short(str(value))!r} is not a region: where it points cannot be verified"
    for path in scope.snapshot.unknown.get(res.urn, ()):
        if path != "region" and P.last_key(path).lower().endswith(P.REGION_KEY_SUFFIXES):
            yield f"{path} is not known yet: the region it names cannot be verified"


@rule("RSD-013", "hostname_region_in_geography",
      "Regional AWS hostname outside the geography", "HIGH",
      rationale="""A regional endpoint hostname (`*.<region>.amazonaws.com`, `*.<region>.api.aws`,
      `*.<region>.on.aws`, `*.amazonaws.eu`) sends requests to that region.""",
      remediation="Use the home region's endpoints (or the VPC endpoints' private DNS).",
      category="references", types=ALL, gates=("foreign",))
def hostname_region_in_geography(res: Resource, scope: Scope):
    yield from _refs("hostname", res, scope)


@rule("RSD-014", "no_unverifiable_secret",
      "Secret hides a value the residency rules must read", "HIGH",
      rationale="""Ciphertext in a policy document, region, ARN, endpoint, host, destination,
      replica or allow-list field cannot be checked. It is reported as unverifiable instead of
      being silently passed.""",
      remediation="""Do not mark residency-relevant fields secret, or audit an export made with
      `pulumi stack export --show-secrets` in a trusted place.""",
      category="references", types=ALL, gates=("secret",))
def no_unverifiable_secret(res: Resource, scope: Scope):
    facts = scope.facts(res)
    if not facts.has_secret:
        return
    for path, value, _ in facts.walked:
        if isinstance(value, Secret):
            segments = [s.lower() for s in _SEGMENT_RE.split(path) if s and not s.isdigit()]
            if any(P.CHECKED_FIELD_RE.search(s) for s in segments):
                yield f"{path} is a secret: its residency cannot be verified"
