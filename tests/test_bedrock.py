"""ZM+ `BedrockAccess` on the synthesized `eu` and `us` stacks, plus its config errors.

Expected ARNs are spelled out here from the residency facts, not recomputed with the code under
test; the role policy is also run through infra/engine/iam_eval.py to check what it actually permits.
"""

from __future__ import annotations

import copy
import json

import pytest

from infra import cli
from infra.program.config import ConfigError, parse_config
from infra.engine.iam_eval import ALLOW, DENY, IMPLICIT_DENY, evaluate
from infra.engine.loaders import snapshot_from_document
from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT
from infra.harness.synth import MOCK_ACCOUNT
from stack_plans import ZMO_ONLY, of_type, planned, values_with

ACCOUNT = MOCK_ACCOUNT
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
EU_REGIONS = ["eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-3"]
US_PROFILE_REGIONS = ["us-east-1", "us-east-2", "us-west-2"]
INVOKE = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
COMPONENT = "ai-companion:zm_plus:BedrockAccess"

@pytest.fixture(autouse=True)
def repo_stack_files(monkeypatch):
    # These tests read the repo's own stack files, whatever an earlier test left in the environment.
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)


def eu_profile(model_id, source="eu-central-1"):
    return f"arn:aws:bedrock:{source}:{ACCOUNT}:inference-profile/eu.{model_id}"


def fm(region, model_id):
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


EXPECTED_ARNS = {
    "eu": {eu_profile(SONNET), eu_profile(HAIKU)} | {fm(r, m) for r in EU_REGIONS for m in (SONNET, HAIKU)},
    "us": {f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET}", fm("us-east-1", HAIKU)}
          | {fm(r, SONNET) for r in US_PROFILE_REGIONS},
}


def one(plan, type_, name=None):
    found = [r for r in of_type(plan, type_) if r.option == "zm_plus" and (name is None or r.name == name)]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def role_policy(plan) -> dict:
    return json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", "bedrock-invoke").inputs["policy"])


def guardrail_id(plan) -> tuple[str, str]:
    arn = one(plan, "aws:bedrock/guardrail:Guardrail").outputs["guardrailArn"]
    return arn, f"{arn}:{one(plan, 'aws:bedrock/guardrailVersion:GuardrailVersion').outputs['version']}"


def as_list(v):
    return v if isinstance(v, list) else [v]


# --- the invoke policy -------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["eu", "us"])
def test_invoke_policy_allows_exactly_the_configured_arns(stack):
    policy = role_policy(planned(stack))
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow" and set(as_list(s["Action"])) & INVOKE]
    granted = {r for s in allows for r in as_list(s["Resource"])}
    assert granted == EXPECTED_ARNS[stack]
    for s in allows:
        assert set(as_list(s["Action"])) == INVOKE
        assert "NotAction" not in s and "NotResource" not in s


def test_eu_destination_arns_are_conditioned_on_their_profile():
    policy = role_policy(planned("eu"))
    for model in (SONNET, HAIKU):
        [s] = [s for s in policy["Statement"] if s["Effect"] == "Allow" and fm("eu-west-3", model) in as_list(s["Resource"])]
        assert sorted(s["Resource"]) == sorted(fm(r, model) for r in EU_REGIONS)
        assert s["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"] == eu_profile(model)


@pytest.mark.parametrize("stack", ["eu", "us"])
def test_every_allow_names_the_guardrail_and_nothing_uses_a_bare_wildcard(stack):
    plan = planned(stack)
    policy = role_policy(plan)
    arn, identifier = guardrail_id(plan)
    assert identifier.endswith(":1")
    for s in policy["Statement"]:
        assert "*" not in as_list(s.get("Resource")) and "*" not in as_list(s.get("Action"))
        assert not any(a.endswith(":*") or a == "bedrock:*" for a in as_list(s.get("Action")))
        if s["Effect"] == "Allow":
            assert not any("*" in r for r in as_list(s["Resource"])), s["Sid"]
            if set(as_list(s["Action"])) & INVOKE:
                assert s["Condition"]["StringEquals"]["bedrock:GuardrailIdentifier"] == identifier
            else:
                assert s["Action"] == "bedrock:ApplyGuardrail" and s["Resource"] == arn


