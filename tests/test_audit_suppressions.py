"""residency-suppressions.yaml (infra/engine/suppress.py): keyed by rule, account, region and
resource, with reason, owner and expiry. A suppressed finding is reported as suppressed, never
dropped; an expired suppression fails the audit (exit 1); an unused one is reported."""

from __future__ import annotations

import datetime as dt
import json

import yaml

from cli_run import residency
from infra.cli import main
from infra.engine.live import scan_account  # noqa: F401  (boto3 loaded once for the moto case)
from infra.program.stackfiles import ROOT, load_stack_config
from live_fixtures import ACCOUNT, HOME, aws_env, moto  # noqa: F401
from test_audit_export import export_with, foreign_bucket

EU_ACCOUNT = load_stack_config("eu").account_id
LATER = (dt.date.today() + dt.timedelta(days=30)).isoformat()
EARLIER = (dt.date.today() - dt.timedelta(days=1)).isoformat()


def entry(**overrides) -> dict:
    return {"rule": "RSD-001", "account": EU_ACCOUNT, "region": "us-east-1", "resource": "*::stray",
            "reason": "legacy bucket, migration in SEC-42", "owner": "platform-team", "expires": LATER, **overrides}


def audit(tmp_path, *entries, fmt="json", extra=()):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_with("eu", foreign_bucket())))
    file = tmp_path / "residency-suppressions.yaml"
    file.write_text(yaml.safe_dump({"suppressions": list(entries)}))
    return residency("audit", "--stack", "eu", "--export", export, "--format", fmt, "--suppressions", file,
                     *extra, project=ROOT)


def stray(findings):
    return [f for f in findings if f["urn"].endswith("::stray") and f["rule"] == "RSD-001"]


def test_without_suppressions_the_stray_bucket_is_a_finding(tmp_path):
    result = audit(tmp_path)
    report = json.loads(result.out)
    assert result.rc == 1 and stray(report["findings"]) and report["suppressed"] == []


def test_a_suppressed_finding_is_reported_as_suppressed_not_dropped(tmp_path):
    result = audit(tmp_path, entry())
    report = json.loads(result.out)
    assert not stray(report["findings"])
    [kept] = stray(report["suppressed"])
    assert kept["suppressed"] == {"reason": "legacy bucket, migration in SEC-42", "owner": "platform-team",
                                  "expires": LATER}
    assert kept["region"] == "us-east-1"
    assert [s["status"] for s in report["suppressions"]] == ["used"]
    assert result.rc == (1 if report["findings"] else 0)
    text = audit(tmp_path, entry(), fmt="text").out
    assert "suppressed RSD-001" in text and "platform-team" in text


def test_each_key_must_match(tmp_path):
    for key, value in (("account", "999999999999"), ("region", "eu-west-1"), ("resource", "*::other"),
                       ("rule", "RSD-002")):
        report = json.loads(audit(tmp_path, entry(**{key: value})).out)
        assert stray(report["findings"]), key
        assert [s["status"] for s in report["suppressions"]] == ["unused"], key


def test_an_expired_suppression_fails_the_audit_and_suppresses_nothing(tmp_path):
    result = audit(tmp_path, entry(expires=EARLIER))
    report = json.loads(result.out)
    assert result.rc == 1
    assert stray(report["findings"]) and report["suppressed"] == []
    assert [s["status"] for s in report["suppressions"]] == ["expired"]
    text = audit(tmp_path, entry(expires=EARLIER), fmt="text").out
    assert "suppression expired: RSD-001" in text and "result: FINDINGS" in text


def test_an_unused_suppression_is_reported(tmp_path):
    result = audit(tmp_path, entry(), entry(resource="*::gone", owner="old-team"), fmt="text")
    assert "suppression unused: RSD-001 *::gone" in result.out and "old-team" in result.out


def test_sarif_marks_suppressed_results(tmp_path):
    sarif = json.loads(audit(tmp_path, entry(), fmt="sarif").out)
    [result] = [r for r in sarif["runs"][0]["results"] if r["locations"][0]["logicalLocations"][0][
        "fullyQualifiedName"].endswith("::stray") and r["ruleId"] == "RSD-001"]
    assert result["suppressions"][0]["status"] == "accepted"


def test_a_bad_file_is_bad_input_naming_the_key(tmp_path):
    cases = [(entry(color="red"), "unknown key(s) color"), (entry(owner=None), "missing owner"),
             (entry(rule="RSD-999"), "'RSD-999' is not a rule id"), (entry(expires="soon"), "'soon' is not an ISO date")]
    for bad, message in cases:
        result = audit(tmp_path, bad)
        assert result.rc == 2 and message in result.err and "suppressions[0]" in result.err, result.err
        assert "Traceback" not in result.err and result.out == ""
    assert "keys: rule, account, region, resource, reason, owner, expires" in audit(tmp_path, entry(color="red")).err


def test_a_live_finding_is_suppressed_by_account_and_region(moto, capsys, tmp_path):
    moto.client("s3").create_bucket(Bucket="open-data", CreateBucketConfiguration={"LocationConstraint": HOME})
    moto.client("s3").put_bucket_acl(Bucket="open-data", ACL="public-read")
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump({"suppressions": [
        {"rule": "RSD-059", "account": ACCOUNT, "region": HOME, "resource": "*:open-data", "reason": "open data",
         "owner": "data-team", "expires": LATER}]}))
    main(["audit", "--live", "--stack", "eu", "--regions", HOME, "--endpoint-url", moto.url, "--format", "json",
          "--suppressions", str(file)])
    report = json.loads(capsys.readouterr().out)
    assert not [f for f in report["findings"] if f["rule"] == "RSD-059"]
    [kept] = [f for f in report["suppressed"] if f["rule"] == "RSD-059"]
    assert (kept["account"] if "account" in kept else report["account"]) == ACCOUNT and kept["region"] == HOME


def test_an_account_id_yaml_would_misread_is_refused_with_the_advice_to_quote_it(tmp_path):
    """The suppressions file is read as strictly as the stack files: unquoted, 012345670123 is an
    octal number to YAML 1.1 and would suppress findings of another account."""
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_with("eu", foreign_bucket())))
    file = tmp_path / "residency-suppressions.yaml"
    file.write_text(yaml.safe_dump({"suppressions": [entry()]}).replace(f"account: '{EU_ACCOUNT}'", "account: 012345670123"))
    assert "account: 012345670123" in file.read_text()
    result = residency("audit", "--stack", "eu", "--export", export, "--suppressions", file, project=ROOT)
    assert result.rc == 2 and "Traceback" not in result.err
    assert '012345670123 is read by YAML as the number 1402433619; quote it ("012345670123")' in result.err
