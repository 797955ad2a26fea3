"""`residency scp`: the organization guardrail, evaluated with infra/engine/iam_eval.py.

An SCP only filters: the account's effective permissions are the SCP's Allow (FullAWSAccess, added
here) minus its Denies. "Allowed" below means "not denied by the SCP".
"""

from __future__ import annotations

import json

import pytest

from infra import cli
from infra.program.stackfiles import PROJECT_DIR_ENV
from infra.program.catalog import load_catalog
from infra.engine.iam_eval import ALLOW, DENY, evaluate, matching, Request
from infra.commands.scp import SCP_MAX_CHARS, scp_for_stack
from infra.program.scp_policy import build_scp

FULL_ACCESS = {"Effect": "Allow", "Action": "*", "Resource": "*"}
ACCOUNT = "123456789012"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
EU_PROFILE = f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/eu.{SONNET}"
GLOBAL_PROFILE = f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/global.{SONNET}"

@pytest.fixture(autouse=True)
def repo_stack_files(monkeypatch):
    # These tests read the repo's own stack files, whatever an earlier test left in the environment.
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)


def decide(scp, action, resource="*", **context):
    ctx = {k.replace("__", ":"): v for k, v in context.items()}
    return evaluate([scp, {"Statement": [FULL_ACCESS]}], action, resource, ctx)


@pytest.fixture
def eu():
    return scp_for_stack("eu")


def run_cli(argv, monkeypatch):
    # Only this command: the CLI imports every subcommand module, some owned by other work.
    monkeypatch.setattr(cli, "COMMANDS", {"scp": "infra.commands.scp"})
    return cli.main(argv)


def test_eu_profile_invoke_is_allowed_in_every_destination(eu):
    geo = load_catalog().by_stack("eu")
    assert decide(eu, "bedrock:InvokeModel", EU_PROFILE, aws__RequestedRegion="eu-central-1") == ALLOW
    for region in geo.zm_plus.models["claude-sonnet-4-5"].destinations:
        fm = f"arn:aws:bedrock:{region}::foundation-model/{SONNET}"
        assert decide(eu, "bedrock:InvokeModel", fm, aws__RequestedRegion=region,
                      bedrock__InferenceProfileArn=EU_PROFILE) == ALLOW, region
    assert decide(eu, "bedrock:InvokeModelWithResponseStream", f"arn:aws:bedrock:eu-west-3::foundation-model/{SONNET}",
                  aws__RequestedRegion="eu-west-3", bedrock__InferenceProfileArn=EU_PROFILE) == ALLOW


def test_global_profile_is_denied(eu):
    # The call on the profile itself, in the source region ...
    assert decide(eu, "bedrock:InvokeModel", GLOBAL_PROFILE, aws__RequestedRegion="eu-central-1") == DENY
    # ... the routed call on the region-less model ARN ...
    regionless = f"arn:aws:bedrock:::foundation-model/{SONNET}"
    assert decide(eu, "bedrock:InvokeModel", regionless, aws__RequestedRegion="unspecified",
                  bedrock__InferenceProfileArn=GLOBAL_PROFILE) == DENY
    # ... and a routed call that lands in an EU region is still refused by its profile.
    assert decide(eu, "bedrock:InvokeModel", f"arn:aws:bedrock:eu-west-1::foundation-model/{SONNET}",
                  aws__RequestedRegion="eu-west-1", bedrock__InferenceProfileArn=GLOBAL_PROFILE) == DENY
    # `unspecified` alone (no profile key) is denied by its own statement.
    hits = {s["Sid"] for s in matching([eu], Request("bedrock:InvokeModel", "*", {"aws:RequestedRegion": "unspecified"}))}
    assert "DenyUnspecifiedRegion" in hits


def test_other_geography_and_foreign_region_bedrock_calls_are_denied(eu):
    us_profile = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET}"
    assert decide(eu, "bedrock:InvokeModel", us_profile, aws__RequestedRegion="us-east-1") == DENY
    assert decide(eu, "bedrock:InvokeModel", f"arn:aws:bedrock:us-east-2::foundation-model/{SONNET}",
                  aws__RequestedRegion="us-east-2", bedrock__InferenceProfileArn=us_profile) == DENY
    # The EU profile called from London (a non-EU source region) is not the geography's profile.
    london = EU_PROFILE.replace("eu-central-1", "eu-west-2")
    assert decide(eu, "bedrock:InvokeModel", london, aws__RequestedRegion="eu-west-2",
                  bedrock__InferenceProfileArn=london) == DENY
    # Direct in-region invoke inside the EU is fine, outside it is not.
    assert decide(eu, "bedrock:InvokeModel", f"arn:aws:bedrock:eu-west-1::foundation-model/{SONNET}",
                  aws__RequestedRegion="eu-west-1") == ALLOW
    assert decide(eu, "bedrock:InvokeModel", f"arn:aws:bedrock:eu-west-2::foundation-model/{SONNET}",
                  aws__RequestedRegion="eu-west-2") == DENY


