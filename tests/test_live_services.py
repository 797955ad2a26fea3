"""The services the live scan reads beyond the network core, against moto's server: each maps
into the normalized model so the one rule set judges it, with a firing and a quiet case.

EKS, Lambda, API Gateway, SNS, SQS, EventBridge, RDS/Aurora, OpenSearch, Redshift, AWS Backup,
S3 account Block Public Access, VPCs (the default VPC), network ACLs, transit/VPN/customer
gateways and the Organizations SCPs in force. What moto 5.2.5 cannot serve (OpenSearch outbound
connections, an Organizations caller without access) is tested with botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from infra.engine.live import scan_account
from infra.engine.rules import Context, evaluate
from infra.program.stackfiles import load_stack_config
from live_fixtures import (ACCOUNT, HOME, StubSession, account_public_access_blocked, aws_env, no_ecr_policies,  # noqa: F401
                           drop_default_vpc, moto, scp_in_force, shared_clients)

US = "us-east-1"


def run(server, services, stack="eu", regions=(HOME,)):
    cfg = load_stack_config(stack)
    result = scan_account(cfg, regions=list(regions), endpoint_url=server.url, clients=shared_clients(server.url),
                          services=services)
    assert result.not_checked == [], [str(n) for n in result.not_checked]
    return result, evaluate(result.snapshot, Context.from_config(cfg))


def stubbed_first_call() -> StubSession:
    stub = StubSession()
    stub.stub("ec2").add_response("describe_regions", {"Regions": [{"RegionName": HOME}]}, {"AllRegions": True})
    return stub


def stubbed_run(stub: StubSession, services):
    cfg = load_stack_config("eu")
    result = scan_account(cfg, regions=[HOME], session=stub, services=services)
    stub.assert_no_pending_responses()
    assert result.not_checked == [], [str(n) for n in result.not_checked]
    return result, evaluate(result.snapshot, Context.from_config(cfg))


def of_type(result, token):
    return [r for r in result.snapshot.resources if r.type == token]


def flagged(report, ident, rule):
    return [f for f in report.findings if (ident in f.urn or ident in f.message) and f.rule == rule]


def subnets(server, region=HOME):
    ec2 = server.client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    return [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]
            ["SubnetId"] for i, az in ((1, "a"), (2, "b"))]


# --- EKS ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("public, bad", [(True, True), (False, False)])
def test_eks_public_endpoint_and_its_cidrs(moto, public, bad):
    config = {"subnetIds": subnets(moto), "endpointPublicAccess": public, "endpointPrivateAccess": True}
    if public:
        config["publicAccessCidrs"] = ["0.0.0.0/0"]
    moto.client("eks").create_cluster(name="serving", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                                      resourcesVpcConfig=config)
    result, report = run(moto, ["eks"])
    (cluster,) = of_type(result, "aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is public and cluster.region == HOME
    assert cluster.inputs["vpcConfig"].get("publicAccessCidrs") == (["0.0.0.0/0"] if public else None)
    assert bool(flagged(report, "serving", "RSD-028")) is bad


# --- Lambda ------------------------------------------------------------------------------------------

def function(server, name, env):
    iam = server.client("iam")
    try:
        iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return event\n")
    return server.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/fn", Handler="index.handler",
        Code={"ZipFile": buf.getvalue()}, Environment={"Variables": env})["FunctionArn"]


def test_lambda_public_permission_and_foreign_environment_are_read_and_flagged(moto):
    arn = function(moto, "hook", {"DLQ": f"arn:aws:sqs:{US}:{ACCOUNT}:dlq", "LOG_LEVEL": "info"})
    moto.client("lambda").add_permission(FunctionName="hook", StatementId="anyone", Action="lambda:InvokeFunctionUrl",
                                         Principal="*", FunctionUrlAuthType="NONE")
    result, report = run(moto, ["lambda"])
    (fn,) = of_type(result, "aws:lambda/function:Function")
    assert fn.urn == arn and fn.inputs["environment"]["variables"]["DLQ"].endswith(":dlq")
    assert any(f"{US} is outside EU" in f.message for f in flagged(report, arn, "RSD-010"))
    (perm,) = of_type(result, "aws:lambda/permission:Permission")
    # Principal "*": the shape of pulumi-aws lambda.Permission, judged by the public-exposure rule.
    assert perm.inputs["principal"] == "*" and perm.inputs["function"] == "hook"
    assert perm.inputs["statementId"] == "anyone" and perm.inputs["action"] == "lambda:InvokeFunctionUrl"
    assert [f.message for f in report.findings if f.rule == "RSD-058" and f.urn == perm.urn] == [
        "principal '*' without sourceAccount / sourceArn / principalOrgId"]


@pytest.mark.parametrize("grant", [
    {"Principal": "*", "SourceAccount": ACCOUNT},  # any service, but only on behalf of this account
    {"Principal": "*", "PrincipalOrgID": "o-abcdef1234"},  # any principal of the organization
    {"Principal": "s3.amazonaws.com", "SourceArn": "arn:aws:s3:::uploads"},  # a named service
    {"Principal": ACCOUNT},  # a named account
])
def test_lambda_permission_narrowed_to_an_account_organization_or_service_is_quiet(moto, grant):
    function(moto, "hook", {})
    moto.client("lambda").add_permission(FunctionName="hook", StatementId="narrow", Action="lambda:InvokeFunction",
                                         **grant)
    result, report = run(moto, ["lambda"])
    (perm,) = of_type(result, "aws:lambda/permission:Permission")
    narrowing = {"SourceAccount": "sourceAccount", "PrincipalOrgID": "principalOrgId", "SourceArn": "sourceArn"}
    assert all(perm.inputs[narrowing[k]] == v for k, v in grant.items() if k in narrowing)
    assert report.findings == [], [f"{f.rule} {f.message}" for f in report.findings]


@pytest.mark.parametrize("urls, bad", [([{"AuthType": "NONE"}], True), ([], False)])
def test_lambda_function_url(urls, bad, aws_env):  # noqa: F811
    """moto 5.2.5 has no ListFunctionUrlConfigs: the Stubber answers."""
    stub = stubbed_first_call()
    lam = stub.stub("lambda")
    fn_arn = f"arn:aws:lambda:{HOME}:{ACCOUNT}:function:hook"
    lam.add_response("list_functions", {"Functions": [{"FunctionName": "hook", "FunctionArn": fn_arn}]}, {})
    lam.add_response("list_function_url_configs", {"FunctionUrlConfigs": [{
        "FunctionUrl": "https://abc.lambda-url.eu-central-1.on.aws/", "FunctionArn": fn_arn, "AuthType": u["AuthType"],
        "CreationTime": "2026-11-01T00:00:00Z", "LastModifiedTime": "2026-11-01T00:00:00Z"} for u in urls]},
        {"FunctionName": "hook"})
    lam.add_client_error("get_policy", "ResourceNotFoundException", "no policy", 404, expected_params={"FunctionName": "hook"})
    result, report = stubbed_run(stub, ["lambda"])
    found = of_type(result, "aws:lambda/functionUrl:FunctionUrl")
    assert bool(found) is bad and bool([f for f in report.findings if f.rule == "RSD-028"]) is bad
    if bad:
        assert found[0].inputs["authorizationType"] == "NONE" and found[0].inputs["functionName"] == "hook"


@pytest.mark.parametrize("condition, bad", [
    ({"StringEquals": {"aws:sourceaccount": ACCOUNT}}, False),  # condition keys are case-insensitive
    ({"StringEquals": {"AWS:PrincipalOrgID": "o-abcdef1234"}}, False),
    (None, True),
])
def test_lambda_resource_policy_as_aws_writes_it(condition, bad, aws_env):  # noqa: F811
    """GetPolicy's document as AWS returns it, whatever the case of its condition keys."""
    stub = stubbed_first_call()
    lam = stub.stub("lambda")
    fn_arn = f"arn:aws:lambda:{HOME}:{ACCOUNT}:function:hook"
    statement = {"Sid": "any", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
                 "Resource": fn_arn}
    if condition:
        statement["Condition"] = condition
    lam.add_response("list_functions", {"Functions": [{"FunctionName": "hook", "FunctionArn": fn_arn}]}, {})
    lam.add_response("list_function_url_configs", {"FunctionUrlConfigs": []}, {"FunctionName": "hook"})
    lam.add_response("get_policy", {"Policy": json.dumps({"Version": "2012-10-17", "Id": "default",
                                                          "Statement": [statement]})}, {"FunctionName": "hook"})
    result, report = stubbed_run(stub, ["lambda"])
    (perm,) = of_type(result, "aws:lambda/permission:Permission")
    assert perm.inputs["principal"] == "*"
    assert [f.rule for f in report.findings] == (["RSD-058"] if bad else [])


