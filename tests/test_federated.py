"""Federated (issue #4): the egress path the program registers for `us` and `eu`, and the config
it refuses. Everything is read from the synthesized stacks (the real program under mocks)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil

import pytest
import yaml

from infra.cli import main
from infra.program.components.egress import (ALLOWLIST_PRIORITY, GUARD_PRIORITY, PATH_TAG, declared_paths,
                                     egress_subnet_cidrs)
from infra.program.components.network import private_subnet_cidrs
from infra.program.catalog import load_catalog
from infra.program.config import ConfigError, parse_config
from conftest import TEST_STACKS
from infra.program.stackfiles import ROOT
from infra.harness.synth import synthesize
from stack_plans import ZMO_ONLY, of_type, planned, values_with

COMPONENT = "ai-companion:federated:EgressConnectors"
FEDERATED = ("eu", "us")
HOSTS = {
    "eu": ["api.eu.residency.elevenlabs.io", "eu.api.openai.com"],
    "us": ["api.anthropic.com", "api.perplexity.ai", "us.api.openai.com"],
}
CONNECTORS = {"eu": ["openai", "elevenlabs"], "us": ["openai", "anthropic", "perplexity"]}
ROUTE = "aws:ec2/route:Route"
# Types that can carry no tags; every other resource of the component must carry PATH_TAG.
UNTAGGABLE = {
    ROUTE, "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:iam/rolePolicy:RolePolicy",
    "aws:ec2/vpcEndpointRouteTableAssociation:VpcEndpointRouteTableAssociation",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:route53/resolverFirewallRule:ResolverFirewallRule",
    "aws:route53/resolverFirewallConfig:ResolverFirewallConfig",
    "aws:networkfirewall/loggingConfiguration:LoggingConfiguration",
    "aws:secretsmanager/secretPolicy:SecretPolicy",
}


def egress_resources(plan):
    (component,) = [r for r in plan.snapshot.resources if r.type == COMPONENT]
    return [r for r in plan.snapshot.resources if r.parent == component.urn]


def one(plan, type_, name):
    (found,) = [r for r in of_type(plan, type_) if r.name == name]
    return found


def stack_key_arn(plan):
    return one(plan, "aws:kms/key:Key", "data-key").outputs["arn"]


def table_of_subnet(plan):
    return {a.inputs["subnetId"]: a.inputs["routeTableId"]
            for a in of_type(plan, "aws:ec2/routeTableAssociation:RouteTableAssociation")}


# --- Network Firewall ---------------------------------------------------------------------------

@pytest.mark.parametrize("stack", FEDERATED)
def test_domain_allowlist_is_exactly_the_enabled_connector_hosts(stack):
    plan = planned(stack)
    group = one(plan, "aws:networkfirewall/ruleGroup:RuleGroup", "egress-allow-domains")
    rule_group = group.inputs["ruleGroup"]
    rules = rule_group["rulesSource"]["rulesString"].splitlines()
    passes = [r for r in rules if r.startswith("pass")]
    # TLS to 443 only, one rule per host; no cleartext HTTP (no connector documents it).
    assert all(r.startswith("pass tls $HOME_NET any -> $EXTERNAL_NET 443 (") for r in passes)
    assert sorted(r.split('content:"')[1].split('"')[0] for r in passes) == HOSTS[stack]
    assert [r.split(" (")[0] for r in rules if not r.startswith("pass")] == [
        "drop tls $HOME_NET any -> $EXTERNAL_NET any", "drop http $HOME_NET any -> $EXTERNAL_NET any"]
    assert rule_group["ruleVariables"]["ipSets"] == [{"key": "HOME_NET", "ipSet": {"definitions": [plan.config.vpc_cidr]}}]
    assert rule_group["statefulRuleOptions"]["ruleOrder"] == "STRICT_ORDER"
    assert group.inputs["type"] == "STATEFUL"


def test_allowlist_follows_the_enabled_connectors_only():
    plan = synthesize("eu", values_with("eu", federated=json.dumps({"connectors": ["openai"]})))
    group = one(plan, "aws:networkfirewall/ruleGroup:RuleGroup", "egress-allow-domains")
    assert [r.split('content:"')[1].split('"')[0] for r in group.inputs["ruleGroup"]["rulesSource"]["rulesString"]
            .splitlines() if r.startswith("pass")] == ["eu.api.openai.com"]
    domains = one(plan, "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "egress-dns-connectors")
    assert domains.inputs["domains"] == ["eu.api.openai.com"]
    assert [s.inputs["name"] for s in of_type(plan, "aws:secretsmanager/secret:Secret")] == ["ai-companion/eu/connectors/openai"]
    assert [p["host"] for p in plan.snapshot.stack_outputs["declaredDataPaths"]] == ["eu.api.openai.com"]


@pytest.mark.parametrize("stack", FEDERATED)
def test_policy_is_strict_order_and_drops_what_is_not_allowed(stack):
    plan = planned(stack)
    policy = one(plan, "aws:networkfirewall/firewallPolicy:FirewallPolicy", "egress-policy").inputs["firewallPolicy"]
    assert policy["statelessDefaultActions"] == ["aws:forward_to_sfe"]
    assert policy["statelessFragmentDefaultActions"] == ["aws:forward_to_sfe"]
    assert policy["statefulEngineOptions"] == {"ruleOrder": "STRICT_ORDER", "streamExceptionPolicy": "DROP"}
    assert policy["statefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    arns = {r.name: r.outputs["arn"] for r in of_type(plan, "aws:networkfirewall/ruleGroup:RuleGroup")}
    refs = sorted((ref["priority"], ref["resourceArn"]) for ref in policy["statefulRuleGroupReferences"])
    # The protocol guards run before the allow-list's pass rules.
    assert refs == [(GUARD_PRIORITY, arns["egress-guards"]), (ALLOWLIST_PRIORITY, arns["egress-allow-domains"])]
    assert GUARD_PRIORITY < ALLOWLIST_PRIORITY


@pytest.mark.parametrize("stack", FEDERATED)
def test_guards_drop_non_tcp_egress_including_quic(stack):
    group = one(planned(stack), "aws:networkfirewall/ruleGroup:RuleGroup", "egress-guards").inputs["ruleGroup"]
    assert group["statefulRuleOptions"]["ruleOrder"] == "STRICT_ORDER"
    assert group["ruleVariables"]["ipSets"][0]["key"] == "HOME_NET"
    rules = group["rulesSource"]["rulesString"].splitlines()
    heads = [r.split(" (")[0] for r in rules]
    assert "drop udp $HOME_NET any -> $EXTERNAL_NET 443" in heads  # QUIC
    assert "drop udp $HOME_NET any -> $EXTERNAL_NET any" in heads
    assert "drop icmp $HOME_NET any -> $EXTERNAL_NET any" in heads
    assert any(h == "drop ip $HOME_NET any -> $EXTERNAL_NET any" and "ip_proto:!TCP;" in r for h, r in zip(heads, rules))
    assert any("TLS without SNI" in r and r.startswith("reject tls") for r in rules)
    assert not [r for r in rules if r.startswith("pass")]  # guards never pass traffic
    sids = [r.split("sid:")[1].split(";")[0] for r in rules]
    assert len(sids) == len(set(sids)) == len(rules)


@pytest.mark.parametrize("stack", FEDERATED)
def test_firewall_spans_the_firewall_subnets_with_protected_encrypted_logs(stack):
    plan = planned(stack)
    firewall = one(plan, "aws:networkfirewall/firewall:Firewall", "egress-firewall")
    assert firewall.inputs["deleteProtection"] is True
    assert firewall.region == plan.config.region
    fw_subnets = {s.id for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("egress-firewall-")}
    assert {m["subnetId"] for m in firewall.inputs["subnetMappings"]} == fw_subnets
    assert len(fw_subnets) == len(plan.config.geography.availability_zones)

    logging = one(plan, "aws:networkfirewall/loggingConfiguration:LoggingConfiguration", "egress-firewall-logs")
    assert logging.inputs["firewallArn"] == firewall.outputs["arn"]
    destinations = {c["logType"]: c["logDestination"]["logGroup"]
                    for c in logging.inputs["loggingConfiguration"]["logDestinationConfigs"]}
    assert set(destinations) == {"ALERT", "FLOW"}
    groups = {g.inputs["name"]: g for g in of_type(plan, "aws:cloudwatch/logGroup:LogGroup")}
    for name in destinations.values():
        group = groups[name]
        assert group.inputs["kmsKeyId"] == stack_key_arn(plan)
        assert group.protect and group.region == plan.config.region


# --- Routing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", FEDERATED)
def test_routing_is_symmetric_per_availability_zone(stack):
    plan = planned(stack)
    subnets = {s.name: s for s in of_type(plan, "aws:ec2/subnet:Subnet")}
    tables = table_of_subnet(plan)
    routes: dict[str, list[dict]] = {}
    for route in of_type(plan, ROUTE):
        routes.setdefault(route.inputs["routeTableId"], []).append(route.inputs)
    firewall = one(plan, "aws:networkfirewall/firewall:Firewall", "egress-firewall")
    endpoint = {s["availabilityZone"]: s["attachments"][0]["endpointId"]
                for s in firewall.outputs["firewallStatuses"][0]["syncStates"]}
    (igw,) = of_type(plan, "aws:ec2/internetGateway:InternetGateway")
    nat_subnet = {n.id: n.inputs["subnetId"] for n in of_type(plan, "aws:ec2/natGateway:NatGateway")}
    eips = {e.id for e in of_type(plan, "aws:ec2/eip:Eip")}

    azs = plan.config.geography.availability_zones
    assert sorted(endpoint) == sorted(azs) and len(set(endpoint.values())) == len(azs)
    for az in azs:
        connector, fw, public = (subnets[f"egress-{role}-{az}"] for role in ("connector", "firewall", "public"))
        for subnet in (connector, fw, public):
            assert subnet.inputs["availabilityZone"] == az
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
        # connector -> the same AZ's firewall endpoint
        assert routes[tables[connector.id]] == [
            {"destinationCidrBlock": "0.0.0.0/0", "vpcEndpointId": endpoint[az], "routeTableId": tables[connector.id]}]
        # firewall -> the same AZ's NAT gateway (in this AZ's public subnet, with an EIP)
        (fw_route,) = routes[tables[fw.id]]
        assert fw_route["destinationCidrBlock"] == "0.0.0.0/0"
        assert nat_subnet[fw_route["natGatewayId"]] == public.id
        # public -> internet gateway, and the return route to the connectors via the same endpoint
        public_routes = {r["destinationCidrBlock"]: r for r in routes[tables[public.id]]}
        assert set(public_routes) == {"0.0.0.0/0", connector.inputs["cidrBlock"]}
        assert public_routes["0.0.0.0/0"]["gatewayId"] == igw.id
        assert public_routes[connector.inputs["cidrBlock"]]["vpcEndpointId"] == endpoint[az]
    assert {n.inputs["allocationId"] for n in of_type(plan, "aws:ec2/natGateway:NatGateway")} == eips
    assert len(eips) == len(azs)


@pytest.mark.parametrize("stack", FEDERATED)
def test_serving_subnets_keep_no_internet_route(stack):
    plan = planned(stack)
    tables = table_of_subnet(plan)
    serving = [s for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("net-private-")]
    assert len(serving) == len(plan.config.geography.availability_zones)
    serving_tables = {tables[s.id] for s in serving}
    assert len(serving_tables) == len(serving)
    assert not [r.name for r in of_type(plan, ROUTE) if r.inputs["routeTableId"] in serving_tables]
    for table in of_type(plan, "aws:ec2/routeTable:RouteTable"):
        if table.id in serving_tables:
            assert not [r for r in table.inputs.get("routes") or [] if r.get("cidrBlock") == "0.0.0.0/0"]
    # The cluster and its nodes stay on the serving subnets.
    serving_ids = {s.id for s in serving}
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    assert set(cluster.inputs["vpcConfig"]["subnetIds"]) == serving_ids
    for group in of_type(plan, "aws:eks/nodeGroup:NodeGroup"):
        if group.name.startswith("serving-"):
            assert set(group.inputs["subnetIds"]) == serving_ids



@pytest.mark.parametrize("stack", FEDERATED)
def test_connector_and_serving_subnets_reach_s3_in_region_through_the_gateway_endpoint(stack):
    """ECR's layers come from S3: the connector nodes' route tables join the S3 gateway endpoint
    too, so their image pulls stay in-region instead of meeting the firewall (which drops S3)."""
    plan = planned(stack)
    tables = table_of_subnet(plan)
    (gateway,) = [e for e in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint") if e.inputs.get("vpcEndpointType") == "Gateway"]
    # One way of joining route tables only (associations), so neither overwrites the other.
    assert "routeTableIds" not in gateway.inputs
    joined = {a.inputs["routeTableId"] for a in of_type(plan, "aws:ec2/vpcEndpointRouteTableAssociation:VpcEndpointRouteTableAssociation")
              if a.inputs["vpcEndpointId"] == gateway.id}
    subnets = of_type(plan, "aws:ec2/subnet:Subnet")
    connector = {tables[s.id] for s in subnets if s.inputs.get("tags", {}).get("ai-companion:subnet-role") == "connector"}
    serving = {tables[s.id] for s in subnets if s.name.startswith("net-private-")}
    assert len(connector) == len(serving) == len(plan.config.geography.availability_zones)
    assert joined == connector | serving  # and not the firewall or public subnets


@pytest.mark.parametrize("stack", FEDERATED)
def test_connector_nodes_are_the_only_workloads_on_the_connector_subnets(stack):
    plan = planned(stack)
    connector_ids = {s.id for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("egress-connector-")}
    groups = {g.name: g for g in of_type(plan, "aws:eks/nodeGroup:NodeGroup")}
    assert set(groups["egress-nodes"].inputs["subnetIds"]) == connector_ids
    assert groups["egress-nodes"].inputs["taints"] == [{"key": "ai-companion/pool", "value": "connectors", "effect": "NO_SCHEDULE"}]
    assert [n for n, g in groups.items() if set(g.inputs["subnetIds"]) & connector_ids] == ["egress-nodes"]


@pytest.mark.parametrize("stack", FEDERATED)
def test_every_internet_piece_is_inside_the_component_and_tagged(stack):
    plan = planned(stack)
    mine = egress_resources(plan)
    urns = {r.urn for r in mine}
    for type_ in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", ROUTE,
                  "aws:networkfirewall/firewall:Firewall"):
        found = of_type(plan, type_)
        assert found and all(r.urn in urns for r in found), type_
    for r in mine:
        assert r.option == "federated"
        if r.type not in UNTAGGABLE:
            assert r.inputs["tags"]["ai-companion:path"] == PATH_TAG["ai-companion:path"], r.name


def test_egress_subnets_never_overlap_the_serving_subnets():
    for cidr in ("10.40.0.0/16", "10.8.16.0/20", "172.20.0.0/18"):
        vpc = ipaddress.ip_network(cidr)
        private = [ipaddress.ip_network(c) for c in private_subnet_cidrs(cidr, 4)]
        egress = [ipaddress.ip_network(c) for cs in egress_subnet_cidrs(cidr, 4).values() for c in cs]
        everything = private + egress
        assert all(n.subnet_of(vpc) for n in everything)
        assert not [(a, b) for i, a in enumerate(everything) for b in everything[i + 1:] if a.overlaps(b)]
    with pytest.raises(ValueError, match="at most 4"):
        egress_subnet_cidrs("10.40.0.0/16", 5)


# --- DNS Firewall -------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", FEDERATED)
def test_dns_firewall_allows_connector_hosts_blocks_the_rest_and_fails_closed(stack):
    plan = planned(stack)
    lists = {r.id: r for r in of_type(plan, "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList")}
    (group,) = of_type(plan, "aws:route53/resolverFirewallRuleGroup:ResolverFirewallRuleGroup")
    rules = sorted(of_type(plan, "aws:route53/resolverFirewallRule:ResolverFirewallRule"), key=lambda r: r.inputs["priority"])
    assert all(r.inputs["firewallRuleGroupId"] == group.id for r in rules)
    by_priority = {r.inputs["priority"]: r.inputs for r in rules}

    assert by_priority[100]["action"] == "ALLOW"
    assert sorted(lists[by_priority[100]["firewallDomainListId"]].inputs["domains"]) == HOSTS[stack]
    assert by_priority[200]["action"] == "BLOCK" and by_priority[200]["blockResponse"] == "NXDOMAIN"
    assert lists[by_priority[200]["firewallDomainListId"]].inputs["domains"] == ["*"]
    assert max(by_priority) == 200  # the block is the last rule
    # The only other ALLOW is the stack's own region's AWS names (the cluster must still resolve),
    # with, in us-east-1, the exact legacy name of ECR's in-region layer bucket (docs/conformance.md).
    from infra.program.components.egress import ECR_LEGACY_LAYER_NAMES

    region = plan.config.region
    others = [p for p in by_priority if p not in (100, 200)]
    for p in others:
        assert by_priority[p]["action"] == "ALLOW"
        assert all(f".{region}." in d or d in ECR_LEGACY_LAYER_NAMES.get(region, [])
                   for d in lists[by_priority[p]["firewallDomainListId"]].inputs["domains"])

    vpc_id = of_type(plan, "aws:ec2/vpc:Vpc")[0].id
    (assoc,) = of_type(plan, "aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation")
    assert assoc.inputs["vpcId"] == vpc_id and assoc.inputs["firewallRuleGroupId"] == group.id
    assert assoc.inputs["mutationProtection"] == "ENABLED"
    assert 100 <= assoc.inputs["priority"] <= 9900
    (config,) = of_type(plan, "aws:route53/resolverFirewallConfig:ResolverFirewallConfig")
    assert config.inputs == {"resourceId": vpc_id, "firewallFailOpen": "DISABLED"}


# --- Connector credentials ----------------------------------------------------------------------

@pytest.mark.parametrize("stack", FEDERATED)
def test_one_home_region_secret_per_connector_without_replicas(stack):
    plan = planned(stack)
    secrets = {s.inputs["name"]: s for s in of_type(plan, "aws:secretsmanager/secret:Secret")}
    assert sorted(secrets) == sorted(f"ai-companion/{stack}/connectors/{k}" for k in CONNECTORS[stack])
    for secret in secrets.values():
        assert secret.region == plan.config.region
        assert secret.outputs["arn"].split(":")[3] == plan.config.region
        assert secret.inputs["kmsKeyId"] == stack_key_arn(plan)
        assert not secret.inputs.get("replicas")
        assert secret.protect


@pytest.mark.parametrize("stack", FEDERATED)
def test_each_connector_role_reads_only_its_own_secret(stack):
    plan = planned(stack)
    secrets = {s.name.removeprefix("egress-"): s.outputs["arn"] for s in of_type(plan, "aws:secretsmanager/secret:Secret")}
    roles = {r.name.removeprefix("egress-"): r for r in of_type(plan, "aws:iam/role:Role") if r.name.startswith("egress-")}
    policies = {p.name.removeprefix("egress-").removesuffix("-secret"): p for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy")
                if p.name.endswith("-secret")}
    associations = {a.inputs["serviceAccount"]: a for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert sorted(secrets) == sorted(policies) == sorted(CONNECTORS[stack])
    for key, arn in secrets.items():
        role = roles[key]
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "pods.eks.amazonaws.com"}]
        assert policies[key].inputs["role"] == role.id
        statements = json.loads(policies[key].inputs["policy"])["Statement"]
        secret_stmts = [s for s in statements if any(a.startswith("secretsmanager:") for a in s["Action"])]
        assert [(sorted(s["Action"]), s["Resource"]) for s in secret_stmts] == [
            (["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], arn)]
        (kms,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
        assert kms["Resource"] == stack_key_arn(plan)
        assert kms["Condition"]["StringEquals"]["kms:ViaService"] == f"secretsmanager.{plan.config.region}.amazonaws.com"
        assert all(s["Resource"] != "*" for s in statements)
        association = associations[f"connector-{key}"]
        assert association.inputs["namespace"] == "connectors"
        assert association.inputs["roleArn"] == role.outputs["arn"]


# --- Declared data paths ------------------------------------------------------------------------

def test_declared_data_paths_eu():
    assert planned("eu").snapshot.stack_outputs["declaredDataPaths"] == [
        {"connector": "openai", "provider": "openai", "host": "eu.api.openai.com",
         "processing": "in_geography", "processing_geography": "EU"},
        {"connector": "elevenlabs", "provider": "elevenlabs", "host": "api.eu.residency.elevenlabs.io",
         "processing": "in_geography", "processing_geography": "EU"},
    ]


def test_declared_data_paths_us_show_global_processing():
    assert planned("us").snapshot.stack_outputs["declaredDataPaths"] == [
        {"connector": "openai", "provider": "openai", "host": "us.api.openai.com",
         "processing": "in_geography", "processing_geography": "US"},
        {"connector": "anthropic", "provider": "anthropic", "host": "api.anthropic.com",
         "processing": "global", "processing_geography": "global"},
        {"connector": "perplexity", "provider": "perplexity", "host": "api.perplexity.ai",
         "processing": "global", "processing_geography": "global"},
    ]
    assert declared_paths((), "US") == []


# --- ZMO-only stacks ----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ZMO_ONLY)
def test_zmo_only_stacks_have_no_egress_path(stack):
    plan = planned(stack)
    types = {r.type for r in plan.snapshot.resources}
    assert not types & {"aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", ROUTE,
                        "aws:networkfirewall/firewall:Firewall", COMPONENT}
    assert not [t for t in types if t.startswith("aws:networkfirewall/")]
    # DNS Firewall is there (every stack's walled garden, DnsFirewall), admitting AWS names only.
    domains = [d for r in plan.snapshot.resources if r.type.startswith("aws:route53/resolverFirewallDomainList")
               for d in r.inputs["domains"]]
    assert domains and all(d == "*" or d.endswith((".amazonaws.com", ".api.aws")) for d in domains)
    assert plan.snapshot.stack_outputs["declaredDataPaths"] == []


# --- Config rejections --------------------------------------------------------------------------

REJECTED = {
    "global host in eu": ("eu", {"connectors": ["api.openai.com"]}, "'api.openai.com' is not in the EU connector catalog"),
    "global connector in eu": ("eu", {"connectors": ["anthropic"]},
                               "'anthropic' (api.anthropic.com) processes data globally, and EU is a local data cluster"),
    "global connector in eu with opt-in": ("eu", {"connectors": ["perplexity"], "allowGlobalProcessing": True},
                                          "'perplexity' (api.perplexity.ai) processes data globally, and EU is a local"),
    "us global host in eu": ("eu", {"connectors": ["api.anthropic.com"]}, "EU is a local data cluster: its Federated"),
    "opt-in in eu": ("eu", {"connectors": ["openai"], "allowGlobalProcessing": True},
                     "allowGlobalProcessing: EU is a local data cluster"),
    "wildcard host": ("us", {"connectors": ["*.openai.com"]}, "'*.openai.com' is a wildcard"),
    "connector not in the catalog": ("us", {"connectors": ["elevenlabs"]}, "'elevenlabs' is not in the US connector catalog"),
    "global connector without opt-in": ("us", {"connectors": ["openai", "anthropic"]},
                                        "'anthropic' (api.anthropic.com) processes data globally"),
}


@pytest.mark.parametrize("case", REJECTED, ids=list(REJECTED))
def test_bad_connector_config_is_refused(case):
    stack, federated, message = REJECTED[case]
    with pytest.raises(ConfigError) as err:
        parse_config(values_with(stack, federated=json.dumps(federated)), stack)
    assert message in str(err.value)
    assert "ai-companion:federated" in str(err.value)


def test_the_eu_refuses_a_global_connector_without_suggesting_the_opt_in():
    """Issue #19: EU is a local data cluster; the US keeps the opt-in (the global data cluster)."""
    with pytest.raises(ConfigError) as err:
        parse_config(values_with("eu", federated=json.dumps({"connectors": ["openai", "anthropic"]})), "eu")
    message = str(err.value)
    assert "local data cluster" in message and "allowGlobalProcessing" not in message
    cfg = parse_config(values_with("us", federated=json.dumps({"connectors": ["anthropic"],
                                                               "allowGlobalProcessing": True})), "us")
    assert [c.key for c in cfg.connectors] == ["anthropic"] and cfg.allow_global_processing


