"""Rule class 1: where each resource runs (its effective region, see infra/engine/model.py)."""

from __future__ import annotations

from infra.engine.model import AWS_PROVIDER_TYPE, Resource, is_provider_type
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, rule

# Region-less global services: legitimately unplaced, so not a finding when no region is recorded.
# Kept small on purpose; anything not listed here that has no provable region fails closed.
GLOBAL_TYPES = (
    "aws:iam/",                      # IAM is global
    "aws:organizations/",            # AWS Organizations is global
    "aws:route53/zone:Zone",         # hosted zones and records are global (Route 53 Resolver is not)
    "aws:route53/record:Record",
    "aws:route53/zoneAssociation:ZoneAssociation",
)
# Packages whose resources live wherever their provider points (the stack's own EKS cluster) or
# nowhere at all (random values, local TLS keys). Their properties are still scanned for
# regional references, hosts and models; only placement does not apply.
NEUTRAL_PACKAGES = ("kubernetes", "random", "tls", "pulumi")


def placement_class(res: Resource) -> str:
    """provider | global | neutral | regional (regional: must have a provable region)."""
    if is_provider_type(res.type):
        return "provider"
    if any(res.type == t or (t.endswith("/") and res.type.startswith(t)) for t in GLOBAL_TYPES):
        return "global"
    if res.type.split(":", 1)[0] in NEUTRAL_PACKAGES:
        return "neutral"
    return "regional"


def _provider_name(ref: str | None) -> str:
    urn = (ref or "").rpartition("::")[0]
    return urn.rsplit("::", 1)[-1] if urn else ""


@rule("RSD-001", "resource_region_in_geography",
      "Resource runs in a region outside the stack's geography", "CRITICAL",
      rationale="""A resource's effective region (its own `region` input, else its provider's
      `region`, else the stack's `aws:region`) is where its data lives and is processed. Anything
      outside the geography's regions breaks the residency promise.""",
      remediation="""Create the resource with the stack's explicit provider (parent=self inside
      components) and do not set a per-resource `region` outside the geography.""",
      category="placement",
      controls=("CT:AWS-GR_REGION_DENY (partly)", "CT:CT.MULTISERVICE.PV.1 (partly)"))
def resource_region_in_geography(res: Resource, scope: Scope):
    if res.region and res.region not in scope.regions:
        via = {"resource": "its own region input", "provider": "its provider",
               "config": "the stack's aws:region"}.get(res.region_source, res.region_source)
        yield (f"runs in {res.region} (from {via}), outside {scope.ctx.geography.code} "
               f"({', '.join(scope.ctx.geography.regions)})")


@rule("RSD-002", "resource_region_provable",
      "Regional resource has no provable region (unplaced)", "HIGH",
      rationale="""When neither the resource, nor its provider, nor the stack config records a
      region, nothing proves where the resource runs; a default provider takes AWS_REGION or the
      profile of whoever ran `pulumi up`. Unprovable means unproven: the check fails closed.""",
      remediation="""Give the resource an explicit provider with `region` set (or a per-resource
      `region`). Region-less global services (IAM, Route 53 zones/records, Organizations) are
      exempt.""",
      category="placement", fails_closed=True,
      controls=("CT:AWS-GR_REGION_DENY (partly)",))
def resource_region_provable(res: Resource, scope: Scope):
    if res.region is not None or placement_class(res) != "regional":
        return
    package = res.type.split(":", 1)[0]
    if package != "aws":
        yield f"package '{package}' is not AWS: where it runs cannot be checked"
        return
    if res.provider is None:
        why = "it uses the default provider and the source records no aws:region"
    else:
        why = f"its provider '{_provider_name(res.provider)}' records no region"
    evidence = sorted(set(P.REGION_TOKEN_RE.findall(scope.facts(res).text)))
    hint = f" (its properties mention {', '.join(evidence)})" if evidence else ""
    yield f"unplaced: no region input and {why}{hint}"


@rule("RSD-003", "provider_region_in_geography",
      "AWS provider is configured for a region outside the geography", "HIGH",
      rationale="""Every resource created through a provider lands in the provider's `region`.
      Only the `region` value counts: a provider named `eu-west-1` whose region is `us-east-1`
      deploys to us-east-1.""",
      remediation="Set the provider's `region` to the stack's home region (config aws:region).",
      category="placement", types=(AWS_PROVIDER_TYPE,))
def provider_region_in_geography(res: Resource, scope: Scope):
    region = res.region
    if region and region not in scope.regions:
        named = P.region_of(res.name)
        note = f" (its name '{res.name}' is ignored)" if named and named != region else ""
        yield f"provider '{res.name}' is configured for {region}, outside {scope.ctx.geography.code}{note}"


@rule("RSD-004", "explicit_provider_required",
      "AWS resource uses the default provider instead of the stack's explicit provider", "MEDIUM",
      rationale="""The program creates one explicit provider per stack. A child created without
      `parent=self` silently falls back to the default provider, whose region comes from the
      environment of whoever runs Pulumi (pulumi-testing.md 2.1).""",
      remediation="""Pass `opts=ResourceOptions(parent=self)` (or `provider=`) when creating child
      resources inside components.""",
      category="placement", types=("aws:",), sources=("plan", "crossguard"))
def explicit_provider_required(res: Resource, scope: Scope):
    name = _provider_name(res.provider)
    if res.provider is None or name == "default" or name.startswith("default_"):
        yield "uses the default AWS provider, not the stack's explicit provider"