def test_lambda_in_region_without_url_or_policy_is_quiet(moto):
    function(moto, "worker", {"QUEUE": f"arn:aws:sqs:{HOME}:{ACCOUNT}:jobs", "AWS_REGION_HINT": HOME})
    result, report = run(moto, ["lambda"])
    assert len(of_type(result, "aws:lambda/function:Function")) == 1
    assert not of_type(result, "aws:lambda/functionUrl:FunctionUrl")
    assert not of_type(result, "aws:lambda/permission:Permission")
    assert report.findings == [], [f"{f.rule} {f.message}" for f in report.findings]


# --- API Gateway -------------------------------------------------------------------------------------

@pytest.mark.parametrize("types, bad", [(["REGIONAL"], True), (["EDGE"], True), (["PRIVATE"], False)])
def test_rest_api_endpoint_type(moto, types, bad):
    api = moto.client("apigateway").create_rest_api(name="api", endpointConfiguration={"types": types})["id"]
    result, report = run(moto, ["apigateway"])
    (rest,) = of_type(result, "aws:apigateway/restApi:RestApi")
    assert rest.id == api and rest.inputs["endpointConfiguration"]["types"] == types
    assert bool(flagged(report, api, "RSD-028")) is bad


def test_http_api_is_public_and_no_api_is_quiet(moto):
    result, report = run(moto, ["apigatewayv2"])
    assert result.snapshot.resources == [] and report.findings == []
    api = moto.client("apigatewayv2").create_api(Name="http", ProtocolType="HTTP")["ApiId"]
    result, report = run(moto, ["apigatewayv2"])
    assert flagged(report, api, "RSD-028")


