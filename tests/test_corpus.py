"""Robustness: audit every real public state file of the corpus (stack-export-format.md), copied into tests/fixtures/corpus."""

import json
from pathlib import Path

import pytest

from infra.commands.audit import audit_export
from infra.cli import main
from infra.engine.loaders import load_document, read_export, snapshot_from_document
from infra.engine.model import Secret, is_provider_type
from infra.engine.rules.placement import placement_class

# Copied into the repo with their origins (tests/fixtures/corpus/README.md): no test reads outside the checkout.
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*.json*"))


def by_name(fragment: str) -> Path:
    [path] = [p for p in FILES if fragment in p.name]
    return path


def _norm(v):
    if isinstance(v, Secret):
        return "<secret>"
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def _key(s):
    return ([(r.urn, r.type, r.custom, r.id, _norm(r.inputs), _norm(r.outputs), r.parent, r.provider, r.region,
              r.region_source) for r in s.resources], s.notes, s.source, s.stack, _norm(s.stack_outputs))


def test_corpus_is_present():
    assert len(FILES) == 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
@pytest.mark.parametrize("stack", ["eu", "us", "sg"])
def test_every_file_audits_without_crashing(path, stack, tmp_path, capsys):
    out = tmp_path / "report.json"
    # These exports belong to other projects' stacks: judged against ours on purpose.
    code = main(["audit", "--stack", stack, "--export", str(path), "--as-stack", "--format", "json",
                 "--output", str(out)])
    assert code in (0, 1)
    report = json.loads(out.read_text())
    assert report["stack"] == stack and report["resources_checked"] >= 1
    assert (code == 1) == bool(report["findings"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
def test_fast_reader_equals_the_plain_loader(path):
    fast, index = read_export(path)
    assert index is not None
    assert _key(fast) == _key(snapshot_from_document(load_document(path)))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
def test_resources_without_a_provable_region_are_unplaced_not_passed(path):
    report = audit_export(path, "us")
    snapshot, _ = read_export(path)
    unprovable = {r.urn for r in snapshot.resources if r.custom and not is_provider_type(r.type)
                  and r.region is None and placement_class(r) == "regional"}
    assert {u["urn"] for u in report.unplaced} == unprovable
    flagged = {f.urn for f in report.findings if f.rule == "RSD-002"}
    assert flagged == unprovable  # each unplaced resource is named by RSD-002, and nothing else is


def test_the_corpus_has_unplaced_resources_to_judge():
    """The test above means something only if some export has resources with no provable region."""
    counts = {p.name[:40]: len(audit_export(p, "us").unplaced) for p in FILES}
    assert sum(1 for n in counts.values() if n) >= 2, counts


def test_region_only_in_outputs_is_evidence_not_a_pass():
    # #8: no provider region and no regional ARN; S3 outputs.region says eu-central-1.
    report = audit_export(by_name("apps_admin"), "eu")
    assert len(report.unplaced) == 234
    assert any("eu-central-1" in f.message for f in report.findings if f.rule == "RSD-002")


def test_misleading_provider_name_is_judged_by_its_region():
    # #3: provider URN name eu-west-1, inputs.region us-east-1: inside US, outside EU.
    path = by_name("custom-provider")
    eu = audit_export(path, "eu")
    assert [f for f in eu.findings if f.rule == "RSD-003" and f.urn.endswith("::eu-west-1")]
    assert [f for f in eu.findings if f.rule == "RSD-001"]
    us = audit_export(path, "us")
    assert not [f for f in us.findings if f.rule in ("RSD-001", "RSD-003")]


def test_resource_references_are_not_secrets():
    # #4: component outputs hold resource references (same signature key as secrets).
    snapshot, _ = read_export(by_name("ts-ecr-repo"))
    [component] = [r for r in snapshot.resources if r.type == "awsx:ecr:Repository"]
    assert component.outputs["repository"].startswith("urn:pulumi:")
    assert not any(f.rule == "RSD-014" for f in audit_export(by_name("ts-ecr-repo"), "us").findings)


def test_secrets_are_kept_unreadable_and_plaintext_inputs_stay_readable():
    # #10: inputs.secretString plaintext, outputs.secretString ciphertext.
    snapshot, _ = read_export(by_name("secretversion"))
    [version] = [r for r in snapshot.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert version.inputs["secretString"] == "MySecretVersionValue"
    assert isinstance(version.outputs["secretString"], Secret)


def test_assets_and_archives_are_neither_secrets_nor_references():
    # #6: 22 archives + 2 assets (Lambda code) and one real secret (userPoolClient.clientSecret).
    snapshot, _ = read_export(by_name("my-first-webiny"))
    lambdas = [r for r in snapshot.resources if r.type == "aws:lambda/function:Function"]
    assert lambdas and all(r.inputs.get("code") is None for r in lambdas)
    secrets = [(r.type, k) for r in snapshot.resources for k, v in r.outputs.items() if isinstance(v, Secret)]
    assert secrets == [("aws:cognito/userPoolClient:UserPoolClient", "clientSecret")]


def test_unreadable_secret_in_a_checked_field_is_reported():
    # #9 (b64 secrets provider): secrets that sit in fields the rules must read.
    report = audit_export(by_name("checkpoint-secrets"), "us")
    assert [f for f in report.findings if f.rule == "RSD-014"]


def test_pending_operation_resources_are_audited():
    # #2: the only resource is a provider with a pending delete; no Stack resource.
    report = audit_export(by_name("dev.json.bak"), "eu")
    assert any("pending" in n for n in report.notes)
    assert [f for f in report.findings if f.rule == "RSD-003"]  # ca-central-1 provider in an EU audit


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
@pytest.mark.parametrize("stack", ["eu", "us", "ca"])
def test_raw_prescreen_never_changes_the_verdict(path, stack):
    # The whole-document prescreen is only a speed-up: same findings as per-resource evaluation.
    from infra.engine.rules import Context, evaluate
    from infra.program.stackfiles import load_stack_config

    ctx = Context.from_config(load_stack_config(stack))
    snapshot, raw = read_export(path, stack=stack)
    fast = [(f.rule, f.urn, f.message) for f in evaluate(snapshot, ctx, raw=raw).findings]
    plain = [(f.rule, f.urn, f.message) for f in evaluate(snapshot, ctx).findings]
    assert fast == plain


@pytest.mark.parametrize("stack,regions", [
    ("eu", ["eu-central-1", "eu-central-2", "ca-central-1", "eu-west-1", "us-east-1", "eusc-de-east-1"]),
    ("us", ["us-east-1", "us-east-2", "ap-southeast-1", "us-west-2", "eu-central-1"]),
])
def test_raw_prescreen_sees_regions_sharing_the_home_regions_direction(stack, regions, tmp_path):
    from infra.engine.rules import Context, evaluate
    from infra.program.stackfiles import load_stack_config

    ctx = Context.from_config(load_stack_config(stack))
    home = ctx.geography.home_region
    prov = f"urn:pulumi:{stack}::p::pulumi:providers:aws::p"
    resources = [{"urn": prov, "custom": True, "id": "x", "type": "pulumi:providers:aws", "inputs": {"region": home}}]
    for i, region in enumerate(regions):
        resources.append({"urn": f"urn:pulumi:{stack}::p::aws:ec2/vpcEndpoint:VpcEndpoint::e{i}", "custom": True,
                          "id": f"e{i}", "type": "aws:ec2/vpcEndpoint:VpcEndpoint", "provider": f"{prov}::x",
                          "inputs": {"serviceName": f"com.amazonaws.{region}.s3", "kms": f"arn:aws:kms:{home}:1:key/k"}})
    logging = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"  # RSD-045 requires it
    resources.append({"urn": f"urn:pulumi:{stack}::p::{logging}::log", "custom": True, "id": home, "type": logging,
                      "provider": f"{prov}::x", "inputs": {"loggingConfig": {"cloudwatchConfig": {"logGroupName": "g"}}}})
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 3, "deployment": {"resources": resources}}))
    snapshot, raw = read_export(path, stack=stack)
    fast = {f.urn.rsplit("::", 1)[-1] for f in evaluate(snapshot, ctx, raw=raw).findings}
    expected = {f"e{i}" for i, r in enumerate(regions) if r not in ctx.geography.regions}
    assert fast == expected == {f.urn.rsplit("::", 1)[-1] for f in evaluate(snapshot, ctx).findings}
