"""The rule set against the real program: every stack file is clean; injected violations, made
through the real program (a wrapper around stacks.program.build) and the real config, are named by
the rule of their class; CrossGuard reaches the same verdict as `residency plan`."""

import json

import pytest

from infra.program.config import ConfigError
from infra.engine.model import STACK_TYPE
from infra.engine.rules import Context, evaluate
from rules_kit import ctx, finding_names, plan_with
from stack_plans import STACKS, planned, values_with

ACCOUNT = "123456789012"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_plans_with_zero_findings(stack):
    plan = planned(stack)
    report = evaluate(plan.snapshot, Context.from_config(plan.config))
    assert report.findings == [], [(f.rule, f.urn, f.message) for f in report.findings]
    assert report.unplaced == []
    assert report.resources_checked == sum(1 for r in plan.snapshot.resources if r.custom)


def with_injections(cfg):
    """The real program plus one violating resource per rule class, on explicit providers."""
    import pulumi
    import pulumi_aws as aws

    from stacks.program import build

    out = build(cfg)
    home = aws.Provider("inject-home", region=cfg.region)
    liar = aws.Provider("eu-west-1", region="us-east-1")  # named like an EU region, deploys to us-east-1
    on_home = pulumi.ResourceOptions(provider=home)
    aws.s3.Bucket("inj-foreign-bucket", bucket="inj-foreign-bucket", opts=pulumi.ResourceOptions(provider=liar))
    aws.ec2.VpcEndpoint("inj-foreign-endpoint", vpc_id=out["vpcId"], service_name="com.amazonaws.us-east-1.s3",
                        vpc_endpoint_type="Gateway", opts=on_home)
    aws.ec2.InternetGateway("inj-igw", vpc_id=out["vpcId"], opts=on_home)
    aws.s3.BucketReplicationConfig(
        "inj-replication", bucket=out["weightsBucket"], role=f"arn:aws:iam::{ACCOUNT}:role/replication",
        rules=[{"id": "all", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::inj-foreign-bucket"}}],
        opts=on_home)
    aws.iam.RolePolicy("inj-bedrock-star", role="serving-vllm", policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "*"}]}), opts=on_home)
    aws.networkfirewall.RuleGroup(
        "inj-allow-list", capacity=10, type="STATEFUL", tags={"ai-companion:path": "federated-egress"},
        rule_group={"rules_source": {"rules_source_list": {
            "generated_rules_type": "ALLOWLIST", "target_types": ["TLS_SNI"], "targets": ["api.openai.com"]}}},
        opts=on_home)
    return out


@pytest.fixture(scope="module")
def injected():
    return plan_with("eu", with_injections)


@pytest.mark.parametrize("cls,rule,name", [
    ("1 placement", "RSD-001", "inj-foreign-bucket"),
    ("1 placement (misleading provider name)", "RSD-003", "eu-west-1"),
    ("2 references", "RSD-011", "inj-foreign-endpoint"),
    ("3 network", "RSD-020", "inj-igw"),
    ("4 replication", "RSD-030", "inj-replication"),
    ("5 bedrock", "RSD-041", "inj-bedrock-star"),
    ("6 federated", "RSD-051", "inj-allow-list"),
])
def test_injected_violation_is_named_by_its_rule(injected, cls, rule, name):
    _, report = injected
    assert name in finding_names(report, rule), f"class {cls}: {rule} did not name {name}"


def test_only_injected_resources_are_reported(injected):
    _, report = injected
    assert {f.urn.rsplit("::", 1)[-1] for f in report.findings} == {
        "inj-foreign-bucket", "eu-west-1", "inj-foreign-endpoint", "inj-igw", "inj-replication",
        "inj-bedrock-star", "inj-allow-list"}


# --- the real program judged under stricter config: rules of classes 1, 3, 5, 6 -----------------

def test_eu_state_judged_as_us_is_outside_everywhere():
    report = evaluate(planned("eu").snapshot, ctx("US", allow_global=True))
    placed = {r.urn for r in planned("eu").snapshot.resources if r.region}
    assert {f.urn for f in report.findings if f.rule in ("RSD-001", "RSD-003")} == placed


def test_real_bedrock_resources_without_zm_plus_are_named():
    report = evaluate(planned("eu").snapshot, ctx("EU", options=("zmo", "federated")))
    bedrock = {r.urn for r in planned("eu").snapshot.resources if r.option == "zm_plus" and r.custom}
    assert bedrock and {f.urn for f in report.findings if f.rule == "RSD-040"} & bedrock


def test_real_egress_path_without_federated_is_named():
    report = evaluate(planned("eu").snapshot, ctx("EU", options=("zmo", "zm_plus")))
    assert finding_names(report, "RSD-050") and finding_names(report, "RSD-020") and finding_names(report, "RSD-021")