def test_region_deny_exempts_global_services_only(eu):
    assert decide(eu, "ec2:RunInstances", aws__RequestedRegion="us-east-1") == DENY
    assert decide(eu, "s3:PutObject", "arn:aws:s3:::b/k", aws__RequestedRegion="eu-west-2") == DENY
    assert decide(eu, "ec2:RunInstances", aws__RequestedRegion="eu-west-3") == ALLOW
    assert decide(eu, "iam:CreateRole", aws__RequestedRegion="us-east-1") == ALLOW
    assert decide(eu, "sts:AssumeRole", aws__RequestedRegion="us-east-1") == ALLOW
    assert decide(eu, "route53:ChangeResourceRecordSets", aws__RequestedRegion="us-east-1") == ALLOW
    assert decide(eu, "ec2:DescribeRegions", aws__RequestedRegion="us-east-1") == ALLOW
    not_action = eu["Statement"][0]["NotAction"]
    assert not any(a.startswith("bedrock:") and a not in ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream",
                                                           "bedrock:CreateModelInvocationJob") for a in not_action)
    assert "*" not in not_action


@pytest.mark.parametrize("action", ["kms:CreateKey", "acm:RequestCertificate", "config:PutConfigurationRecorder",
                                    "access-analyzer:CreateAnalyzer", "wafv2:CreateWebACL", "directconnect:CreateConnection",
                                    "chime:CreateMeeting", "sso:CreateInstance"])
def test_regional_and_data_carrying_services_are_not_exempt(eu, action):
    """Control Tower exempts these; a residency SCP must not (regional, or they carry data out)."""
    assert decide(eu, action, aws__RequestedRegion="us-east-1") == DENY
    assert decide(eu, action, aws__RequestedRegion="eu-central-1") == ALLOW


GLOBAL_CONSTRUCT_CALLS = [
    ("cloudfront:CreateDistribution", "us-east-1"), ("cloudfront:CreateDistributionWithTags", "us-east-1"),
    ("cloudfront:UpdateDistribution", "us-east-1"), ("globalaccelerator:CreateAccelerator", "us-west-2"),
    ("globalaccelerator:CreateEndpointGroup", "us-west-2"), ("networkmanager:CreateCoreNetwork", "us-west-2"),
    ("networkmanager:CreateGlobalNetwork", "us-west-2"), ("networkmanager:CreateVpcAttachment", "us-west-2"),
    ("ecr-public:PutImage", "us-east-1"), ("ecr-public:CompleteLayerUpload", "us-east-1"),
    ("s3:CreateMultiRegionAccessPoint", "us-west-2"), ("s3:PutAccelerateConfiguration", "us-east-1"),
    ("chatbot:CreateSlackChannelConfiguration", "us-west-2"), ("rds:CreateGlobalCluster", "us-east-1"),
]


@pytest.mark.parametrize("stack", ["us", "eu", "sg", "ksa", "au", "in", "ca"])
def test_every_geography_denies_the_global_constructs_that_carry_data_out(stack):
    """Issue #19: explicitly, in every region, also where their control plane lives (the US
    contains us-east-1 and us-west-2, so the region deny alone allowed them there)."""
    scp = scp_for_stack(stack)
    home = load_catalog().by_stack(stack).home_region
    for action, control_plane in GLOBAL_CONSTRUCT_CALLS:
        for region in {control_plane, home}:
            assert decide(scp, action, aws__RequestedRegion=region) == DENY, (stack, action, region)
    assert decide(scp, "s3:PutObject", "arn:aws:s3:::b/k", aws__RequestedRegion=home) == ALLOW
    assert decide(scp, "ecr:PutImage", aws__RequestedRegion=home) == ALLOW  # the stack's private ECR
    assert decide(scp, "cloudfront:ListDistributions", aws__RequestedRegion="us-east-1") == (
        ALLOW if stack == "us" else DENY)  # reads stay under the region deny only


def test_every_global_construct_denial_says_why():
    deny = load_catalog().global_constructs.scp_deny
    assert deny and all(why.strip() for why in deny.values())


