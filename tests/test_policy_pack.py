"""The CrossGuard pack (policy/): pulumi_policy argument objects built directly, no engine.

PolicyPack is never constructed (it starts a gRPC server and blocks): policy/__main__.py is only
read as text here.
"""

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml
from pulumi_policy import (EnforcementLevel, PolicyCustomTimeouts, PolicyProviderResource, PolicyResource,
                           PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.engine.rules import RULES, Context
from infra.program.stackfiles import ROOT, list_stacks, load_stack_config
from policy import policies as pack

PACK_DIR = Path(pack.__file__).resolve().parent
EU_CONFIG = json.loads((PACK_DIR / "config.eu.json").read_text())["resource-region-in-geography"]
SG_CONFIG = json.loads((PACK_DIR / "config.sg.json").read_text())["resource-region-in-geography"]
BY_NAME = {p.name: p for p in pack.POLICIES}


@pytest.fixture(autouse=True)
def no_engine_stack(monkeypatch):
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)


def opts(parent=None):
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def aws_provider(name="aws-eu-central-1", region="eu-central-1", stack="eu"):
    props = {"region": region} if region else {}
    return PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy(props),
                                  f"urn:pulumi:{stack}::ai-companion::pulumi:providers:aws::{name}", name)


def args(type_, name, props, provider=None, config=EU_CONFIG, chain="", stack="eu"):
    urn = f"urn:pulumi:{stack}::ai-companion::{chain}{type_}::{name}"
    return ResourceValidationArgs(type_, unknown_checking_proxy(props), urn, name, opts(), provider, config)


def validate(policy, a):
    violations = []
    result = policy.validate(a, lambda message, urn=None: violations.append((message, urn)))
    if result is not None:
        asyncio.run(result)
    return violations


def check(name, a):
    return validate(BY_NAME[name], a)


def test_one_mandatory_policy_per_rule_plus_the_stack_policy():
    resource_policies = [p for p in pack.POLICIES if isinstance(p, ResourceValidationPolicy)]
    assert {p.name for p in resource_policies} == {r.name.replace("_", "-") for r in RULES if not r.graph}
    [stack_policy] = [p for p in pack.POLICIES if isinstance(p, StackValidationPolicy)]
    assert {r.id for r in pack.GRAPH_RULES} == {"RSD-030", "RSD-045", "RSD-054"}
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in pack.POLICIES)
    assert all(p.config_schema is not None for p in pack.POLICIES)
    assert stack_policy.name == pack.STACK_POLICY_NAME


def test_resource_policy_reports_a_violation():
    nat = args("aws:ec2/natGateway:NatGateway", "nat", {"subnetId": "subnet-1"}, aws_provider())
    [(message, urn)] = check("no-nat-gateway", nat)
    assert message.startswith("[RSD-021]") and urn == nat.urn


def test_resource_policy_stays_quiet_in_the_egress_path():
    nat = args("aws:ec2/natGateway:NatGateway", "nat", {"subnetId": "subnet-1"}, aws_provider(),
               chain="ai-companion:federated:EgressConnectors$")
    assert check("no-nat-gateway", nat) == []


def test_default_provider_takes_the_region_of_the_pack_config():
    default = aws_provider("default_7_51_1", region=None)
    bucket = args("aws:s3/bucket:Bucket", "b", {"bucket": "b"}, default)
    assert check("resource-region-in-geography", bucket) == []
    assert check("resource-region-provable", bucket) == []
    [(message, _)] = check("explicit-provider-required", bucket)
    assert "default AWS provider" in message


def test_default_provider_with_a_foreign_region_fires():
    bucket = args("aws:s3/bucket:Bucket", "b", {}, aws_provider("default", region="us-east-1"))
    assert check("resource-region-in-geography", bucket)


def test_explicit_provider_without_region_is_unplaced_not_config_region():
    bucket = args("aws:s3/bucket:Bucket", "b", {}, aws_provider("mine", region=None))
    assert check("resource-region-provable", bucket)


