"""Live scan of the APIs moto 5.2.5 lacks, and of faults moto cannot produce, with botocore's Stubber.

Stubbed here: Bedrock inference profiles and guardrails (and CloudWatch's AWS/Bedrock metrics that
say which profiles are in use), Network Firewall rule groups, Route 53 Resolver DNS Firewall,
DynamoDB global-table replicas, Global Accelerator, Client VPN endpoints, AWS-managed IAM policies,
throttling, disabled opt-in regions and per-call faults (also of the global edge services). Every
call's parameters are checked and every queued response must be consumed.
"""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest

import infra.engine.live.core as core
from infra.engine.live import Timeouts, scan_account
from infra.program.errors import InputError
from infra.engine.rules import Context, evaluate
from infra.program.stackfiles import load_stack_config
from live_fixtures import ACCOUNT, HOME, StubSession, aws_env, no_ecr_policies  # noqa: F401  (fixture)

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
EU_DESTINATIONS = ("eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-3")


def run(session, services, stack="eu", regions=(HOME,)):
    cfg = load_stack_config(stack)
    if ("ec2", cfg.region) not in session.stubbers:  # the first call of every scan
        opted_in(session, *regions, home=cfg.region)
    result = scan_account(cfg, regions=list(regions), session=session, services=services)
    session.assert_no_pending_responses()
    return result, evaluate(result.snapshot, Context.from_config(cfg))


def flagged(report, ident, rule=None):
    return [f for f in report.findings if (ident in f.urn or ident in f.message) and (rule is None or f.rule == rule)]


def of_type(result, suffix):
    return [r for r in result.snapshot.resources if r.type.endswith(suffix)]


def opted_in(stub: StubSession, *regions, disabled=(), home=HOME):
    """The DescribeRegions pre-check the scan makes from the home region."""
    stub.stub("ec2", home).add_response("describe_regions", {"Regions": [
        {"RegionName": r, "OptInStatus": "not-opted-in" if r in disabled else "opt-in-not-required"}
        for r in regions]}, {"AllRegions": True})


def fm(region, model=SONNET):
    return {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model}"}


def profile(pid, arn, models, type_="SYSTEM_DEFINED"):
    return {"inferenceProfileName": pid, "inferenceProfileArn": arn, "inferenceProfileId": pid,
            "models": models, "status": "ACTIVE", "type": type_}


# --- Bedrock ----------------------------------------------------------------------------------------

