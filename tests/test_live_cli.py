"""`residency audit --live` end to end against moto's server: output formats and exit codes
(0 clean, 1 findings, 2 bad input, 3 incomplete scan)."""

from __future__ import annotations

import json

from infra.cli import main
from live_fixtures import (ACCOUNT, HOME, account_public_access_blocked, aws_env, drop_default_vpc,  # noqa: F401
                           home_logging, moto, private_vpc, scp_in_force)


def audit(server, *extra, fmt="json"):
    return main(["audit", "--live", "--stack", "eu", "--endpoint-url", server.url, "--format", fmt, *extra])


def clean_home_region(server):
    drop_default_vpc(server)
    private_vpc(server)
    home_logging(server)  # Bedrock invocation logging to an in-region bucket (RSD-045)
    scp_in_force(server)  # the geography's SCP on the organization root (RSD-005)
    account_public_access_blocked(server)  # S3 Block Public Access for the account (RSD-060)


def test_clean_region_exits_0(moto, capsys):
    clean_home_region(moto)
    assert audit(moto, "--regions", HOME) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["findings"] == [] and report["not_checked"] == [] and report["source"] == "live"
    assert report["resources_checked"] > 0
    assert "residency audit: scanning ec2 in eu-central-1" in err  # progress per service and region


def test_findings_exit_1_and_name_the_resource(moto, capsys):
    clean_home_region(moto)
    moto.client("ecr").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]})
    assert audit(moto, "--regions", HOME) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {f["type"] for f in findings} == {"aws:ecr/replicationConfiguration:ReplicationConfiguration"}
    (ecr,) = [f for f in findings if f["rule"] == "RSD-033"]
    assert ACCOUNT in ecr["urn"] and "us-east-1" in ecr["message"]


def test_opt_in_region_not_enabled_exits_3(moto, capsys):
    """The EU geography includes eu-south-2, an opt-in region moto (like a new account) has not
    enabled. (test_live_services.py scans the whole geography, where it is the one region not checked.)"""
    assert audit(moto, "--regions", f"{HOME},eu-south-2", fmt="text") == 3
    out = capsys.readouterr().out
    assert "not checked: ec2 in eu-south-2: opt-in region not enabled for this account" in out
    assert "result: INCOMPLETE" in out


def test_access_denied_exits_3_with_a_not_checked_line(moto, capsys, monkeypatch):
    clean_home_region(moto)
    iam = moto.client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                               {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with moto.iam_enforced():
        code = audit(moto, "--regions", HOME, fmt="text")
    out = capsys.readouterr().out
    assert code == 3
    (line,) = [line for line in out.splitlines() if line.startswith("not checked: secretsmanager")]
    # moto answers this JSON service's denial with an XML body (HTTP 403); AWS sends AccessDeniedException.
    assert line.startswith("not checked: secretsmanager in eu-central-1: ListSecrets: ") and "(access denied)" in line
    assert "not authorized to perform: secretsmanager:ListSecrets" in line


def test_aws_endpoint_url_environment_is_honoured(moto, capsys, monkeypatch):
    clean_home_region(moto)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    with moto.recording() as calls:
        code = main(["audit", "--live", "--stack", "eu", "--regions", HOME, "--format", "json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["not_checked"] == []
    assert {c.service for c in calls} >= {"ec2", "iam", "s3"}


def test_region_outside_the_geography_exits_2(moto, capsys):
    with moto.recording() as calls:
        assert audit(moto, "--regions", "eu-central-1,eu-west-2") == 2
    out, err = capsys.readouterr()
    assert "'eu-west-2' not in geography EU" in err and "allowed: eu-central-1" in err
    assert "Traceback" not in err and out == "" and calls == []


def test_unknown_profile_exits_2(moto, capsys):
    assert audit(moto, "--profile", "no-such-profile") == 2
    assert "no-such-profile" in capsys.readouterr().err