def test_provider_named_eu_west_1_with_us_east_1_region():
    liar = aws_provider("eu-west-1", region="us-east-1")
    provider_args = ResourceValidationArgs("pulumi:providers:aws", liar.props, liar.urn, liar.name, opts(), None,
                                           EU_CONFIG)
    [(message, _)] = check("provider-region-in-geography", provider_args)
    assert "us-east-1" in message
    vpc = args("aws:ec2/vpc:Vpc", "v", {"cidrBlock": "10.0.0.0/16"}, liar)
    assert check("resource-region-in-geography", vpc)


def test_unknown_values_do_not_abort_the_policy():
    route = args("aws:ec2/route:Route", "r", {"destinationCidrBlock": UNKNOWN_STRING_VALUE, "routeTableId": "rtb"},
                 aws_provider())
    assert check("no-internet-route", route) == []
    route = args("aws:ec2/route:Route", "r", {"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": UNKNOWN_STRING_VALUE},
                 aws_provider())
    assert check("no-internet-route", route)


def test_bedrock_in_a_zmo_stack_is_refused_by_the_sg_config():
    g = args("aws:bedrock/guardrail:Guardrail", "g", {"name": "g"}, aws_provider("aws-sg", "ap-southeast-1", "sg"),
             config=SG_CONFIG, stack="sg")
    assert check("bedrock-requires-zm-plus", g)
    assert check("bedrock-requires-zm-plus", args("aws:bedrock/guardrail:Guardrail", "g", {}, aws_provider())) == []


def policy_resource(type_, name, props, provider=None, parent=None, stack="eu"):
    chain = f"{parent.resource_type}$" if parent else ""
    return PolicyResource(type_, unknown_checking_proxy(props), f"urn:pulumi:{stack}::ai-companion::{chain}{type_}::{name}",
                          name, opts(parent.urn if parent else None), provider, parent, [], {})


def run_stack_policy(resources, config=EU_CONFIG):
    return validate(pack.STACK_POLICY, StackValidationArgs(resources, config))


def replication_to(bucket_provider):
    prov = aws_provider()
    dest = policy_resource("aws:s3/bucket:Bucket", "dest", {"bucket": "dest", "arn": "arn:aws:s3:::dest"},
                           bucket_provider)
    repl = policy_resource("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "repl",
                           {"bucket": "src", "rules": [{"destination": {"bucket": "arn:aws:s3:::dest"}}]}, prov)
    return [dest, repl]


LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"


def home_logging(bucket=None):
    """The invocation logging RSD-045 requires of the (zm_plus) eu stack, to a log group or a bucket."""
    config = {"s3Config": {"bucketName": bucket}} if bucket else {"cloudwatchConfig": {"logGroupName": "/prompts"}}
    return policy_resource(LOGGING, "logging", {"loggingConfig": config}, aws_provider())


def test_stack_policy_resolves_replication_destinations_across_resources():
    assert run_stack_policy(replication_to(aws_provider("aws-eu-west-1", "eu-west-1")) + [home_logging()]) == []
    [(message, urn)] = run_stack_policy(replication_to(aws_provider("aws-us", "us-east-1")) + [home_logging()])
    assert message.startswith("[RSD-030]") and urn.endswith("::repl")


def test_stack_policy_requires_invocation_logging_in_a_zm_plus_stack():
    [(message, urn)] = run_stack_policy([])
    assert message.startswith("[RSD-045]") and "eu-central-1" in message and urn is None
    assert run_stack_policy([], config=SG_CONFIG) == []  # no zm_plus: not required


def test_stack_policy_resolves_invocation_log_buckets_across_resources():
    def bucket(region):
        return policy_resource("aws:s3/bucket:Bucket", "logs", {"bucket": "logs"}, aws_provider(f"aws-{region}", region))

    assert run_stack_policy([bucket("eu-west-1"), home_logging("logs")]) == []
    [(message, urn)] = run_stack_policy([bucket("us-east-1"), home_logging("logs")])
    assert message.startswith("[RSD-045]") and "us-east-1" in message and urn.endswith("::logging")
    [(message, _)] = run_stack_policy([home_logging("logs")])
    assert "cannot be proven" in message


