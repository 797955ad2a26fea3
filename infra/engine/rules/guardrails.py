"""Account guardrails the live audit reads: the geography's SCP in force on the account."""

from __future__ import annotations

from infra.engine.model import Resource
from infra.engine.rules.engine import Scope, rule

ORGANIZATION = "aws:organizations/organization:Organization"


@rule("RSD-005", "geography_scp_in_force", "The geography's SCP is not in force on the account", "HIGH",
      rationale="""The Service Control Policy printed by `residency scp` denies every request outside
      the geography's regions, whoever makes it and whatever created the resource: it is the only
      control that also holds what was opened by hand. The live audit reads the SCPs attached to
      the account, its OUs and the root; it passes when every statement of the geography's SCP
      is among them.""",
      remediation="""Attach the output of `residency scp --stack STACK` to the account (or its OU)
      in AWS Organizations. An account outside any organization cannot have an SCP: move it into
      one.""",
      category="placement", types=(ORGANIZATION,), sources=("live",))
def geography_scp_in_force(res: Resource, scope: Scope):
    from infra.program.scp_policy import build_scp, statement_digests  # the catalog-built policy, as `residency scp` prints it

    wanted = statement_digests(build_scp(scope.ctx.geography, scope.ctx.has("zm_plus")))
    scps = res.props.get("effectiveScps") or []
    have = {d for p in scps if isinstance(p, dict) for d in p.get("statementDigests") or []}
    if res.id == "none":
        yield "the account is in no AWS Organization, so no SCP holds it to the geography"
    elif not wanted <= have:
        yield (f"{len(wanted - have)} of {len(wanted)} statement(s) of the {scope.ctx.geography.code} SCP "
               f"(`residency scp`) are in none of the {len(scps)} SCP(s) in force on the account")
