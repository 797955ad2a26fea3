"""Typed, validated stack config: every bad case stops before a resource exists, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.program.config import ConfigError, parse_config
from infra.program.stackfiles import ROOT, load_stack_values
from infra.harness.synth import RealisticMocks, synthesize

BASE = {"aws:region": "ap-southeast-1", "ai-companion:accountId": "111111111111", "ai-companion:geography": "SG",
        "ai-companion:options": '["zmo"]', "ai-companion:gpuInstanceType": "g4dn.xlarge"}  # no g6e in ap-southeast-1


@pytest.fixture
def project(tmp_path):
    """A throwaway project checkout: the real Pulumi.yaml plus stack files the test writes."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")

    def write(stack: str, config: dict) -> Path:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
        return tmp_path
    return write


BAD_CASES = {
    "unknown key": ({"ai-companion:gpuType": "g5.xlarge"}, "ai-companion:gpuType", "allowed: geography"),
    "unknown geography": ({"ai-companion:geography": "XX"}, "ai-companion:geography", "allowed: US, EU, SG, KSA, AU, IN, CA"),
    "home region outside the geography": ({"aws:region": "us-east-1"}, "aws:region", "allowed: ap-southeast-1"),
    "option not offered": ({"ai-companion:options": ["zmo", "zm_plus"]}, "ai-companion:options", "'zm_plus' is not offered in SG"),
    "unknown option": ({"ai-companion:options": ["zmo", "turbo"]}, "ai-companion:options", "allowed: zmo, zm_plus, federated"),
    "missing required key": ({"ai-companion:geography": None}, "ai-companion:geography", "required"),
    "no gpu allowed": ({"ai-companion:gpuMaxSize": 0}, "ai-companion:gpuMaxSize", "at least 1"),
    "missing account id": ({"ai-companion:accountId": None}, "ai-companion:accountId", "12-digit AWS account id"),
    "malformed account id": ({"ai-companion:accountId": "1234"}, "ai-companion:accountId", "not a 12-digit"),
    "image by tag": ({"ai-companion:modelImageDigest": "v0.11.0"}, "ai-companion:modelImageDigest", "sha256:<64"),
    "vpc overlaps the service cidr": ({"ai-companion:vpcCidr": "172.20.0.0/16"}, "ai-companion:vpcCidr", "service CIDR"),
    "not a gpu type": ({"ai-companion:gpuInstanceType": "m5.large"}, "ai-companion:gpuInstanceType", "GPU instance type"),
    "public cidr": ({"ai-companion:vpcCidr": "8.8.0.0/16"}, "ai-companion:vpcCidr", "private IPv4 CIDR"),
}


def _config(change: dict) -> dict:
    config = {"aws:region": "ap-southeast-1", "ai-companion:accountId": "111111111111",
              "ai-companion:geography": "SG", "ai-companion:options": ["zmo"],
              "ai-companion:gpuInstanceType": "g4dn.xlarge"}  # ap-southeast-1 offers no g6e
    config.update(change)
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_bad_config_exits_2_naming_the_key(case, project, capsys):
    change, key, allowed = BAD_CASES[case]
    root = project("bad", _config(change))
    assert main(["--project-dir", str(root), "plan", "--stack", "bad"]) == 2
    err = capsys.readouterr().err
    assert key in err and allowed in err
    assert "Traceback" not in err


def test_the_good_variant_of_the_same_project_plans(project, capsys):
    root = project("good", _config({}))
    assert main(["--project-dir", str(root), "plan", "--stack", "good"]) == 0
    assert "aws:eks/cluster:Cluster" in capsys.readouterr().out


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_nothing_is_registered_on_bad_config(case, monkeypatch):
    change, key, _ = BAD_CASES[case]
    registered = []
    monkeypatch.setattr(RealisticMocks, "new_resource", lambda self, args: registered.append(args.name))
    values = {k: v if isinstance(v, str) else __import__("json").dumps(v) for k, v in _config(change).items()}
    with pytest.raises(ConfigError) as err:
        synthesize("bad", values)
    assert key in str(err.value)
    assert registered == []


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "ai-companion:gpuMaxSize": "x", "ai-companion:vpcCidr": "nope"}, "sg")
    assert len(err.value.problems) == 2


def test_unknown_stack_exits_2(capsys):
    assert main(["plan", "--stack", "mars"]) == 2
    assert "unknown stack 'mars'" in capsys.readouterr().err


def test_config_error_is_a_clean_pulumi_error():
    """Under `pulumi up` a RunError prints its message without the program's traceback."""
    import pulumi
    assert issubclass(ConfigError, pulumi.RunError)


def test_stack_files_parse_into_the_matrix():
    for stack, options in {"us": 3, "eu": 3, "sg": 1, "ksa": 1, "au": 1, "in": 1, "ca": 1}.items():
        values, _ = load_stack_values(stack)
        assert len(parse_config(values, stack).options) == options