def bedrock_account(stub, *, logging=None, app_profiles=(), metrics=(), profiles=(), guardrails=()):
    b, cw = stub.stub("bedrock"), stub.stub("cloudwatch")
    b.add_response("get_model_invocation_logging_configuration", {"loggingConfig": logging} if logging else {}, {})
    b.add_response("list_inference_profiles", {"inferenceProfileSummaries": list(app_profiles)},
                   {"typeEquals": "APPLICATION"})
    cw.add_response("list_metrics", {"Metrics": [
        {"Namespace": "AWS/Bedrock", "MetricName": "Invocations", "Dimensions": [{"Name": "ModelId", "Value": m}]}
        for m in metrics]}, {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"})
    for ident, p in sorted(profiles, key=lambda x: x[0]):  # by the ModelId the metric names (id or ARN), in order
        b.add_response("get_inference_profile", p, {"inferenceProfileIdentifier": ident})
    summaries = [{"id": g["guardrailId"], "arn": g["guardrailArn"], "status": "READY", "name": g["name"],
                  "version": "DRAFT", "createdAt": NOW, "updatedAt": NOW} for g in guardrails]
    b.add_response("list_guardrails", {"guardrails": summaries}, {})
    for g, summary in zip(guardrails, summaries):
        b.add_response("list_guardrails", {"guardrails": [summary]}, {"guardrailIdentifier": g["guardrailId"]})
        b.add_response("get_guardrail", g, {"guardrailIdentifier": g["guardrailId"], "guardrailVersion": "DRAFT"})


def guardrail(gid, cross=None):
    g = {"name": gid, "guardrailId": gid, "guardrailArn": f"arn:aws:bedrock:{HOME}:{ACCOUNT}:guardrail/{gid}",
         "version": "DRAFT", "status": "READY", "createdAt": NOW, "updatedAt": NOW,
         "blockedInputMessaging": "no", "blockedOutputsMessaging": "no"}
    if cross:
        g["crossRegionDetails"] = {"guardrailProfileId": cross,
                                   "guardrailProfileArn": f"arn:aws:bedrock:{HOME}:{ACCOUNT}:guardrail-profile/{cross}"}
    return g


def test_in_use_profiles_global_and_foreign_are_flagged_own_geography_is_not():
    stub = StubSession()
    opted_in(stub, HOME)
    eu_arn = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:inference-profile/eu.{SONNET}"
    global_arn = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:inference-profile/global.{SONNET}"
    us_arn = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:inference-profile/us.{SONNET}"
    bedrock_account(
        stub, logging={"s3Config": {"bucketName": "prompt-logs"}, "textDataDeliveryEnabled": True},
        # An in-region model id is not a profile: nothing to resolve.
        metrics=[f"eu.{SONNET}", f"global.{SONNET}", us_arn, "anthropic.claude-haiku-4-5-20251001-v1:0"],
        profiles=[(f"eu.{SONNET}", profile(f"eu.{SONNET}", eu_arn, [fm(r) for r in EU_DESTINATIONS])),
                  (f"global.{SONNET}", profile(f"global.{SONNET}", global_arn, [fm(""), fm("us-east-1")])),
                  (us_arn, profile(f"us.{SONNET}", us_arn, [fm("us-east-1"), fm("us-west-2")]))])
    stub.stub("s3").add_response("get_bucket_location", {"LocationConstraint": HOME}, {"Bucket": "prompt-logs"})
    result, report = run(stub, ["bedrock"])
    assert result.not_checked == []
    by_id = {r.id: r for r in of_type(result, "InferenceProfile")}
    assert set(by_id) == {f"eu.{SONNET}", f"global.{SONNET}", f"us.{SONNET}"}
    assert by_id[f"eu.{SONNET}"].outputs["models"][1] == fm("eu-north-1")
    assert "modelSource" not in by_id[f"eu.{SONNET}"].inputs  # the API does not say
    assert flagged(report, global_arn, "RSD-042")
    assert any("has no region" in f.message for f in flagged(report, global_arn, "RSD-043"))
    assert flagged(report, us_arn, "RSD-042") and flagged(report, us_arn, "RSD-010")
    assert not flagged(report, eu_arn)


def test_application_profile_routing_inside_is_not_flagged():
    stub = StubSession()
    opted_in(stub, HOME)
    arn = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:application-inference-profile/app1"
    bedrock_account(stub, app_profiles=[profile("app1", arn, [fm(r) for r in EU_DESTINATIONS], "APPLICATION")])
    result, report = run(stub, ["bedrock"])
    assert of_type(result, "InferenceProfile")
    assert not flagged(report, arn)


def test_application_profile_routing_outside_is_flagged():
    stub = StubSession()
    opted_in(stub, HOME)
    arn = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:application-inference-profile/copied-from-us"
    bedrock_account(stub, app_profiles=[profile("copied-from-us", arn, [fm("us-east-1"), fm("us-west-2")],
                                                "APPLICATION")])
    result, report = run(stub, ["bedrock"])
    (res,) = of_type(result, "InferenceProfile")
    assert res.urn == arn and res.outputs["type"] == "APPLICATION"
    assert any("us-east-1" in f.message for f in flagged(report, arn, "RSD-010"))


def test_guardrail_with_cross_region_profile_is_flagged():
    stub = StubSession()
    opted_in(stub, HOME)
    bedrock_account(stub, guardrails=[guardrail("cross", cross="eu.guardrail.v1:0"), guardrail("local")])
    result, report = run(stub, ["bedrock"])
    by_id = {r.outputs["guardrailId"]: r for r in of_type(result, "Guardrail")}
    assert by_id["cross"].inputs["crossRegionConfig"]["guardrailProfileIdentifier"].endswith("eu.guardrail.v1:0")
    assert flagged(report, by_id["cross"].urn, "RSD-044")
    assert not flagged(report, by_id["local"].urn)


def test_logging_configuration_maps_to_the_pulumi_shape():
    stub = StubSession()
    opted_in(stub, HOME)
    role = f"arn:aws:iam::{ACCOUNT}:role/bedrock-logs"
    bedrock_account(stub, logging={
        "cloudWatchConfig": {"logGroupName": "/bedrock/invocations", "roleArn": role,
                             "largeDataDeliveryS3Config": {"bucketName": "large-logs"}},
        "textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": False})
    stub.stub("s3").add_response("get_bucket_location", {"LocationConstraint": "eu-west-2"}, {"Bucket": "large-logs"})
    result, report = run(stub, ["bedrock"])
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    assert logging.type == "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
    assert logging.inputs["loggingConfig"] == {
        "cloudwatchConfig": {"logGroupName": "/bedrock/invocations", "roleArn": role,
                             "largeDataDeliveryS3Config": {"bucketName": "large-logs"}},
        "textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": False}
    assert flagged(report, "arn:aws:s3:::large-logs", "RSD-001")  # the bucket is in London


# --- Network Firewall ---------------------------------------------------------------------------------

def rule_group(name, targets, generated="ALLOWLIST"):
    arn = f"arn:aws:network-firewall:{HOME}:{ACCOUNT}:stateful-rulegroup/{name}"
    return arn, {
        "UpdateToken": "t",
        "RuleGroup": {"RulesSource": {"RulesSourceList": {
            "Targets": targets, "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": generated}}},
        "RuleGroupResponse": {"RuleGroupArn": arn, "RuleGroupName": name, "RuleGroupId": f"{name:0>36}", "Type": "STATEFUL",
                              "Capacity": 100, "Tags": [{"Key": "ai-companion:path", "Value": "federated-egress"}]},
    }


def test_network_firewall_allowlist_hosts_outside_the_catalog_are_flagged_across_pages():
    stub = StubSession()
    opted_in(stub, HOME)
    bad_arn, bad = rule_group("openai-global", ["eu.api.openai.com", "api.openai.com"])
    good_arn, good = rule_group("connectors", ["eu.api.openai.com", "api.eu.residency.elevenlabs.io"])
    nfw = stub.stub("network-firewall")
    nfw.add_response("list_rule_groups", {"RuleGroups": [{"Name": "openai-global", "Arn": bad_arn}], "NextToken": "p2"}, {})
    nfw.add_response("list_rule_groups", {"RuleGroups": [{"Name": "connectors", "Arn": good_arn}]}, {"NextToken": "p2"})
    nfw.add_response("describe_rule_group", bad, {"RuleGroupArn": bad_arn})
    nfw.add_response("describe_rule_group", good, {"RuleGroupArn": good_arn})
    result, report = run(stub, ["network-firewall"])
    by_urn = {r.urn: r for r in of_type(result, "RuleGroup")}
    assert set(by_urn) == {bad_arn, good_arn}  # both pages
    assert by_urn[bad_arn].inputs["ruleGroup"]["rulesSource"]["rulesSourceList"] == {
        "targets": ["eu.api.openai.com", "api.openai.com"], "targetTypes": ["TLS_SNI", "HTTP_HOST"],
        "generatedRulesType": "ALLOWLIST"}
    assert by_urn[bad_arn].tags == {"ai-companion:path": "federated-egress"}
    assert any("api.openai.com" in f.message for f in flagged(report, bad_arn, "RSD-051"))
    assert not flagged(report, good_arn)


def test_network_firewall_in_a_stack_without_federated_is_flagged():
    stub = StubSession()
    opted_in(stub, "ap-southeast-1", home="ap-southeast-1")
    arn, group = rule_group("egress", ["example.com"])
    arn = arn.replace(HOME, "ap-southeast-1")
    nfw = stub.stub("network-firewall", "ap-southeast-1")
    nfw.add_response("list_rule_groups", {"RuleGroups": [{"Name": "egress", "Arn": arn}]}, {})
    nfw.add_response("describe_rule_group", group, {"RuleGroupArn": arn})
    _, report = run(stub, ["network-firewall"], stack="sg", regions=("ap-southeast-1",))
    assert flagged(report, arn, "RSD-050")


# --- Route 53 Resolver DNS Firewall --------------------------------------------------------------------

def test_dns_firewall_domain_lists_and_allow_rules():
    stub = StubSession()
    opted_in(stub, HOME)
    r53 = stub.stub("route53resolver")
    lists = [
        {"Id": "rslvr-fdl-bad", "Arn": f"arn:aws:route53resolver:{HOME}:{ACCOUNT}:firewall-domain-list/rslvr-fdl-bad",
         "Name": "perplexity"},
        {"Id": "rslvr-fdl-good", "Arn": f"arn:aws:route53resolver:{HOME}:{ACCOUNT}:firewall-domain-list/rslvr-fdl-good",
         "Name": "connectors"},
        {"Id": "rslvr-fdl-aws", "Arn": f"arn:aws:route53resolver:{HOME}::firewall-domain-list/rslvr-fdl-aws",
         "Name": "AWSManagedDomainsMalwareDomainList", "ManagedOwnerName": "Route 53 Resolver DNS Firewall"},
    ]
    r53.add_response("list_firewall_domain_lists", {"FirewallDomainLists": lists}, {})
    r53.add_response("list_firewall_domains", {"Domains": ["api.perplexity.ai."]}, {"FirewallDomainListId": "rslvr-fdl-bad"})
    r53.add_response("list_firewall_domains", {"Domains": ["eu.api.openai.com."]}, {"FirewallDomainListId": "rslvr-fdl-good"})
    r53.add_response("list_firewall_rule_groups", {"FirewallRuleGroups": [{"Id": "rslvr-frg-1", "Name": "egress"}]}, {})
    r53.add_response("list_firewall_rules", {"FirewallRules": [
        {"FirewallRuleGroupId": "rslvr-frg-1", "FirewallDomainListId": "rslvr-fdl-good", "Name": "allow",
         "Priority": 100, "Action": "ALLOW"},
        {"FirewallRuleGroupId": "rslvr-frg-1", "FirewallDomainListId": "rslvr-fdl-unknown", "Name": "allow-other",
         "Priority": 150, "Action": "ALLOW"},
    ]}, {"FirewallRuleGroupId": "rslvr-frg-1"})
    result, report = run(stub, ["route53resolver"])
    assert {r.id for r in of_type(result, "ResolverFirewallDomainList")} == {"rslvr-fdl-bad", "rslvr-fdl-good"}
    assert flagged(report, "rslvr-fdl-bad", "RSD-051")
    assert not flagged(report, "rslvr-fdl-good")
    rules = {r.inputs["name"]: r for r in of_type(result, "ResolverFirewallRule")}
    assert rules["allow"].inputs["firewallDomainListId"] == "rslvr-fdl-good" and not flagged(report, rules["allow"].urn)
    assert flagged(report, rules["allow-other"].urn, "RSD-054")


# --- DynamoDB -----------------------------------------------------------------------------------------

def table(name, replicas=(), legacy=False):
    t = {"TableName": name, "TableArn": f"arn:aws:dynamodb:{HOME}:{ACCOUNT}:table/{name}",
         "Replicas": [{"RegionName": r, "ReplicaStatus": "ACTIVE"} for r in replicas]}
    if legacy:
        t["GlobalTableVersion"] = "2017.11.29"
    return {"Table": t}


def test_dynamodb_global_table_replicas():
    stub = StubSession()
    opted_in(stub, HOME)
    ddb = stub.stub("dynamodb")
    ddb.add_response("list_tables", {"TableNames": ["abroad", "inside", "legacy"]}, {})
    ddb.add_response("describe_table", table("abroad", [HOME, "us-east-1"]), {"TableName": "abroad"})
    ddb.add_response("describe_table", table("inside", [HOME, "eu-west-1"]), {"TableName": "inside"})
    ddb.add_response("describe_table", table("legacy", legacy=True), {"TableName": "legacy"})
    ddb.add_response("describe_global_table", {"GlobalTableDescription": {
        "GlobalTableName": "legacy", "GlobalTableArn": f"arn:aws:dynamodb::{ACCOUNT}:global-table/legacy",
        "ReplicationGroup": [{"RegionName": HOME}, {"RegionName": "us-west-2"}]}}, {"GlobalTableName": "legacy"})
    result, report = run(stub, ["dynamodb"])
    tables = {r.id: r for r in result.snapshot.resources}
    assert tables["abroad"].inputs["replicas"] == [{"regionName": "us-east-1"}]
    assert tables["legacy"].type == "aws:dynamodb/globalTable:GlobalTable"
    assert flagged(report, "table/abroad", "RSD-031")
    assert flagged(report, "global-table/legacy", "RSD-031")
    assert not flagged(report, "table/inside")


# --- IAM: AWS-managed policies are fetched ---------------------------------------------------------------

def test_attached_aws_managed_policy_is_read_and_judged():
    stub = StubSession()
    iam = stub.stub("iam")
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    iam.add_response("get_account_authorization_details", {
        "UserDetailList": [{"UserName": "ops", "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops",
                            "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": admin}]}],
        "RoleDetailList": [], "GroupDetailList": [], "Policies": [], "IsTruncated": False,
    }, {"Filter": ["User", "Role", "Group", "LocalManagedPolicy"]})
    iam.add_response("get_policy", {"Policy": {"PolicyName": "AdministratorAccess", "Arn": admin, "Path": "/",
                                               "DefaultVersionId": "v1", "AttachmentCount": 1}}, {"PolicyArn": admin})
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.add_response("get_policy_version", {"PolicyVersion": {"Document": json.dumps(document), "VersionId": "v1",
                                                              "IsDefaultVersion": True}},
                     {"PolicyArn": admin, "VersionId": "v1"})
    result, report = run(stub, ["iam"])
    (policy,) = of_type(result, "iam/policy:Policy")
    assert policy.urn == admin and json.loads(policy.inputs["policy"]) == document
    assert flagged(report, admin, "RSD-041")