def test_fail_closed_findings_on_values_unknown_in_preview_are_deferred_to_the_update():
    """A new ZM+ stack's log bucket name is unknown during preview: RSD-045 must not block the
    preview (the engine turns UnknownValueError into an advisory and re-checks during the update),
    while a finding that does not depend on an unknown value is still reported."""
    unknown_bucket = home_logging(UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        run_stack_policy([unknown_bucket])
    # Known values on the same stack policy: reported, not deferred.
    [(message, _)] = run_stack_policy([home_logging("logs")])
    assert message.startswith("[RSD-045]")
    # A route to the internet is a finding whatever the unknown NAT id: reported, not deferred.
    route = args("aws:ec2/route:Route", "r", {"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": UNKNOWN_STRING_VALUE},
                 aws_provider())
    assert check("no-internet-route", route)
    # An explicit provider whose region is unknown: RSD-002 (fails closed) is deferred.
    with pytest.raises(UnknownValueError):
        check("resource-region-provable", args("aws:s3/bucket:Bucket", "b", {"bucket": "b"},
                                               aws_provider(region=UNKNOWN_STRING_VALUE)))


def test_replication_is_left_to_the_stack_policy_not_resource_policies():
    assert "s3-replication-in-geography" not in BY_NAME


def test_missing_config_fails_closed():
    bucket = args("aws:s3/bucket:Bucket", "b", {}, aws_provider(), config=None)
    [(message, _)] = check("resource-region-in-geography", bucket)
    assert "--policy-pack-config" in message


def test_missing_config_falls_back_to_the_stack_config_the_cli_passes(monkeypatch):
    monkeypatch.setenv("PULUMI_STACK", "acme/ai-companion/sg")
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(SG_CONFIG["config"]))
    bucket = args("aws:s3/bucket:Bucket", "b", {}, aws_provider(), config=None)
    [(message, _)] = check("resource-region-in-geography", bucket)
    assert "outside SG" in message


def test_config_for_another_stack_is_refused(monkeypatch):
    monkeypatch.setenv("PULUMI_STACK", "acme/ai-companion/us")
    [(message, _)] = check("resource-region-in-geography", args("aws:s3/bucket:Bucket", "b", {}, aws_provider()))
    assert "config.us.json" in message


def test_invalid_config_is_reported_with_the_config_error():
    bad = {"stack": "eu", "config": {**EU_CONFIG["config"], "aws:region": "us-east-1"}}
    [(message, _)] = check("no-nat-gateway", args("aws:ec2/natGateway:NatGateway", "n", {}, aws_provider(), config=bad))
    assert "aws:region: 'us-east-1' is outside geography EU" in message
    # A type the rule does not judge has nothing to check: its policy stays quiet, config or not.
    assert check("no-nat-gateway", args("aws:ec2/vpc:Vpc", "v", {}, aws_provider(), config=bad)) == []


@pytest.mark.parametrize("stack", list_stacks(ROOT))
def test_pack_config_files_match_the_stack_files(stack, project_files):
    path = pack.config_path(stack)
    assert path.exists(), f"missing {path.name}: run python policy/policies.py --write-config"
    assert path.read_text() == pack.render_pack_config(stack), f"{path.name} is stale: run --write-config"
    config = json.loads(path.read_text())
    assert config["all"] == {"enforcementLevel": "mandatory"}
    assert set(config) - {"all"} == set(pack.POLICY_NAMES)
    ctx, region = pack.context_for(config[pack.POLICY_NAMES[0]])
    cfg = load_stack_config(stack)
    assert ctx == Context.from_config(cfg) and region == cfg.region


def test_no_stale_config_files():
    assert sorted(p.name for p in PACK_DIR.glob("config.*.json")) == sorted(f"config.{s}.json" for s in list_stacks(ROOT))


def test_main_only_builds_the_pack():
    source = (PACK_DIR / "__main__.py").read_text()
    code = [line for line in source.splitlines() if line.strip() and not line.startswith(("#", '"""', " "))]
    assert any(re.match(r"PolicyPack\(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY", c) for c in code)
    assert "from policies import" in source  # the pack directory is sys.path[0] under the CLI


def test_pack_project_file():
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"] == "../.venv"
    assert project["version"]
    assert "-r ../requirements.txt" in (PACK_DIR / "requirements.txt").read_text()
