"""Egress allow-lists: Network Firewall rule groups and Route 53 Resolver DNS Firewall."""

from __future__ import annotations

from infra.engine.live.core import Unit, camel, pages, tags_dict


def scan_network_firewall(unit: Unit) -> None:
    nfw = unit.client()
    groups: list[dict] = []
    with unit.step("ListRuleGroups"):
        groups = [g for page in pages(nfw, "list_rule_groups") for g in page["RuleGroups"]]
    for g in groups:
        with unit.step(f"rule group {g['Arn']}"):
            d = nfw.describe_rule_group(RuleGroupArn=g["Arn"])
            meta, body = d.get("RuleGroupResponse") or {}, d.get("RuleGroup") or {}
            unit.add("aws:networkfirewall/ruleGroup:RuleGroup", g["Arn"], {
                "name": meta.get("RuleGroupName") or g.get("Name"), "type": meta.get("Type"),
                "capacity": meta.get("Capacity"), "description": meta.get("Description"),
                # Only the parts that say what is allowed; IP/port set variables have another shape.
                "ruleGroup": {"rulesSource": camel(body.get("RulesSource")),
                              "statefulRuleOptions": camel(body.get("StatefulRuleOptions"))},
                "tags": tags_dict(meta.get("Tags")),
            }, arn=g["Arn"], name=meta.get("RuleGroupName") or g.get("Name"))


def scan_dns_firewall(unit: Unit) -> None:
    r53 = unit.client()
    lists: list[dict] = []
    with unit.step("ListFirewallDomainLists"):
        lists = [d for page in pages(r53, "list_firewall_domain_lists") for d in page["FirewallDomainLists"]]
    for d in lists:
        if d.get("ManagedOwnerName"):  # AWS-managed threat lists: their domains are not listable, and block
            continue
        with unit.step(f"domain list {d['Id']}"):
            domains = [x for page in pages(r53, "list_firewall_domains", FirewallDomainListId=d["Id"])
                       for x in page["Domains"]]
            unit.add("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", d["Id"],
                     {"name": d.get("Name"), "domains": domains}, arn=d.get("Arn"), name=d.get("Name"))

    groups: list[dict] = []
    with unit.step("ListFirewallRuleGroups"):
        groups = [g for page in pages(r53, "list_firewall_rule_groups") for g in page["FirewallRuleGroups"]]
    for g in groups:
        with unit.step(f"rule group {g['Id']}"):
            for page in pages(r53, "list_firewall_rules", FirewallRuleGroupId=g["Id"]):
                for rule in page["FirewallRules"]:
                    target = rule.get("FirewallDomainListId") or rule.get("FirewallThreatProtectionId")
                    unit.add("aws:route53/resolverFirewallRule:ResolverFirewallRule", f"{g['Id']}:{target}", {
                        "name": rule.get("Name"), "action": rule.get("Action"), "priority": rule.get("Priority"),
                        "firewallRuleGroupId": g["Id"], "firewallDomainListId": rule.get("FirewallDomainListId"),
                        "blockResponse": rule.get("BlockResponse"),
                        "blockOverrideDomain": rule.get("BlockOverrideDomain"),
                        "blockOverrideDnsType": rule.get("BlockOverrideDnsType"),
                        "blockOverrideTtl": rule.get("BlockOverrideTtl"),
                        "firewallDomainRedirectionAction": rule.get("FirewallDomainRedirectionAction"),
                        "qType": rule.get("Qtype"),
                    }, name=rule.get("Name"))
