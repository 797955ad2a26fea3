"""`residency preflight`: each check passes on a ready account and fails (with its fix) on one that
is not, against moto's server on 127.0.0.1 or botocore's Stubber where moto 5.2.5 lacks the call;
every exit code through the console script.

moto serves for real: EC2 regions, opt-in status, instance type offerings and vCPUs, VPC endpoint
services, AWS's public SSM global-infrastructure parameters (its bundled copy) and Organizations.
It does not implement account:GetRegionOptStatus, eks:DescribeClusterVersions, Bedrock's
GetInferenceProfile / GetFoundationModelAvailability / GetFoundationModel or EC2 quotas in
Service Quotas; those answers are canned at the server (`canned`) or queued on a Stubber, shaped
by botocore's service models (the Stubber validates them).
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import live_fixtures
from cli_run import residency
from infra.commands.preflight import exit_code
from infra.engine.live.core import Clients, ReadOnlyViolation
from infra.engine.preflight import (CHECKS, FAILED, NOT_CHECKED, PASSED, SERVICE_OF_TYPE, Probe, allowed_operations,
                                    needs_from_plan, run_checks)
from infra.engine.timeouts import Timeouts
from infra.program.config import GpuNodeGroup
from live_fixtures import StubSession, aws_env, moto, scp_in_force, shared_session  # noqa: F401
from stack_plans import planned

EU_VERSION = "1.35"
QUOTA_ENDPOINT = ("servicequotas", "GetServiceQuota")
VERSIONS_ENDPOINT = ("eks", "GET", "/cluster-versions")
PROFILE_PATH = re.compile(r"/inference-profiles/[^/]+")
AVAILABILITY_PATH = re.compile(r"/foundation-model-availability/[^/]+")
AUTHORIZED = {"modelId": "m", "authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
              "regionAvailability": "AVAILABLE", "agreementAvailability": {"status": "AVAILABLE"}}


def versions(*entries: tuple[str, str]) -> dict:
    return {"clusterVersions": [{"clusterVersion": v, "versionStatus": s} for v, s in entries]}


def quota(value: float) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA", "Value": value,
                      "QuotaName": "Running On-Demand G and VT instances"}}


@pytest.fixture
def canned(monkeypatch):
    """Answers the moto server gives for calls moto lacks, for this test only."""
    paths = list(live_fixtures.MISSING_IN_MOTO_PATHS)
    monkeypatch.setattr(live_fixtures, "MISSING_IN_MOTO_PATHS", paths)

    def answer(key: tuple, body: dict) -> None:
        if isinstance(key[-1], re.Pattern):  # (service, method, path pattern)
            paths.append((*key, body))
        else:  # (service, operation) or (service, method, path)
            monkeypatch.setitem(live_fixtures.MISSING_IN_MOTO, key, body)
    return answer


def ready_account(moto, canned, stack="eu"):  # noqa: F811
    """Everything a first `pulumi up` of `stack` needs, as far as moto cannot say it by itself."""
    scp_in_force(moto, stack)
    canned(VERSIONS_ENDPOINT, versions((EU_VERSION, "STANDARD_SUPPORT")))
    canned(QUOTA_ENDPOINT, quota(64))
    canned(("bedrock", "GET", PROFILE_PATH), {"inferenceProfileId": "p", "status": "ACTIVE"})
    canned(("bedrock", "GET", AVAILABILITY_PATH), AUTHORIZED)


@pytest.fixture(scope="module")
def eu_needs():
    return needs_from_plan(planned("eu").snapshot, planned("eu").config)


# moto builds a region's EC2 backend on its first call, which can take long on a loaded machine: a
# generous read timeout, so that a slow test machine never reads as "not checked".
PATIENT = Timeouts(read=120)


def moto_probe(server, needs):
    return Probe(needs, Clients(shared_session(), server.url, PATIENT, allowed=allowed_operations()))


def run_one(server, needs, check_id):
    (result,) = run_checks(needs, moto_probe(server, needs).clients, only=[check_id]).results
    return result.outcome


def with_cfg(needs, **changes):
    return dataclasses.replace(needs, cfg=dataclasses.replace(needs.cfg, **changes))


def stubbed(needs):
    session = StubSession()
    return session, Probe(needs, Clients(session, None, allowed=allowed_operations()))


def run_stubbed(probe, check_id):
    (result,) = run_checks(probe.needs, probe.clients, only=[check_id]).results
    return result.outcome


# --- what the stack needs, from its plan ------------------------------------------------------------

def test_needs_come_from_the_plan(eu_needs):
    assert {"eks", "ec2", "kms", "s3", "ecr", "bedrock", "network-firewall", "route53resolver", "logs",
            "bedrock-runtime", "ssm", "sts", "eks-auth", "elb"} <= set(eu_needs.services)
    assert "com.amazonaws.eu-central-1.ssmmessages" in eu_needs.endpoint_services
    assert eu_needs.kubernetes_version == EU_VERSION and eu_needs.unmapped_types == ()
    gpu, tunnel = eu_needs.instances
    assert (gpu.instance_type, gpu.any_zone) == ("g6e.xlarge", True)
    assert gpu.zones == ("eu-central-1a", "eu-central-1b", "eu-central-1c")
    assert tunnel.instance_type == "t4g.nano" and not tunnel.any_zone and len(tunnel.zones) == 1


@pytest.mark.parametrize("stack", ["us", "ksa"])
def test_every_aws_type_of_a_plan_has_a_service_code(stack):
    """A new resource module fails here until SERVICE_OF_TYPE says which service it needs."""
    plan = planned(stack)
    assert needs_from_plan(plan.snapshot, plan.config).unmapped_types == ()


def test_a_type_without_a_service_code_is_not_checked(moto, eu_needs):  # noqa: F811
    needs = dataclasses.replace(eu_needs, unmapped_types=("aws:sagemaker/domain:Domain",))
    outcome = run_one(moto, needs, "services-offered")
    assert outcome.status == NOT_CHECKED and "aws:sagemaker/domain:Domain" in outcome.detail
    assert "SERVICE_OF_TYPE" in outcome.fix and "aws:sagemaker/" not in SERVICE_OF_TYPE


# --- each check: passes on a ready account, fails with its fix on one that is not --------------------

def test_region_enabled_passes_by_ec2_when_the_account_api_is_denied(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, eu_needs, "region-enabled")
    assert outcome.status == PASSED and "eu-central-1: opt-in-not-required" in outcome.detail


def test_region_not_opted_in_fails_with_the_command_that_enables_it(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, with_cfg(eu_needs, region="me-central-1"), "region-enabled")
    assert outcome.status == FAILED and "not-opted-in" in outcome.detail
    assert "aws account enable-region --region-name me-central-1" in outcome.fix


@pytest.mark.parametrize("status,expected", [("ENABLED", PASSED), ("ENABLED_BY_DEFAULT", PASSED),
                                             ("ENABLING", FAILED), ("DISABLED", FAILED)])
def test_region_opt_status_from_the_account_api(moto, canned, eu_needs, status, expected):  # noqa: F811
    canned(("account", "POST", "/getRegionOptStatus"), {"RegionName": "eu-central-1", "RegionOptStatus": status})
    outcome = run_one(moto, eu_needs, "region-enabled")
    assert outcome.status == expected and status in outcome.detail


def test_services_offered_passes_on_aws_public_parameters(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, eu_needs, "services-offered")
    assert outcome.status == PASSED and "network-firewall" in outcome.detail


def test_a_service_not_offered_fails_naming_it(moto, eu_needs):  # noqa: F811
    needs = dataclasses.replace(eu_needs, services=eu_needs.services + ("no-such-service",))
    outcome = run_one(moto, needs, "services-offered")
    assert outcome.status == FAILED and "no-such-service" in outcome.detail and "aws:region" in outcome.fix


def test_a_region_the_parameters_do_not_list_is_not_checked(moto, eu_needs):  # noqa: F811
    """KSA today: moto's copy of the parameters (like botocore's endpoint data) has no me-west-1."""
    outcome = run_one(moto, with_cfg(eu_needs, region="me-west-1"), "services-offered")
    assert outcome.status == NOT_CHECKED and "list no service in me-west-1" in outcome.detail


def test_endpoint_services_offered(moto, eu_needs):  # noqa: F811
    assert run_one(moto, eu_needs, "endpoints-offered").status == PASSED
    needs = dataclasses.replace(eu_needs, endpoint_services=eu_needs.endpoint_services
                                + ("com.amazonaws.eu-central-1.no-such",))
    outcome = run_one(moto, needs, "endpoints-offered")
    assert outcome.status == FAILED and outcome.detail.endswith("com.amazonaws.eu-central-1.no-such")


@pytest.mark.parametrize("answer,expected", [
    (versions((EU_VERSION, "STANDARD_SUPPORT")), PASSED),
    (versions((EU_VERSION, "EXTENDED_SUPPORT")), PASSED),
    (versions((EU_VERSION, "UNSUPPORTED")), FAILED),
    (versions(("1.34", "STANDARD_SUPPORT")), FAILED),
    (versions(), FAILED)])
def test_kubernetes_version_offered(moto, canned, eu_needs, answer, expected):  # noqa: F811
    canned(VERSIONS_ENDPOINT, answer)
    outcome = run_one(moto, eu_needs, "kubernetes-version")
    assert outcome.status == expected, outcome
    if expected == FAILED:
        assert "kubernetes.version" in outcome.fix


def test_instance_types_offered_in_the_stack_zones(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, eu_needs, "instance-types-offered")
    assert outcome.status == PASSED and "g6e.xlarge, t4g.nano" in outcome.detail


def test_a_gpu_type_offered_in_no_zone_fails(moto, eu_needs):  # noqa: F811
    gpu = dataclasses.replace(eu_needs.instances[0], instance_type="p5.48xlarge")
    outcome = run_one(moto, dataclasses.replace(eu_needs, instances=(gpu, eu_needs.instances[1])),
                      "instance-types-offered")
    assert outcome.status == FAILED and "p5.48xlarge" in outcome.detail and "gpuInstanceType" in outcome.fix


def test_a_gpu_type_in_some_zones_passes_with_a_note_but_the_tunnel_needs_its_zone(moto, eu_needs):  # noqa: F811
    gpu = dataclasses.replace(eu_needs.instances[0], instance_type="p4de.24xlarge")  # 1a and 1c in moto
    outcome = run_one(moto, dataclasses.replace(eu_needs, instances=(gpu,)), "instance-types-offered")
    assert outcome.status == PASSED and "p4de.24xlarge only in eu-central-1a, eu-central-1c" in outcome.detail
    tunnel = dataclasses.replace(eu_needs.instances[1], instance_type="p4de.24xlarge", zones=("eu-central-1b",))
    outcome = run_one(moto, dataclasses.replace(eu_needs, instances=(tunnel,)), "instance-types-offered")
    assert outcome.status == FAILED and "not offered in eu-central-1b" in outcome.detail



def test_zones_eks_accepts_pass_naming_their_ids(moto, eu_needs):  # noqa: F811
    assert eu_needs.zones == ("eu-central-1a", "eu-central-1b", "eu-central-1c")
    outcome = run_one(moto, eu_needs, "eks-zones")
    assert outcome.status == PASSED and "eu-central-1a = euc1-az1" in outcome.detail


def test_a_zone_whose_id_eks_refuses_fails_with_the_fix(moto):  # noqa: F811
    """moto maps us-east-1e to use1-az3, one of the zone ids EKS refuses (network-reqs.adoc)."""
    needs = needs_from_plan(planned("us").snapshot, planned("us").config)
    assert needs.zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    outcome = run_one(moto, dataclasses.replace(needs, zones=("us-east-1a", "us-east-1e")), "eks-zones")
    assert outcome.status == FAILED and "us-east-1e (use1-az3)" in outcome.detail
    assert "pick other zones" in outcome.fix and "stacks/catalog.yaml" in outcome.fix


@pytest.mark.parametrize("value,max_size,expected", [(8, 2, PASSED), (4, 2, FAILED), (0, 1, FAILED), (64, 16, PASSED)])
def test_gpu_vcpu_quota_covers_gpu_max_size(moto, canned, eu_needs, value, max_size, expected):  # noqa: F811
    """g6e.xlarge: 1 GPU and 4 vCPUs (moto's DescribeInstanceTypes) -> 4 vCPUs per GPU."""
    canned(QUOTA_ENDPOINT, quota(value))
    needs = with_cfg(eu_needs, gpu=GpuNodeGroup("g6e.xlarge", max_size))
    outcome = run_one(moto, needs, "gpu-vcpu-quota")
    assert outcome.status == expected and f"needs {4 * max_size}" in outcome.detail
    if expected == FAILED:
        assert f"--quota-code L-DB2E81BA --desired-value {4 * max_size}" in outcome.fix


def test_an_unset_quota_falls_back_to_the_default_value(eu_needs):
    session, probe = stubbed(eu_needs)
    session.stub("ec2", "eu-central-1").add_response("describe_instance_types", {"InstanceTypes": [
        {"InstanceType": "g6e.xlarge", "VCpuInfo": {"DefaultVCpus": 4},
         "GpuInfo": {"Gpus": [{"Name": "L40S", "Count": 1}]}}]}, {"InstanceTypes": ["g6e.xlarge"]})
    quotas = session.stub("service-quotas", "eu-central-1")
    quotas.add_client_error("get_service_quota", "NoSuchResourceException", "not set")
    quotas.add_response("get_aws_default_service_quota", quota(0), {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    outcome = run_stubbed(probe, "gpu-vcpu-quota")
    assert outcome.status == FAILED and "L-DB2E81BA is 0 vCPUs" in outcome.detail
    session.assert_no_pending_responses()


def test_bedrock_profiles_active_and_authorized_pass(moto, canned, eu_needs):  # noqa: F811
    canned(("bedrock", "GET", PROFILE_PATH), {"inferenceProfileId": "p", "status": "ACTIVE"})
    canned(("bedrock", "GET", AVAILABILITY_PATH), AUTHORIZED)
    outcome = run_one(moto, eu_needs, "bedrock-models")
    assert outcome.status == PASSED and "eu.anthropic.claude-sonnet-4-5-20250929-v1:0" in outcome.detail


def _profile_answers(stubber, needs, missing=()):
    bedrock = stubber
    for model in needs.cfg.bedrock_models:
        profile = model.profile_id("eu")
        if profile in missing:
            bedrock.add_client_error("get_inference_profile", "ResourceNotFoundException", "no such profile",
                                     expected_params={"inferenceProfileIdentifier": profile})
            continue
        bedrock.add_response("get_inference_profile", {
            "inferenceProfileName": profile,
            "inferenceProfileArn": f"arn:aws:bedrock:eu-central-1:1:inference-profile/{profile}",
            "models": [{"modelArn": f"arn:aws:bedrock:eu-central-1::foundation-model/{model.model_id}"}],
            "inferenceProfileId": profile, "status": "ACTIVE", "type": "SYSTEM_DEFINED"},
            {"inferenceProfileIdentifier": profile})
        yield model


def test_a_model_without_access_fails_with_the_console_fix(eu_needs):
    session, probe = stubbed(eu_needs)
    bedrock = session.stub("bedrock", "eu-central-1")
    for model in _profile_answers(bedrock, eu_needs):
        bedrock.add_response("get_foundation_model_availability", {
            **AUTHORIZED, "modelId": model.model_id, "authorizationStatus": "NOT_AUTHORIZED",
            "agreementAvailability": {"status": "NOT_AVAILABLE"}}, {"modelId": model.model_id})
    outcome = run_stubbed(probe, "bedrock-models")
    assert outcome.status == FAILED and "authorization NOT_AUTHORIZED, agreement NOT_AVAILABLE" in outcome.detail
    assert "Model access" in outcome.fix
    session.assert_no_pending_responses()


def test_a_profile_not_offered_in_the_region_fails(eu_needs):
    session, probe = stubbed(eu_needs)
    bedrock = session.stub("bedrock", "eu-central-1")
    gone = eu_needs.cfg.bedrock_models[0].profile_id("eu")
    for model in _profile_answers(bedrock, eu_needs, missing=(gone,)):
        bedrock.add_response("get_foundation_model_availability", {**AUTHORIZED, "modelId": model.model_id},
                             {"modelId": model.model_id})
    outcome = run_stubbed(probe, "bedrock-models")
    assert outcome.status == FAILED
    assert f"{gone}: not offered in eu-central-1 (ResourceNotFoundException)" in outcome.detail
    session.assert_no_pending_responses()


def test_an_in_region_model_must_be_active_and_available_in_the_region(eu_needs):
    haiku = dataclasses.replace(eu_needs.cfg.bedrock_models[0], access="in_region")
    needs = with_cfg(eu_needs, bedrock_models=(haiku,))
    session, probe = stubbed(needs)
    bedrock = session.stub("bedrock", "eu-central-1")
    bedrock.add_response("get_foundation_model", {"modelDetails": {
        "modelArn": "arn:aws:bedrock:eu-central-1::foundation-model/x", "modelId": haiku.model_id,
        "modelLifecycle": {"status": "ACTIVE"}}}, {"modelIdentifier": haiku.model_id})
    bedrock.add_response("get_foundation_model_availability", {**AUTHORIZED, "modelId": haiku.model_id,
                                                               "regionAvailability": "NOT_AVAILABLE"})
    outcome = run_stubbed(probe, "bedrock-models")
    assert outcome.status == FAILED and "region NOT_AVAILABLE" in outcome.detail


def test_bedrock_is_not_asked_of_a_stack_without_zm_plus(moto):  # noqa: F811
    plan = planned("sg")
    report = run_checks(needs_from_plan(plan.snapshot, plan.config), moto_probe(moto, None).clients,
                        only=["bedrock-models"])
    assert report.results == []


def test_scp_attached_passes_when_every_statement_is_in_force(moto, eu_needs):  # noqa: F811
    scp_in_force(moto, "eu")
    outcome = run_one(moto, eu_needs, "scp-attached")
    assert outcome.status == PASSED and "every statement of the EU SCP" in outcome.detail


def test_no_organization_or_another_geography_scp_fails(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, eu_needs, "scp-attached")
    assert outcome.status == FAILED and "in no AWS Organization" in outcome.detail
    assert "residency scp --stack eu" in outcome.fix
    scp_in_force(moto, "sg")  # an organization, but the SCP of another geography
    outcome = run_one(moto, eu_needs, "scp-attached")
    assert outcome.status == FAILED and "statement(s) of the EU SCP are in no SCP attached" in outcome.detail


# --- the runner: faults are "not checked", the guard holds ------------------------------------------

def test_a_dead_endpoint_makes_every_check_not_checked_without_waiting_on_each(eu_needs):
    clients = Clients(shared_session(), "http://127.0.0.1:9", Timeouts(max_attempts=1), allowed=allowed_operations())
    report = run_checks(eu_needs, clients)
    assert [r.status for r in report.results] == [NOT_CHECKED] * len(report.results)
    assert all("not tried: the endpoint stopped answering" in r.outcome.detail for r in report.results[1:])
    assert exit_code(report) == 3


def test_the_guard_refuses_what_no_check_declares(moto, eu_needs):  # noqa: F811
    clients = Clients(shared_session(), moto.url, allowed={"ec2": frozenset({"DescribeRegions"})})
    with pytest.raises(ReadOnlyViolation):
        run_checks(eu_needs, clients, only=["endpoints-offered"])


def test_every_declared_operation_is_a_read_that_botocore_knows():
    import botocore.session

    session = botocore.session.get_session()
    for service, ops in allowed_operations().items():
        model = session.get_service_model(service)
        for op in ops:
            assert op in model.operation_names, f"{service}:{op}"
            assert op.startswith(("Get", "List", "Describe")), f"{service}:{op}"
    assert len({c.id for c in CHECKS}) == len(CHECKS) >= 8


# --- the console script: every exit code ------------------------------------------------------------

def test_ready_account_exits_0(moto, canned):  # noqa: F811
    ready_account(moto, canned)
    result = residency("preflight", "--stack", "eu", "--endpoint-url", moto.url, "--read-timeout", "120")
    assert result.rc == 0, result.out + result.err
    assert result.out.count("PASS") == len(CHECKS) and "can take the first `pulumi up`" in result.out
    assert "residency preflight: checking scp-attached" in result.err  # progress on stderr


def test_a_failed_check_exits_1_in_json_with_its_fix(moto, canned, tmp_path):  # noqa: F811
    ready_account(moto, canned)
    canned(QUOTA_ENDPOINT, quota(4))  # gpuMaxSize 2 x 4 vCPUs needs 8
    out = tmp_path / "report.json"
    result = residency("preflight", "--stack", "eu", "--endpoint-url", moto.url, "--format", "json", "--output", out,
                       "--read-timeout", "120")
    assert result.rc == 1, result.err
    report = json.loads(out.read_text())
    (quota_result,) = [c for c in report["checks"] if c["id"] == "gpu-vcpu-quota"]
    assert quota_result["status"] == FAILED and "--desired-value 8" in quota_result["fix"]
    assert report["counts"] == {PASSED: len(CHECKS) - 1, FAILED: 1, NOT_CHECKED: 0} and report["exitCode"] == 1
    assert "report written to" in result.err


def test_unknown_stack_exits_2_with_did_you_mean(aws_env):  # noqa: F811
    result = residency("preflight", "--stack", "uss")
    assert result.rc == 2 and "unknown stack 'uss'" in result.err and "did you mean 'us'?" in result.err
    assert "Traceback" not in result.err


def test_no_credentials_exits_2_like_every_command(aws_env, monkeypatch):  # noqa: F811
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = residency("preflight", "--stack", "eu", "--endpoint-url", "http://127.0.0.1:9")
    assert result.rc == 2 and "no AWS credentials found" in result.err and result.out == ""


def test_a_dead_endpoint_exits_3(aws_env):  # noqa: F811
    result = residency("preflight", "--stack", "sg", "--endpoint-url", "http://127.0.0.1:9")
    assert result.rc == 3 and "NOT CHECKED" in result.out and "no verdict" in result.out


def test_an_internal_error_exits_4(aws_env, tmp_path):  # noqa: F811
    (tmp_path / "sitecustomize.py").write_text(
        "import infra.engine.preflight\n"
        "def broken(*args, **kwargs):\n"
        "    raise KeyError('subnets')\n"
        "infra.engine.preflight.needs_from_plan = broken\n")
    result = residency("preflight", "--stack", "sg", "--endpoint-url", "http://127.0.0.1:9",
                       PYTHONPATH=str(tmp_path))
    assert result.rc == 4 and "internal error: KeyError: 'subnets'" in result.err and "Traceback" not in result.err


def test_skip_leaves_a_check_out_and_says_so(moto, canned):  # noqa: F811
    ready_account(moto, canned)
    result = residency("preflight", "--stack", "eu", "--endpoint-url", moto.url, "--skip", "scp-attached",
                       "--skip", "bedrock-models", "--format", "json", "--read-timeout", "120")
    report = json.loads(result.out)
    assert result.rc == 0 and report["leftOut"] == ["bedrock-models", "scp-attached"]
    assert {c["id"] for c in report["checks"]} == {c.id for c in CHECKS} - {"bedrock-models", "scp-attached"}
    assert residency("preflight", "--stack", "eu", "--skip", "nope").rc == 2


def test_the_deploy_role_may_send_what_its_preflight_step_asks():
    """deploy.yml runs preflight under the deploy role with scp-attached left out; every operation of
    the other checks is granted in the geography (account:GetRegionOptStatus is global: denied
    outside it, the check then asks EC2 in the home region)."""
    from infra.commands.render import iam_policy
    from infra.engine.live.permissions import iam_action
    from test_iam_policies import granted, load

    policy = iam_policy(load("deploy-permissions.json"), "eu")
    asked = allowed_operations([c for c in CHECKS if c.id != "scp-attached"])
    needed = [iam_action(s, op) for s, ops in asked.items() for op in sorted(ops)
              if (s, op) != ("account", "GetRegionOptStatus")]
    assert [a for a in needed if not granted(policy, a)] == []


def test_the_tunnel_ami_is_published(moto, eu_needs):  # noqa: F811
    outcome = run_one(moto, eu_needs, "ami-published")
    assert outcome.status == PASSED and "al2023-ami-kernel-default-arm64 = ami-" in outcome.detail
    needs = dataclasses.replace(eu_needs, ami_parameters=("/aws/service/ami-amazon-linux-latest/no-such-ami",))
    outcome = run_one(moto, needs, "ami-published")
    assert outcome.status == FAILED and "no-such-ami" in outcome.detail and "TUNNEL_AMI_PARAMETER" in outcome.fix


def test_subnets_placed_by_zone_id_are_checked_by_zone_id(moto, eu_needs):  # noqa: F811
    """A zone name maps to another physical zone in each account; a plan that places subnets by
    zone id is checked by zone id (moto: euc1-az1..3)."""
    from infra.engine.model import Resource, Snapshot

    subnets = [Resource(urn=f"urn:s{i}", type="aws:ec2/subnet:Subnet", name=f"s{i}", id=f"subnet-{i}",
                        inputs={"availabilityZoneId": f"euc1-az{i}"}) for i in (1, 2)]
    tunnel = Resource(urn="urn:t", type="aws:ec2/instance:Instance", name="tunnel", id="i-1",
                      inputs={"instanceType": "t4g.nano", "subnetId": "subnet-2"})
    needs = needs_from_plan(Snapshot(subnets + [tunnel], source="plan"), eu_needs.cfg)
    assert needs.zone_location == "availability-zone-id"
    assert [(i.instance_type, i.zones) for i in needs.instances] == [
        ("g6e.xlarge", ("euc1-az1", "euc1-az2")), ("t4g.nano", ("euc1-az2",))]
    outcome = run_one(moto, needs, "instance-types-offered")
    assert outcome.status == PASSED and "euc1-az1, euc1-az2" in outcome.detail


def test_a_quota_code_that_names_another_quota_is_not_checked(moto, canned, eu_needs):  # noqa: F811
    canned(QUOTA_ENDPOINT, {"Quota": {"QuotaCode": "L-DB2E81BA", "Value": 512.0,
                                      "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"}})
    outcome = run_one(moto, eu_needs, "gpu-vcpu-quota")
    assert outcome.status == NOT_CHECKED and "not the 'G and VT' vCPU quota" in outcome.detail


@pytest.mark.parametrize("argv,message", [
    (("--output", "/"), "--output: / is a directory"),
    (("--endpoint-url", "ftp://127.0.0.1"), "--endpoint-url: 'ftp://127.0.0.1' is not an http(s) URL"),
    (("--check", "scp-attached", "--skip", "scp-attached"), "not allowed with argument"),
], ids=["output is a directory", "endpoint not http", "check and skip"])
def test_bad_flags_exit_2_before_anything_is_read(aws_env, argv, message):  # noqa: F811
    result = residency("preflight", "--stack", "eu", *argv)
    assert result.rc == 2 and message in result.err and result.out == ""


def test_only_aws_public_parameters_are_read(moto, eu_needs):  # noqa: F811
    """The account's own parameters may hold secrets: preflight refuses to ask for them (exit 4, a bug)."""
    needs = dataclasses.replace(eu_needs, ami_parameters=("/prod/db-password",))
    with pytest.raises(ReadOnlyViolation, match="reads only /aws/service/"):
        run_checks(needs, moto_probe(moto, needs).clients, only=["ami-published"])


def _refused(stubber, operation="describe_regions"):
    stubber.add_client_error(operation, "AuthFailure", "AWS was not able to validate the provided access credentials")


def test_a_region_that_refuses_the_credentials_is_confirmed_from_us_east_1(eu_needs):
    needs = with_cfg(eu_needs, region="eu-south-2")
    session, probe = stubbed(needs)
    session.stub("account", "us-east-1").add_client_error("get_region_opt_status", "AccessDeniedException", "denied")
    _refused(session.stub("ec2", "eu-south-2"))
    session.stub("ec2", "us-east-1").add_response("describe_regions", {"Regions": [
        {"RegionName": "eu-south-2", "OptInStatus": "not-opted-in"}]})
    outcome = run_stubbed(probe, "region-enabled")
    assert outcome.status == FAILED and "eu-south-2: not-opted-in" in outcome.detail
    session.assert_no_pending_responses()


def test_refused_everywhere_is_not_checked_never_a_verdict(eu_needs):
    needs = with_cfg(eu_needs, region="eu-south-2")
    session, probe = stubbed(needs)
    session.stub("account", "us-east-1").add_client_error("get_region_opt_status", "AccessDeniedException", "denied")
    _refused(session.stub("ec2", "eu-south-2"))
    session.stub("ec2", "us-east-1").add_client_error("describe_regions", "UnauthorizedOperation", "explicit deny")
    outcome = run_stubbed(probe, "region-enabled")
    assert outcome.status == NOT_CHECKED and "most likely not enabled" in outcome.detail
