"""The live scan only reads: the guard refuses anything else before it is sent, and the moto
server's own record of a full scan of a populated account holds read operations only."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.engine.live import ALLOWED_OPERATIONS, ReadOnlyViolation, scan_account
from infra.engine.live.core import Clients, drop_account_label
from infra.program.stackfiles import load_stack_config
from live_fixtures import HOME, aws_env, moto, shared_session  # noqa: F401  (fixtures)

READ_PREFIXES = ("List", "Describe", "Get", "Head")
# Reads that return secret material or credentials: a residency scan never needs them.
SENSITIVE = {"GetSecretValue", "BatchGetSecretValue", "GetPasswordData", "GetParameter", "GetParameters",
             "GetParametersByPath", "GetObject", "GetAuthorizationToken", "GetSessionToken", "GetFederationToken",
             "GetConsoleOutput", "GetConsoleScreenshot", "GetLaunchTemplateData", "GetKeyPairs", "GetDataKey"}
# moto's signing names for the botocore services the scanner uses (elb and elbv2 share one).
SIGNING_NAME = {"cloudwatch": "monitoring", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing",
                "opensearch": "es", "apigatewayv2": "apigateway",
                "s3control": "s3", "efs": "elasticfilesystem", "resourcegroupstaggingapi": "tagging"}


def test_allow_list_holds_existing_read_operations_only():
    session = boto3.Session(region_name=HOME)
    for service, operations in ALLOWED_OPERATIONS.items():
        model = session.client(service, aws_access_key_id="x", aws_secret_access_key="x").meta.service_model
        for op in operations:
            assert op in model.operation_names, f"{service}:{op} does not exist"
            assert op.startswith(READ_PREFIXES), f"{service}:{op} is not a read"
            assert op not in SENSITIVE, f"{service}:{op} returns secret material"


def test_every_mapped_type_token_exists_in_pulumi_aws():
    """The scanner's type tokens are pulumi-aws 7.x's, so the rules treat live resources like state."""
    import re
    from pathlib import Path

    import pulumi_aws

    live = Path(__file__).resolve().parent.parent / "infra" / "engine" / "live"
    tokens = {t for f in live.glob("*.py") for t in re.findall(r'"(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)"', f.read_text())}
    assert len(tokens) >= 25
    package = Path(pulumi_aws.__file__).parent
    declared = {m for f in package.glob("*/*.py") for m in re.findall(r"'(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)'",
                                                                         f.read_text())}
    assert tokens - declared == set()


def test_guard_refuses_writes_and_unlisted_reads_before_sending(moto):
    clients = Clients(shared_session(), moto.url)
    with moto.recording() as calls:
        with pytest.raises(ReadOnlyViolation, match="refusing ec2:CreateVpc"):
            clients("ec2", HOME).create_vpc(CidrBlock="10.0.0.0/16")
        with pytest.raises(ReadOnlyViolation, match="refusing s3:PutBucketReplication"):
            clients("s3", HOME).put_bucket_replication(Bucket="b", ReplicationConfiguration={"Role": "r", "Rules": []})
        with pytest.raises(ReadOnlyViolation, match="refusing secretsmanager:GetSecretValue"):
            clients("secretsmanager", HOME).get_secret_value(SecretId="s")
        with pytest.raises(ReadOnlyViolation, match="refusing sts:AssumeRole"):
            clients("sts", HOME).assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="s")
        with pytest.raises(ReadOnlyViolation, match="refusing cloudfront:DeleteDistribution"):
            clients("cloudfront", "us-east-1").delete_distribution(Id="E1", IfMatch="x")
        clients("ec2", HOME).describe_regions()  # a listed read goes through
    assert [(c.service, c.operation) for c in calls] == [("ec2", "DescribeRegions")]


def test_the_recorder_sees_writes(moto):
    """The read-only check below can fail: a write made outside the scanner is recorded as one."""
    with moto.recording() as calls:
        moto.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")
        moto.client("s3").create_bucket(Bucket="written", CreateBucketConfiguration={"LocationConstraint": HOME})
    assert [c.read_only for c in calls] == [False, False]


def populate(server):
    ec2 = server.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    peer = server.client("ec2", "eu-west-1").create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer, PeerRegion="eu-west-1")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.allocate_address(Domain="vpc")
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{HOME}.s3", VpcEndpointType="Gateway")
    kms = server.client("kms")
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")
    iam = server.client("iam")
    iam.create_user(UserName="u")
    iam.put_user_policy(UserName="u", PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"}]}))
    s3 = server.client("s3")
    for name, region in (("src", HOME), ("dst", "eu-west-1")):
        server.client("s3", region).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "arn:aws:iam::123456789012:role/r", "Rules": [
        {"ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
         "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": "arn:aws:s3:::dst"}}]})
    logs = server.client("logs")
    logs.create_log_group(logGroupName="a")
    logs.create_log_group(logGroupName="b")
    logs.put_subscription_filter(logGroupName="a", filterName="f", filterPattern="",
                                 destinationArn=f"arn:aws:logs:{HOME}:123456789012:log-group:b:*")
    server.client("secretsmanager").create_secret(Name="s", SecretString="x", AddReplicaRegions=[{"Region": "eu-west-1"}])
    server.client("ecr").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": "eu-west-1", "registryId": "123456789012"}]}]})
    server.client("dynamodb").create_table(
        TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    server.client("bedrock").put_model_invocation_logging_configuration(
        loggingConfig={"s3Config": {"bucketName": "src"}, "textDataDeliveryEnabled": True})
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24",
                                 AvailabilityZone=f"{HOME}{az}")["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    server.client("elbv2").create_load_balancer(Name="pub", Subnets=subnets)
    server.client("elb").create_load_balancer(LoadBalancerName="classic", Subnets=subnets[:1], Listeners=[
        {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    server.client("cloudfront", "us-east-1").create_distribution(DistributionConfig={
        "CallerReference": "r", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "src.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}}})
    s3control = server.client("s3control", "us-west-2")
    s3control.meta.events.register("before-sign", drop_account_label)
    s3control.create_multi_region_access_point(AccountId="123456789012", ClientToken="t", Details={
        "Name": "everywhere", "Regions": [{"Bucket": "src"}]})
    populate_data_services(server, subnets)
    server.client("cloudwatch").put_metric_data(Namespace="AWS/Bedrock", MetricData=[{
        "MetricName": "Invocations", "Value": 1,
        "Dimensions": [{"Name": "ModelId", "Value": "anthropic.claude-haiku-4-5-20251001-v1:0"}]}])


def populate_data_services(server, subnets):
    """One of each kind the wider scan reads: EKS, Lambda, API Gateway, SNS, SQS, EventBridge, RDS,
    OpenSearch, Redshift, Backup, transit and VPN gateways, S3 Block Public Access, an organization."""
    from live_fixtures import scp_in_force
    from test_live_services import function, queue_arn

    server.client("eks").create_cluster(name="c", roleArn="arn:aws:iam::123456789012:role/eks",
                                        resourcesVpcConfig={"subnetIds": subnets})
    function(server, "fn", {"A": "b"})
    server.client("lambda").add_permission(FunctionName="fn", StatementId="s", Action="lambda:InvokeFunction",
                                           Principal="s3.amazonaws.com")
    server.client("apigateway").create_rest_api(name="r", endpointConfiguration={"types": ["PRIVATE"]})
    server.client("apigatewayv2").create_api(Name="h", ProtocolType="HTTP")
    topic = server.client("sns").create_topic(Name="t")["TopicArn"]
    queue = queue_arn(server, "q")
    server.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    server.client("events").put_rule(Name="r", ScheduleExpression="rate(1 day)")
    server.client("events").put_targets(Rule="r", Targets=[{"Id": "q", "Arn": queue}])
    server.client("rds").create_db_instance(DBInstanceIdentifier="db", DBInstanceClass="db.t3.micro", Engine="postgres",
                                            MasterUsername="u", MasterUserPassword="password1", AllocatedStorage=20)
    server.client("opensearch").create_domain(DomainName="search")
    server.client("redshift").create_cluster(ClusterIdentifier="dw", NodeType="dc2.large", MasterUsername="u",
                                             MasterUserPassword="Password1")
    server.client("backup").create_backup_plan(BackupPlan={"BackupPlanName": "p", "Rules": [
        {"RuleName": "r", "TargetBackupVaultName": "Default"}]})
    server.client("ec2").create_transit_gateway(Description="hub")
    server.client("ec2").create_vpn_gateway(Type="ipsec.1")
    scp_in_force(server)


def test_a_full_scan_of_a_populated_account_only_reads(moto):
    populate(moto)
    with moto.recording() as calls:
        result = scan_account(load_stack_config("eu"), regions=[HOME, "eu-west-1"], endpoint_url=moto.url,
                              session=shared_session())
    assert result.not_checked == []
    assert len(result.snapshot.resources) > 20
    writes = [c for c in calls if not c.read_only]
    assert writes == []
    allowed: dict[str, set] = {}
    for service, ops in ALLOWED_OPERATIONS.items():
        allowed.setdefault(SIGNING_NAME.get(service, service), set()).update(ops)
    assert all(c.operation in allowed[c.service] for c in calls if c.operation), \
        {(c.service, c.operation) for c in calls if c.operation and c.operation not in allowed[c.service]}
    # The record covers every service, in both regions; the services only the sweep outside the
    # geography reads (skipped with --regions) are covered by tests/test_live_sweep.py.
    sweep_only = {"tagging", "resource-explorer-2", "elasticfilesystem", "elasticache", "kinesis", "sagemaker"}
    assert {c.service for c in calls} == set(allowed) - sweep_only
    assert {c.region for c in calls if c.service == "ec2"} == {HOME, "eu-west-1"}
    # The new kinds were found (the read-only record above covers reading them).
    types = {r.type for r in result.snapshot.resources}
    assert {"aws:lb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer",
            "aws:cloudfront/distribution:Distribution",
            "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint", "aws:eks/cluster:Cluster",
            "aws:lambda/function:Function", "aws:lambda/permission:Permission", "aws:apigateway/restApi:RestApi",
            "aws:apigatewayv2/api:Api", "aws:sns/topicSubscription:TopicSubscription", "aws:sqs/queue:Queue",
            "aws:cloudwatch/eventTarget:EventTarget", "aws:rds/instance:Instance", "aws:opensearch/domain:Domain",
            "aws:redshift/cluster:Cluster", "aws:backup/plan:Plan", "aws:organizations/organization:Organization",
            "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
            "aws:ec2transitgateway/transitGateway:TransitGateway", "aws:ec2/vpnGateway:VpnGateway"} <= types
