"""The formats security tools read: OCSF 1.3.0 Detection Finding, ASFF (and `--to-security-hub`)
and JUnit XML, each validated against its published schema shipped in schemas/ (with its source),
through the console script on a real export, and with a broken document the validation refuses
(so the check can fail)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from botocore.stub import Stubber
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cli_run import residency
from infra.engine.model import Finding, Suppression
from infra.engine.outputs import FORMATS, OUTPUTS, render
from infra.engine.rules import RULES_BY_ID
from infra.engine.rules.engine import Report
from live_fixtures import aws_env, moto  # noqa: F401
from test_audit_export import export_with, foreign_bucket

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"


def report() -> Report:
    f = Finding("RSD-001", "CRITICAL", "arn:aws:dynamodb:us-west-2:123456789012:table/customers",
                "aws:dynamodb/table:Table", "runs in us-west-2, outside EU", RULES_BY_ID["RSD-001"].title,
                region="us-west-2", account=ACCOUNT)
    quiet = Finding("RSD-057", "CRITICAL", "live:eu-central-1:aws:s3/bucketPolicy:BucketPolicy:open-data",
                    "aws:s3/bucketPolicy:BucketPolicy", "policy: Statement[0] allows Principal '*'",
                    RULES_BY_ID["RSD-057"].title, region="eu-central-1", account=ACCOUNT,
                    suppressed=Suppression("public open-data set, reviewed", "data-team", "2027-01-31"))
    return Report(stack="eu", geography="EU", resources_checked=12, findings=[f], unplaced=[], declared_paths=[],
                  regions=["eu-central-1"], source="live", account=ACCOUNT, home_region="eu-central-1",
                  suppressed=[quiet], not_checked=[{"service": "kms", "region": "eu-west-1", "reason": "AccessDenied",
                                                   "kind": "access denied"}])


def ocsf_validator():
    bundle = json.loads((ROOT / OUTPUTS["ocsf"].schema).read_text())
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema, DRAFT202012)) for uri, schema in bundle["objects"].items())
    return jsonschema.Draft202012Validator(bundle["class"], registry=registry)


def asff_validator():
    return jsonschema.Draft202012Validator(json.loads((ROOT / OUTPUTS["asff"].schema).read_text()))


def junit_schema():
    return xmlschema.XMLSchema(str(ROOT / OUTPUTS["junit"].schema))


def test_the_registry_offers_every_format_to_the_audit():
    assert FORMATS[:3] == ("text", "json", "sarif") and {"ocsf", "asff", "junit"} <= set(FORMATS)
    assert all(OUTPUTS[n].help for n in FORMATS)
    for name in ("ocsf", "asff", "junit"):
        assert (ROOT / OUTPUTS[name].schema).is_file()


def test_ocsf_detection_findings_validate_and_keep_suppressed_and_not_checked():
    events = json.loads(render(report(), "ocsf"))
    validator = ocsf_validator()
    for event in events:
        validator.validate(event)
    assert [e["status"] for e in events] == ["New", "Suppressed", "Other"]
    assert events[0]["class_uid"] == 2004 and events[0]["severity_id"] == 5
    assert events[0]["cloud"]["account"]["uid"] == ACCOUNT and events[0]["resources"][0]["region"] == "us-west-2"
    assert events[0]["finding_info"]["analytic"]["uid"] == "RSD-001"
    broken = {**events[0], "class_uid": 2001}
    assert list(validator.iter_errors(broken))


def test_asff_findings_validate_against_the_schema_and_botocore():
    findings = json.loads(render(report(), "asff"))
    validator = asff_validator()
    for finding in findings:
        validator.validate(finding)
    assert [f["Workflow"]["Status"] for f in findings] == ["NEW", "SUPPRESSED", "NEW"]
    assert [f["Compliance"]["Status"] for f in findings] == ["FAILED", "FAILED", "NOT_AVAILABLE"]
    assert findings[0]["ProductArn"] == f"arn:aws:securityhub:eu-central-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert list(validator.iter_errors({**findings[0], "Severity": {"Label": "SEVERE"}}))
    # botocore validates the request against the Security Hub model before it is sent.
    import boto3
    client = boto3.client("securityhub", region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 3, "FailedFindings": []},
                          {"Findings": findings})
        client.batch_import_findings(Findings=findings)


def test_junit_xml_validates_against_the_ant_junit_schema():
    text = render(report(), "junit")
    schema = junit_schema()
    schema.validate(text)
    suite = ET.fromstring(text).find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    # one per quiet rule (45), one per finding (2: their rules are not quiet), one per unit not checked
    assert int(suite.get("tests")) == len(RULES_BY_ID) - 2 + 2 + 1
    assert not schema.is_valid(text.replace('package="residency" ', ""))


@pytest.mark.parametrize("fmt", ["ocsf", "asff", "junit"])
def test_each_format_through_the_console_script(fmt, tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export_with("eu", foreign_bucket())))
    result = residency("audit", "--stack", "eu", "--export", str(path), "--format", fmt,
                       "--output", str(tmp_path / f"report.{fmt}"), project=ROOT)
    assert result.rc == 1, result.err
    text = (tmp_path / f"report.{fmt}").read_text()
    if fmt == "junit":
        junit_schema().validate(text)
        assert "stray" in text
        return
    docs = json.loads(text)
    validator = ocsf_validator() if fmt == "ocsf" else asff_validator()
    for doc in docs:
        validator.validate(doc)
    assert any("stray" in json.dumps(d) for d in docs)


def test_an_unknown_format_is_bad_input_naming_the_choices(tmp_path):
    result = residency("audit", "--stack", "eu", "--export", str(tmp_path / "x.json"), "--format", "xml", project=ROOT)
    assert result.rc == 2 and "ocsf" in result.err and "junit" in result.err


# --- --to-security-hub -------------------------------------------------------------------------------

def test_to_security_hub_imports_every_finding_into_the_home_region(moto, capsys):
    from infra.cli import main

    code = main(["audit", "--live", "--stack", "eu", "--regions", "eu-central-1", "--endpoint-url", moto.url,
                 "--format", "asff", "--to-security-hub"])
    out, err = capsys.readouterr()
    sent = json.loads(out)
    assert code == 1 and sent  # moto's default VPC and the unset account-level S3 public access block
    assert "Security Hub: findings imported into eu-central-1" in err
    hub = moto.client("securityhub", "eu-central-1")
    stored = [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]]
    assert sorted(f["Id"] for f in stored) == sorted(f["Id"] for f in sent)


def test_a_finding_security_hub_refuses_makes_the_delivery_incomplete(aws_env):
    from infra.commands.security_hub import import_findings
    from live_fixtures import StubSession

    session = StubSession()
    findings = json.loads(render(report(), "asff"))
    session.stub("securityhub", "eu-central-1").add_response("batch_import_findings", {
        "FailedCount": 1, "SuccessCount": 2,
        "FailedFindings": [{"Id": findings[0]["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}]})
    failed = import_findings(report(), session=session)
    assert failed == [f"{findings[0]['Id']}: InvalidInput bad"]
    empty = Report(stack="eu", geography="EU", resources_checked=0, findings=[], unplaced=[], declared_paths=[])
    assert import_findings(empty, session=StubSession()) == []  # nothing to send: no call
