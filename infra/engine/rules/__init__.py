"""The residency rule set: one catalogue of checks used by every enforcement point.

`residency plan`, the CrossGuard pack (policy/), `residency audit --export` and the live audit all
call `evaluate(snapshot, Context.from_config(cfg))`. Rules live in one module per class
(placement, references, network, replication, bedrock, federated,
destinations, global_constructs, exposure, guardrails); `RULES` lists them by ID.
"""

from infra.engine.rules.engine import RULE_REGISTRY, Context, Report, Rule, Scope, evaluate
from infra.engine.rules import (placement, references, network, replication, bedrock, federated,  # noqa: F401  (register)
                         destinations, global_constructs, exposure, guardrails)

RULES: tuple[Rule, ...] = tuple(sorted(RULE_REGISTRY, key=lambda r: r.id))
RULES_BY_ID = {r.id: r for r in RULES}
CATEGORIES = ("placement", "references", "network", "replication", "bedrock", "federated", "destinations", "global",
              "exposure")

assert len(RULES_BY_ID) == len(RULES), "duplicate rule id"
assert len({r.name for r in RULES}) == len(RULES), "duplicate rule name"

__all__ = ["Context", "Report", "Rule", "Scope", "evaluate", "RULES", "RULES_BY_ID", "CATEGORIES"]