def test_the_catalog_refuses_a_global_connector_in_a_local_data_cluster():
    import yaml

    from infra.program.catalog import CATALOG_PATH, CatalogError, parse_catalog

    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["geographies"]["EU"]["federated"]["connectors"]["perplexity"] = {
        "provider": "perplexity", "hosts": ["api.perplexity.ai"], "processing": "global"}
    with pytest.raises(CatalogError, match="EU is a local data cluster"):
        parse_catalog(raw)
    raw["geographies"]["EU"]["data_cluster"] = "continental"
    with pytest.raises(CatalogError, match="data_cluster: 'continental' is not one of global, local"):
        parse_catalog(raw)


def test_an_eu_allow_list_with_a_global_host_is_named_even_with_the_opt_in():
    from rules_kit import ctx, fired, res, run

    group = res("aws:networkfirewall/ruleGroup:RuleGroup", "g", inputs={"ruleGroup": {"rulesSource": {
        "rulesSourceList": {"generatedRulesType": "ALLOWLIST", "targetTypes": ["TLS_SNI"],
                            "targets": ["api.perplexity.ai"]}}}})
    us_like = ctx("EU", allow_global=True)
    geo = dataclasses.replace(us_like.geography, federated=dataclasses.replace(
        us_like.geography.federated, connectors={**us_like.geography.federated.connectors,
                                                 "perplexity": load_catalog().geography("US").federated.connectors["perplexity"]}))
    [f] = fired(run([group], dataclasses.replace(us_like, geography=geo)), "RSD-053")
    assert "EU is a local data cluster" in f.message


