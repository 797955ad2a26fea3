"""Rule class 6: Federated egress connectors, driven by the catalog's federated section.

Allow-lists are read from Network Firewall rule groups (`rulesSourceList.targets` of ALLOWLIST
groups, and `tls.sni`/`http.host` contents of Suricata rules) and Route 53 Resolver DNS Firewall
domain lists. Every host must belong to a connector enabled for the stack (and catalogued for its
geography), be exact (no wildcards), and, when the connector processes globally, be covered by the
stack's `allowGlobalProcessing` opt-in.
"""

from __future__ import annotations

import re

from infra.engine.model import Resource
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, get_path, rule
from infra.engine.rules.patterns import as_list
from infra.program.components.egress import ECR_LEGACY_LAYER_NAMES

NFW_RULE_GROUP = "aws:networkfirewall/ruleGroup:RuleGroup"
DNS_DOMAIN_LIST = "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList"
DNS_RULE = "aws:route53/resolverFirewallRule:ResolverFirewallRule"
CONNECTOR_TYPES = ("aws:networkfirewall/", "aws:route53/resolverFirewall")
_SURICATA_HOST_RE = re.compile(r"(?:tls\.sni|http\.host|dns\.query)\s*;[^;]*?content\s*:\s*\"([^\"]+)\"")
# The walled-garden DNS pattern blocks `*` after the allow rules: a list that is only `*` is a block
# list (RSD-054 checks that no ALLOW rule uses it).
CATCH_ALL = ("*", "*.")


def allowlist_hosts(res: Resource) -> list[tuple[str, str]]:
    """(where, host) of every allow-listed host in a rule group or DNS domain list."""
    p = res.props
    hosts: list[tuple[str, str]] = []
    if res.type == NFW_RULE_GROUP:
        source = get_path(p, "ruleGroup", "rulesSource") or {}
        lst = source.get("rulesSourceList") if isinstance(source, dict) else None
        if isinstance(lst, dict) and str(lst.get("generatedRulesType", "")).upper() == "ALLOWLIST":
            for i, t in enumerate(as_list(lst.get("targets"))):
                hosts.append((f"rulesSourceList.targets[{i}]", t))
        rules_string = source.get("rulesString") if isinstance(source, dict) else None
        if isinstance(rules_string, str):
            for line in rules_string.splitlines():
                if line.strip().startswith("pass"):
                    hosts += [("rulesString", h) for h in _SURICATA_HOST_RE.findall(line)]
    elif res.type == DNS_DOMAIN_LIST:
        domains = [d for d in as_list(p.get("domains")) if isinstance(d, str)]
        if not all(d in CATCH_ALL for d in domains):
            hosts += [(f"domains[{i}]", d) for i, d in enumerate(domains)]
    return [(w, h) for w, h in hosts if isinstance(h, str)]


# AWS's own regional namespaces (VPC endpoint private DNS, EKS, VPC-internal names): allowing
# them in the DNS walled garden keeps resolution on in-geography AWS endpoints, so neither a
# connector host nor a wildcard problem. A label must name a region of the geography.
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".amazonaws.eu", ".api.aws", ".on.aws", ".compute.internal")
_AWS_LEGACY_INTERNAL = {"ec2.internal": "us-east-1"}  # us-east-1's VPC-internal domain
# Exact legacy names of AWS-owned in-region buckets (ECR's layer bucket under the global S3 name).
_AWS_LEGACY_INTERNAL.update({name: region for region, names in ECR_LEGACY_LAYER_NAMES.items() for name in names})


def _aws_regional(host: str, scope: Scope) -> bool:
    """In-geography AWS names (`*.eu-central-1.amazonaws.com`, `*.eu-central-1.compute.internal`)."""
    bare = host.lstrip("*.")
    if bare in _AWS_LEGACY_INTERNAL:
        return _AWS_LEGACY_INTERNAL[bare] in scope.regions
    if not bare.endswith(_AWS_SUFFIXES):
        return False
    regions = [label for label in bare.split(".") if P.is_region(label)]
    return bool(regions) and all(P.region_of(r) in scope.regions for r in regions)


def _is_wildcard(host: str) -> bool:
    return host.startswith(".") or "*" in host


def _catalog_connector(host: str, scope: Scope):
    fed = scope.ctx.geography.federated
    for c in (fed.connectors.values() if fed else ()):
        if host in c.hosts:
            return c
    return None


@rule("RSD-050", "federated_requires_option", "Connector egress path in a stack without the federated option",
      "CRITICAL",
      rationale="""Network Firewall, DNS Firewall rules that admit third-party hosts and anything in
      the Federated egress path exist to let data reach third-party AI APIs. Only stacks whose
      options include federated may have them. A DNS Firewall that admits only the geography's own
      AWS names is the walled garden every stack has (DnsFirewall), not a connector path.""",
      remediation="Remove the connector path, or enable federated for this stack (where the catalog offers it).",
      category="federated", types=("*",), when=lambda ctx: not ctx.has("federated"),
      stack_key="ai-companion:options")
