"""`residency audit --stack S --export FILE`: exit codes, formats, atomic output."""

import json

import pytest

from infra.cli import main
from infra.program.stackfiles import ROOT
from stack_plans import planned

ACCOUNT = "123456789012"


def export_with(stack: str, *extra: dict) -> dict:
    """The stack's own offline-plan export (a real v3 export) plus extra resources."""
    doc = json.loads(json.dumps(planned(stack).export))
    doc["deployment"]["resources"].extend(extra)
    return doc


def foreign_bucket(stack: str = "eu") -> dict:
    return {"urn": f"urn:pulumi:{stack}::ai-companion::aws:s3/bucket:Bucket::stray", "custom": True, "id": "stray",
            "type": "aws:s3/bucket:Bucket", "inputs": {"region": "us-east-1", "bucket": "stray"},
            "outputs": {"arn": "arn:aws:s3:::stray", "region": "us-east-1"}}


@pytest.fixture
def write(tmp_path):
    def _write(doc, name="export.json"):
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return str(path)

    return _write


def audit(*args):
    return main(["audit", *args])


def test_clean_export_exits_0(write, capsys):
    assert audit("--stack", "eu", "--export", write(export_with("eu"))) == 0
    assert "result: OK" in capsys.readouterr().out


def test_findings_exit_1_and_text_names_the_rule(write, capsys):
    assert audit("--stack", "eu", "--export", write(export_with("eu", foreign_bucket()))) == 1
    out = capsys.readouterr().out
    assert "RSD-001 resource_region_in_geography" in out and "stray" in out


def test_same_export_judged_against_another_geography(write):
    # The EU stack's state audited as the US stack on purpose: everything sits outside US.
    assert audit("--stack", "us", "--export", write(export_with("eu")), "--as-stack") == 1


def test_export_of_another_stack_is_refused_naming_both(write, capsys):
    # Without --as-stack this was a flood of findings with no word that the export is eu's.
    assert audit("--stack", "us", "--export", write(export_with("eu"))) == 2
    err = capsys.readouterr().err
    assert "export of stack 'eu'" in err and "not of stack 'us'" in err and "--as-stack" in err
    assert "Traceback" not in err


