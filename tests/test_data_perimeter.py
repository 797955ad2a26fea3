"""The data perimeter of every planned stack (infra/program/components/perimeter.py, after
aws-samples/data-perimeter-policy-examples), evaluated with infra/engine/iam_eval.py.

An endpoint or bucket policy is a resource policy: iam_eval does not evaluate Principal, so the
caller's account goes in as `aws:PrincipalAccount` (the key the policies test) and a request is
admitted when the policy allows it and does not deny it.
"""

from __future__ import annotations

import json

import pytest

from infra.engine.iam_eval import ALLOW, DENY, allowed, evaluate
from tests.stack_plans import STACKS, ZMO_ONLY, planned

ACCOUNT = "111111111111"  # the test stacks' account (tests/fixtures/stacks)
FOREIGN = "999999999999"


def resources(stack: str, type_: str) -> list[dict]:
    return [r for r in planned(stack).export["deployment"]["resources"] if r["type"] == type_]


def endpoint_policies(stack: str) -> dict[str, dict]:
    return {r["inputs"]["serviceName"].split(".", 3)[-1] + ("/gateway" if r["inputs"].get("vpcEndpointType") == "Gateway" else ""):
            json.loads(r["inputs"]["policy"]) for r in resources(stack, "aws:ec2/vpcEndpoint:VpcEndpoint")
            if "policy" in r["inputs"]}


@pytest.mark.parametrize("stack", STACKS)
def test_every_vpc_endpoint_has_a_policy(stack):
    endpoints = resources(stack, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) >= 14  # 13 interface endpoints and the S3 gateway; ZM+ adds Bedrock
    assert [r["urn"] for r in endpoints if not r["inputs"].get("policy")] == []


@pytest.mark.parametrize("stack", STACKS)
def test_endpoints_admit_only_the_accounts_principals_to_the_accounts_resources(stack):
    region = planned(stack).config.region
    for service, policy in endpoint_policies(stack).items():
        if service.startswith("bedrock"):
            continue  # its own policy (bedrock.py): the workload role, the allowed models only
        own = {"aws:PrincipalAccount": ACCOUNT, "aws:ResourceAccount": ACCOUNT}
        assert allowed(policy, "s3:PutObject", f"arn:aws:s3:::mine/x", own), service
        # Outside credentials through the endpoint, or the account's credentials to another
        # account's resource (a bucket, a repository in the same region): refused.
        assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::theirs/x",
                           {"aws:PrincipalAccount": FOREIGN, "aws:ResourceAccount": FOREIGN}), service
        assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::theirs/x",
                           {"aws:PrincipalAccount": ACCOUNT, "aws:ResourceAccount": FOREIGN}), service
        assert not allowed(policy, "ecr:PutImage", f"arn:aws:ecr:{region}:{FOREIGN}:repository/x",
                           {"aws:PrincipalAccount": ACCOUNT, "aws:ResourceAccount": FOREIGN}), service
        assert not allowed(policy, "kms:Decrypt", "*", {"aws:PrincipalAccount": FOREIGN, "aws:ResourceAccount": ACCOUNT})
        assert allowed(policy, "logs:PutLogEvents", "*", {"aws:PrincipalIsAWSService": "true"}), service


@pytest.mark.parametrize("stack", ["eu", "sg"])
def test_the_aws_owned_resources_the_stack_reads_stay_reachable(stack):
    region = planned(stack).config.region
    policies = endpoint_policies(stack)
    aws_account = {"aws:PrincipalAccount": ACCOUNT, "aws:ResourceAccount": "602401143452"}
    for s3 in ("s3", "s3/gateway"):
        # ECR image layers (presigned by ECR) and the tunnel's package repositories: reads only.
        assert allowed(policies[s3], "s3:GetObject", f"arn:aws:s3:::prod-{region}-starport-layer-bucket/sha256/x", {})
        assert allowed(policies[s3], "s3:GetObject", f"arn:aws:s3:::al2023-repos-{region}-de612dc2/x", {})
        assert not allowed(policies[s3], "s3:PutObject", f"arn:aws:s3:::prod-{region}-starport-layer-bucket/x", {})
    for ecr in ("ecr.api", "ecr.dkr"):
        assert allowed(policies[ecr], "ecr:BatchGetImage", f"arn:aws:ecr:{region}:602401143452:repository/eks/x", aws_account)
        assert not allowed(policies[ecr], "ecr:PutImage", f"arn:aws:ecr:{region}:602401143452:repository/x", aws_account)
    assert allowed(policies["ssm"], "ssm:GetParameter", f"arn:aws:ssm:{region}::parameter/aws/service/x",
                   {"aws:PrincipalAccount": ACCOUNT})


