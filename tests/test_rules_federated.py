"""Rule class 6: Federated egress connectors (RSD-050..054), driven by the catalog."""

import pytest

from infra.program.catalog import load_catalog
from rules_kit import component, ctx, fired, home_logging, res, run

TAG = {"ai-companion:path": "federated-egress"}


def nfw(targets, kind="ALLOWLIST"):
    return res("aws:networkfirewall/ruleGroup:RuleGroup", "allow", inputs={"type": "STATEFUL", "tags": TAG,
               "ruleGroup": {"rulesSource": {"rulesSourceList": {"generatedRulesType": kind,
                                                                 "targetTypes": ["TLS_SNI"], "targets": targets}}}})


def domains(items, name="dl"):
    return res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", name,
               inputs={"domains": items, "tags": TAG}, outputs={"id": f"rslvr-fdl-{name}"})


def catalog_hosts(geo):
    return sorted(load_catalog().geography(geo).federated.hosts)


@pytest.mark.parametrize("geo,allow_global", [("EU", False), ("US", True)])
def test_catalog_hosts_of_enabled_connectors_are_quiet(geo, allow_global):
    from rules_kit import provider

    g = load_catalog().geography(geo)
    p = provider(g.home_region, stack=g.stack)
    rg = res("aws:networkfirewall/ruleGroup:RuleGroup", "allow", prov=p, stack=g.stack, inputs={"ruleGroup": {
        "rulesSource": {"rulesSourceList": {"generatedRulesType": "ALLOWLIST", "targets": catalog_hosts(geo)}}}})
    dl = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "dl", prov=p, stack=g.stack,
             inputs={"domains": [h + "." for h in catalog_hosts(geo)]})
    assert run([p, rg, dl, home_logging(geo)], ctx(geo, allow_global=allow_global)).findings == []


def test_connector_path_in_a_stack_without_federated_fires():
    report = run([nfw(catalog_hosts("EU"))], ctx("EU", options=("zmo", "zm_plus")))
    assert fired(report, "RSD-050")


def test_a_dns_walled_garden_of_aws_names_is_quiet_in_a_zmo_stack_a_third_party_host_fires():
    """Every stack has a DNS walled garden (DnsFirewall); only one admitting other hosts is a path."""
    from rules_kit import provider

    p = provider("ap-southeast-1", stack="sg")
    aws_names = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "aws", prov=p, stack="sg",
                    inputs={"domains": ["*.ap-southeast-1.amazonaws.com", "*.ap-southeast-1.api.aws"]})
    block = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "all", prov=p, stack="sg",
                inputs={"domains": ["*"]})
    rule = res("aws:route53/resolverFirewallRule:ResolverFirewallRule", "r", prov=p, stack="sg", inputs={"action": "BLOCK"})
    assert not fired(run([p, aws_names, block, rule], ctx("SG")), "RSD-050")
    third_party = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "tp", prov=p, stack="sg",
                      inputs={"domains": ["*.ap-southeast-1.amazonaws.com", "api.openai.com"]})
    assert fired(run([p, third_party], ctx("SG")), "RSD-050", third_party.urn)
    other_region = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "or", prov=p, stack="sg",
                       inputs={"domains": ["*.us-east-1.amazonaws.com"]})
    assert fired(run([p, other_region], ctx("SG")), "RSD-050", other_region.urn)


def test_egress_component_child_in_a_zmo_stack_fires():
    parent = component("ai-companion:federated:EgressConnectors", "egress", stack="sg")
    from rules_kit import provider

    p = provider("ap-southeast-1", stack="sg")
    sub = res("aws:ec2/subnet:Subnet", "s", parent=parent, prov=p, stack="sg")
    assert fired(run([parent, p, sub], ctx("SG")), "RSD-050", sub.urn)


def test_plain_resources_in_a_zmo_stack_are_quiet():
    from rules_kit import provider

    p = provider("ap-southeast-1", stack="sg")
    assert not fired(run([p, res("aws:ec2/vpc:Vpc", "v", prov=p, stack="sg")], ctx("SG")), "RSD-050")


@pytest.mark.parametrize("host", ["api.openai.com", "api.anthropic.com", "us.api.openai.com", "example.org"])
def test_hosts_outside_the_eu_catalog_fire(host):
    [f] = fired(run([nfw(["eu.api.openai.com", host])]), "RSD-051")
    assert host in f.message and "EU connector catalog" in f.message


def test_catalogued_but_not_enabled_connector_fires():
    report = run([nfw(["api.eu.residency.elevenlabs.io"])], ctx("EU", connectors=("openai",)))
    assert "not enabled" in fired(report, "RSD-051")[0].message