# --- Global Accelerator (us-west-2, whatever the geography) and Client VPN ----------------------------

def accelerator(name):
    return {"AcceleratorArn": f"arn:aws:globalaccelerator::{ACCOUNT}:accelerator/{name}", "Name": name,
            "IpAddressType": "IPV4", "Enabled": True, "DnsName": f"{name}.awsglobalaccelerator.com",
            "Status": "DEPLOYED", "IpSets": [{"IpFamily": "IPv4", "IpAddresses": ["192.0.2.250"]}]}


def test_global_accelerators_on_every_page_are_flagged():
    stub = StubSession()
    ga = stub.stub("globalaccelerator", "us-west-2")
    ga.add_response("list_accelerators", {"Accelerators": [accelerator("a1")], "NextToken": "p2"}, {})
    ga.add_response("list_accelerators", {"Accelerators": [accelerator("a2")]}, {"NextToken": "p2"})
    result, report = run(stub, ["globalaccelerator"])
    assert result.not_checked == []
    by_name = {r.name: r for r in of_type(result, "globalaccelerator/accelerator:Accelerator")}
    assert set(by_name) == {"a1", "a2"} and by_name["a1"].region == "us-west-2"
    assert by_name["a1"].inputs["enabled"] is True
    assert by_name["a1"].outputs["ipSets"] == [{"ipFamily": "IPv4", "ipAddresses": ["192.0.2.250"]}]
    for name in ("a1", "a2"):
        assert flagged(report, f"accelerator/{name}", "RSD-027")