def test_federated_in_a_zmo_only_geography_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(values_with("sg", options='["zmo", "federated"]',
                                 federated=json.dumps({"connectors": ["openai"]})), "sg")
    assert "'federated' is not offered in SG; allowed: zmo" in str(err.value)


@pytest.fixture
def project(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")

    def write(stack: str, config: dict):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
        return tmp_path
    return write


def _stack_file(stack: str) -> dict:
    return yaml.safe_load((TEST_STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


CLI_REJECTED = {
    "global host in eu": ("eu", {"ai-companion:federated": {"connectors": ["api.anthropic.com"]}}, "api.anthropic.com"),
    "wildcard host": ("eu", {"ai-companion:federated": {"connectors": ["*.openai.com"]}}, "is a wildcard"),
    "not in the catalog": ("eu", {"ai-companion:federated": {"connectors": ["mistral"]}}, "allowed: openai, elevenlabs"),
    "global without opt-in": ("us", {"ai-companion:federated": {"connectors": ["perplexity"]}}, "allowGlobalProcessing: true"),
    "zmo-only geography": ("sg", {"ai-companion:options": ["zmo", "federated"],
                                  "ai-companion:federated": {"connectors": ["openai"]}}, "'federated' is not offered in SG"),
}


@pytest.mark.parametrize("case", CLI_REJECTED, ids=list(CLI_REJECTED))
def test_cli_plan_exits_2_on_bad_connector_config(case, project, capsys):
    stack, change, message = CLI_REJECTED[case]
    root = project(stack, {**_stack_file(stack), **change})
    assert main(["--project-dir", str(root), "plan", "--stack", stack]) == 2
    err = capsys.readouterr().err
    assert "ai-companion:federated" in err or "ai-companion:options" in err
    assert message in err and "Traceback" not in err


def test_console_script_refuses_a_global_connector_for_the_eu_with_exit_2_before_anything_registers(project):
    """Issue #19: whatever allowGlobalProcessing says; the message does not suggest the opt-in."""
    from cli_run import residency

    root = project("eu", {**_stack_file("eu"), "ai-companion:federated": {"connectors": ["openai", "perplexity"],
                                                                           "allowGlobalProcessing": True}})
    result = residency("plan", "--stack", "eu", "--format", "json", project=root)
    assert result.rc == 2 and "Traceback" not in result.err and not result.out.strip()
    assert "'perplexity' (api.perplexity.ai) processes data globally, and EU is a local data cluster" in result.err
    line = next(x for x in result.err.splitlines() if "perplexity" in x)
    assert "allowGlobalProcessing" not in line


# --- Residency rules ----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", FEDERATED)
def test_the_sanctioned_egress_path_has_no_residency_findings(stack):
    from infra.engine.rules import Context, evaluate

    plan = planned(stack)
    report = evaluate(plan.snapshot, Context.from_config(plan.config))
    assert [(f.rule, f.urn.rsplit("::", 1)[-1], f.message) for f in report.findings] == []
    assert [p["host"] for p in report.declared_paths] == [p["host"] for p in plan.snapshot.stack_outputs["declaredDataPaths"]]


def test_the_same_path_is_flagged_in_a_stack_without_the_federated_option():
    """Guards the test above against passing vacuously: the rules do look at these resources."""
    import dataclasses

    from infra.engine.rules import Context, evaluate

    plan = planned("eu")
    ctx = dataclasses.replace(Context.from_config(plan.config), options=("zmo", "zm_plus"), connectors=())
    flagged = {f.urn for f in evaluate(plan.snapshot, ctx).findings}
    for type_ in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway",
                  "aws:networkfirewall/firewall:Firewall"):
        assert {r.urn for r in of_type(plan, type_)} <= flagged, type_