def test_suricata_pass_rules_are_read():
    rs = ('pass tls $HOME_NET any -> $EXTERNAL_NET 443 (tls.sni; content:"api.openai.com"; endswith; sid:1;)\n'
          'drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"evil.example"; sid:2;)')
    rg = res("aws:networkfirewall/ruleGroup:RuleGroup", "rs", inputs={"ruleGroup": {"rulesSource": {"rulesString": rs}}})
    [f] = fired(run([rg]), "RSD-051")
    assert "api.openai.com" in f.message


def test_denylist_groups_are_not_allow_lists():
    assert not fired(run([nfw(["anything.example.com", ".openai.com"], kind="DENYLIST")]), "RSD-051")


@pytest.mark.parametrize("entry", [".openai.com", "*.openai.com", "*", "*.amazonaws.com", "*.us-east-1.amazonaws.com"])
def test_wildcards_fire(entry):
    assert fired(run([nfw([entry])]), "RSD-052")


@pytest.mark.parametrize("entry", ["*.eu-central-1.amazonaws.com", "*.eu-west-1.eks.amazonaws.com",
                                   "*.eu-central-1.compute.internal", "eu.api.openai.com"])
def test_in_geography_aws_namespaces_and_exact_hosts_are_not_wildcard_findings(entry):
    report = run([domains([entry])])
    assert not fired(report, "RSD-052") and not fired(report, "RSD-051")


def test_us_only_ec2_internal_is_accepted_only_where_us_east_1_is_in_the_geography():
    assert fired(run([domains(["*.ec2.internal"])]), "RSD-052")
    from rules_kit import provider

    p = provider("us-east-1", stack="us")
    dl = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "dl", prov=p, stack="us",
             inputs={"domains": ["*.ec2.internal"]})
    assert not fired(run([p, dl], ctx("US", allow_global=True)), "RSD-052")


def test_global_host_without_opt_in_fires_and_with_opt_in_is_quiet():
    from rules_kit import provider

    p = provider("us-east-1", stack="us")

    def group():
        return res("aws:networkfirewall/ruleGroup:RuleGroup", "g", prov=p, stack="us", inputs={"ruleGroup": {
            "rulesSource": {"rulesSourceList": {"generatedRulesType": "ALLOWLIST", "targets": ["api.anthropic.com"]}}}})

    without = run([p, group()], ctx("US", connectors=("openai",), allow_global=False))
    assert fired(without, "RSD-053") and not fired(without, "RSD-051")
    assert not fired(run([p, group()], ctx("US", allow_global=True)), "RSD-053")


def dns_rule(action, list_id):
    return res("aws:route53/resolverFirewallRule:ResolverFirewallRule", f"rule-{action}-{list_id}",
               inputs={"action": action, "firewallDomainListId": list_id, "priority": 100})


def test_allow_rule_on_the_catch_all_list_fires():
    everything = domains(["*"], "all")
    report = run([everything, dns_rule("ALLOW", "rslvr-fdl-all")])
    assert fired(report, "RSD-054") and not fired(report, "RSD-052")  # a `*`-only list is a block list


def test_block_rule_on_catch_all_and_allow_rule_on_connectors_are_quiet():
    report = run([domains(["*"], "all"), domains(["eu.api.openai.com"], "conn"),
                  dns_rule("BLOCK", "rslvr-fdl-all"), dns_rule("ALLOW", "rslvr-fdl-conn"), home_logging()])
    assert report.findings == []


def test_allow_rule_on_a_list_outside_the_stack_fails_closed_only_when_complete():
    assert fired(run([dns_rule("ALLOW", "rslvr-fdl-nowhere")]), "RSD-054")
    assert not fired(run([dns_rule("ALLOW", "rslvr-fdl-nowhere")], complete=False), "RSD-054")


def test_allow_rule_resolves_its_list_through_property_dependencies_when_no_id_is_recorded():
    """The engine records which resource a property came from; the list needs no `id` output."""
    def allow_from(lst):
        rule = dns_rule("ALLOW", "rslvr-fdl-id-not-recorded")
        rule.property_dependencies = {"firewallDomainListId": [lst.urn]}
        return rule

    connectors, everything = domains(["eu.api.openai.com"], "conn"), domains(["*"], "all")
    for lst in (connectors, everything):
        lst.id, lst.outputs = None, {}
    assert not fired(run([connectors, allow_from(connectors), home_logging()]), "RSD-054")
    assert fired(run([everything, allow_from(everything), home_logging()]), "RSD-054")