def test_no_global_accelerator_is_not_flagged():
    stub = StubSession()
    stub.stub("globalaccelerator", "us-west-2").add_response("list_accelerators", {"Accelerators": []}, {})
    result, report = run(stub, ["globalaccelerator"])
    assert result.not_checked == [] and result.snapshot.resources == [] and report.findings == []


EC2_LISTS = (  # ec2.scan's calls, in order, with their result keys
    ("describe_vpcs", "Vpcs"), ("describe_network_acls", "NetworkAcls"),
    ("describe_transit_gateways", "TransitGateways"), ("describe_vpn_gateways", "VpnGateways"),
    ("describe_customer_gateways", "CustomerGateways"), ("describe_launch_templates", "LaunchTemplates"),
    ("describe_vpc_peering_connections", "VpcPeeringConnections"),
    ("describe_transit_gateway_peering_attachments", "TransitGatewayPeeringAttachments"),
    ("describe_vpn_connections", "VpnConnections"), ("describe_client_vpn_endpoints", "ClientVpnEndpoints"),
    ("describe_internet_gateways", "InternetGateways"),
    ("describe_egress_only_internet_gateways", "EgressOnlyInternetGateways"),
    ("describe_nat_gateways", "NatGateways"), ("describe_addresses", "Addresses"),
    ("describe_instances", "Reservations"), ("describe_subnets", "Subnets"), ("describe_route_tables", "RouteTables"),
    ("describe_security_groups", "SecurityGroups"), ("describe_vpc_endpoints", "VpcEndpoints"),
)