# --- SNS, SQS, EventBridge -------------------------------------------------------------------------------

def queue_arn(server, name, region=HOME):
    sqs = server.client("sqs", region)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_sns_subscriptions_outside_aws_or_the_geography_are_flagged_in_region_is_not(moto):
    sns = moto.client("sns")
    topic = sns.create_topic(Name="events")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="https://hooks.example.com/in")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(moto, "abroad", US))
    home = queue_arn(moto, "home")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=home)
    result, report = run(moto, ["sns"])
    subs = {s.inputs["endpoint"]: s for s in of_type(result, "aws:sns/topicSubscription:TopicSubscription")}
    assert set(subs) == {"https://hooks.example.com/in", f"arn:aws:sqs:{US}:{ACCOUNT}:abroad", home}
    assert all(s.inputs["topic"] == topic for s in subs.values())
    by_urn = {f.urn for f in report.findings if f.rule == "RSD-035"}
    assert subs["https://hooks.example.com/in"].urn in by_urn and subs[f"arn:aws:sqs:{US}:{ACCOUNT}:abroad"].urn in by_urn
    assert subs[home].urn not in by_urn


def test_sqs_redrive_target_and_policy_in_region_are_quiet(moto):
    dlq = queue_arn(moto, "dlq")
    moto.client("sqs").create_queue(QueueName="jobs", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": "3"}),
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sqs:SendMessage", "Resource": "*"}]})})
    result, report = run(moto, ["sqs"])
    (jobs,) = [q for q in of_type(result, "aws:sqs/queue:Queue") if q.inputs["name"] == "jobs"]
    assert json.loads(jobs.inputs["redrivePolicy"])["deadLetterTargetArn"] == dlq
    assert json.loads(jobs.inputs["policy"])["Statement"][0]["Action"] == "sqs:SendMessage"
    assert report.findings == []


def sqs_policy(principal, condition=None):
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sqs:SendMessage", "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.parametrize("policy, bad", [
    (sqs_policy("*"), True),
    (sqs_policy({"AWS": "*"}, {"StringEquals": {"aws:SourceIp": "203.0.113.0/24"}}), True),  # an address is no identity
    (sqs_policy("*", {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{HOME}:{ACCOUNT}:events"}}), False),
    (sqs_policy({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), False),
])
def test_sqs_queue_policy_open_to_anyone_is_flagged(moto, policy, bad):
    moto.client("sqs").create_queue(QueueName="inbox", Attributes={"Policy": policy})
    result, report = run(moto, ["sqs"])
    (inbox,) = of_type(result, "aws:sqs/queue:Queue")
    assert json.loads(inbox.inputs["policy"]) == json.loads(policy)
    assert bool(flagged(report, inbox.urn, "RSD-057")) is bad
    assert [f.rule for f in report.findings] == (["RSD-057"] if bad else [])


@pytest.mark.parametrize("policy, bad", [
    (None, False),  # moto's default topic policy, as AWS's: AWS "*" narrowed by AWS:SourceOwner
    ({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "SNS:Subscribe", "Resource": "*"}, True),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "SNS:Publish",
      "Resource": "*"}, True),
])
def test_sns_topic_policy_open_to_anyone_is_flagged(moto, policy, bad):
    sns = moto.client("sns")
    topic = sns.create_topic(Name="events")["TopicArn"]
    if policy:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                 AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": [policy]}))
    result, report = run(moto, ["sns"])
    (t,) = of_type(result, "aws:sns/topic:Topic")
    assert t.urn == topic and json.loads(t.inputs["policy"])["Statement"]
    assert bool(flagged(report, topic, "RSD-057")) is bad
    assert [f.rule for f in report.findings] == (["RSD-057"] if bad else [])


def test_sqs_redrive_target_outside_the_geography_is_flagged(aws_env):  # noqa: F811
    """moto refuses a dead-letter queue in another region (AWS allows none either, but a redrive
    policy can name any ARN through the API of an older queue): the Stubber answers."""
    stub = stubbed_first_call()
    url = f"https://sqs.{HOME}.amazonaws.com/{ACCOUNT}/jobs"
    sqs = stub.stub("sqs")
    sqs.add_response("list_queues", {"QueueUrls": [url]}, {})
    sqs.add_response("get_queue_attributes", {"Attributes": {
        "QueueArn": f"arn:aws:sqs:{HOME}:{ACCOUNT}:jobs",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{US}:{ACCOUNT}:dlq", "maxReceiveCount": 3})}},
        {"QueueUrl": url, "AttributeNames": ["All"]})
    result, report = stubbed_run(stub, ["sqs"])
    (jobs,) = of_type(result, "aws:sqs/queue:Queue")
    assert flagged(report, jobs.urn, "RSD-035") and jobs.outputs["url"] == url


@pytest.mark.parametrize("region, bad", [(US, True), (HOME, False)])
def test_eventbridge_rule_target(moto, region, bad):
    events = moto.client("events")
    events.put_rule(Name="nightly", ScheduleExpression="rate(1 day)")
    events.put_targets(Rule="nightly", Targets=[{"Id": "q", "Arn": queue_arn(moto, "sink", region)}])
    result, report = run(moto, ["events"])
    (rule,) = of_type(result, "aws:cloudwatch/eventRule:EventRule")
    assert rule.inputs["scheduleExpression"] == "rate(1 day)"
    (target,) = of_type(result, "aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"].startswith(f"arn:aws:sqs:{region}:")
    assert bool(flagged(report, target.urn, "RSD-035")) is bad


def test_eventbridge_api_destination_is_read(moto):
    events = moto.client("events")
    conn = events.create_connection(Name="c", AuthorizationType="API_KEY", AuthParameters={
        "ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "v"}})["ConnectionArn"]
    events.create_api_destination(Name="partner", ConnectionArn=conn, HttpMethod="POST",
                                  InvocationEndpoint="https://partner.example.com/ingest")
    result, _ = run(moto, ["events"])
    (dest,) = of_type(result, "aws:cloudwatch/eventApiDestination:EventApiDestination")
    assert dest.inputs["invocationEndpoint"] == "https://partner.example.com/ingest"


# --- RDS / Aurora, Redshift ----------------------------------------------------------------------------

@pytest.mark.parametrize("public, bad", [(True, True), (False, False)])
def test_rds_instance_public_access(moto, public, bad):
    moto.client("rds").create_db_instance(DBInstanceIdentifier="db", DBInstanceClass="db.t3.micro", Engine="postgres",
                                          MasterUsername="u", MasterUserPassword="password1", AllocatedStorage=20,
                                          PubliclyAccessible=public)
    result, report = run(moto, ["rds"])
    (db,) = of_type(result, "aws:rds/instance:Instance")
    assert db.inputs["publiclyAccessible"] is public
    assert bool(flagged(report, "db", "RSD-028")) is bad


def test_rds_cross_region_read_replica_is_flagged_from_its_source(moto):
    rds = moto.client("rds")
    source = rds.create_db_instance(DBInstanceIdentifier="primary", DBInstanceClass="db.t3.micro", Engine="postgres",
                                    MasterUsername="u", MasterUserPassword="password1",
                                    AllocatedStorage=20)["DBInstance"]["DBInstanceArn"]
    moto.client("rds", US).create_db_instance_read_replica(DBInstanceIdentifier="copy", SourceDBInstanceIdentifier=source)
    result, report = run(moto, ["rds"])
    (primary,) = of_type(result, "aws:rds/instance:Instance")
    assert any(US in r for r in primary.outputs["replicas"])
    assert any(f"{US} is outside EU" in f.message for f in flagged(report, primary.urn, "RSD-010"))


def test_aurora_cluster_and_global_cluster_member_outside_the_geography(moto):
    rds = moto.client("rds")
    rds.create_global_cluster(GlobalClusterIdentifier="world", Engine="aurora-postgresql")
    cluster = rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql", MasterUsername="u",
                                    MasterUserPassword="password1", GlobalClusterIdentifier="world")["DBCluster"][
        "DBClusterArn"]
    moto.client("rds", US).create_db_cluster(DBClusterIdentifier="aurora-us", Engine="aurora-postgresql",
                                             GlobalClusterIdentifier="world")
    result, report = run(moto, ["rds"])
    assert [c.id for c in of_type(result, "aws:rds/cluster:Cluster")] == ["aurora"]
    (world,) = of_type(result, "aws:rds/globalCluster:GlobalCluster")
    assert any(US in (m.get("dbClusterArn") or "") for m in world.outputs["globalClusterMembers"])
    assert flagged(report, world.urn, "RSD-010")
    assert not [f for f in report.findings if f.urn == cluster]


@pytest.mark.parametrize("public, bad", [(True, True), (False, False)])
def test_redshift_cluster_public_access(moto, public, bad):
    moto.client("redshift").create_cluster(ClusterIdentifier="dw", NodeType="dc2.large", MasterUsername="u",
                                           MasterUserPassword="Password1", PubliclyAccessible=public)
    result, report = run(moto, ["redshift"])
    (dw,) = of_type(result, "aws:redshift/cluster:Cluster")
    assert dw.inputs["publiclyAccessible"] is public
    assert bool(flagged(report, "dw", "RSD-028")) is bad


# --- OpenSearch ------------------------------------------------------------------------------------------

def test_opensearch_domain_is_read_with_its_vpc_options(moto):
    moto.client("opensearch").create_domain(DomainName="search", VPCOptions={"SubnetIds": subnets(moto)[:1]})
    moto.client("opensearch").create_domain(DomainName="open")
    result, report = run(moto, ["opensearch"])
    domains = {d.id: d for d in of_type(result, "aws:opensearch/domain:Domain")}
    assert set(domains) == {"search", "open"}
    assert domains["search"].inputs["vpcOptions"]["subnetIds"] and "vpcOptions" not in domains["open"].inputs
    # Outside a VPC the endpoint is public (RSD-063); inside one the domain is quiet.
    assert [(f.rule, f.urn) for f in report.findings] == [("RSD-063", domains["open"].urn)]
    assert domains["open"].urn == f"arn:aws:es:{HOME}:{ACCOUNT}:domain/open"


@pytest.mark.parametrize("principal, bad", [("*", True), ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False)])
def test_opensearch_domain_access_policy_open_to_anyone(moto, principal, bad):
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": principal, "Action": "es:ESHttp*",
        "Resource": f"arn:aws:es:{HOME}:{ACCOUNT}:domain/search/*"}]})
    moto.client("opensearch").create_domain(DomainName="search", VPCOptions={"SubnetIds": subnets(moto)[:1]},
                                            AccessPolicies=policy)
    result, report = run(moto, ["opensearch"])
    (domain,) = of_type(result, "aws:opensearch/domain:Domain")
    assert json.loads(domain.inputs["accessPolicies"]) == json.loads(policy)
    assert [f.rule for f in report.findings] == (["RSD-057"] if bad else [])


@pytest.mark.parametrize("remote, bad", [(US, True), ("eu-west-1", False)])
def test_opensearch_outbound_connection_to_another_region(remote, bad, aws_env):  # noqa: F811
    stub = stubbed_first_call()
    os_stub = stub.stub("opensearch")
    os_stub.add_response("list_domain_names", {"DomainNames": []}, {})
    os_stub.add_response("describe_outbound_connections", {"Connections": [{
        "ConnectionId": "cc-0123456789", "ConnectionAlias": "to-remote", "ConnectionMode": "DIRECT",
        "ConnectionStatus": {"StatusCode": "ACTIVE"},
        "LocalDomainInfo": {"AWSDomainInformation": {"OwnerId": ACCOUNT, "DomainName": "search", "Region": HOME}},
        "RemoteDomainInfo": {"AWSDomainInformation": {"OwnerId": ACCOUNT, "DomainName": "far", "Region": remote}},
    }]}, {})
    result, report = stubbed_run(stub, ["opensearch"])
    (conn,) = of_type(result, "aws:opensearch/outboundConnection:OutboundConnection")
    assert conn.inputs["remoteDomainInfo"] == {"domainName": "far", "ownerId": ACCOUNT, "region": remote}
    assert bool([f for f in report.findings if f.urn == conn.urn and remote in f.message]) is bad


# --- AWS Backup ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("region, bad", [(US, True), ("eu-west-1", False)])
def test_backup_copy_action(moto, region, bad):
    vault = f"arn:aws:backup:{region}:{ACCOUNT}:backup-vault:copies"
    plan = moto.client("backup").create_backup_plan(BackupPlan={"BackupPlanName": "nightly", "Rules": [{
        "RuleName": "r", "TargetBackupVaultName": "Default", "ScheduleExpression": "cron(0 3 * * ? *)",
        "CopyActions": [{"DestinationBackupVaultArn": vault}]}]})["BackupPlanId"]
    result, report = run(moto, ["backup"])
    (p,) = of_type(result, "aws:backup/plan:Plan")
    assert p.id == plan and p.inputs["rules"][0]["copyActions"] == [{"destinationVaultArn": vault}]
    assert bool(flagged(report, plan, "RSD-034")) is bad


# --- S3 account Block Public Access, VPCs and gateways -----------------------------------------------------

@pytest.mark.parametrize("configured", [True, False, None])
def test_s3_account_block_public_access_is_read(moto, configured):
    """All four on: quiet. Turned off, or never configured (moto's and a new AWS account's state,
    which reads as every setting off): RSD-060 names the account."""
    if configured is not None:
        account_public_access_blocked(moto, on=configured)
    result, report = run(moto, ["s3"])
    (bpa,) = of_type(result, "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock")
    settings = {k: bpa.inputs[k] for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy",
                                           "restrictPublicBuckets")}
    assert set(settings.values()) == {bool(configured)}
    assert bpa.region == HOME and bpa.inputs["accountId"] == ACCOUNT
    expected = [] if configured else [
        ("RSD-060", bpa.urn, "blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets not true")]
    assert [(f.rule, f.urn, f.message) for f in report.findings] == expected


