"""Rule classes 7-9 (issue #13) through the real program: each violation is injected into the EU
stack by a wrapper around stacks.program.build (real pulumi-aws resources under the real mocks)
and must be named by its rule; the program's own resources must stay quiet."""

import json

import pytest

from rules_kit import finding_names, plan_with

ACCOUNT = "123456789012"
NEW_RULES = {f"RSD-0{n}" for n in range(55, 64)}


def with_issue13_violations(cfg):
    import pulumi
    import pulumi_aws as aws

    from stacks.program import build

    out = build(cfg)
    on = pulumi.ResourceOptions(provider=aws.Provider("inj13-home", region=cfg.region))
    role = f"arn:aws:iam::{ACCOUNT}:role/inj"
    # class 7: delivery to hosts outside AWS
    aws.sns.TopicSubscription("inj-webhook", topic=f"arn:aws:sns:{cfg.region}:{ACCOUNT}:alerts", protocol="https",
                              endpoint="https://hooks.example.com/ingest", opts=on)
    aws.apigateway.Integration("inj-http-integration", rest_api="api1", resource_id="res1", http_method="POST",
                               type="HTTP_PROXY", integration_http_method="POST",
                               uri="https://partner.example.net/v1/score", opts=on)
    aws.ecs.TaskDefinition("inj-dockerhub-image", family="inj", container_definitions=json.dumps([
        {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "essential": True, "memory": 512}]), opts=on)
    # class 8: global and multi-Region constructs
    aws.elasticache.GlobalReplicationGroup("inj-global-datastore", global_replication_group_id_suffix="cache",
                                           primary_replication_group_id="primary", opts=on)
    aws.rds.Cluster("inj-aurora-global-member", engine="aurora-postgresql", global_cluster_identifier="global-db",
                    skip_final_snapshot=True, opts=on)
    aws.s3.BucketAccelerateConfiguration("inj-transfer-acceleration", bucket=out["weightsBucket"], status="Enabled",
                                         opts=on)
    # class 9: public exposure
    aws.s3.BucketPolicy("inj-public-policy", bucket=out["weightsBucket"], policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::weights/*"}]}), opts=on)
    aws.lambda_.Permission("inj-public-invoke", action="lambda:InvokeFunction", function="fn", principal="*", opts=on)
    aws.s3.BucketAcl("inj-public-acl", bucket=out["weightsBucket"], acl="public-read", opts=on)
    aws.s3.AccountPublicAccessBlock("inj-account-pab", block_public_acls=True, opts=on)
    aws.ec2.AmiLaunchPermission("inj-public-ami", image_id="ami-0123", group="all", opts=on)
    aws.sagemaker.NotebookInstance("inj-notebook", role_arn=role, instance_type="ml.t3.medium", opts=on)
    aws.opensearch.Domain("inj-public-search", domain_name="search", opts=on)
    aws.ec2.LaunchConfiguration("inj-launch-config", image_id="ami-0123", instance_type="t3.micro",
                                associate_public_ip_address=True, opts=on)
    return out


@pytest.fixture(scope="module")
def injected():
    return plan_with("eu", with_issue13_violations)


@pytest.mark.parametrize("rule,name", [
    ("RSD-055", "inj-webhook"),
    ("RSD-055", "inj-http-integration"),
    ("RSD-055", "inj-dockerhub-image"),
    ("RSD-056", "inj-global-datastore"),
    ("RSD-056", "inj-aurora-global-member"),
    ("RSD-056", "inj-transfer-acceleration"),
    ("RSD-057", "inj-public-policy"),
    ("RSD-058", "inj-public-invoke"),
    ("RSD-059", "inj-public-acl"),
    ("RSD-060", "inj-account-pab"),
    ("RSD-061", "inj-public-ami"),
    ("RSD-062", "inj-notebook"),
    ("RSD-063", "inj-public-search"),
    ("RSD-022", "inj-launch-config"),
])
def test_injected_violation_is_named_by_its_rule(injected, rule, name):
    _, report = injected
    assert name in finding_names(report, rule), [(f.rule, f.message) for f in report.findings if name in f.urn]


def test_the_programs_own_resources_stay_quiet_under_the_new_rules(injected):
    plan, report = injected
    flagged = {f.urn.rsplit("::", 1)[-1] for f in report.findings if f.rule in NEW_RULES}
    assert flagged and all(n.startswith("inj") for n in flagged), flagged


def test_messages_name_the_destination(injected):
    _, report = injected
    messages = [f.message for f in report.findings if f.rule == "RSD-055"]
    assert any("hooks.example.com is outside AWS" in m for m in messages)
    assert any("registry-1.docker.io" in m and "image" in m for m in messages)