def client_vpn(vid, status):
    return {"ClientVpnEndpointId": vid, "Status": {"Code": status}, "ClientCidrBlock": "172.20.0.0/22",
            "VpcId": "vpc-1", "SplitTunnel": True, "TransportProtocol": "udp", "VpnPort": 443,
            "ServerCertificateArn": f"arn:aws:acm:{HOME}:{ACCOUNT}:certificate/c1",
            "Tags": [{"Key": "Name", "Value": vid}]}


@pytest.mark.parametrize("status, bad", [("available", True), ("deleted", False)])
def test_client_vpn_endpoint(status, bad):
    stub = StubSession()
    opted_in(stub, HOME)
    ec2 = stub.stub("ec2")
    for op, key in EC2_LISTS:
        items = [client_vpn("cvpn-endpoint-0abc", status)] if key == "ClientVpnEndpoints" else []
        ec2.add_response(op, {key: items}, {})
    result, report = run(stub, ["ec2"])
    assert result.not_checked == []
    vpns = of_type(result, "ec2clientvpn/endpoint:Endpoint")
    assert bool(vpns) is bad and bool(flagged(report, "cvpn-endpoint-0abc", "RSD-026")) is bad
    if bad:
        assert vpns[0].inputs["clientCidrBlock"] == "172.20.0.0/22" and vpns[0].inputs["splitTunnel"] is True
        assert vpns[0].urn == f"arn:aws:ec2:{HOME}::client-vpn-endpoint/cvpn-endpoint-0abc"


