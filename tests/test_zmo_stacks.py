"""What the program really registers for the ZMO base, on every stack file."""

from __future__ import annotations

import json

import pytest

from infra.harness.synth import synthesize
from stack_plans import STACKS, ZMO_ONLY, of_type, planned

INTERNET_TYPES = {
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:networkfirewall/firewall:Firewall",
}


def test_every_geography_of_the_matrix_has_a_stack_file():
    assert STACKS == sorted(["us", "eu", "sg", "ksa", "au", "in", "ca"])


@pytest.mark.parametrize("stack", ZMO_ONLY)
def test_zmo_only_stacks_open_no_internet_path(stack):
    plan = planned(stack)
    assert plan.config.options == ("zmo",)
    assert not [r.name for r in plan.snapshot.resources if r.type in INTERNET_TYPES]
    for subnet in of_type(plan, "aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    for route in of_type(plan, "aws:ec2/route:Route"):
        pytest.fail(f"unexpected route {route.name}")
    for table in of_type(plan, "aws:ec2/routeTable:RouteTable"):
        assert not table.inputs.get("routes")


@pytest.mark.parametrize("stack", STACKS)
def test_every_vpc_endpoint_is_in_the_home_region(stack):
    plan = planned(stack)
    endpoints = of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) >= 10
    for endpoint in endpoints:
        assert endpoint.inputs["serviceName"].startswith(f"com.amazonaws.{plan.config.region}.")
        assert "serviceRegion" not in endpoint.inputs
    services = {e.inputs["serviceName"].split(".", 3)[3] for e in endpoints}
    # What a private EKS cluster needs (residency-facts.md §5).
    assert {"s3", "ecr.api", "ecr.dkr", "ec2", "sts", "eks", "eks-auth", "elasticloadbalancing", "logs"} <= services
    gateway = [e for e in endpoints if e.inputs.get("vpcEndpointType") == "Gateway"]
    assert [g.inputs["serviceName"] for g in gateway] == [f"com.amazonaws.{plan.config.region}.s3"]


@pytest.mark.parametrize("stack", STACKS)
def test_private_subnets_span_the_catalogued_zones(stack):
    plan = planned(stack)
    serving = [s for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("net-private-")]
    assert sorted(s.inputs["availabilityZone"] for s in serving) == sorted(plan.config.geography.availability_zones)
    assert len(serving) >= 3


