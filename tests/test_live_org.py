"""`residency audit --org` against moto with four accounts (the management account and three
members) in two geographies: accounts found through Organizations, mapped by OU, tag and id, the
read-only role assumed in each (moto keys state by the assumed role's account), every finding and
unit not checked attributed, and one account's failure never hiding another's results."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from infra.cli import main
from infra.engine.live import organization
from live_fixtures import ACCOUNT, HOME, aws_env, moto  # noqa: F401

ROLE = "ai-companion-audit"


def member_session(server, account):
    creds = server.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                             RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])


@pytest.fixture
def org(moto, tmp_path):
    """eu-data and eu-apps in the EU OU, us-apps tagged for the us stack; the management account
    by id. eu-data has a public bucket, us-apps a public bucket too (each must name its account)."""
    o = moto.client("organizations", "us-east-1")
    o.create_organization(FeatureSet="ALL")
    root = o.list_roots()["Roots"][0]["Id"]
    ous = {name: o.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
           for name in ("eu", "us")}
    ids = {}
    for name, ou, tags in (("eu-data", "eu", []), ("eu-apps", "eu", []),
                           ("us-apps", "us", [{"Key": "residency-stack", "Value": "us"}])):
        status = o.create_account(Email=f"{name}@example.com", AccountName=name, Tags=tags)["CreateAccountStatus"]
        ids[name] = status["AccountId"]
        o.move_account(AccountId=ids[name], SourceParentId=root, DestinationParentId=ous[ou])
    for name, region in (("eu-data", HOME), ("us-apps", "us-east-1")):
        s3 = member_session(moto, ids[name]).client("s3", region_name=region, endpoint_url=moto.url)
        conf = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=f"{name}-open", **conf)
        s3.put_bucket_acl(Bucket=f"{name}-open", ACL="public-read")
    mapping = tmp_path / "org.yaml"
    mapping.write_text(yaml.safe_dump({"accounts": {ACCOUNT: "eu"}, "ous": {ous["eu"]: "eu"}, "tag": "residency-stack"}))
    return ids, mapping


def audit(server, mapping, *extra):
    return main(["audit", "--org", "--org-map", str(mapping), "--regions", f"{HOME},us-east-1",
                 "--endpoint-url", server.url, "--format", "json", "--pool", "2", *extra])


def public_buckets(report):
    return sorted((f["account"], f["urn"].rsplit(":", 1)[-1]) for f in report["findings"] if f["rule"] == "RSD-059")


def test_every_account_is_scanned_against_its_geography_and_attributed(moto, org, capsys):
    ids, mapping = org
    code = audit(moto, mapping)
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["not_checked"] == [] and code == 1
    assert public_buckets(report) == sorted([(ids["eu-data"], "eu-data-open"), (ids["us-apps"], "us-apps-open")])
    assert {f["account"] for f in report["findings"]} == {ACCOUNT, *ids.values()}
    assert report["geography"] == "EU, US"
    us_notes = [n for n in report["notes"] if n.startswith(f"account {ids['us-apps']}")]
    assert us_notes and all("stack us" in n for n in us_notes)
    assert f"{ids['eu-apps']} (eu-apps): stack eu" in err
    # The findings of the US account are judged against the US geography: its us-east-1 bucket is
    # not a placement finding there, while an EU account's bucket in us-east-1 would be.
    assert not [f for f in report["findings"] if f["account"] == ids["us-apps"] and f["rule"] == "RSD-001"]


def test_one_unreadable_account_exits_3_naming_it_and_hides_nothing_else(moto, org, capsys, monkeypatch):
    ids, mapping = org
    real = organization.assume

    def assume(session, account, *args):
        if account.id == ids["eu-apps"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")
        return real(session, account, *args)

    monkeypatch.setattr(organization, "assume", assume)
    code = audit(moto, mapping)
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 3
    assert f"could not read account(s): {ids['eu-apps']}" in err
    [unit] = report["not_checked"]
    assert unit["account"] == ids["eu-apps"] and unit["kind"] == "account not readable"
    assert "AccessDenied" in unit["reason"]
    assert public_buckets(report) == sorted([(ids["eu-data"], "eu-data-open"), (ids["us-apps"], "us-apps-open")])


def test_an_account_mapped_to_no_geography_is_not_checked(moto, org, capsys, tmp_path):
    ids, _ = org
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({"accounts": {ids["eu-data"]: "eu"}}))
    code = main(["audit", "--org", "--org-map", str(partial), "--regions", HOME, "--endpoint-url", moto.url,
                 "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3
    assert sorted(n["account"] for n in report["not_checked"]) == sorted([ACCOUNT, ids["eu-apps"], ids["us-apps"]])
    assert all("no geography" in n["reason"] for n in report["not_checked"])


def test_mapping_order_and_bad_input():
    a = organization.Account("111111111111", "a", ("ou-eu", "r-root"), {"residency-stack": "us"})
    assert organization.stack_for(a, {"accounts": {"111111111111": "sg"}, "ous": {"ou-eu": "eu"}, "tag": "residency-stack"}, None) == "sg"
    assert organization.stack_for(a, {"ous": {"ou-eu": "eu"}, "tag": "residency-stack"}, None) == "us"
    assert organization.stack_for(a, {"ous": {"ou-eu": "eu"}}, None) == "eu"
    assert organization.stack_for(a, {}, "au") == "au"


def test_org_flags_are_bad_input_elsewhere(capsys):
    assert main(["audit", "--stack", "eu", "--export", "x.json", "--org-role", "r"]) == 2
    assert "--org-role, --org-map and --pool apply to --org only" in capsys.readouterr().err
    assert main(["audit", "--live"]) == 2
    assert "--stack is required" in capsys.readouterr().err