def federated_requires_option(res: Resource, scope: Scope):
    if res.type.startswith(CONNECTOR_TYPES[0]):
        yield f"{res.type.rsplit(':', 1)[-1]} belongs to a connector path, but the stack has no federated option"
    elif outside := [h for _, h in allowlist_hosts(res) if not _aws_regional(h, scope)]:
        yield (f"DNS Firewall admits {', '.join(outside)}: a connector path, "
               "but the stack has no federated option")
    elif scope.in_egress_path(res):
        yield "is part of the Federated egress path, but the stack has no federated option"


@rule("RSD-051", "allowlist_host_in_catalog", "Allow-listed host not in the geography's connector catalog",
      "CRITICAL",
      rationale="""Only hosts of the connectors catalogued for the geography (and enabled in the
      stack config) process data where the geography allows; any other host is an undeclared
      path, possibly to another region.""",
      remediation="Allow only hosts of the stack's enabled connectors (stacks/catalog.yaml, federated.connectors).",
      category="federated", types=(NFW_RULE_GROUP, DNS_DOMAIN_LIST))
def allowlist_host_in_catalog(res: Resource, scope: Scope):
    enabled = {h for c in scope.ctx.connectors for h in c.hosts}
    geo = scope.ctx.geography.code
    for where, raw in allowlist_hosts(res):
        host = P.normalise_host(raw)
        if _is_wildcard(host) or host in enabled or _aws_regional(host, scope):
            continue
        connector = _catalog_connector(host, scope)
        if connector is None:
            yield f"{where}: {host} is not in the {geo} connector catalog"
        elif connector.processing == "global" and not _global_opt_in(scope):
            continue  # RSD-053 names it
        else:
            yield f"{where}: {host} ({connector.key}) is catalogued for {geo} but not enabled in the stack config"


@rule("RSD-052", "allowlist_no_wildcards", "Wildcard in an egress allow-list", "HIGH",
      rationale="""`.example.com` or `*.example.com` admits every subdomain, including other
      services and other regions' hosts of the same provider (e.g. `.openai.com`).""",
      remediation="List exact hostnames per connector.",
      category="federated", types=(NFW_RULE_GROUP, DNS_DOMAIN_LIST))
def allowlist_no_wildcards(res: Resource, scope: Scope):
    for where, raw in allowlist_hosts(res):
        host = P.normalise_host(raw)
        if _is_wildcard(host) and not _aws_regional(host, scope):
            yield f"{where}: {raw} is a wildcard"


def _global_opt_in(scope: Scope) -> bool:
    """The reviewed opt-in counts only in a global data cluster (US); a local one (EU) has none."""
    return scope.ctx.allow_global_processing and not scope.ctx.geography.local_cluster


@rule("RSD-053", "global_processing_opt_in", "Global-processing host without the allowGlobalProcessing opt-in",
      "CRITICAL",
      rationale="""Some connectors (e.g. api.anthropic.com, api.perplexity.ai) process data in any
      region. The catalog marks them `processing: global`. In the US, the global data cluster, a
      stack may use them only with the explicit federated.allowGlobalProcessing opt-in; in a
      local data cluster (the EU and the rest) never, whatever the opt-in says.""",
      remediation="""Remove the host. In the US only, set ai-companion:federated.allowGlobalProcessing:
      true after review.""",
      category="federated", types=(NFW_RULE_GROUP, DNS_DOMAIN_LIST), stack_key="ai-companion:federated")
def global_processing_opt_in(res: Resource, scope: Scope):
    if _global_opt_in(scope):
        return
    geo = scope.ctx.geography
    why = (f"and {geo.code} is a local data cluster: in-geography endpoints only" if geo.local_cluster
           else "and allowGlobalProcessing is false")
    for where, raw in allowlist_hosts(res):
        connector = _catalog_connector(P.normalise_host(raw), scope)
        if connector is not None and connector.processing == "global":
            yield f"{where}: {raw} ({connector.key}) processes data globally, {why}"


@rule("RSD-054", "dns_allow_rule_scoped", "DNS Firewall ALLOW rule on a catch-all or unresolvable domain list",
      "HIGH",
      rationale="""In the walled-garden pattern a `*` domain list is only for the final BLOCK rule;
      an ALLOW rule on it (or on a list that is not in the stack, so cannot be checked) admits
      every domain.""",
      remediation="Point ALLOW rules at the connector domain list; keep `*` for the BLOCK rule.",
      category="federated", types=(DNS_RULE,), graph=True, fails_closed=True)
def dns_allow_rule_scoped(res: Resource, scope: Scope):
    p = res.props
    if str(p.get("action", "")).upper() != "ALLOW":
        return
    list_id = p.get("firewallDomainListId")
    lists = [r for r in scope.by_id(list_id) if r.type == DNS_DOMAIN_LIST] if isinstance(list_id, str) else []
    if not lists:  # the engine also says which resource the id came from (no `id` output needed)
        lists = [r for urn in res.property_dependencies.get("firewallDomainListId") or ()
                 if (r := scope.by_urn.get(urn)) is not None and r.type == DNS_DOMAIN_LIST]
    if not lists:
        if scope.complete:
            yield f"ALLOW rule uses domain list {list_id!r}, which is not in this stack: its domains cannot be checked"
        return
    domains = [d for d in as_list(lists[0].props.get("domains")) if isinstance(d, str)]
    if any(d in CATCH_ALL for d in domains):
        yield f"ALLOW rule uses the catch-all domain list {lists[0].name}"
