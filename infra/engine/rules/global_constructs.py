"""Rule class 8: global and multi-Region constructs, driven by the catalog (issue #13).

`stacks/catalog.yaml` `global_constructs` lists, each with a rationale and a source, the
resource types that exist to span Regions or to route through AWS edge locations worldwide, and
the properties that switch a regional resource into such a mode. A global construct cannot be
placed inside one geography, whatever Region its API call went to: it fails closed. Constructs
whose destination Regions can be read (DynamoDB replicas, KMS multi-Region keys, S3 replication
...) are judged by their own rules with more precision (`covered_by`).
"""

from __future__ import annotations

from typing import Any, Iterator

from infra.program.catalog import GlobalProperty
from infra.engine.model import Resource
from infra.engine.rules.engine import Scope, rule, truthy
from infra.engine.rules.patterns import as_list


def _values(props: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) at a dotted catalog path; `x[]` walks every element of list x."""
    found = [("", props)]
    for segment in path.split("."):
        many = segment.endswith("[]")
        key = segment[:-2] if many else segment
        nxt = []
        for where, value in found:
            sub = value.get(key) if isinstance(value, dict) else None
            here = f"{where}.{key}" if where else key
            if many:
                nxt += [(f"{here}[{i}]", v) for i, v in enumerate(as_list(sub))]
            else:
                nxt.append((here, sub))
        found = nxt
    return iter(found)


def _switched(value: Any, prop: GlobalProperty) -> bool:
    if prop.when == "set":
        return value not in (None, "", [], {})
    if prop.when == "true":
        return truthy(value)
    wanted = {w.lower() for w in prop.when}
    return any(isinstance(v, str) and v.lower() in wanted for v in as_list(value))


@rule("RSD-056", "no_global_construct", "Global or multi-Region construct", "CRITICAL",
      rationale="""Some resources exist to span Regions or to route through AWS edge locations
      worldwide (ElastiCache global datastores, DocumentDB/Aurora/Neptune global clusters,
      MemoryDB Multi-Region clusters, Route 53 ARC, IVS, Cloud WAN, Chatbot ...), and some
      properties switch a regional resource into such a mode (a global-cluster membership, S3
      Transfer Acceleration, a CLOUDFRONT-scope WAF ACL, an edge-optimized API domain, DLM
      cross-Region copies). They cannot be placed inside one geography: each is a finding. The
      list is data (stacks/catalog.yaml `global_constructs`, with a rationale and a source per
      entry); a switching property whose value is not known yet fails closed.""",
      remediation="""Use the single-Region form (a regional cluster without global membership,
      regional API endpoints, REGIONAL WAF scope) or remove the construct.""",
      category="global", types=("aws:",), fails_closed=True,
      controls=("CT:AWS-GR_DISALLOW_CROSS_REGION_NETWORKING (partly)", "CT:AWS-GR_REGION_DENY (partly)"))
def no_global_construct(res: Resource, scope: Scope):
    constructs = scope.ctx.get_catalog().global_constructs
    if constructs is None:
        return
    entry = constructs.types.get(res.type)
    if entry is not None:
        yield f"{res.type.rsplit(':', 1)[-1]} is a global construct: {entry.rationale}"
        return
    props = None
    unknown = scope.snapshot.unknown.get(res.urn, ())
    for prop in constructs.properties_of(res.type):
        props = res.props if props is None else props
        for where, value in _values(props, prop.path):
            if _switched(value, prop):
                shown = value if isinstance(value, (str, bool)) else "set"
                yield f"{where} = {shown}: {prop.rationale}"
        base = prop.path.split("[]", 1)[0]
        if any(u == base or u.startswith((base + ".", base + "[")) for u in unknown):
            yield f"{prop.path} is not known yet: whether it switches on a global mode cannot be verified"