# --- faults: never a pass -------------------------------------------------------------------------------

def test_access_denied_is_not_checked_and_the_rest_is_still_scanned():
    stub = StubSession()
    opted_in(stub, HOME)
    nfw = stub.stub("network-firewall")
    a_arn, a = rule_group("a", ["api.openai.com"])
    b_arn, _ = rule_group("b", ["eu.api.openai.com"])
    nfw.add_response("list_rule_groups", {"RuleGroups": [{"Name": "a", "Arn": a_arn}, {"Name": "b", "Arn": b_arn}]}, {})
    nfw.add_response("describe_rule_group", a, {"RuleGroupArn": a_arn})
    nfw.add_client_error("describe_rule_group", "AccessDeniedException", "not authorized", 400,
                         expected_params={"RuleGroupArn": b_arn})
    result, report = run(stub, ["network-firewall"])
    (entry,) = result.not_checked
    assert (entry.service, entry.region) == ("network-firewall", HOME)
    assert b_arn in entry.reason and "AccessDeniedException on DescribeRuleGroup (access denied)" in entry.reason
    assert str(entry).startswith("not checked: network-firewall in eu-central-1: ")
    assert flagged(report, a_arn, "RSD-051")  # what could be read is still judged


@pytest.mark.parametrize("code, meaning", [
    ("ThrottlingException", "throttled beyond the retries"),
    ("UnrecognizedClientException", "region not enabled"),
    ("AccessDeniedException", "access denied"),
    ("InternalServerException", "AWS error"),
])
def test_service_faults_are_not_checked(code, meaning):
    stub = StubSession()
    opted_in(stub, HOME)
    stub.stub("ecr").add_client_error("describe_registry", code, "nope", 400)
    result, _ = run(stub, ["ecr"])
    (entry,) = result.not_checked
    assert entry.service == "ecr" and entry.region == HOME
    assert f"{code} on DescribeRegistry ({meaning}" in entry.reason