def bucket_policies(stack: str) -> list[dict]:
    return [json.loads(r["inputs"]["policy"]) for r in resources(stack, "aws:s3/bucketPolicy:BucketPolicy")]


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_has_the_perimeter_policy(stack):
    buckets = resources(stack, "aws:s3/bucket:Bucket")
    policies = resources(stack, "aws:s3/bucketPolicy:BucketPolicy")
    assert len(policies) == len(buckets) >= 1
    key = next(r["outputs"]["arn"] for r in resources(stack, "aws:kms/key:Key"))
    for policy in bucket_policies(stack):
        bucket = next(s["Resource"][0] for s in policy["Statement"] if s.get("Sid") == "DenyRequestsWithoutTls")
        obj = f"{bucket}/weights/model.safetensors"
        # The stack's account (the Bedrock component takes it from the caller identity, which
        # the mocks answer with another account than the stack file's; AWS gives the same one).
        (account,) = {s["Condition"]["StringNotEquals"]["aws:PrincipalAccount"] for s in policy["Statement"]
                      if s.get("Sid") == "DenyPrincipalsOfOtherAccounts"}
        tls = {"aws:SecureTransport": "true", "aws:PrincipalAccount": account}
        assert evaluate(policy, "s3:GetObject", obj, {**tls, "aws:SecureTransport": "false"}) == DENY
        assert evaluate(policy, "s3:GetObject", obj, {**tls, "aws:PrincipalAccount": FOREIGN}) == DENY
        assert evaluate(policy, "s3:GetObject", obj, tls) != DENY
        assert evaluate(policy, "s3:PutObject", obj, {**tls, "s3:x-amz-server-side-encryption": "AES256"}) == DENY
        assert evaluate(policy, "s3:PutObject", obj, {**tls, "s3:x-amz-server-side-encryption": "aws:kms",
                                                      "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:x"}) == DENY
        assert evaluate(policy, "s3:PutObject", obj, {**tls, "s3:x-amz-server-side-encryption": "aws:kms",
                                                      "s3:x-amz-server-side-encryption-aws-kms-key-id": key}) != DENY
        # No encryption headers: the bucket's default encryption, the stack key, applies.
        assert evaluate(policy, "s3:PutObject", obj, tls) != DENY


def test_bedrock_still_writes_its_invocation_logs():
    (policy,) = [p for p in bucket_policies("eu") if any(s.get("Sid") == "BedrockWritesInvocationLogs" for s in p["Statement"])]
    bucket = policy["Statement"][0]["Resource"][0].rsplit("/", 2)[0]
    account = policy["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"]
    ctx = {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true",
           "aws:SourceAccount": account, "aws:SourceArn": f"arn:aws:bedrock:eu-central-1:{account}:*"}
    assert evaluate(policy, "s3:PutObject", f"{bucket}/invocations/x.json", ctx) == ALLOW


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_one_dns_walled_garden_that_fails_closed(stack):
    associations = resources(stack, "aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation")
    assert len(associations) == 1
    (config,) = resources(stack, "aws:route53/resolverFirewallConfig:ResolverFirewallConfig")
    assert config["inputs"]["firewallFailOpen"] == "DISABLED"
    rules = sorted((r["inputs"]["priority"], r["inputs"]["action"]) for r in
                   resources(stack, "aws:route53/resolverFirewallRule:ResolverFirewallRule"))
    assert rules[-1][1] == "BLOCK" and all(action == "ALLOW" for _, action in rules[:-1])


def test_zmo_only_stacks_answer_only_aws_names_of_their_region():
    from infra.program.components.egress import dns_firewall_admits

    for stack in ZMO_ONLY:
        region = planned(stack).config.region
        lists = [r["inputs"]["domains"] for r in resources(stack, "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList")
                 if r["inputs"]["domains"] != ["*"]]
        (allowed_names,) = lists
        assert dns_firewall_admits(f"ecr.{region}.amazonaws.com", allowed_names)
        assert not dns_firewall_admits("exfil.attacker.example", allowed_names)
        assert not dns_firewall_admits("s3.us-east-1.amazonaws.com", allowed_names) or region == "us-east-1"