def test_json_report_shape(write, capsys):
    assert audit("--stack", "eu", "--export", write(export_with("eu", foreign_bucket())), "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert {"stack", "geography", "resources_checked", "findings", "unplaced", "declared_paths"} <= set(report)
    assert report["stack"] == "eu" and report["geography"] == "EU"
    custom = [r for r in planned("eu").snapshot.resources if r.custom]
    assert report["resources_checked"] == len(custom) + 1
    [finding] = report["findings"]
    assert {"rule", "severity", "urn", "type", "message"} <= set(finding)
    assert finding["rule"] == "RSD-001" and finding["severity"] == "CRITICAL"
    assert finding["type"] == "aws:s3/bucket:Bucket"
    # Declared data paths come from the stack output `declaredDataPaths` of the export.
    assert {p["host"] for p in report["declared_paths"]} == {"eu.api.openai.com", "api.eu.residency.elevenlabs.io"}


def test_sarif_report_shape(write, capsys):
    assert audit("--stack", "eu", "--export", write(export_with("eu", foreign_bucket())), "--format", "sarif") == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules][:2] == ["RSD-001", "RSD-002"]
    assert all(r["helpUri"] and r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    [result] = run["results"]
    assert result["ruleId"] == "RSD-001" and result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == "RSD-001"
    loc = result["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "Pulumi.eu.yaml"
    assert loc["logicalLocations"][0]["fullyQualifiedName"].endswith("::stray")


def test_checkpoint_and_v4_documents_are_accepted(write):
    doc = export_with("eu")
    checkpoint = {"version": 3, "checkpoint": {"stack": "eu", "latest": doc["deployment"]}}
    assert audit("--stack", "eu", "--export", write(checkpoint, "cp.json")) == 0
    v4 = {**doc, "version": 4, "features": ["refreshBeforeUpdate"]}
    assert audit("--stack", "eu", "--export", write(v4, "v4.json")) == 0


@pytest.mark.parametrize("content,needle", [
    ("not json", "is not JSON"),
    ('{"version": 2, "deployment": {}}', "unsupported deployment version 2"),
    ('{"hello": "world"}', "no integer 'version'"),
    ('{"version": 3}', "neither 'deployment'"),
    ('{"version": 3, "deployment": {"resources": [{"type": "x"}]}}', "resource #0: no 'urn'"),
    ('[1, 2]', "no integer 'version'"),
])
def test_bad_files_exit_2_with_a_message_and_no_traceback(write, capsys, content, needle):
    assert audit("--stack", "eu", "--export", write(content)) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_missing_file_and_unknown_stack_exit_2(write, tmp_path, capsys):
    assert audit("--stack", "eu", "--export", str(tmp_path / "missing.json")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert audit("--stack", "mars", "--export", write(export_with("eu"))) == 2
    assert "unknown stack 'mars'" in capsys.readouterr().err


def test_live_only_flags_are_refused_with_export(write, capsys):
    assert audit("--stack", "eu", "--export", write(export_with("eu")), "--regions", "eu-west-1") == 2
    assert "apply to --live and --org only" in capsys.readouterr().err


def test_output_is_written_atomically(write, tmp_path):
    out = tmp_path / "report.sarif"
    assert audit("--stack", "eu", "--export", write(export_with("eu")), "--format", "sarif", "--output", str(out)) == 0
    assert json.loads(out.read_text())["version"] == "2.1.0"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_input_leaves_an_existing_output_untouched(write, tmp_path):
    out = tmp_path / "report.json"
    out.write_text("previous")
    assert audit("--stack", "eu", "--export", write("garbage"), "--output", str(out), "--format", "json") == 2
    assert out.read_text() == "previous"


def test_output_into_a_missing_directory_creates_it_like_plan_out(write, tmp_path):
    target = tmp_path / "no" / "r.json"
    assert audit("--stack", "eu", "--export", write(export_with("eu")), "--output", str(target)) == 0
    assert "result: OK" in target.read_text()


# --- `--live` wiring (the scanner itself is tested in test_live_*; here it is replaced) ----------

def fake_scan(monkeypatch, resources, not_checked=()):
    from infra.engine import live
    from infra.engine.model import Snapshot

    calls = {}

    def scan_account(cfg, profile=None, regions=None, endpoint_url=None, progress=None, **kw):
        calls.update(stack=cfg.stack, profile=profile, regions=regions, endpoint_url=endpoint_url)
        progress("scanning (fake)")
        return live.LiveScan(Snapshot(list(resources), "live", cfg.stack), [live.NotChecked(*n) for n in not_checked])

    monkeypatch.setattr(live, "scan_account", scan_account)
    return calls


def live_bucket(region):
    from infra.engine.model import Resource

    return Resource(urn=f"arn:aws:s3:::b-{region}", type="aws:s3/bucket:Bucket", name=f"b-{region}", id=f"b-{region}",
                    inputs={"region": region, "bucket": f"b-{region}"})


def test_live_clean_exits_0_and_passes_the_flags(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    calls = fake_scan(monkeypatch, [live_bucket("eu-central-1")])
    assert audit("--stack", "eu", "--live", "--profile", "audit", "--regions", "eu-central-1,eu-west-1") == 0
    assert calls == {"stack": "eu", "profile": "audit", "regions": "eu-central-1,eu-west-1",
                     "endpoint_url": "http://127.0.0.1:5999"}
    captured = capsys.readouterr()
    assert "scanning (fake)" in captured.err and "result: OK" in captured.out


def test_live_findings_exit_1(monkeypatch, capsys):
    fake_scan(monkeypatch, [live_bucket("us-east-1")])
    assert audit("--stack", "eu", "--live", "--format", "json") == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["rule"] == "RSD-001"


def test_incomplete_live_scan_exits_3_even_with_findings(monkeypatch, capsys):
    fake_scan(monkeypatch, [live_bucket("us-east-1")], [("ec2", "eu-west-1", "AccessDenied")])
    assert audit("--stack", "eu", "--live") == 3
    out = capsys.readouterr().out
    assert "not checked: ec2 in eu-west-1: AccessDenied" in out and "RSD-001" in out
    assert "INCOMPLETE" in out


def test_incomplete_live_scan_json_lists_what_was_not_checked(monkeypatch, capsys):
    fake_scan(monkeypatch, [], [("iam", "global", "throttled")])
    assert audit("--stack", "eu", "--live", "--format", "json") == 3
    assert json.loads(capsys.readouterr().out)["not_checked"] == [
        {"service": "iam", "region": "global", "reason": "throttled", "kind": "not checked"}]


def test_sarif_from_the_eu_plan_validates_and_sits_where_a_pull_request_changes_it(tmp_path):
    """Through the console script: the eu plan's export, audited against an eu stack file without
    the federated option, gives RSD-050 (decided by `ai-companion:options`: at that key's line) and
    RSD-051 (an allow-listed host: at the program line that registered the rule group). The SARIF
    file validates against the OASIS schema with formats checked; every link is absolute."""
    from cli_run import project_copy, residency, stack_config
    from test_report import sarif_errors

    from infra.program.stackfiles import stack_key_lines

    config = {k: v for k, v in stack_config("eu").items() if k != "ai-companion:federated"}
    config["ai-companion:options"] = ["zmo", "zm_plus"]
    (tmp_path / "project").mkdir()
    project = project_copy(tmp_path / "project", eu=config)
    export, sarif_path = tmp_path / "eu.json", tmp_path / "eu.sarif"
    assert residency("plan", "--stack", "eu", "--out", export).rc == 0
    done = residency("audit", "--stack", "eu", "--export", export, "--format", "sarif", "--output", sarif_path,
                     "--docs-url", "https://github.com/acme/ai-companion/blob/main/docs/rules.md", project=project)
    assert done.rc == 1, done.err
    sarif = json.loads(sarif_path.read_text())
    assert sarif_errors(sarif) == []
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["informationUri"] == "https://github.com/acme/ai-companion/blob/main/docs/rules.md"
    assert run["tool"]["driver"]["rules"][0]["helpUri"].endswith("/docs/rules.md#rsd-001")
    where = {}
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        where.setdefault(result["ruleId"], set()).add((location["artifactLocation"]["uri"], location["region"]["startLine"]))
    options_line = stack_key_lines("eu", project)["ai-companion:options"]
    assert (project / "Pulumi.eu.yaml").read_text().splitlines()[options_line - 1].strip().startswith("ai-companion:options:")
    assert where["RSD-050"] == {("Pulumi.eu.yaml", options_line)}
    registered = {(ROOT / path).read_text().splitlines()[line - 1].split("= ")[-1] for path, line in where["RSD-051"]}
    assert {path for path, _ in where["RSD-051"]} == {"infra/program/components/egress.py"}
    assert registered == {"aws.networkfirewall.RuleGroup(", "aws.route53.ResolverFirewallDomainList("}


def test_a_relative_docs_url_is_refused_before_anything_is_written(tmp_path):
    from cli_run import residency

    out = tmp_path / "eu.sarif"
    done = residency("audit", "--stack", "eu", "--export", tmp_path / "missing.json", "--format", "sarif",
                     "--output", out, "--docs-url", "docs/rules.md")
    assert done.rc == 2 and "--docs-url: 'docs/rules.md' is not an absolute" in done.err
    assert "Traceback" not in done.err and not out.exists()
