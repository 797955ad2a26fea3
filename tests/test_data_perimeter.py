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
from stack_plans import STACKS, ZMO_ONLY, planned

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


# --- The model server: reachable from the serving subnets only, and authenticated ----------------

def k8s(stack: str, kind: str) -> list[dict]:
    return [r for r in planned(stack).export["deployment"]["resources"] if r["type"] == f"kubernetes:{kind}"]


@pytest.mark.parametrize("stack", ["eu", "sg"])
def test_the_model_server_admits_only_the_serving_subnets_never_the_connector_subnets(stack):
    import ipaddress

    from infra.program.components.egress import egress_subnet_cidrs

    config = planned(stack).config
    (policy,) = [p for p in k8s(stack, "networking.k8s.io/v1:NetworkPolicy")
                 if "Ingress" in p["inputs"]["spec"]["policyTypes"]]
    (rule,) = policy["inputs"]["spec"]["ingress"]
    sources = [ipaddress.ip_network(f["ipBlock"]["cidr"]) for f in rule["from"]]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    (service,) = k8s(stack, "core/v1:Service")
    assert [ipaddress.ip_network(c) for c in service["inputs"]["spec"]["loadBalancerSourceRanges"]] == sources
    connectors = egress_subnet_cidrs(config.vpc_cidr, len(config.geography.availability_zones))["connector"]
    assert sources and not [(s, c) for s in sources for c in connectors if s.overlaps(ipaddress.ip_network(c))]
    subnets = [ipaddress.ip_network(r["inputs"]["cidrBlock"]) for r in resources(stack, "aws:ec2/subnet:Subnet")
               if "private" in r["urn"]]
    assert sorted(sources) == sorted(subnets)


@pytest.mark.parametrize("stack", ["eu", "sg"])
def test_the_model_server_requires_an_api_key_kept_out_of_the_state(stack):
    (deployment,) = k8s(stack, "apps/v1:Deployment")
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    (key,) = [e for e in container["env"] if e["name"] == "VLLM_API_KEY"]
    assert key == {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "vllm-api-key", "key": "api-key",
                                                                          "optional": False}}}
    assert k8s(stack, "core/v1:Secret") == []  # made out of band: the state holds no key


# --- Pod Identity trusts and connector secrets ---------------------------------------------------

@pytest.mark.parametrize("stack", ["eu", "us", "sg"])
def test_pod_identity_roles_trust_only_their_service_account_on_the_stacks_cluster(stack):
    plan = planned(stack).export["deployment"]["resources"]
    associations = {(r["inputs"]["namespace"], r["inputs"]["serviceAccount"]): r["inputs"]["roleArn"]
                    for r in plan if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation"}
    roles = {r["outputs"]["arn"]: json.loads(r["inputs"]["assumeRolePolicy"]) for r in plan if r["type"] == "aws:iam/role:Role"}
    (cluster,) = [r["outputs"]["name"] for r in plan if r["type"] == "aws:eks/cluster:Cluster"]
    assert associations
    for (namespace, account), role_arn in associations.items():
        trust = roles[role_arn]
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        tags = {"aws:RequestTag/eks-cluster-name": cluster, "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": account}
        source = statement["Condition"]["StringEquals"]["aws:SourceAccount"]
        context = {**tags, "aws:SourceAccount": source}
        check = {"Statement": [{**statement, "Resource": "*"}]}
        assert allowed(check, "sts:AssumeRole", "*", context)
        for key, other in (("aws:RequestTag/kubernetes-service-account", "intruder"),
                           ("aws:RequestTag/kubernetes-namespace", "default"),
                           ("aws:RequestTag/eks-cluster-name", "another-cluster"), ("aws:SourceAccount", FOREIGN)):
            assert not allowed(check, "sts:AssumeRole", "*", {**context, key: other}), (role_arn, key)


@pytest.mark.parametrize("stack", ["eu", "us"])
def test_only_its_connector_role_reads_a_connector_secret(stack):
    plan = planned(stack).export["deployment"]["resources"]
    secrets = [r for r in plan if r["type"] == "aws:secretsmanager/secret:Secret"]
    policies = {r["inputs"]["secretArn"]: r["inputs"] for r in plan if r["type"] == "aws:secretsmanager/secretPolicy:SecretPolicy"}
    assert secrets and len(policies) == len(secrets)
    roles = {r["urn"].rsplit("::", 1)[-1]: r["outputs"]["arn"] for r in plan if r["type"] == "aws:iam/role:Role"}
    for secret in secrets:
        arn = secret["outputs"]["arn"]
        policy = json.loads(policies[arn]["policy"])
        assert policies[arn]["blockPublicPolicy"] is True
        own_role = roles[secret["urn"].rsplit("::", 1)[-1]]  # the secret and its role share the logical name
        assert evaluate(policy, "secretsmanager:GetSecretValue", arn, {"aws:PrincipalArn": own_role}) != DENY
        for other in [r for r in roles.values() if r != own_role] + [f"arn:aws:iam::{ACCOUNT}:role/Admin"]:
            assert evaluate(policy, "secretsmanager:GetSecretValue", arn, {"aws:PrincipalArn": other}) == DENY
