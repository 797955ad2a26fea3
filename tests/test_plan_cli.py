"""`residency plan`: the table, --out exports, --all progress, exit codes, `python -m infra`."""

from __future__ import annotations

import json
import subprocess
import sys

import pulumi
import pulumi_aws as aws

import stacks.program
from infra.cli import main
from infra.engine.loaders import load_document, snapshot_from_document
from infra.program.stackfiles import ROOT, list_stacks
from cli_run import residency, run_script


def test_table_lists_type_name_region_and_option(capsys):
    assert main(["plan", "--stack", "eu"]) == 0
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:4]) for line in out.splitlines()}
    assert ("aws:eks/cluster:Cluster", "serving-eks", "eu-central-1", "zmo") in rows
    assert ("aws:bedrock/guardrail:Guardrail", "bedrock-guardrail", "eu-central-1", "zm_plus") in rows
    assert ("aws:networkfirewall/firewall:Firewall", "egress-firewall", "eu-central-1", "federated") in rows
    assert "openai: openai eu.api.openai.com (processing: in_geography)" in out
    assert "findings: 0" in out


def test_out_writes_a_v3_export_with_realistic_outputs_that_audits_clean(tmp_path, capsys):
    out = tmp_path / "eu.json"
    assert main(["plan", "--stack", "eu", "--out", str(out)]) == 0
    doc = load_document(out)
    assert doc["version"] == 3 and doc["deployment"]["manifest"]["version"] == "offline-plan"
    resources = doc["deployment"]["resources"]
    cluster = next(r for r in resources if r["type"] == "aws:eks/cluster:Cluster")
    # Engine-style URN: the parent type chain, no Stack type.
    assert cluster["urn"] == "urn:pulumi:eu::ai-companion::ai-companion:zmo:ServingCluster$aws:eks/cluster:Cluster::serving-eks"
    assert cluster["outputs"]["arn"] == "arn:aws:eks:eu-central-1:123456789012:cluster/serving-eu"
    assert cluster["provider"].startswith("urn:pulumi:eu::ai-companion::pulumi:providers:aws::aws-eu-central-1::")
    bucket = next(r for r in resources if r["type"] == "aws:s3/bucket:Bucket")
    assert bucket["protect"] is True and bucket["outputs"]["arn"].startswith("arn:aws:s3:::")
    snapshot = snapshot_from_document(doc)  # no default region: everything must be placed by provider
    assert not [r.urn for r in snapshot.custom_resources() if r.type.startswith("aws:") and r.region != "eu-central-1"]
    capsys.readouterr()
    assert main(["audit", "--stack", "eu", "--export", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_all_plans_every_stack_file_with_progress_on_stderr(tmp_path, capsys):
    assert main(["plan", "--all", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    stacks = list_stacks()
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == stacks
    for i, stack in enumerate(stacks, 1):
        assert f"[{i}/{len(stacks)}] {stack}:" in captured.err
    assert captured.out.count("\nfindings: 0") == len(stacks)


def test_findings_exit_1_and_name_the_resource(monkeypatch, capsys):
    build = stacks.program.build

    def leaky(cfg):
        outputs = build(cfg)
        # A replica region outside SG, under the stack's own provider: a data path out of the region.
        provider = aws.Provider("replica", region="us-east-1")
        aws.s3.Bucket("replica", opts=pulumi.ResourceOptions(provider=provider))
        return outputs

    monkeypatch.setattr(stacks.program, "build", leaky)
    assert main(["plan", "--stack", "sg"]) == 1
    out = capsys.readouterr().out
    assert "RSD-001" in out and "aws:s3/bucket:Bucket::replica" in out


def test_python_m_infra_is_the_same_cli_as_the_console_script():
    argv = ["plan", "--stack", "ksa"]
    module = subprocess.run([sys.executable, "-m", "infra", *argv], cwd=ROOT, capture_output=True, text=True)
    script = run_script(argv, cwd=ROOT)  # the installed script (tests/cli_run.py: a fork or an exec of it)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout and "me-west-1" in module.stdout


def test_usage_errors_exit_2_without_traceback():
    result = run_script(["plan"], cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "one of the arguments --stack --all is required" in result.stderr


def test_export_is_deterministic_and_parents_come_first():
    """Registration order under mocks follows thread scheduling; the export must not."""
    from infra.harness.synth import synthesize

    first, second = (json.dumps(synthesize("us").export, sort_keys=True) for _ in range(2))
    assert first == second
    seen = set()
    for r in json.loads(first)["deployment"]["resources"]:
        for before in (r.get("parent"), (r.get("provider") or "").rpartition("::")[0], *r.get("dependencies", [])):
            assert not before or before in seen, f"{r['urn']} before {before}"
        seen.add(r["urn"])


def test_out_carries_dependencies_ids_and_source_positions_as_a_stack_export_does(tmp_path):
    """What `pulumi stack export` holds beyond inputs and outputs (stack-export-format: ResourceV3):
    propertyDependencies per input key (null when empty, Go's nil slice), the `id` among the
    outputs of pulumi-aws (Terraform-bridged) resources, and the project-relative source position."""
    out = tmp_path / "eu.json"
    result = residency("plan", "--stack", "eu", "--out", out)
    assert result.rc == 0, result.err
    resources = load_document(out)["deployment"]["resources"]
    by_name = {r["urn"].rsplit("::", 1)[-1]: r for r in resources}
    rule, domains = by_name["egress-dns-allow-connectors"], by_name["egress-dns-connectors"]
    assert rule["propertyDependencies"]["firewallDomainListId"] == [domains["urn"]]
    assert rule["propertyDependencies"]["action"] is None
    assert set(rule["propertyDependencies"]) == set(rule["inputs"])
    assert domains["urn"] in rule["dependencies"]
    custom_aws = [r for r in resources if r["custom"] and r["type"].startswith("aws:")]
    assert custom_aws and all(r["outputs"]["id"] == r["id"] for r in custom_aws)
    path, _, line = by_name["egress-allow-domains"]["sourcePosition"].removeprefix("project:///").partition("#")
    assert (ROOT / path).read_text().splitlines()[int(line) - 1].strip().startswith("self.allowlist = aws.networkfirewall.RuleGroup(")
    assert all(r["sourcePosition"].startswith("project:///") for r in resources if r["type"] != "pulumi:pulumi:Stack"
               and not r["type"].startswith("pulumi:providers:"))