@pytest.mark.parametrize("stack", STACKS)
def test_eks_api_endpoint_is_private_only(stack):
    (cluster,) = of_type(planned(stack), "aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert cluster.region == planned(stack).config.region


@pytest.mark.parametrize("stack", STACKS)
def test_weights_bucket_is_protected_versioned_kms_encrypted_and_private(stack):
    plan = planned(stack)
    # By name: ZM+ adds an invocation-log bucket, and registration order is not deterministic.
    (bucket,) = [b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights"]
    assert bucket.protect
    (key,) = of_type(plan, "aws:kms/key:Key")
    assert key.protect and key.inputs["multiRegion"] is False and key.inputs["enableKeyRotation"] is True
    assert key.outputs["arn"].startswith(f"arn:aws:kms:{plan.config.region}:")

    def for_bucket(type_):
        return [r for r in of_type(plan, type_) if r.inputs.get("bucket") == bucket.outputs["bucket"]]

    (sse,) = for_bucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    default = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}
    (versioning,) = for_bucket("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (block,) = for_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


@pytest.mark.parametrize("stack", STACKS)
def test_stateful_resources_are_protected(stack):
    plan = planned(stack)
    stateful = [r for r in plan.snapshot.resources
                if r.type in ("aws:kms/key:Key", "aws:cloudwatch/logGroup:LogGroup", "aws:s3/bucket:Bucket",
                              "aws:secretsmanager/secret:Secret")]
    assert stateful and not [r.name for r in stateful if not r.protect]


@pytest.mark.parametrize("stack", STACKS)
def test_flow_logs_go_to_an_in_region_kms_encrypted_log_group(stack):
    plan = planned(stack)
    (flow,) = of_type(plan, "aws:ec2/flowLog:FlowLog")
    (key,) = of_type(plan, "aws:kms/key:Key")
    group = next(g for g in of_type(plan, "aws:cloudwatch/logGroup:LogGroup") if g.outputs["arn"] == flow.inputs["logDestination"])
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert group.outputs["arn"].startswith(f"arn:aws:logs:{plan.config.region}:")
    assert flow.inputs["trafficType"] == "ALL"


@pytest.mark.parametrize("stack", STACKS)
def test_no_resource_uses_the_default_provider(stack):
    plan = planned(stack)
    providers = of_type(plan, "pulumi:providers:aws")
    assert len(providers) == 1
    (provider,) = providers
    assert provider.inputs["region"] == plan.config.region
    ref = f"{provider.urn}::{provider.id}"
    aws_resources = [r for r in plan.snapshot.custom_resources() if r.type.startswith("aws:")]
    assert aws_resources
    assert [r.name for r in aws_resources if r.provider != ref] == []
    assert {r.region for r in aws_resources} == {plan.config.region}


def test_a_child_without_parent_falls_back_to_the_default_provider_and_is_seen():
    """The pitfall the test above guards against: a child created without parent=self."""
    import pulumi
    import pulumi_aws as aws

    from stacks.program import build

    class Leaky(pulumi.ComponentResource):
        def __init__(self, name, opts=None):
            super().__init__("ai-companion:zmo:Leaky", name, None, opts)
            aws.s3.Bucket(f"{name}-orphan")  # no parent=self: the default provider and region

    def program(cfg):
        outputs = build(cfg)
        Leaky("leaky", opts=pulumi.ResourceOptions(providers={"aws": aws.Provider("other", region=cfg.region)}))
        return outputs

    plan = synthesize("sg", program=program)
    orphan = next(r for r in plan.snapshot.resources if r.name == "leaky-orphan")
    assert orphan.provider is None
    assert orphan.region_source == "config"


@pytest.mark.parametrize("stack", STACKS)
def test_provider_default_tags_record_geography_options_and_stack(stack):
    plan = planned(stack)
    (provider,) = of_type(plan, "pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "ai-companion:geography": plan.config.geography.code,
        "ai-companion:options": "+".join(plan.config.options),
        "ai-companion:stack": stack,
    }


def test_ecr_repository_is_in_region_and_kms_encrypted():
    plan = planned("ksa")
    (repo,) = of_type(plan, "aws:ecr/repository:Repository")
    (key,) = of_type(plan, "aws:kms/key:Key")
    assert repo.outputs["repositoryUrl"].startswith("123456789012.dkr.ecr.me-west-1.amazonaws.com/")
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.outputs["arn"]}]
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"


def test_workload_identity_reads_only_the_weights_bucket():
    plan = planned("au")
    (bucket,) = [b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights"]
    role = next(r for r in of_type(plan, "aws:iam/role:Role") if r.name == "serving-vllm")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    policy = next(p for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if p.name == "serving-vllm-weights")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    resources = {s["Action"]: s["Resource"] for s in statements}
    arn = bucket.outputs["arn"]
    assert resources["s3:ListBucket"] == arn and resources["s3:GetObject"] == f"{arn}/*"
    assert all("*" != s["Resource"] for s in statements)
    (assoc,) = of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")[:1]
    assert assoc.inputs["serviceAccount"] == "vllm" and assoc.inputs["namespace"] == "model-serving"
    assert assoc.inputs["roleArn"] == role.outputs["arn"]


@pytest.mark.parametrize("stack", ["sg", "eu"])
def test_stack_key_policy_lets_only_in_region_services_use_it(stack):
    plan = planned(stack)
    (key,) = of_type(plan, "aws:kms/key:Key")
    region = plan.config.region
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    logs = statements["RegionalLogsUse"]
    assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == f"arn:aws:logs:{region}:123456789012:*"
    services = {s["Principal"].get("Service") for s in statements.values() if "Service" in s["Principal"]}
    # Bedrock may write encrypted invocation logs only in stacks that enable zm_plus.
    assert ("bedrock.amazonaws.com" in services) == plan.config.has("zm_plus")
    (alias,) = of_type(plan, "aws:kms/alias:Alias")
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]