def test_default_vpc_is_recorded_and_its_public_subnets_flagged(moto):
    result, report = run(moto, ["ec2"])
    (default,) = of_type(result, "aws:ec2/defaultVpc:DefaultVpc")
    public = [s for s in of_type(result, "aws:ec2/subnet:Subnet") if s.inputs["vpcId"] == default.id]
    assert public and all(flagged(report, s.id, "RSD-022") for s in public)
    drop_default_vpc(moto)
    result, report = run(moto, ["ec2"])
    assert not of_type(result, "aws:ec2/defaultVpc:DefaultVpc")
    assert not [f for f in report.findings if f.rule == "RSD-022"]


def test_transit_vpn_and_customer_gateways_are_flagged(moto):
    ec2 = moto.client("ec2")
    tgw = ec2.create_transit_gateway(Description="hub")["TransitGateway"]["TransitGatewayId"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="198.51.100.7", BgpAsn=65000)["CustomerGateway"][
        "CustomerGatewayId"]
    result, report = run(moto, ["ec2"])
    assert flagged(report, tgw, "RSD-025") and flagged(report, vgw, "RSD-026") and flagged(report, cgw, "RSD-026")


def test_network_acl_open_to_the_internet_is_flagged_default_acl_is_not(moto):
    drop_default_vpc(moto)
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    result, report = run(moto, ["ec2"])
    assert not of_type(result, "aws:ec2/networkAcl:NetworkAcl")  # the VPC's default ACL: not a choice
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=True,
                                 CidrBlock="0.0.0.0/0")
    result, report = run(moto, ["ec2"])
    (nacl,) = of_type(result, "aws:ec2/networkAcl:NetworkAcl")
    assert nacl.id == acl and flagged(report, acl, "RSD-024")


