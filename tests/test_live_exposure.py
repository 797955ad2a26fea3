"""Issue #23 item 2, against moto's server: the live scan reads resource policies and ACLs (S3,
KMS, Secrets Manager, ECR, CloudWatch Logs), Firehose delivery streams and Route 53 Resolver
forwarding rules, and maps them into the same model, so the offline rules (RSD-057, RSD-059,
RSD-055, RSD-001, RSD-064) judge them. Each case has a firing and a quiet variant."""

from __future__ import annotations

import json

from infra.engine.live import scan_account
from infra.engine.rules import Context, evaluate
from infra.program.stackfiles import load_stack_config
from live_fixtures import ACCOUNT, HOME, aws_env, moto, private_vpc, shared_clients  # noqa: F401
from rules_kit import fired, res, run as run_rules

EU = load_stack_config("eu")


def public(action: str, resource: str = "*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource}]})


def named(action: str, resource: str = "*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": action,
         "Resource": resource}]})


def scan(server, *services):
    result = scan_account(EU, regions=[HOME], endpoint_url=server.url, clients=shared_clients(server.url),
                          services=services)
    assert result.not_checked == [], result.not_checked
    return result, evaluate(result.snapshot, Context.from_config(EU))


def names(report, rule):
    return sorted({f.urn.rsplit(":", 1)[-1] for f in report.findings if f.rule == rule})


def bucket(server, name, region=HOME):
    conf = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    server.client("s3", region).create_bucket(Bucket=name, **conf)


def test_a_public_bucket_policy_and_acl_are_found_and_a_private_bucket_is_quiet(moto):
    s3 = moto.client("s3")
    bucket(moto, "open-data")
    s3.put_bucket_policy(Bucket="open-data", Policy=public("s3:GetObject", "arn:aws:s3:::open-data/*"))
    s3.put_bucket_acl(Bucket="open-data", ACL="public-read")
    bucket(moto, "closed-data")
    s3.put_bucket_policy(Bucket="closed-data", Policy=named("s3:GetObject", "arn:aws:s3:::closed-data/*"))
    _, report = scan(moto, "s3")
    assert names(report, "RSD-057") == ["open-data"]
    assert names(report, "RSD-059") == ["open-data"]
    acl = next(f for f in report.findings if f.rule == "RSD-059")
    assert "AllUsers" in acl.message and acl.type == "aws:s3/bucketAclV2:BucketAclV2"


def test_a_key_policy_open_to_anyone_is_found_and_the_default_is_quiet(moto):
    kms = moto.client("kms")
    open_key = kms.create_key(Policy=public("kms:Decrypt"))["KeyMetadata"]["KeyId"]
    kms.create_key(Description="default policy")
    result, report = scan(moto, "kms")
    assert names(report, "RSD-057") == [open_key]
    assert len([r for r in result.snapshot.resources if r.type == "aws:kms/keyPolicy:KeyPolicy"]) == 2


def test_a_secret_policy_open_to_anyone_is_found_and_a_named_one_is_quiet(moto):
    sm = moto.client("secretsmanager")
    for name, policy in (("shared", public("secretsmanager:GetSecretValue")),
                         ("scoped", named("secretsmanager:GetSecretValue"))):
        sm.create_secret(Name=name, SecretString="x")
        sm.put_resource_policy(SecretId=name, ResourcePolicy=policy)
    sm.create_secret(Name="no-policy", SecretString="x")
    result, report = scan(moto, "secretsmanager")
    assert names(report, "RSD-057") == ["shared"]
    assert {r.name for r in result.snapshot.resources if r.type.endswith("SecretPolicy")} == {"shared", "scoped"}


def test_ecr_repository_and_log_resource_policies_are_judged(moto):
    ecr = moto.client("ecr")
    for repo, policy in (("public-models", public("ecr:BatchGetImage")), ("team-models", named("ecr:BatchGetImage"))):
        ecr.create_repository(repositoryName=repo)
        ecr.set_repository_policy(repositoryName=repo, policyText=policy)
    moto.client("logs").put_resource_policy(policyName="anyone-writes", policyDocument=public("logs:PutLogEvents"))
    _, report = scan(moto, "ecr", "logs")
    assert names(report, "RSD-057") == ["anyone-writes", "public-models"]


def _stream(server, name, destination):
    role = f"arn:aws:iam::{ACCOUNT}:role/firehose"
    server.client("firehose").create_delivery_stream(DeliveryStreamName=name, **destination(role))