def test_every_exemption_says_why_and_none_is_also_dropped():
    exemptions = load_catalog().region_deny_exemptions
    assert all(reason.strip() for reason in {**exemptions.services, **exemptions.actions, **exemptions.dropped}.values())
    assert not set(exemptions.dropped) & (set(exemptions.services) | set(exemptions.actions))
    assert {"kms", "acm", "config", "access-analyzer", "wafv2", "waf-regional", "directconnect", "fms",
            "cloudfront", "globalaccelerator", "ecr-public", "chime"} <= set(exemptions.dropped)


def test_an_exemption_without_a_reason_is_a_catalog_error():
    import yaml

    from infra.program.catalog import CATALOG_PATH, CatalogError, parse_catalog

    raw = yaml.safe_load(CATALOG_PATH.read_text())
    with pytest.raises(CatalogError, match="reason"):
        parse_catalog({**raw, "region_deny_exemptions": {"checked": "x", "services": ["iam"]}})
    with pytest.raises(CatalogError, match="both exempt and dropped"):
        parse_catalog({**raw, "region_deny_exemptions": {"checked": "x", "services": {"kms": "y"},
                                                         "dropped": {"kms": "regional"}}})


@pytest.mark.parametrize("stack", ["us", "eu", "sg"])
def test_enabling_an_opt_in_region_outside_the_geography_is_denied(stack):
    scp = scp_for_stack(stack)
    geo = load_catalog().geography(next(g for g, v in load_catalog().geographies.items() if v.stack == stack))
    outside = "me-central-1"
    assert decide(scp, "account:EnableRegion", aws__RequestedRegion="us-east-1", account__TargetRegion=outside) == DENY
    assert decide(scp, "account:EnableRegion", aws__RequestedRegion="us-east-1",
                  account__TargetRegion=geo.regions[0]) == ALLOW
    assert decide(scp, "account:GetContactInformation", aws__RequestedRegion="us-east-1") == ALLOW


def test_data_retention_can_only_be_set_to_none(eu):
    assert decide(eu, "bedrock:PutAccountDataRetention", aws__RequestedRegion="eu-central-1",
                  bedrock__DataRetentionMode="default") == DENY
    assert decide(eu, "bedrock:PutAccountDataRetention", aws__RequestedRegion="eu-central-1",
                  bedrock__DataRetentionMode="none") == ALLOW


def test_stack_without_zm_plus_gets_the_region_deny_and_the_global_construct_deny_only():
    sg = scp_for_stack("sg")
    assert [s["Sid"] for s in sg["Statement"]] == ["DenyOutsideGeography", "DenyEnablingRegionsOutsideGeography",
                                                    "DenyGlobalConstructs"]
    assert sg["Statement"][0]["Condition"] == {"StringNotEquals": {"aws:RequestedRegion": ["ap-southeast-1"]}}
    # No Bedrock exemption: any Bedrock call outside Singapore, `global.` included, is denied.
    assert decide(sg, "bedrock:InvokeModel", GLOBAL_PROFILE, aws__RequestedRegion="unspecified",
                  bedrock__InferenceProfileArn=GLOBAL_PROFILE) == DENY
    assert decide(sg, "bedrock:InvokeModel", f"arn:aws:bedrock:ap-southeast-1::foundation-model/{SONNET}",
                  aws__RequestedRegion="ap-southeast-1") == ALLOW


def test_us_scp_uses_the_us_profile():
    us = scp_for_stack("us")
    us_profile = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET}"
    assert decide(us, "bedrock:InvokeModel", f"arn:aws:bedrock:us-west-2::foundation-model/{SONNET}",
                  aws__RequestedRegion="us-west-2", bedrock__InferenceProfileArn=us_profile) == ALLOW
    assert decide(us, "bedrock:InvokeModel", EU_PROFILE, aws__RequestedRegion="eu-central-1") == DENY
    assert decide(us, "ec2:RunInstances", aws__RequestedRegion="eu-central-1") == DENY


@pytest.mark.parametrize("stack", ["us", "eu", "sg", "ksa", "au", "in", "ca"])
def test_every_scp_fits_the_quota(stack):
    assert len(json.dumps(scp_for_stack(stack), separators=(",", ":"))) <= SCP_MAX_CHARS


def test_cli_prints_the_policy_and_exits_0(capsys, monkeypatch):
    assert run_cli(["scp", "--stack", "eu", "--compact"], monkeypatch) == 0
    assert json.loads(capsys.readouterr().out) == build_scp(load_catalog().by_stack("eu"), True)


def test_cli_unknown_stack_exits_2_without_traceback(capsys, monkeypatch):
    assert run_cli(["scp", "--stack", "atlantis"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "unknown stack 'atlantis'" in err and "Traceback" not in err
