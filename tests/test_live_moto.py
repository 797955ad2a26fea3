"""Live scan against moto's server: each service's violating setup is flagged by the shared rules
with the resource's ARN or id, and a clean setup is not.

Services moto 5.2.5 cannot serve (Bedrock inference profiles and guardrails, Network Firewall rule
groups, Route 53 Resolver DNS Firewall, DynamoDB replicas, Global Accelerator, Client VPN) are in
test_live_stubbed.py.
"""

from __future__ import annotations

import json

import pytest

from infra.engine.live import SERVICES, scan_account
from infra.engine.live.core import drop_account_label
from infra.engine.rules import Context, evaluate
from infra.program.stackfiles import load_stack_config
from live_fixtures import (ACCOUNT, HOME, MOTO_ORIGINALS, account_public_access_blocked, aws_env,  # noqa: F401
                           drop_default_vpc, home_logging, moto, private_vpc, scp_in_force, shared_clients)

# A hardened gateway-endpoint policy (AWS's default when none is set is Action "*" on "*").
S3_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::weights/*"}]})


SG = "ap-southeast-1"  # the sg stack's home region: its tests scan it alone (test_live_sweep.py sweeps the rest)


def run(server, stack="eu", regions=(HOME,), **kwargs):
    cfg = load_stack_config(stack)
    kwargs.setdefault("clients", shared_clients(server.url))
    result = scan_account(cfg, regions=list(regions) if regions else None, endpoint_url=server.url, **kwargs)
    report = evaluate(result.snapshot, Context.from_config(cfg))
    return result, report


def of_type(result, suffix):
    return [r for r in result.snapshot.resources if r.type.endswith(suffix)]


def flagged(report, ident, rule=None):
    """Findings that name `ident` (an ARN or id) in their URN or message."""
    return [f for f in report.findings if (ident in f.urn or ident in f.message) and (rule is None or f.rule == rule)]


def test_the_memoized_moto_lookups_answer_as_moto_does(moto):
    """live_fixtures.moto_dispatch_memoized keeps moto's answers and drops only their repetition."""
    from moto import backends
    from moto.core import responses
    from moto.ec2.responses import EC2Response
    from moto.s3.responses import S3Response
    from moto.sts.responses import TokenResponse

    modules = tuple(MOTO_ORIGINALS["list_of_moto_modules"]())
    assert "ec2" in modules and "s3" in modules and backends.list_of_moto_modules() == modules
    for cls in (EC2Response, S3Response, TokenResponse):
        names = MOTO_ORIGINALS["method_names_from_class"](cls)
        assert "call_action" in names and responses.method_names_from_class(cls) == names
        assert responses.method_names_from_class(cls) is responses.method_names_from_class(cls)  # memoized
    from moto.eks import utils as eks_utils

    partitions = MOTO_ORIGINALS["eks_session"]().get_available_partitions()
    assert "aws" in partitions and eks_utils.Session().get_available_partitions() == partitions
    assert eks_utils.Session() is eks_utils.Session()  # memoized


# --- the whole account -------------------------------------------------------------------------------

def test_clean_account_has_no_findings_and_is_complete(moto):
    drop_default_vpc(moto)
    ec2, vpc, subnet, sg = private_vpc(moto)
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{HOME}.s3", VpcEndpointType="Gateway",
                                       PolicyDocument=S3_ONLY)["VpcEndpoint"]["VpcEndpointId"]
    home_logging(moto)
    scp_in_force(moto)
    account_public_access_blocked(moto)
    result, report = run(moto)
    assert result.not_checked == []
    assert report.findings == [], [f"{f.rule} {f.urn} {f.message}" for f in report.findings]
    # Exactly the network that was planted: the scan saw each piece, and nothing more.
    assert {(r.type, r.id) for r in result.snapshot.resources if r.type.startswith("aws:ec2/")} == {
        ("aws:ec2/vpc:Vpc", vpc), ("aws:ec2/subnet:Subnet", subnet),
        ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", sg), ("aws:ec2/vpcEndpoint:VpcEndpoint", endpoint)}
    assert all(r.region == HOME for r in result.snapshot.resources if r.type.startswith("aws:ec2/"))


def test_every_resource_is_placed_where_it_was_found(moto):
    moto.client("ec2", "eu-west-1").create_vpc(CidrBlock="10.9.0.0/16")
    result, _ = run(moto, regions=(HOME, "eu-west-1"))
    regions = {r.region for r in result.snapshot.resources if r.type.startswith("aws:ec2/")}
    assert regions == {HOME, "eu-west-1"}
    assert all(r.inputs["region"] == r.region and r.region_source == "resource"
               for r in result.snapshot.resources if r.region)
    assert result.snapshot.source == "live" and result.snapshot.stack == "eu"


def test_default_vpc_is_reported(moto):
    """moto's (and AWS's) default VPC: public subnets and an all-open default security group."""
    result, report = run(moto, stack="sg", regions=(SG,))
    default_sg = of_type(result, "DefaultSecurityGroup")[0]
    assert flagged(report, default_sg.id, "RSD-024")
    public = [r for r in of_type(result, ":Subnet") if r.inputs["mapPublicIpOnLaunch"]]
    assert public and all(flagged(report, s.id, "RSD-022") for s in public)


# --- EC2 / VPC --------------------------------------------------------------------------------------

def test_cross_region_vpc_peering_is_flagged(moto):
    ec2, vpc, _, _ = private_vpc(moto)
    peer = moto.client("ec2", "eu-west-2").create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer, PeerRegion="eu-west-2")
    pcx_id = pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    result, report = run(moto)
    (res,) = of_type(result, "VpcPeeringConnection")
    assert res.id == pcx_id and res.inputs["peerRegion"] == "eu-west-2" and res.inputs["vpcId"] == vpc
    assert flagged(report, pcx_id, "RSD-025")
    assert any("eu-west-2" in f.message for f in flagged(report, pcx_id, "RSD-012"))


def test_peering_seen_from_both_scanned_regions_is_one_resource(moto):
    ec2, vpc, _, _ = private_vpc(moto)
    peer = moto.client("ec2", "eu-west-1").create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer, PeerRegion="eu-west-1")
    pcx_id = pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    result, report = run(moto, regions=(HOME, "eu-west-1"))
    (res,) = of_type(result, "VpcPeeringConnection")
    assert res.region == HOME and res.inputs["peerRegion"] == "eu-west-1"
    assert flagged(report, pcx_id, "RSD-025")  # any peering is a path, even inside the geography
    assert not flagged(report, pcx_id, "RSD-012")


def test_transit_gateway_peering_is_flagged(moto):
    tgw = moto.client("ec2").create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
    peer = moto.client("ec2", "us-east-1").create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
    att = moto.client("ec2").create_transit_gateway_peering_attachment(
        TransitGatewayId=tgw, PeerTransitGatewayId=peer, PeerAccountId=ACCOUNT, PeerRegion="us-east-1",
    )["TransitGatewayPeeringAttachment"]["TransitGatewayAttachmentId"]
    result, report = run(moto)
    (res,) = of_type(result, "PeeringAttachment")
    assert res.inputs["peerRegion"] == "us-east-1" and res.inputs["peerTransitGatewayId"] == peer
    assert flagged(report, att, "RSD-025") and flagged(report, att, "RSD-012")


def test_vpn_connection_is_flagged(moto):
    ec2 = moto.client("ec2")
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.10", BgpAsn=65000)["CustomerGateway"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]
    vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw["CustomerGatewayId"],
                                    VpnGatewayId=vgw["VpnGatewayId"])["VpnConnection"]["VpnConnectionId"]
    result, report = run(moto)
    (res,) = of_type(result, "VpnConnection")
    assert res.inputs["customerGatewayId"] == cgw["CustomerGatewayId"]
    assert flagged(report, vpn, "RSD-026")


def test_internet_paths_are_flagged_in_a_stack_without_federated(moto):
    drop_default_vpc(moto, SG)
    ec2, vpc, subnet, _ = private_vpc(moto, SG)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    result, report = run(moto, stack="sg", regions=(SG,))
    assert result.not_checked == []
    for ident, rule in ((igw, "RSD-020"), (nat, "RSD-021"), (eip, "RSD-022"), (subnet, "RSD-022"),
                        (rtb, "RSD-023"), (instance["InstanceId"], "RSD-022")):
        assert flagged(report, ident, rule), (ident, rule)
    (inst,) = of_type(result, "ec2/instance:Instance")
    assert inst.inputs["associatePublicIpAddress"] is True and inst.outputs["publicIp"]


def test_tagged_federated_egress_path_is_not_flagged(moto):
    """In a Federated stack the egress VPC's gateway (tagged as the egress path) is allowed."""
    ec2, vpc, _, _ = private_vpc(moto)
    tag = [{"ResourceType": "internet-gateway",
            "Tags": [{"Key": "ai-companion:path", "Value": "federated-egress"}]}]
    allowed = ec2.create_internet_gateway(TagSpecifications=tag)["InternetGateway"]["InternetGatewayId"]
    stray = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    result, report = run(moto)
    assert {r.id for r in of_type(result, "InternetGateway")} == {allowed, stray}
    assert not flagged(report, allowed)
    assert flagged(report, stray, "RSD-020")


def test_security_group_egress_to_the_internet_is_flagged(moto):
    ec2, vpc, _, closed = private_vpc(moto)
    open_ = ec2.create_security_group(GroupName="open", Description="x", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_egress(GroupId=open_, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    result, report = run(moto)
    (res,) = [r for r in result.snapshot.resources if r.id == open_]
    assert {"protocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6CidrBlocks": ["::/0"]}.items() <= \
        next(e for e in res.inputs["egress"] if e["ipv6CidrBlocks"]).items()
    assert flagged(report, open_, "RSD-024")
    assert not flagged(report, closed)


def test_vpc_endpoint_to_a_foreign_region_is_flagged(moto):
    ec2, vpc, _, _ = private_vpc(moto)
    foreign = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                      VpcEndpointType="Interface")["VpcEndpoint"]["VpcEndpointId"]
    local = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{HOME}.s3", VpcEndpointType="Gateway",
                                    PolicyDocument=S3_ONLY)["VpcEndpoint"]["VpcEndpointId"]
    result, report = run(moto)
    assert flagged(report, foreign, "RSD-011")
    assert not flagged(report, local)


def test_default_endpoint_policy_of_a_non_bedrock_endpoint_is_not_a_bedrock_grant(moto):
    ec2, vpc, _, _ = private_vpc(moto)
    vpce = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{HOME}.s3",
                                   VpcEndpointType="Gateway")["VpcEndpoint"]["VpcEndpointId"]
    result, report = run(moto)
    (res,) = of_type(result, "VpcEndpoint")
    assert json.loads(res.outputs["policy"])["Statement"][0]["Action"] == "*"
    assert not flagged(report, vpce)


# --- S3 ---------------------------------------------------------------------------------------------

def _replicate(server, source, dest_arn):
    s3 = server.client("s3", HOME)
    s3.create_bucket(Bucket=source, CreateBucketConfiguration={"LocationConstraint": HOME})
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{ACCOUNT}:role/replication",
        "Rules": [{"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": dest_arn}}],
    })


def _bucket(server, name, region):
    server.client("s3", region).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def test_s3_replication_out_of_the_geography_is_flagged(moto):
    _bucket(moto, "dest-london", "eu-west-2")
    _replicate(moto, "weights-src", "arn:aws:s3:::dest-london")
    result, report = run(moto)
    (config,) = of_type(result, "BucketReplicationConfig")
    assert config.inputs["rules"][0]["destination"]["bucket"] == "arn:aws:s3:::dest-london"
    assert config.inputs["bucket"] == "weights-src" and config.region == HOME
    assert any("eu-west-2" in f.message for f in flagged(report, "weights-src", "RSD-030"))
    (dest,) = [r for r in of_type(result, "s3/bucket:Bucket") if r.id == "dest-london"]
    assert dest.region == "eu-west-2"  # resolved with GetBucketLocation


def test_s3_replication_to_an_unknown_bucket_fails_closed(moto):
    _replicate(moto, "weights-src", "arn:aws:s3:::gone-or-foreign-account")
    _, report = run(moto)
    assert any("cannot be proven" in f.message for f in flagged(report, "weights-src", "RSD-030"))


def test_s3_replication_inside_the_geography_is_not_flagged(moto):
    _bucket(moto, "dest-ireland", "eu-west-1")
    _bucket(moto, "unscanned-london", "eu-west-2")  # not replicated to: not in the snapshot
    _replicate(moto, "weights-src", "arn:aws:s3:::dest-ireland")
    result, report = run(moto)
    assert of_type(result, "BucketReplicationConfig")
    assert not flagged(report, "weights-src") and not flagged(report, "dest-ireland")
    assert "unscanned-london" not in {r.id for r in result.snapshot.resources}


# --- KMS --------------------------------------------------------------------------------------------

def test_multi_region_key_and_foreign_replica_are_flagged(moto):
    kms = moto.client("kms")
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]
    replica = kms.replicate_key(KeyId=key["KeyId"], ReplicaRegion="us-east-1")["ReplicaKeyMetadata"]["Arn"]
    result, report = run(moto)
    (primary,) = of_type(result, "kms/key:Key")
    assert primary.inputs["multiRegion"] is True and primary.urn == key["Arn"]
    (rep,) = of_type(result, "ReplicaKey")
    assert rep.region == "us-east-1" and rep.inputs["primaryKeyArn"] == key["Arn"]
    assert flagged(report, key["Arn"], "RSD-036")
    assert flagged(report, replica, "RSD-001")


def test_single_region_key_is_not_flagged(moto):
    key = moto.client("kms").create_key()["KeyMetadata"]
    result, report = run(moto)
    assert not of_type(result, "kms/key:Key") and not flagged(report, key["KeyId"])


# --- IAM --------------------------------------------------------------------------------------------

def _policy(resource, action="bedrock:InvokeModel"):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})


EU_PROFILE = f"arn:aws:bedrock:{HOME}:{ACCOUNT}:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_iam_bedrock_grants_on_star_foreign_and_global_are_flagged(moto):
    iam = moto.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="app", PolicyName="invoke-any", PolicyDocument=_policy("*"))
    foreign = iam.create_policy(PolicyName="invoke-us", PolicyDocument=_policy(
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=foreign)
    iam.create_user(UserName="dev")
    iam.put_user_policy(UserName="dev", PolicyName="global", PolicyDocument=_policy(
        f"arn:aws:bedrock:{HOME}:{ACCOUNT}:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0"))
    iam.create_group(GroupName="analysts")
    iam.put_group_policy(GroupName="analysts", PolicyName="wild-region", PolicyDocument=_policy(
        "arn:aws:bedrock:*::foundation-model/*"))
    result, report = run(moto)
    (inline,) = of_type(result, "RolePolicy")
    assert inline.id == "app:invoke-any" and json.loads(inline.inputs["policy"])["Statement"][0]["Resource"] == "*"
    assert inline.region is None and inline.region_source == "unplaced"  # IAM is global
    assert flagged(report, "app:invoke-any", "RSD-041")
    assert flagged(report, foreign, "RSD-010")
    assert flagged(report, "dev:global", "RSD-042")
    assert flagged(report, "analysts:wild-region", "RSD-041")
    assert of_type(result, "RolePolicyAttachment")[0].inputs == {"role": "app", "policyArn": foreign}
    assert not report.unplaced


def test_iam_grant_scoped_to_the_geography_is_not_flagged(moto):
    iam = moto.client("iam")
    iam.create_user(UserName="svc")
    fm = [f"arn:aws:bedrock:{r}::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
          for r in ("eu-central-1", "eu-west-1", "eu-west-3")]
    iam.put_user_policy(UserName="svc", PolicyName="scoped", PolicyDocument=_policy([EU_PROFILE, *fm]))
    result, report = run(moto)
    assert of_type(result, "UserPolicy")
    assert not flagged(report, "svc:scoped")


# --- Bedrock invocation logging (moto implements it) -------------------------------------------------

def test_bedrock_logging_absent_in_zm_plus_home_region_is_recorded(moto):
    result, _ = run(moto)
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    assert logging.region == HOME and logging.inputs.get("loggingConfig") is None


def test_bedrock_logging_absent_in_zm_plus_home_region_is_flagged(moto):
    result, report = run(moto)
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    [finding] = flagged(report, logging.urn, "RSD-045")
    assert f"off in {HOME}" in finding.message


def test_bedrock_logging_to_an_unresolvable_bucket_fails_closed(moto):
    moto.client("bedrock").put_model_invocation_logging_configuration(loggingConfig={
        "s3Config": {"bucketName": "someone-elses-bucket"}, "textDataDeliveryEnabled": True})
    result, report = run(moto)
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    [finding] = flagged(report, logging.urn, "RSD-045")
    assert "someone-elses-bucket is not in this stack" in finding.message


def test_bedrock_logging_to_a_foreign_bucket_is_flagged(moto):
    _bucket(moto, "prompt-logs-london", "eu-west-2")
    moto.client("bedrock").put_model_invocation_logging_configuration(loggingConfig={
        "s3Config": {"bucketName": "prompt-logs-london", "keyPrefix": "bedrock"}, "textDataDeliveryEnabled": True})
    result, report = run(moto)
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    assert logging.inputs["loggingConfig"]["s3Config"] == {"bucketName": "prompt-logs-london", "keyPrefix": "bedrock"}
    assert flagged(report, "arn:aws:s3:::prompt-logs-london", "RSD-001")
    assert any("eu-west-2 is outside EU" in f.message for f in flagged(report, logging.urn, "RSD-045"))


def test_bedrock_logging_in_region_is_not_flagged(moto):
    home_logging(moto)
    result, report = run(moto)
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    assert logging.inputs["loggingConfig"]["textDataDeliveryEnabled"]
    assert not flagged(report, "prompt-logs") and not flagged(report, logging.urn)


def test_bedrock_in_a_stack_without_zm_plus_is_flagged(moto):
    moto.client("bedrock", SG).put_model_invocation_logging_configuration(loggingConfig={
        "s3Config": {"bucketName": "sg-logs"}, "textDataDeliveryEnabled": True})
    result, report = run(moto, stack="sg", regions=(SG,))
    (logging,) = of_type(result, "InvocationLoggingConfiguration")
    assert flagged(report, logging.urn, "RSD-040")


# --- Logs, ECR, Secrets Manager, DynamoDB -------------------------------------------------------------

def test_log_subscription_to_a_foreign_destination_is_flagged(moto):
    moto.client("logs", "us-east-1").create_log_group(logGroupName="central")
    logs = moto.client("logs")
    logs.create_log_group(logGroupName="/app/prompts")
    logs.create_log_group(logGroupName="/app/local")
    logs.create_log_group(logGroupName="local-sink")
    foreign = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:central:*"
    logs.put_subscription_filter(logGroupName="/app/prompts", filterName="ship", filterPattern="",
                                 destinationArn=foreign)
    logs.put_subscription_filter(logGroupName="/app/local", filterName="keep", filterPattern="",
                                 destinationArn=f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:local-sink:*")
    result, report = run(moto)
    assert {r.id for r in of_type(result, "LogSubscriptionFilter")} == {"/app/prompts:ship", "/app/local:keep"}
    assert flagged(report, "/app/prompts:ship", "RSD-035")
    assert not flagged(report, "/app/local:keep")


@pytest.mark.parametrize("region, bad", [("us-east-1", True), ("eu-west-1", False)])
def test_ecr_replication(moto, region, bad):
    moto.client("ecr").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": region, "registryId": ACCOUNT}]}]})
    result, report = run(moto)
    (res,) = of_type(result, "ecr/replicationConfiguration:ReplicationConfiguration")
    assert res.id == ACCOUNT
    assert res.inputs["replicationConfiguration"]["rules"][0]["destinations"][0]["region"] == region
    assert bool(flagged(report, ACCOUNT, "RSD-033")) is bad


@pytest.mark.parametrize("region, bad", [("us-east-1", True), ("eu-west-1", False)])
def test_secret_replicas(moto, region, bad):
    arn = moto.client("secretsmanager").create_secret(
        Name="connector-key", SecretString="x", AddReplicaRegions=[{"Region": region}])["ARN"]
    result, report = run(moto)
    (res,) = of_type(result, "secretsmanager/secret:Secret")
    assert res.urn == arn and res.inputs["replicas"][0]["region"] == region
    assert bool(flagged(report, arn, "RSD-032")) is bad


def test_local_replica_of_a_foreign_secret_places_the_primary_abroad(moto):
    moto.client("secretsmanager", "us-east-1").create_secret(
        Name="from-us", SecretString="x", AddReplicaRegions=[{"Region": HOME}])
    result, report = run(moto)
    (res,) = of_type(result, "secretsmanager/secret:Secret")
    assert res.region == "us-east-1" and ":us-east-1:" in res.urn
    assert flagged(report, res.urn, "RSD-001")


def test_dynamodb_table_without_replicas_is_not_flagged(moto):
    moto.client("dynamodb").create_table(
        TableName="sessions", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    result, report = run(moto)
    (table,) = of_type(result, "dynamodb/table:Table")
    assert table.inputs["replicas"] == [] and not flagged(report, "sessions")


# --- global edge services (read in their API home regions) and load balancers ------------------------

def _distribution(server, ref="weights-cdn"):
    return server.client("cloudfront", "us-east-1").create_distribution(DistributionConfig={
        "CallerReference": ref, "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "weights", "DomainName": f"weights.s3.{HOME}.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "weights", "ViewerProtocolPolicy": "https-only", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}}})["Distribution"]


def _mrap(server, name, *buckets):
    s3control = server.client("s3control", "us-west-2")
    s3control.meta.events.register("before-sign", drop_account_label)  # moto routes by path only
    for b in buckets:
        _bucket(server, b, HOME)
    s3control.create_multi_region_access_point(AccountId=ACCOUNT, ClientToken=name, Details={
        "Name": name, "Regions": [{"Bucket": b} for b in buckets]})


def test_cloudfront_distribution_and_mrap_are_flagged_from_their_home_regions(moto):
    dist = _distribution(moto)
    _mrap(moto, "weights-everywhere", "weights-frankfurt")
    with moto.recording() as calls:
        result, report = run(moto)
    assert result.not_checked == []
    (cdn,) = of_type(result, "cloudfront/distribution:Distribution")
    assert cdn.urn == dist["ARN"] and cdn.region == "us-east-1"
    assert cdn.inputs["origins"] == [{"originId": "weights", "domainName": f"weights.s3.{HOME}.amazonaws.com"}]
    assert flagged(report, dist["ARN"], "RSD-027")
    (mrap,) = of_type(result, "MultiRegionAccessPoint")
    assert mrap.id == f"{ACCOUNT}:weights-everywhere" and mrap.region == "us-west-2"
    assert mrap.inputs["details"]["regions"] == [{"bucket": "weights-frankfurt"}]
    assert mrap.urn.startswith(f"arn:aws:s3::{ACCOUNT}:accesspoint/weights-everywhere")
    assert flagged(report, mrap.urn, "RSD-027")
    # An EU scan reads these account-wide services in us-east-1 / us-west-2, and nowhere else (STS
    # in the home region gives the account id for S3 Block Public Access and Organizations).
    assert {(c.service, c.region) for c in calls if c.service in ("cloudfront", "sts", "globalaccelerator")} == {
        ("cloudfront", "us-east-1"), ("sts", "us-west-2"), ("globalaccelerator", "us-west-2"), ("sts", HOME)}
    assert {c.region for c in calls if c.path.startswith("/v20180820/mrap")} == {"us-west-2"}


def test_account_without_edge_services_is_not_flagged(moto):
    _bucket(moto, "weights-frankfurt", HOME)  # a bucket alone is no MRAP
    result, report = run(moto)
    assert result.not_checked == []
    assert not of_type(result, "Distribution") and not of_type(result, "MultiRegionAccessPoint")
    assert not [f for f in report.findings if f.rule == "RSD-027"]


def _lb_subnets(server):
    ec2, vpc, subnet, _ = private_vpc(server)
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24", AvailabilityZone=f"{HOME}b")["Subnet"]["SubnetId"]
    return [subnet, other]


@pytest.mark.parametrize("scheme, bad", [("internet-facing", True), ("internal", False)])
def test_elbv2_load_balancer(moto, scheme, bad):
    subnets = _lb_subnets(moto)
    arn = moto.client("elbv2").create_load_balancer(Name="api", Subnets=subnets, Scheme=scheme)["LoadBalancers"][0][
        "LoadBalancerArn"]
    result, report = run(moto)
    (lb,) = of_type(result, "lb/loadBalancer:LoadBalancer")
    assert lb.urn == arn and lb.inputs["internal"] is not bad and lb.inputs["subnets"] == subnets
    assert lb.inputs["loadBalancerType"] == "application" and lb.region == HOME
    assert bool(flagged(report, arn, "RSD-028")) is bad


@pytest.mark.parametrize("scheme, bad", [("internet-facing", True), ("internal", False)])
def test_classic_load_balancer(moto, scheme, bad):
    subnets = _lb_subnets(moto)
    moto.client("elb").create_load_balancer(LoadBalancerName="legacy", Subnets=subnets[:1], Scheme=scheme,
                                            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    result, report = run(moto)
    (lb,) = of_type(result, "elb/loadBalancer:LoadBalancer")
    assert lb.id == "legacy" and lb.inputs["internal"] is not bad and lb.region == HOME
    assert bool(flagged(report, "legacy", "RSD-028")) is bad


# --- AccessDenied from moto's IAM enforcement ---------------------------------------------------------

def test_access_denied_by_iam_is_not_checked(moto, monkeypatch):
    iam = moto.client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["logs:*", "kms:*"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    # moto 5.2.5 rejects the signature of REST-protocol calls (Bedrock, CloudFront, Lambda, EKS, API
    # Gateway, OpenSearch, Backup) under IAM enforcement (403 whatever the policy): left out here;
    # their denials are tested through the fault proxy (test_live_faults.py) and the Stubber.
    rest = ("bedrock", "cloudfront", "lambda", "eks", "apigateway", "apigatewayv2", "opensearch", "backup")
    services = [s for s in SERVICES if s not in rest]
    with moto.iam_enforced():
        # No session passed: the standard credential chain (here the environment) is used.
        result = scan_account(load_stack_config("eu"), regions=[HOME], endpoint_url=moto.url, services=services)
    assert {(n.service, n.region) for n in result.not_checked} == {("logs", HOME), ("kms", HOME)}, [str(n) for n in result.not_checked]
    assert all("(access denied)" in n.reason for n in result.not_checked)
    assert of_type(result, "DefaultSecurityGroup")  # the services allowed were scanned