def test_firehose_destinations_outside_aws_or_the_geography_are_found(moto):
    bucket(moto, "us-archive", "us-east-1")
    bucket(moto, "eu-archive")
    _stream(moto, "to-us-bucket", lambda role: {"ExtendedS3DestinationConfiguration": {
        "RoleARN": role, "BucketARN": "arn:aws:s3:::us-archive"}})
    _stream(moto, "to-eu-bucket", lambda role: {"ExtendedS3DestinationConfiguration": {
        "RoleARN": role, "BucketARN": "arn:aws:s3:::eu-archive"}})
    _stream(moto, "to-saas", lambda role: {"HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": "https://collector.example.com/ingest", "Name": "saas"},
        "S3Configuration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::eu-archive"}}})
    result, report = scan(moto, "firehose")
    streams = {r.name: r for r in result.snapshot.resources if r.type.endswith("FirehoseDeliveryStream")}
    assert set(streams) == {"to-us-bucket", "to-eu-bucket", "to-saas"}
    assert streams["to-saas"].inputs["destination"] == "http_endpoint"
    assert [f.urn for f in report.findings if f.rule == "RSD-055"] == [streams["to-saas"].urn]
    assert "collector.example.com" in next(f.message for f in report.findings if f.rule == "RSD-055")
    # The destination bucket is placed where it is: us-archive is outside the geography.
    outside = [f for f in report.findings if f.rule == "RSD-001"]
    assert [f.urn for f in outside] == ["arn:aws:s3:::us-archive"]


def test_a_resolver_rule_forwarding_to_a_public_address_is_found(moto):
    ec2, vpc, subnet, sg = private_vpc(moto)
    subnet2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24")["Subnet"]["SubnetId"]
    r53 = moto.client("route53resolver")
    endpoint = r53.create_resolver_endpoint(
        CreatorRequestId="e", SecurityGroupIds=[sg], Direction="OUTBOUND",
        IpAddresses=[{"SubnetId": subnet}, {"SubnetId": subnet2}])["ResolverEndpoint"]["Id"]
    for name, ip in (("to-public-dns", "8.8.8.8"), ("to-datacenter", "10.20.0.2")):
        r53.create_resolver_rule(CreatorRequestId=name, Name=name, RuleType="FORWARD", DomainName="corp.internal",
                                 TargetIps=[{"Ip": ip, "Port": 53}], ResolverEndpointId=endpoint)
    result, report = scan(moto, "route53resolver")
    rules = {r.name: r for r in result.snapshot.resources if r.type == "aws:route53/resolverRule:ResolverRule"}
    assert set(rules) == {"to-public-dns", "to-datacenter"}  # the autodefined recursive rule is not recorded
    [finding] = [f for f in report.findings if f.rule == "RSD-064"]
    assert finding.urn == rules["to-public-dns"].urn and "8.8.8.8" in finding.message


# --- RSD-064 on fragments (a plan or export judges it the same way) ---------------------------------

def resolver_rule(*targets, rule_type="FORWARD"):
    return res("aws:route53/resolverRule:ResolverRule", "fwd", inputs={
        "domainName": "corp.internal", "ruleType": rule_type, "resolverEndpointId": "rslvr-out-1",
        "targetIps": [dict(t) for t in targets]})


def test_rsd_064_fires_on_public_and_missing_targets_and_is_quiet_on_private_ones():
    assert fired(run_rules([resolver_rule({"ip": "1.1.1.1", "port": 53})]), "RSD-064")
    assert "no address" in fired(run_rules([resolver_rule({"port": 53})]), "RSD-064")[0].message
    assert fired(run_rules([resolver_rule({"ipv6": "2001:4860:4860::8888"})]), "RSD-064")
    assert not fired(run_rules([resolver_rule({"ip": "10.0.0.2"}, {"ip": "192.168.1.53"})]), "RSD-064")
    assert not fired(run_rules([resolver_rule({"ip": "8.8.8.8"}, rule_type="SYSTEM")]), "RSD-064")


def test_an_ami_shared_with_everyone_is_found_and_a_private_one_is_quiet(moto):
    ec2 = moto.client("ec2")
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    public = ec2.create_image(InstanceId=instance, Name="shared-weights")["ImageId"]
    ec2.create_image(InstanceId=instance, Name="private-weights")
    ec2.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    _, report = scan(moto, "ec2-images")
    [finding] = [f for f in report.findings if f.rule == "RSD-061"]
    assert public in finding.urn and "group 'all'" in finding.message
