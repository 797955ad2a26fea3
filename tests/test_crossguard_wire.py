"""The CrossGuard pack as the Pulumi CLI runs it: a subprocess driven over the analyzer gRPC protocol.

tests/crossguard_wire.py plays the engine (see its docstring for the exact sequence). Every stack
is analysed three ways: its offline plan as an update, the same plan as a first preview (ids,
ARNs and computed names unknown), and the plan with planted violations.

Deployments under the same stack, mode and pack config share one started, configured pack (the
`analyzers` fixture; crossguard_wire.Analyzer says why that is what the CLI's analyzer sees), a
fork of the warm interpreter that answers as the executed pack does (the last test); the tests of
start-up, missing config and refusal exec their own. `stack` is a module-scoped
parameter, so pytest runs each stack's tests together and stops its packs before the next stack.
"""

import json
import os
import shutil

import pytest
import yaml

from infra.program.stackfiles import list_stacks, load_stack_values
from tests import crossguard_wire as wire
from stack_plans import planned

STACKS = list_stacks()
PACK_VERSION = str(yaml.safe_load((wire.PACK_DIR / "PulumiPolicy.yaml").read_text())["version"])


@pytest.fixture(scope="module", params=STACKS)
def stack(request):
    return request.param


@pytest.fixture(scope="module")
def analyzers(stack):
    shared = wire.Analyzers()
    yield shared
    shared.close()


def stack_inputs(stack):
    values, _ = load_stack_values(stack)
    return values, planned(stack).export["deployment"]["resources"], (wire.PACK_DIR / f"config.{stack}.json").read_text()