@pytest.mark.parametrize("public, bad", [(True, True), (False, False)])
def test_launch_template_public_ip(moto, public, bad):
    tid = moto.client("ec2").create_launch_template(LaunchTemplateName="nodes", LaunchTemplateData={
        "UserData": "c2VjcmV0", "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": public}]})[
        "LaunchTemplate"]["LaunchTemplateId"]
    result, report = run(moto, ["ec2"])
    (lt,) = of_type(result, "aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.id == tid and "userData" not in lt.inputs  # user data is never kept
    assert bool(flagged(report, tid, "RSD-022")) is bad


def test_direct_connect_connection_is_flagged_and_none_is_quiet(moto):
    result, report = run(moto, ["directconnect"])
    assert result.snapshot.resources == [] and report.findings == []
    conn = moto.client("directconnect").create_connection(location="EqFA5", bandwidth="1Gbps",
                                                         connectionName="to-office")["connectionId"]
    result, report = run(moto, ["directconnect"])
    assert flagged(report, conn, "RSD-026")


@pytest.mark.parametrize("public, bad", [(True, True), (False, False)])
def test_dms_replication_instance_public_access(moto, public, bad):
    moto.client("dms").create_replication_instance(ReplicationInstanceIdentifier="mover",
                                                   ReplicationInstanceClass="dms.t3.micro", PubliclyAccessible=public)
    result, report = run(moto, ["dms"])
    (mover,) = of_type(result, "aws:dms/replicationInstance:ReplicationInstance")
    assert mover.inputs["publiclyAccessible"] is public
    assert bool(flagged(report, "mover", "RSD-028")) is bad


# --- Organizations: the geography's SCP in force ------------------------------------------------------------

def test_account_outside_any_organization_is_flagged(moto):
    result, report = run(moto, ["organizations"])
    assert [f.message for f in report.findings if f.rule == "RSD-005"] == [
        "the account is in no AWS Organization, so no SCP holds it to the geography"]


def test_organization_without_the_geography_scp_is_flagged(moto):
    scp_in_force(moto, stack="us")  # the US policy is not the EU one
    result, report = run(moto, ["organizations"])
    (finding,) = [f for f in report.findings if f.rule == "RSD-005"]
    from infra.commands.scp import scp_for_stack

    # Counted independently of the rule: the EU statements that the US policy does not carry word for word.
    eu, us = scp_for_stack("eu")["Statement"], scp_for_stack("us")["Statement"]
    missing = [s for s in eu if s not in us]
    assert missing, "the EU and US policies must differ for this test to mean anything"
    assert finding.message == (f"{len(missing)} of {len(eu)} statement(s) of the EU SCP (`residency scp`) are in "
                               "none of the 2 SCP(s) in force on the account")


def test_organization_with_the_geography_scp_is_quiet(moto):
    scp_in_force(moto)
    result, report = run(moto, ["organizations"])
    (org,) = of_type(result, "aws:organizations/organization:Organization")
    assert {p["name"] for p in org.outputs["effectiveScps"]} >= {"residency-eu", "FullAWSAccess"}
    assert report.findings == []


def test_organizations_unreadable_is_not_checked_for_that_unit_only(aws_env):  # noqa: F811
    stub = stubbed_first_call()
    stub.stub("sts").add_response("get_caller_identity", {"Account": ACCOUNT}, {})
    stub.stub("organizations").add_client_error("describe_organization", "AccessDeniedException",
                                                "member account", 400)
    stub.stub("ecr").add_response("describe_registry", {"registryId": ACCOUNT}, {})
    no_ecr_policies(stub)
    result = scan_account(load_stack_config("eu"), regions=[HOME], session=stub, services=["ecr", "organizations"])
    assert [(n.service, n.region, n.kind) for n in result.not_checked] == [
        ("organizations", "global", "access denied")]


# --- whole scans through the console script -----------------------------------------------------------------

def console_audit(server, *extra):
    from cli_run import run_script

    proc = run_script(["audit", "--live", "--stack", "eu", "--endpoint-url", server.url, "--format", "json", *extra])
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def well_kept(server):
    """An account as the stacks leave it, with one clean resource of each service the scan reads."""
    from live_fixtures import home_logging, private_vpc

    # before the default VPC goes: moto places an instance without a subnet group there
    server.client("rds").create_db_instance(DBInstanceIdentifier="db", DBInstanceClass="db.t3.micro", Engine="postgres",
                                            MasterUsername="u", MasterUserPassword="password1", AllocatedStorage=20,
                                            PubliclyAccessible=False)
    for region in (HOME, "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1"):
        drop_default_vpc(server, region)
    _ec2, _vpc, subnet, _sg = private_vpc(server)
    home_logging(server)
    scp_in_force(server)
    account_public_access_blocked(server)
    server.client("opensearch").create_domain(DomainName="search", VPCOptions={"SubnetIds": [subnet]})
    server.client("eks").create_cluster(name="serving", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={
        "subnetIds": [subnet], "endpointPublicAccess": False, "endpointPrivateAccess": True})
    function(server, "worker", {"QUEUE": f"arn:aws:sqs:{HOME}:{ACCOUNT}:jobs"})
    server.client("apigateway").create_rest_api(name="private", endpointConfiguration={"types": ["PRIVATE"]})
    jobs = queue_arn(server, "jobs")
    topic = server.client("sns").create_topic(Name="events")["TopicArn"]
    server.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=jobs)
    server.client("events").put_rule(Name="nightly", ScheduleExpression="rate(1 day)")
    server.client("events").put_targets(Rule="nightly", Targets=[{"Id": "q", "Arn": jobs}])
    server.client("backup").create_backup_plan(BackupPlan={"BackupPlanName": "nightly", "Rules": [{
        "RuleName": "r", "TargetBackupVaultName": "Default",
        "CopyActions": [{"DestinationBackupVaultArn": f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:copies"}]}]})


def test_a_clean_well_kept_account_passes(moto):
    well_kept(moto)
    regions = ",".join((HOME, "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1"))
    code, report = console_audit(moto, "--regions", regions)
    assert (code, report["findings"], report["not_checked"]) == (0, [], [])
    # The whole geography: only eu-south-2, the opt-in region moto has not enabled, is not checked.
    code, report = console_audit(moto)
    assert code == 3 and report["findings"] == []
    assert {n["region"] for n in report["not_checked"]} == {"eu-south-2"}
    assert all(n["kind"] == "opt-in region not enabled" for n in report["not_checked"])


def test_a_full_scan_of_a_planted_account_names_each_planted_path(moto):
    well_kept(moto)
    planted = {}
    ec2 = moto.client("ec2")
    planted["RSD-025"] = ec2.create_transit_gateway(Description="hub")["TransitGateway"]["TransitGatewayId"]
    planted["RSD-026"] = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    moto.client("eks").create_cluster(name="open", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={
        "subnetIds": subnets(moto), "endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]})
    function(moto, "leaky", {"SINK": f"arn:aws:sqs:{US}:{ACCOUNT}:sink"})
    planted["RSD-010"] = "function:leaky"
    api = moto.client("apigateway").create_rest_api(name="public", endpointConfiguration={"types": ["EDGE"]})["id"]
    planted["RSD-028"] = api
    topic = moto.client("sns").create_topic(Name="out")["TopicArn"]
    moto.client("sns").subscribe(TopicArn=topic, Protocol="https", Endpoint="https://hooks.example.com/x")
    planted["RSD-035"] = topic  # the subscription's ARN is the topic's plus an id
    plan = moto.client("backup").create_backup_plan(BackupPlan={"BackupPlanName": "abroad", "Rules": [{
        "RuleName": "r", "TargetBackupVaultName": "Default",
        "CopyActions": [{"DestinationBackupVaultArn": f"arn:aws:backup:{US}:{ACCOUNT}:backup-vault:v"}]}]})
    planted["RSD-034"] = plan["BackupPlanId"]
    moto.client("ecr", "eu-west-1").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": US, "registryId": ACCOUNT}]}]})
    planted["RSD-033"] = ACCOUNT
    # Public exposure (issue #13's rules on live data): a queue anyone may write to, a function
    # anyone may invoke, a search domain with a public endpoint.
    moto.client("sqs").create_queue(QueueName="open-inbox", Attributes={"Policy": sqs_policy("*")})
    planted["RSD-057"] = "open-inbox"
    moto.client("lambda").add_permission(FunctionName="leaky", StatementId="anyone", Action="lambda:InvokeFunction",
                                         Principal="*")
    planted["RSD-058"] = "leaky:anyone"
    moto.client("opensearch").create_domain(DomainName="exposed")
    planted["RSD-063"] = "domain/exposed"
    regions = ",".join((HOME, "eu-west-1"))
    code, report = console_audit(moto, "--regions", regions)
    assert code == 1 and report["not_checked"] == []
    for rule, ident in planted.items():
        assert [f for f in report["findings"] if f["rule"] == rule and ident in f["urn"] + f["message"]], (rule, ident)
    assert [f for f in report["findings"] if f["rule"] == "RSD-028" and "cluster/open" in f["urn"]]