def test_explicit_deny_statements():
    plan = planned("eu")
    _, identifier = guardrail_id(plan)
    denies = {s["Sid"]: s for s in role_policy(plan)["Statement"] if s["Effect"] == "Deny"}
    assert set(denies) == {"DenyWithoutStackGuardrail", "DenyGlobalProfiles", "DenyOtherProfiles",
                           "DenyModelsOutsideGeography", "DenyRequestedRegionOutsideGeography"}
    assert denies["DenyWithoutStackGuardrail"]["Condition"] == {"StringNotEquals": {"bedrock:GuardrailIdentifier": identifier}}
    assert denies["DenyGlobalProfiles"]["Resource"] == ["arn:*:bedrock:*:*:inference-profile/global.*",
                                                        "arn:*:bedrock:::foundation-model/*"]
    assert denies["DenyOtherProfiles"]["Condition"] == {
        "Null": {"bedrock:InferenceProfileArn": "false"},
        "ArnNotLike": {"bedrock:InferenceProfileArn": f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/eu.*"}}
    assert sorted(denies["DenyModelsOutsideGeography"]["NotResource"]) == sorted(
        [f"arn:aws:bedrock:{r}::foundation-model/*" for r in EU_REGIONS]
        + [f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/eu.*"])
    assert sorted(denies["DenyRequestedRegionOutsideGeography"]["Condition"]["StringNotEquals"]["aws:RequestedRegion"]) == EU_REGIONS


# --- what the role policy permits, evaluated ---------------------------------------------------

@pytest.fixture
def eu_eval():
    plan = planned("eu")
    policy, (_, identifier) = role_policy(plan), guardrail_id(plan)

    def decide(resource, region, profile=None, guardrail=identifier, action="bedrock:InvokeModel"):
        ctx = {"aws:RequestedRegion": region}
        if profile:
            ctx["bedrock:InferenceProfileArn"] = profile
        if guardrail:
            ctx["bedrock:GuardrailIdentifier"] = guardrail
        return evaluate(policy, action, resource, ctx)

    return decide, identifier


def test_eu_profile_invoke_is_allowed_in_each_destination(eu_eval):
    decide, _ = eu_eval
    assert decide(eu_profile(SONNET), "eu-central-1") == ALLOW
    for region in EU_REGIONS:
        for action in INVOKE:
            assert decide(fm(region, SONNET), region, eu_profile(SONNET), action=action) == ALLOW, region


def test_other_geography_global_and_foreign_arns_are_denied(eu_eval):
    decide, _ = eu_eval
    us_profile = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET}"
    global_profile = eu_profile(SONNET).replace("/eu.", "/global.")
    assert decide(us_profile, "us-east-1") == DENY
    assert decide(fm("us-east-2", SONNET), "us-east-2", us_profile) == DENY
    assert decide(global_profile, "eu-central-1") == DENY
    assert decide(f"arn:aws:bedrock:::foundation-model/{SONNET}", "unspecified", global_profile) == DENY
    assert decide(fm("eu-west-1", SONNET), "eu-west-1", global_profile) == DENY
    # London and Zurich are not EU; the EU profile from a non-home source region is refused too.
    assert decide(fm("eu-west-2", SONNET), "eu-west-2", eu_profile(SONNET)) == DENY
    assert decide(eu_profile(SONNET, "eu-west-2"), "eu-west-2") == DENY


def test_guardrail_is_required(eu_eval):
    decide, identifier = eu_eval
    assert decide(eu_profile(SONNET), "eu-central-1", guardrail=None) == DENY
    assert decide(fm("eu-west-3", SONNET), "eu-west-3", eu_profile(SONNET), guardrail=None) == DENY
    assert decide(eu_profile(SONNET), "eu-central-1", guardrail=identifier[:-1] + "2") == DENY


def test_destination_models_are_not_invocable_directly(eu_eval):
    decide, _ = eu_eval
    assert decide(fm("eu-west-3", SONNET), "eu-west-3") == IMPLICIT_DENY
    assert decide(fm("eu-central-1", "anthropic.claude-opus-4-5-20251101-v1:0"), "eu-central-1",
                  eu_profile("anthropic.claude-opus-4-5-20251101-v1:0")) == IMPLICIT_DENY


def test_us_in_region_model_is_invocable_only_in_the_home_region():
    plan = planned("us")
    policy, (_, identifier) = role_policy(plan), guardrail_id(plan)
    ctx = {"aws:RequestedRegion": "us-east-1", "bedrock:GuardrailIdentifier": identifier}
    assert evaluate(policy, "bedrock:InvokeModel", fm("us-east-1", HAIKU), ctx) == ALLOW
    assert evaluate(policy, "bedrock:InvokeModel", fm("us-west-2", HAIKU), {**ctx, "aws:RequestedRegion": "us-west-2"}) == IMPLICIT_DENY
    eu = {**ctx, "aws:RequestedRegion": "eu-central-1"}
    assert evaluate(policy, "bedrock:InvokeModel", fm("eu-central-1", HAIKU), eu) == DENY


# --- identity, endpoint, logging, guardrail ----------------------------------------------------

@pytest.mark.parametrize("stack", ["eu", "us"])
def test_workload_role_is_pod_identity_for_the_gateway(stack):
    plan = planned(stack)
    role = one(plan, "aws:iam/role:Role", "bedrock-gateway")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "pods.eks.amazonaws.com"}]
    assoc = one(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == ("model-serving", "gateway")
    assert assoc.inputs["roleArn"] == role.outputs["arn"]
    assert assoc.inputs["clusterName"] == of_type(plan, "aws:eks/cluster:Cluster")[0].outputs["name"]


@pytest.mark.parametrize("stack, home", [("eu", "eu-central-1"), ("us", "us-east-1")])
def test_bedrock_runtime_endpoint(stack, home):
    plan = planned(stack)
    endpoint = one(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{home}.bedrock-runtime"
    assert endpoint.region == home and "serviceRegion" not in endpoint.inputs
    assert endpoint.inputs["vpcEndpointType"] == "Interface" and endpoint.inputs["privateDnsEnabled"] is True
    subnets = sorted(s.id for s in of_type(plan, "aws:ec2/subnet:Subnet") if s.name.startswith("net-private-"))
    assert sorted(endpoint.inputs["subnetIds"]) == subnets
    [sg] = [g for g in of_type(plan, "aws:ec2/securityGroup:SecurityGroup") if g.name == "net-endpoints"]
    assert endpoint.inputs["securityGroupIds"] == [sg.id]
    assert endpoint.inputs["vpcId"] == of_type(plan, "aws:ec2/vpc:Vpc")[0].id

    role_arn = one(plan, "aws:iam/role:Role", "bedrock-gateway").outputs["arn"]
    arn, _ = guardrail_id(plan)
    policy = json.loads(endpoint.inputs["policy"])
    assert all(s["Effect"] == "Allow" and s["Principal"] == {"AWS": [role_arn]} for s in policy["Statement"])
    invoke = [s for s in policy["Statement"] if set(as_list(s["Action"])) == INVOKE]
    assert len(invoke) == 1 and set(invoke[0]["Resource"]) == EXPECTED_ARNS[stack]
    others = [s for s in policy["Statement"] if s not in invoke]
    assert [(s["Action"], s["Resource"]) for s in others] == [("bedrock:ApplyGuardrail", arn)]


@pytest.mark.parametrize("stack, home", [("eu", "eu-central-1"), ("us", "us-east-1")])
def test_invocation_logging_stays_in_the_home_region(stack, home):
    plan = planned(stack)
    logging = one(plan, "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration")
    bucket = one(plan, "aws:s3/bucket:Bucket")
    group = one(plan, "aws:cloudwatch/logGroup:LogGroup")
    (key,) = of_type(plan, "aws:kms/key:Key")  # the stack's one in-region key
    config = logging.inputs["loggingConfig"]
    assert config["s3Config"]["bucketName"] == bucket.id
    assert config["cloudwatchConfig"]["logGroupName"] == group.outputs["name"]
    assert config["cloudwatchConfig"]["largeDataDeliveryS3Config"]["bucketName"] == bucket.id
    for res in (logging, bucket, group, key):
        assert res.region == home, res.type
    assert bucket.protect and group.protect and key.protect
    assert key.inputs["multiRegion"] is False and key.outputs["arn"].startswith(f"arn:aws:kms:{home}:")
    [kms] = [s for s in json.loads(key.inputs["policy"])["Statement"] if s.get("Sid") == "BedrockInvocationLogs"]
    assert kms["Principal"] == {"Service": "bedrock.amazonaws.com"} and kms["Action"] == "kms:GenerateDataKey"
    assert kms["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:bedrock:{home}:{ACCOUNT}:*"}
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    [rule] = one(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}
    assert one(plan, "aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    block = one(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    # Bedrock's grant, then the stack's data perimeter (tests/test_data_perimeter.py).
    grant, *perimeter = json.loads(one(plan, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert all(s["Effect"] == "Deny" for s in perimeter)
    assert grant["Principal"] == {"Service": "bedrock.amazonaws.com"} and grant["Action"] == "s3:PutObject"
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{home}:{ACCOUNT}:*"}}
    role = [r for r in of_type(plan, "aws:iam/role:Role") if r.outputs["arn"] == config["cloudwatchConfig"]["roleArn"]]
    assert [s["Principal"] for s in json.loads(role[0].inputs["assumeRolePolicy"])["Statement"]] == [{"Service": "bedrock.amazonaws.com"}]


@pytest.mark.parametrize("stack, home", [("eu", "eu-central-1"), ("us", "us-east-1")])
def test_guardrail_has_no_cross_region_profile(stack, home):
    plan = planned(stack)
    guardrail = one(plan, "aws:bedrock/guardrail:Guardrail")
    assert guardrail.region == home
    assert "crossRegionConfig" not in guardrail.inputs and "crossRegionConfig" not in guardrail.outputs
    assert "tierConfigs" not in guardrail.inputs["contentPolicyConfig"]  # STANDARD tier needs cross-Region
    version = one(plan, "aws:bedrock/guardrailVersion:GuardrailVersion")
    assert version.inputs["guardrailArn"] == guardrail.outputs["guardrailArn"]


@pytest.mark.parametrize("stack", ZMO_ONLY)
def test_stacks_without_zm_plus_register_no_bedrock_access(stack):
    plan = planned(stack)
    assert not [r for r in plan.snapshot.resources if r.type == COMPONENT or r.type.startswith(("aws:bedrock", "aws:bedrockmodel"))]
    (key,) = of_type(plan, "aws:kms/key:Key")
    assert "bedrock.amazonaws.com" not in key.inputs["policy"]


# --- the residency rules on bad variants -------------------------------------------------------

def _variant(stack, edit) -> object:
    """The stack's export with the workload policy edited, read back like an audit would."""
    plan = planned(stack)
    export = copy.deepcopy(plan.export)
    for entry in export["deployment"]["resources"]:
        if entry["type"] == "aws:iam/rolePolicy:RolePolicy" and entry["urn"].endswith("::bedrock-invoke"):
            for side in ("inputs", "outputs"):
                doc = json.loads(entry[side]["policy"])
                edit(doc)
                entry[side]["policy"] = json.dumps(doc)
    return snapshot_from_document(export, stack=stack, default_region=plan.config.region, source="export")


def _rule_findings(snapshot, stack):
    """Findings of the residency rules (infra/engine/rules, one rule set) on ZM+ resources."""
    from infra.engine import rules  # the project's own engine: an import error is a failure, never a skip

    report = rules.evaluate(snapshot, rules.Context.from_config(planned(stack).config))
    return [f for f in report.findings if f"{COMPONENT}$" in f.urn]


@pytest.mark.parametrize("stack", ["eu", "us"])
def test_residency_rules_accept_the_real_policies(stack):
    # Includes the Deny statements' wildcards (`arn:*:bedrock:*:*:inference-profile/global.*` ...).
    assert _rule_findings(planned(stack).snapshot, stack) == []


@pytest.mark.parametrize("bad, expected", [
    ({"Sid": "Wide", "Effect": "Allow", "Action": ["bedrock:InvokeModel"], "Resource": "*"}, "Resource '*'"),
    ({"Sid": "Foreign", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
      "Resource": [f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"]}, "us-east-1 is outside EU"),
    ({"Sid": "UsProfile", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
      "Resource": [f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/us.{SONNET}"]}, "not EU"),
], ids=["resource-star", "foreign-model-arn", "us-profile"])
def test_residency_rules_reject_bad_invoke_policies(bad, expected):
    findings = _rule_findings(_variant("eu", lambda doc: doc["Statement"].append(bad)), "eu")
    assert any(f.urn.endswith("::bedrock-invoke") and expected in f.message for f in findings), findings


# --- config errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("models, message", [
    ([f"global.{SONNET}"], "global profiles are never allowed"),
    ([f"us.{SONNET}"], "uses the 'us.' profile of US, not EU"),
    (["claude-3-opus"], "'claude-3-opus' is not in the EU catalog; did you mean 'claude-opus-4-5'?; allowed: claude-sonnet-4-5"),
])
def test_bad_eu_models_are_config_errors(models, message):
    values = values_with("eu", zmPlus=json.dumps({"models": models}))
    with pytest.raises(ConfigError) as err:
        parse_config(values, "eu")
    assert message in str(err.value)


def test_zm_plus_where_the_matrix_says_no_is_a_config_error():
    values = values_with("sg", options=json.dumps(["zmo", "zm_plus"]), zmPlus=json.dumps({"models": ["claude-sonnet-4-5"]}))
    with pytest.raises(ConfigError) as err:
        parse_config(values, "sg")
    assert "'zm_plus' is not offered in SG; allowed: zmo" in str(err.value)


@pytest.fixture
def project_with(tmp_path, monkeypatch):
    """A project dir holding Pulumi.yaml plus one stack file, for CLI-level config errors."""
    def make(stack, body):
        (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(body)
        monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path))
        monkeypatch.setattr(cli, "COMMANDS", {"scp": "infra.commands.scp", "models": "infra.commands.bedrock_drift"})
    return make


@pytest.mark.parametrize("command", ["scp", "models"])
@pytest.mark.parametrize("stack, body, message", [
    ("eu", "config:\n  aws:region: eu-central-1\n  ai-companion:accountId: \"111111111111\"\n  ai-companion:geography: EU\n"
           "  ai-companion:options: [zmo, zm_plus]\n  ai-companion:zmPlus:\n    models: [us.anthropic.claude-sonnet-4-5-20250929-v1:0]\n",
     "'us.' profile of US"),
    ("eu", "config:\n  aws:region: eu-central-1\n  ai-companion:accountId: \"111111111111\"\n  ai-companion:geography: EU\n"
           "  ai-companion:options: [zmo, zm_plus]\n  ai-companion:zmPlus:\n    models: [global.anthropic.claude-sonnet-4-5-20250929-v1:0]\n",
     "global profiles are never allowed"),
    ("sg", "config:\n  aws:region: ap-southeast-1\n  ai-companion:accountId: \"111111111111\"\n  ai-companion:geography: SG\n"
           "  ai-companion:options: [zmo, zm_plus]\n  ai-companion:zmPlus:\n    models: [claude-sonnet-4-5]\n",
     "'zm_plus' is not offered in SG"),
])
def test_cli_exits_2_on_bad_zm_plus_config(project_with, capsys, command, stack, body, message):
    project_with(stack, body)
    assert cli.main([command, "--stack", stack]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
