"""Report rendering: text, JSON and SARIF 2.1.0 (GitHub code scanning)."""

import json
from pathlib import Path

import jsonschema
import pytest

from infra.engine.model import Finding
from infra.engine.outputs import render
from infra.engine.report import docs_url, render_sarif, sarif_rules, to_dict
from infra.engine.rules import RULES, RULES_BY_ID
from infra.engine.rules.engine import Report
from infra.program.errors import InputError
from infra.program.stackfiles import ROOT, stack_key_lines

# The OASIS SARIF 2.1.0 schema (tests/fixtures/sarif/README.md has its source).
SARIF_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())
FORMATS = jsonschema.FormatChecker()


def sarif_errors(document: dict) -> list[str]:
    """Schema violations of a SARIF document, with the URI and date-time formats checked."""
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def report(findings=(), not_checked=(), unplaced=()):
    return Report(stack="eu", geography="EU", resources_checked=3, findings=list(findings),
                  unplaced=list(unplaced),
                  declared_paths=[{"connector": "openai", "provider": "openai", "host": "eu.api.openai.com",
                                   "processing": "in_geography"}],
                  regions=["eu-central-1"], source="export", not_checked=list(not_checked))


F = Finding("RSD-021", "CRITICAL", "urn:pulumi:eu::ai-companion::aws:ec2/natGateway:NatGateway::nat",
            "aws:ec2/natGateway:NatGateway", "public NAT gateway, and ...", "NAT gateway outside the Federated egress path")


def test_json_has_the_documented_keys():
    d = json.loads(render(report([F], unplaced=[{"urn": "u", "type": "t"}]), "json"))
    assert list(d)[:6] == ["stack", "geography", "regions", "source", "resources_checked", "findings"]
    assert {"unplaced", "declared_paths", "notes", "not_checked"} <= set(d)
    assert d["findings"][0] == {"rule": "RSD-021", "name": "no_nat_gateway", "severity": "CRITICAL", "urn": F.urn,
                                "type": F.type, "message": F.message, "title": F.title}
    assert d["unplaced"] == [{"urn": "u", "type": "t"}]


def test_text_lists_findings_unplaced_paths_and_not_checked():
    text = render(report([F], not_checked=[{"service": "ec2", "region": "eu-west-1", "reason": "AccessDenied"}],
                         unplaced=[{"urn": "u1", "type": "aws:s3/bucket:Bucket"}]), "text")
    assert "CRITICAL RSD-021 no_nat_gateway" in text
    assert "unplaced (no provable region):" in text and "u1" in text
    assert "eu.api.openai.com" in text
    assert "not checked: ec2 in eu-west-1: AccessDenied" in text
    closing = text.rstrip().splitlines()[-1]
    assert closing.startswith("result: INCOMPLETE (some services/regions were not checked)")
    assert "1 unit(s) not checked, so this is no verdict; 1 finding(s) in what was checked" in closing


def test_clean_text_says_ok():
    assert render(report(), "text").rstrip().endswith("result: OK")


def test_sarif_driver_lists_every_rule_with_help():
    rules = sarif_rules()
    assert [r["id"] for r in rules] == [r.id for r in RULES]
    for r, rule in zip(rules, RULES):
        assert r["name"] == rule.name and r["shortDescription"]["text"] == rule.title
        assert rule.remediation in r["help"]["text"] and r["helpUri"].endswith(f"#{rule.id.lower()}")
        assert r["properties"]["security-severity"] and "security" in r["properties"]["tags"]


