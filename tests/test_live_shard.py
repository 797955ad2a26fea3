"""`audit --live --shard K/N` and `residency merge` against moto: the shards' units partition the
scan (account x region, by a stable hash), the merged report holds exactly the unsharded scan's
findings, and a missing shard makes the merge incomplete (exit 3)."""

from __future__ import annotations

import json

import pytest

from cli_run import residency
from infra.cli import main
from infra.engine.live import in_shard
from infra.program.stackfiles import ROOT
from live_fixtures import HOME, aws_env, moto  # noqa: F401

REGIONS = f"{HOME},eu-west-1"


def audit(server, capsys, *extra):
    code = main(["audit", "--live", "--stack", "eu", "--regions", REGIONS, "--endpoint-url", server.url,
                 "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def keyed(findings):
    return sorted((f["rule"], f["urn"], f["message"]) for f in findings)


def test_every_unit_is_in_exactly_one_shard():
    for account in ("123456789012", "210987654321", ""):
        for region in ("global", "eu-central-1", "us-east-1", "ap-south-2"):
            assert sum(in_shard(account, region, (k, 5)) for k in range(1, 6)) == 1


def test_the_merged_shards_are_the_whole_scan(moto, capsys, tmp_path):
    moto.client("ecr").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": "us-east-1", "registryId": "123456789012"}]}]})
    moto.client("ec2", "eu-west-1").create_vpc(CidrBlock="10.9.0.0/16")
    whole_code, whole = audit(moto, capsys)
    paths = []
    for k in (1, 2, 3):
        _, shard = audit(moto, capsys, "--shard", f"{k}/3")
        assert shard["shard"] == f"{k}/3"
        paths.append(tmp_path / f"shard-{k}.json")
        paths[-1].write_text(json.dumps(shard))
    merged = residency("merge", *paths, "--format", "json", project=ROOT)
    report = json.loads(merged.out)
    assert merged.rc == whole_code == 1
    assert keyed(report["findings"]) == keyed(whole["findings"])
    assert report["resources_checked"] == whole["resources_checked"] and report["not_checked"] == []

    missing = residency("merge", paths[0], paths[2], "--format", "text", project=ROOT)
    assert missing.rc == 3 and "shard 2/3 is missing" in missing.out and "INCOMPLETE" in missing.out

    twice = residency("merge", paths[0], paths[0], project=ROOT)
    assert twice.rc == 2 and "given twice" in twice.err


def test_merge_refuses_a_report_that_is_no_shard(moto, capsys, tmp_path):
    _, whole = audit(moto, capsys)
    path = tmp_path / "whole.json"
    path.write_text(json.dumps(whole))
    result = residency("merge", path, project=ROOT)
    assert result.rc == 2 and "not a shard report" in result.err and "Traceback" not in result.err
    assert main(["audit", "--stack", "eu", "--export", "x.json", "--shard", "1/2"]) == 2
    with pytest.raises(SystemExit) as exited:  # argparse: bad input, with the usage
        main(["audit", "--live", "--stack", "eu", "--shard", "3/2"])
    assert exited.value.code == 2 and "is not K/N" in capsys.readouterr().err