def test_real_us_allow_list_without_the_global_opt_in_is_named():
    report = evaluate(planned("us").snapshot, ctx("US", allow_global=False))
    assert finding_names(report, "RSD-053")


def test_config_refuses_global_connectors_without_the_opt_in(synth):
    values = values_with("us", federated=json.dumps({"connectors": ["openai", "anthropic"]}))
    with pytest.raises(ConfigError, match="allowGlobalProcessing"):
        synth("us", values)


def test_config_refuses_a_region_outside_the_geography(synth):
    with pytest.raises(ConfigError, match="outside geography EU"):
        synth("eu", values_with("eu", aws__region="us-east-1"))


# --- CrossGuard over the same graph reaches the same verdict -------------------------------------

def crossguard_findings(plan):
    from pulumi_policy import (PolicyCustomTimeouts, PolicyProviderResource, PolicyResource, PolicyResourceOptions,
                               ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs)

    from policy import policies as pack

    config = json.loads(pack.config_path(plan.stack).read_text())[pack.POLICY_NAMES[0]]
    by_ref = {f"{r.urn}::{r.id}": r for r in plan.snapshot.resources if r.type.startswith("pulumi:providers:")}

    def opts(parent):
        return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)

    def provider_of(r):
        if r.type.startswith("pulumi:providers:") or not r.custom:
            return None
        p = by_ref.get(r.provider)
        if p is None:  # default provider: the engine configures it from the stack config
            return PolicyProviderResource("pulumi:providers:aws", {},
                                          f"urn:pulumi:{plan.stack}::ai-companion::pulumi:providers:aws::default_7_51_1",
                                          "default_7_51_1")
        return PolicyProviderResource(p.type, p.inputs, p.urn, p.name)

    found = set()

    def report(message, urn=None):
        found.add((message.split("]", 1)[0].lstrip("["), urn))

    resources = [r for r in plan.snapshot.resources if r.type != STACK_TYPE]
    for policy in pack.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                policy.validate(ResourceValidationArgs(r.type, {**r.outputs, **r.inputs}, r.urn, r.name,
                                                       opts(r.parent), provider_of(r), config), report)
    # AnalyzeStack sees state outputs, which for bridged resources include `id`.
    stack_resources = [PolicyResource(r.type, {**r.outputs, **r.inputs, "id": r.id}, r.urn, r.name, opts(r.parent),
                                      provider_of(r), None, [], {}) for r in resources]
    pack.STACK_POLICY.validate(StackValidationArgs(stack_resources, config), report)
    return found


def test_crossguard_and_plan_agree_on_the_injected_stack(injected):
    plan, report = injected
    assert crossguard_findings(plan) == {(f.rule, f.urn) for f in report.findings}


def test_crossguard_is_quiet_on_a_clean_stack():
    assert crossguard_findings(planned("eu")) == set()


# --- RSD-045: the real program's invocation logging, removed or redirected in its export ----------

LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"


def edited_plan(stack, edit):
    """The stack's planned export with `edit(resources)` applied, re-read as a plan snapshot."""
    import copy
    from types import SimpleNamespace

    from infra.engine.loaders import snapshot_from_document

    plan = planned(stack)
    doc = copy.deepcopy(plan.export)
    doc["deployment"]["resources"] = edit(doc["deployment"]["resources"])
    snapshot = snapshot_from_document(doc, stack=stack, default_region=plan.config.region, source="plan")
    return SimpleNamespace(stack=stack, snapshot=snapshot, config=plan.config)


@pytest.mark.parametrize("stack", ["eu", "us"])
def test_zm_plus_plan_without_invocation_logging_is_named_by_plan_and_crossguard(stack):
    assert [r for r in planned(stack).snapshot.resources if r.type == LOGGING]
    plan = edited_plan(stack, lambda resources: [r for r in resources if r["type"] != LOGGING])
    report = evaluate(plan.snapshot, Context.from_config(plan.config))
    [f] = report.findings
    assert f.rule == "RSD-045" and f.urn == f"urn:pulumi:{stack}::ai-companion::{STACK_TYPE}::ai-companion-{stack}"
    assert plan.config.region in f.message
    assert crossguard_findings(plan) == {("RSD-045", None)}  # the pack's stack policy runs it too


def test_plan_logging_to_a_bucket_outside_the_stack_is_named():
    def redirect(resources):
        for r in resources:
            if r["type"] == LOGGING:
                for props in (r["inputs"], r.get("outputs", {})):
                    props["loggingConfig"]["s3Config"]["bucketName"] = "someone-elses-bucket"
        return resources

    plan = edited_plan("eu", redirect)
    report = evaluate(plan.snapshot, Context.from_config(plan.config))
    [f] = report.findings
    assert f.rule == "RSD-045" and f.urn.endswith("::bedrock-invocation-logging")
    assert f.message.startswith("loggingConfig.s3Config.bucketName: bucket someone-elses-bucket is not in this stack")