def test_sarif_result_location_and_level():
    sarif = render_sarif(report([F]))  # no source position: the stack file
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    [res] = run["results"]
    assert res["ruleId"] == "RSD-021" and res["level"] == "error"
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == "RSD-021"
    loc = res["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "Pulumi.eu.yaml"
    assert loc["physicalLocation"]["region"]["startLine"] == 1
    assert loc["logicalLocations"][0] == {"fullyQualifiedName": F.urn, "name": "nat", "kind": "resource"}
    assert res["partialFingerprints"]["residencyFinding/v1"]
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_sarif_marks_an_incomplete_scan():
    run = render_sarif(report(not_checked=[{"service": "iam", "region": "global", "reason": "denied"}]))["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False


def test_help_uri_is_absolute_in_github_actions(monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/ai-companion")
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    uri = sarif_rules()[0]["helpUri"]
    assert uri == "https://github.com/acme/ai-companion/blob/abc123/docs/rules.md#rsd-001"


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="allowed: text, json, sarif"):
        render(report(), "xml")


def test_to_dict_is_json_serialisable_with_every_rule():
    findings = [Finding(r.id, r.severity, "urn:x", "t", "m", r.title) for r in RULES]
    assert json.loads(json.dumps(to_dict(report(findings))))["findings"][-1]["rule"] == RULES[-1].id


def test_text_summary_groups_findings_by_rule_and_units_by_reason():
    g = Finding("RSD-030", "CRITICAL", "urn:b", "aws:s3/bucketReplicationConfig:BucketReplicationConfig", "m", "t")
    units = [{"service": "ec2", "region": "eu-west-1", "reason": "AccessDenied ...", "kind": "access denied"},
             {"service": "sns", "region": "eu-west-1", "reason": "ReadTimeoutError ...", "kind": "timed out"},
             {"service": "iam", "region": "global", "reason": "AccessDenied ...", "kind": "access denied"}]
    text = render(report([F, F, g], not_checked=units), "text")
    lines = text.splitlines()
    assert lines[0].endswith("[INCOMPLETE SCAN]")
    summary = lines[lines.index("summary: 3 finding(s) by rule:"):]
    assert summary[1:3] == ["  RSD-021 no_nat_gateway: 2", "  RSD-030 s3_replication_in_geography: 1"]
    assert summary[3:6] == ["summary: 3 unit(s) not checked by reason:", "  access denied: 2", "  timed out: 1"]
    # Each unit is named once; units of one reason are listed together.
    named = [line for line in lines if line.startswith("not checked: ")]
    assert [n.split(":")[1].strip() for n in named] == ["ec2 in eu-west-1", "iam in global", "sns in eu-west-1"]


def test_incomplete_scan_with_no_findings_never_closes_on_a_bare_zero():
    text = render(report(not_checked=[{"service": "ec2", "region": "eu-west-1", "reason": "x", "kind": "timed out"}]),
                  "text")
    closing = text.rstrip().splitlines()[-1]
    assert closing.startswith("result: INCOMPLETE") and "0 finding(s) in what was checked" in closing
    assert "no verdict" in closing


def test_formats_are_really_checked():
    """Without an RFC 3986 parser jsonschema skips `uri` silently: the check must be live."""
    assert {"uri", "uri-reference", "date-time"} <= set(FORMATS.checkers)
    assert not FORMATS.conforms("docs/rules.md#rsd-001", "uri")
    assert FORMATS.conforms("https://example.com/docs/rules.md#rsd-001", "uri")


def test_sarif_with_every_rule_validates_against_the_schema_with_formats():
    findings = [Finding(r.id, r.severity, f"urn:pulumi:eu::ai-companion::t::{r.name}", "t", "m", r.title,
                        "project:///infra/program/components/egress.py#10") for r in RULES]
    sarif = render_sarif(report(findings, not_checked=[{"service": "iam", "region": "global", "reason": "x"}]))
    assert sarif_errors(sarif) == []


def test_a_relative_help_uri_fails_the_schema():
    """What SARIF with `helpUri: docs/rules.md#...` (a relative link) gets from the schema."""
    sarif = render_sarif(report([F]))
    sarif["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] = "docs/rules.md#rsd-001"
    assert any("is not a 'uri'" in e for e in sarif_errors(sarif))


def test_help_and_information_uri_are_absolute_by_default(monkeypatch):
    for name in ("RESIDENCY_DOCS_URL", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    driver = render_sarif(report([F]))["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == (ROOT / "docs" / "rules.md").as_uri()
    assert driver["rules"][0]["helpUri"] == driver["informationUri"] + "#rsd-001"


def test_docs_url_is_configurable_and_must_be_absolute(monkeypatch):
    monkeypatch.setenv("RESIDENCY_DOCS_URL", "https://docs.example.com/residency/rules.md")
    assert sarif_rules()[0]["helpUri"] == "https://docs.example.com/residency/rules.md#rsd-001"
    assert docs_url("https://example.com/r.md") == "https://example.com/r.md"  # the flag wins
    with pytest.raises(InputError, match="--docs-url: 'docs/rules.md' is not an absolute"):
        docs_url("docs/rules.md")
    monkeypatch.setenv("RESIDENCY_DOCS_URL", "rules.md")
    with pytest.raises(InputError, match="RESIDENCY_DOCS_URL: 'rules.md'"):
        docs_url()


def _location(finding):
    [result] = render_sarif(report([finding]))["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]
    return region["artifactLocation"]["uri"], region["region"]["startLine"], result.get("relatedLocations", [])


def test_a_resource_finding_points_at_the_program_line_that_registered_it():
    positioned = Finding(**{**F.__dict__, "source_position": "project:///infra/program/components/egress.py#207,9"})
    assert _location(positioned) == ("infra/program/components/egress.py", 207, [])


@pytest.mark.parametrize("position", ["", "project:///.venv/lib/python3.11/site-packages/pulumi/x.py#3",
                                      "project:///no/such/file.py#3", "file:///infra/program/config.py#3",
                                      "project:///infra/program/config.py#0"])
def test_without_a_position_in_the_repository_a_finding_points_at_the_stack_file(position):
    assert _location(Finding(**{**F.__dict__, "source_position": position}))[:2] == ("Pulumi.eu.yaml", 1)


def test_a_finding_decided_by_a_stack_key_points_at_that_keys_line():
    rule = RULES_BY_ID["RSD-053"]
    assert rule.stack_key == "ai-companion:federated"
    finding = Finding("RSD-053", rule.severity, F.urn, "aws:networkfirewall/ruleGroup:RuleGroup", "m", rule.title,
                      "project:///infra/program/components/egress.py#207")
    uri, line, related = _location(finding)
    assert (uri, line) == ("Pulumi.eu.yaml", stack_key_lines("eu")["ai-companion:federated"])
    assert related[0]["physicalLocation"]["artifactLocation"]["uri"] == "infra/program/components/egress.py"