@pytest.mark.parametrize("service, region, operation, params", [
    ("cloudfront", "us-east-1", "list_distributions", {}),
    ("globalaccelerator", "us-west-2", "list_accelerators", {}),
    ("s3control", "us-west-2", "list_multi_region_access_points", {"AccountId": ACCOUNT}),  # from STS
])
def test_global_edge_service_faults_are_not_checked_in_their_home_region(service, region, operation, params):
    stub = StubSession()
    if service == "s3control":
        stub.stub("sts", region).add_response("get_caller_identity", {"Account": ACCOUNT}, {})
    code = "AccessDenied" if service != "globalaccelerator" else "AccessDeniedException"
    stub.stub(service, region).add_client_error(operation, code, "not authorized", 403, expected_params=params)
    result, _ = run(stub, [service])
    (entry,) = result.not_checked
    assert (entry.service, entry.region) == (service, region) and "(access denied)" in entry.reason


def test_opt_in_region_not_enabled_is_not_checked_without_calling_it():
    stub = StubSession()
    opted_in(stub, HOME, "eu-south-2", disabled=("eu-south-2",))
    stub.stub("ecr").add_response("describe_registry", {"registryId": ACCOUNT}, {})
    no_ecr_policies(stub)
    result, _ = run(stub, ["ecr"], regions=(HOME, "eu-south-2"))
    assert [(n.service, n.region, n.reason) for n in result.not_checked] == [
        ("ecr", "eu-south-2", "opt-in region not enabled for this account")]
    assert ("ecr", "eu-south-2") not in stub.clients


def test_unanswered_call_is_not_checked():
    """A call nobody answers (here: the Stubber has nothing queued) is a fault, not an empty account."""
    stub = StubSession()
    opted_in(stub, HOME)
    result, _ = run(stub, ["secretsmanager"])
    assert [n.service for n in result.not_checked] == ["secretsmanager"]


def test_unreachable_endpoint_is_not_checked(aws_env, monkeypatch):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_stack_config("eu")
    result = scan_account(cfg, regions=[HOME], endpoint_url=f"http://127.0.0.1:{port}", services=["ecr", "iam"],
                          timeouts=Timeouts(max_attempts=1))
    # The first call (DescribeRegions) already fails: nothing else is tried, every unit is named once.
    assert [(n.service, n.region) for n in result.not_checked] == [("ecr", HOME), ("iam", "global")]
    assert result.aborted and "ec2:DescribeRegions" in result.aborted
    assert all("not scanned: the first call" in n.reason and "EndpointConnectionError" in n.reason
               and n.kind == "unreachable endpoint or connection reset" for n in result.not_checked)


# --- bad input: exit 2, never a scan -----------------------------------------------------------------------