def planted(stack, resources):
    """Three violations on top of a clean plan: a NAT gateway outside the egress component
    (resource policy), and a bucket behind a provider in a foreign region that an in-region bucket
    replicates to (resource policies on the bucket, RSD-030 in the stack policy)."""
    plan = planned(stack)
    home = next(r for r in resources if r["type"] == "pulumi:providers:aws")
    foreign_region = "us-east-1" if not plan.config.geography.contains("us-east-1") else "eu-west-1"
    root = next(r["urn"] for r in resources if r["type"] == "pulumi:pulumi:Stack")

    def resource(type_, name, inputs, provider, extra_outputs=None):
        urn = f"urn:pulumi:{stack}::ai-companion::{type_}::{name}"
        return {"urn": urn, "type": type_, "custom": True, "id": name, "parent": root, "inputs": inputs,
                "outputs": {**inputs, **(extra_outputs or {})}, "provider": f"{provider['urn']}::{provider['id']}"}

    foreign = {"urn": f"urn:pulumi:{stack}::ai-companion::pulumi:providers:aws::planted-foreign", "id": "planted",
               "type": "pulumi:providers:aws", "custom": True, "parent": root,
               "inputs": {"region": foreign_region}, "outputs": {"region": foreign_region}}
    nat = resource("aws:ec2/natGateway:NatGateway", "planted-nat", {"subnetId": "subnet-1", "connectivityType": "public"}, home)
    dest = resource("aws:s3/bucket:Bucket", "planted-dest", {"bucket": "planted-dest"}, foreign,
                    {"arn": "arn:aws:s3:::planted-dest", "region": foreign_region})
    repl = resource("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "planted-repl",
                    {"bucket": "planted-src", "role": f"arn:aws:iam::123456789012:role/replication",
                     "rules": [{"id": "all", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::planted-dest"}}]},
                    home)
    return resources + [foreign, nat, dest, repl], {"nat": nat["urn"], "dest": dest["urn"], "repl": repl["urn"],
                                                    "foreign": foreign["urn"]}


def test_clean_plan_passes_every_policy_over_the_wire(stack, analyzers):
    values, resources, config = stack_inputs(stack)
    run = analyzers.of_stack(stack, values, config, dry_run=False).deployment(resources)
    assert run.info.name == "ai-companion-residency" and run.info.version == PACK_VERSION
    assert run.info.supportsConfig and len(run.info.policies) > 30
    assert [(d.policy, d.urn, d.message) for d in run.diagnostics] == []
    assert len(run.analyze_seconds) == len(resources)


def test_first_preview_yields_no_mandatory_diagnostic(stack, analyzers):
    values, resources, config = stack_inputs(stack)
    preview = wire.first_preview(resources)
    assert sum(json.dumps(r["inputs"]).count(wire.UNKNOWN) for r in preview) > 20  # the preview has unknowns
    run = analyzers.of_stack(stack, values, config, dry_run=True).deployment(preview)
    assert [(d.policy, d.urn, d.message) for d in run.mandatory()] == []
    for d in run.diagnostics:  # what remains is the pack deferring a check to the update
        assert d.level == "advisory" and f"'ai-companion-residency@v{PACK_VERSION}' during preview" in d.message
        assert "0.0.1" not in d.message


def test_planted_violations_come_back_mandatory_naming_policy_and_urn(stack, analyzers):
    values, resources, config = stack_inputs(stack)
    resources, urns = planted(stack, resources)
    run = analyzers.of_stack(stack, values, config, dry_run=False).deployment(resources)
    found = {(d.policy, d.urn) for d in run.mandatory()}
    assert ("no-nat-gateway", urns["nat"]) in found
    assert ("resource-region-in-geography", urns["dest"]) in found
    assert ("provider-region-in-geography", urns["foreign"]) in found
    assert ("residency-stack-graph", urns["repl"]) in found
    assert any(d.urn == urns["repl"] and "[RSD-030]" in d.message for d in run.mandatory())
    assert {urn for _, urn in found} <= set(urns.values())  # nothing else fires


def test_without_pack_config_the_pack_reads_the_stack_config_the_cli_passes():
    """No --policy-pack-config: the CLI accepts the pack, and PULUMI_CONFIG decides."""
    values, resources, _ = stack_inputs("sg")
    resources, urns = planted("sg", resources)
    run = wire.run_engine("sg", values, resources, None, dry_run=False)
    assert {(d.policy, d.urn) for d in run.mandatory()} >= {("no-nat-gateway", urns["nat"])}
    assert {d.urn for d in run.mandatory()} <= set(urns.values())


def test_without_any_config_the_pack_fails_closed():
    _, resources, _ = stack_inputs("sg")
    run = wire.run_engine("sg", {}, resources, None, dry_run=False)
    custom = {r["urn"] for r in resources if r.get("custom") and not r["type"].startswith("pulumi:providers:")}
    reported = {d.urn for d in run.mandatory() if "--policy-pack-config" in d.message}
    assert custom <= reported


def test_a_bad_enforcement_level_in_the_config_file_is_refused():
    values, resources, _ = stack_inputs("sg")
    with pytest.raises(wire.PackRefused, match="not a valid enforcement level"):
        wire.run_engine("sg", values, resources[:3], json.dumps({"all": "blocking"}), dry_run=False)


def test_a_broken_config_schema_makes_the_cli_refuse_the_pack(tmp_path):
    """The pack's schema says what --policy-pack-config may hold; the CLI validates against it."""
    pack = tmp_path / "policy"
    shutil.copytree(wire.PACK_DIR, pack, ignore=shutil.ignore_patterns("__pycache__"))
    source = (pack / "policies.py").read_text()
    broken = source.replace('"config": {"type": "object"', '"config": {"type": "string"')
    assert broken != source
    (pack / "policies.py").write_text(broken)
    values, resources, config = stack_inputs("sg")
    with pytest.raises(wire.PackRefused) as refused:
        wire.run_engine("sg", values, resources[:3], config, dry_run=False, pack_dir=pack,
                        extra_env={"PYTHONPATH": str(wire.REPO)})
    assert any(e.startswith("no-nat-gateway: ") and "string" in e for e in refused.value.args[0])


@pytest.mark.parametrize("stack", ["eu", "us"], indirect=True)
def test_dns_allow_rules_resolve_their_lists_without_ids_through_property_dependencies(stack, analyzers):
    """Outputs without `id`: RSD-054 finds each ALLOW rule's list through the engine's
    propertyDependencies (as AnalyzeStack sends them) instead of reporting it unresolvable."""
    values, resources, config = stack_inputs(stack)
    lists = {r["id"]: r["urn"] for r in resources
             if r["type"] == "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList"}
    assert lists
    changed = []
    for r in resources:
        if r["urn"] in lists.values():
            r = {**r, "id": "", "outputs": {k: v for k, v in r["outputs"].items() if k != "id"}}
        elif r["type"] == "aws:route53/resolverFirewallRule:ResolverFirewallRule":
            r = {**r, "propertyDependencies": {"firewallDomainListId": [lists[r["inputs"]["firewallDomainListId"]]]}}
        changed.append(r)
    analyzer = analyzers.of_stack(stack, values, config, dry_run=False)  # RSD-054 is the stack policy's
    run = analyzer.stack_analysis(changed)
    assert [(d.policy, d.urn, d.message) for d in run.mandatory()] == []
    without_dependencies = [{k: v for k, v in r.items() if k != "propertyDependencies"} for r in changed]
    run = analyzer.stack_analysis(without_dependencies)
    assert any(d.policy == "residency-stack-graph" and "[RSD-054]" in d.message  # the check is live:
               for d in run.mandatory())  # unresolvable fails closed


@pytest.mark.parametrize("stack", ["sg"], indirect=True)
def test_deferrals_name_the_pack_version_of_pulumipolicy_yaml(stack, analyzers):
    """pulumi-policy hard-codes 0.0.1 in its "can't run during preview" message; the pack hands it
    PulumiPolicy.yaml's version."""
    values, resources, config = stack_inputs(stack)
    preview = wire.first_preview(resources)
    for r in preview:
        if r["type"] == "pulumi:providers:aws":
            r["inputs"] = {**r["inputs"], "region": wire.UNKNOWN}  # region unknown: placement rules defer
    run = analyzers.of_stack(stack, values, config, dry_run=True).deployment(preview)
    assert run.diagnostics and run.mandatory() == []
    assert all(f"'ai-companion-residency@v{PACK_VERSION}' during preview" in d.message for d in run.diagnostics)


def written_export(tmp_path, stack, resources):
    """The plan's export as `--file` reads it: a JSON file, outputs exactly as the plan wrote them."""
    path = tmp_path / f"{stack}.json"
    export = planned(stack).export
    path.write_text(json.dumps({**export, "deployment": {**export["deployment"], "resources": resources}}))
    return path


@pytest.mark.parametrize("stack", ["eu", "us"], indirect=True)
def test_policy_analyze_file_passes_the_plan_export(stack, tmp_path, analyzers):
    """`pulumi policy analyze --file` over the plan's export: no stack config, no dry run, inputs
    to Analyze and outputs (with their `id`) to AnalyzeStack, exactly as the export holds them.

    The local and the global cluster: what differs from an update is the analyzer's environment
    (none), not the stack; every stack's plan, with its pack config, passes as an update above."""
    _, resources, config = stack_inputs(stack)
    run = analyzers.of_policy_analyze(config).analyze_export(written_export(tmp_path, stack, resources))
    assert [(d.policy, d.urn, d.message) for d in run.diagnostics] == []
    assert len(run.analyze_seconds) == len(resources)


@pytest.mark.parametrize("stack", ["eu"], indirect=True)
def test_policy_analyze_file_reports_planted_violations_mandatory(stack, tmp_path, analyzers):
    _, resources, config = stack_inputs(stack)
    resources, urns = planted(stack, resources)
    run = analyzers.of_policy_analyze(config).analyze_export(written_export(tmp_path, stack, resources))
    found = {(d.policy, d.urn) for d in run.mandatory()}
    assert {("no-nat-gateway", urns["nat"]), ("resource-region-in-geography", urns["dest"]),
            ("residency-stack-graph", urns["repl"])} <= found
    assert {urn for _, urn in found} <= set(urns.values())


def test_policy_analyze_file_without_pack_config_fails_closed(tmp_path):
    """In `--file` mode the CLI hands the pack no stack config (no PULUMI_CONFIG or PULUMI_STACK):
    `--policy-pack-config policy/config.<stack>.json` is required, and without it every resource
    is reported rather than passed."""
    _, resources, _ = stack_inputs("sg")  # any stack: sg's plan has 89 resources, eu's 183
    run = wire.policy_analyze(written_export(tmp_path, "sg", resources), None)
    custom = {r["urn"] for r in resources if r.get("custom") and not r["type"].startswith("pulumi:providers:")}
    assert custom <= {d.urn for d in run.mandatory() if "--policy-pack-config" in d.message}


def test_a_pack_forked_from_the_warm_interpreter_answers_as_the_executed_pack_does(monkeypatch):
    """The shared analyzers are forks of tests/cli_zygote.py (`forked_pack`): the same planted
    deployment gets the same answers from a fork and from `python -u -m pulumi.policy`."""
    monkeypatch.delenv("RESIDENCY_TEST_EXEC", raising=False)
    assert wire.pack_forkable(dict(os.environ), wire.PACK_DIR)  # the warm start is a fork here
    values, resources, config = stack_inputs("sg")
    resources, _urns = planted("sg", resources)
    env = wire.deployment_env("sg", values, dry_run=False)
    answers = []
    for warm in (True, False):
        with wire.started(env, config, warm=warm) as analyzer:
            run = analyzer.deployment(resources)
        answers.append(sorted((d.policy, d.urn, d.level, d.message) for d in run.diagnostics))
    assert answers[0] == answers[1] and len(answers[0]) >= 4