@pytest.mark.parametrize("regions, message", [
    (["eu-west-2"], "'eu-west-2' not in geography EU"),
    (["eu-central-1", "us-east-1"], "'us-east-1' not in geography EU"),
    ([], "--regions: empty"),
])
def test_regions_outside_the_geography_are_refused(regions, message):
    with pytest.raises(InputError, match=message) as err:
        scan_account(load_stack_config("eu"), regions=regions, session=StubSession())
    assert "allowed: eu-central-1, eu-west-1" in str(err.value)


def test_regions_narrow_the_scan_in_geography_order():
    from infra.engine.live import scan_regions
    cfg = load_stack_config("eu")
    assert scan_regions(cfg, "eu-west-3, eu-central-1") == ("eu-central-1", "eu-west-3")
    assert scan_regions(cfg, None) == ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1", "eu-south-2")


def test_unknown_profile_and_missing_credentials_are_input_errors(aws_env, monkeypatch):
    cfg = load_stack_config("eu")
    with pytest.raises(InputError, match="--profile: .*nope"):
        scan_account(cfg, profile="nope")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(InputError, match="no AWS credentials found"):
        scan_account(cfg)


def test_sessions_share_one_model_loader_and_parse_each_model_once(aws_env):
    """Every session of the process (one per command, one per account of an org scan) reads
    service models through credentials.model_loader: a model is parsed once, and boto3's data
    directory, which each session adds to the loader's search path, is listed once."""
    from infra.engine.credentials import aws_session, model_loader

    first, second = aws_session(None), aws_session(None)
    assert first._session.get_component("data_loader") is second._session.get_component("data_loader") \
        is model_loader(None)
    assert first.client("ec2", region_name=HOME).meta.service_model._service_description is \
        second.client("ec2", region_name="eu-west-1").meta.service_model._service_description
    paths = model_loader(None).search_paths
    assert len(paths) == len(set(paths)) and any(p.endswith("boto3/data") for p in paths)


def test_the_named_profile_decides_the_model_search_path_whatever_aws_profile_says(aws_env, tmp_path, monkeypatch):  # noqa: F811
    """--profile good with AWS_PROFILE naming no profile: the session is good's, data_path included
    (botocore's own order), and nothing is refused on AWS_PROFILE's account."""
    from infra.engine.credentials import aws_session

    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "aws-config").write_text(f"[profile good]\ndata_path = {models}\n")
    (tmp_path / "aws-credentials").write_text("[good]\naws_access_key_id = good\naws_secret_access_key = good\n")
    monkeypatch.setenv("AWS_PROFILE", "bogus")
    session = aws_session("good")
    assert session.profile_name == "good"
    assert session._session.get_component("data_loader").search_paths[0] == str(models)
    with pytest.raises(InputError, match=r"^AWS_PROFILE: The config profile \(bogus\) could not be found"):
        aws_session(None)  # without --profile, AWS_PROFILE is the profile


def test_bad_endpoint_url_is_an_input_error():
    with pytest.raises(InputError, match="not an http"):
        scan_account(load_stack_config("eu"), endpoint_url="127.0.0.1:5000", session=StubSession())


def test_s3control_account_label_is_dropped_only_for_an_emulator_host():
    class Request:
        url = ""

    request, path = Request(), "/v20180820/mrap/instances"
    for url, sent in [(f"https://123456789012.s3-control.us-west-2.amazonaws.com{path}", None),  # AWS: unchanged
                      (f"http://123456789012.127.0.0.1:5000{path}", f"http://127.0.0.1:5000{path}")]:
        request.url = url
        core.drop_account_label(request)
        assert request.url == (sent or url)


def test_list_calls_without_a_paginator_follow_next_token():
    class Client:
        calls: list = []

        def can_paginate(self, _op):
            return False

        def describe_things(self, **params):
            self.calls.append(params)
            return {"Things": [len(self.calls)], **({"NextToken": "t2"} if len(self.calls) == 1 else {})}

    client = Client()
    assert [t for page in core.pages(client, "describe_things", Filter="x") for t in page["Things"]] == [1, 2]
    assert client.calls == [{"Filter": "x"}, {"Filter": "x", "NextToken": "t2"}]
