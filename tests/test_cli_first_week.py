"""The CLI a platform engineer can trust in the first week (#25), each case through the console
script as a user runs it: output files never replace what is not theirs, input is read strictly,
the commands agree with each other, and the review formats say what a reviewer needs.

CI runs as root, as these tests do there: a rename over /dev/full as root is exactly the damage
that must not happen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from cli_run import SCRIPT, project_copy, residency, stack_config, user_env
from infra.program.stackfiles import ROOT

NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                  "AWS_EC2_METADATA_DISABLED": "true"}


def no_traceback(result, rc):
    assert result.rc == rc, f"{result.argv}: exit {result.rc}, expected {rc}\n{result.err[-2000:]}"
    assert "Traceback" not in result.err + result.out
    return result


@pytest.fixture(scope="module")
def sg_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "sg.json"
    no_traceback(residency("plan", "--stack", "sg", "--out", path), 0)
    return path


# --- 1. output safety -------------------------------------------------------------------------------

def test_a_device_is_never_replaced():
    """As root, a rename over /dev/full would turn the device into a regular file."""
    before = os.stat("/dev/full")
    result = no_traceback(residency("plan", "--stack", "sg", "--out", "/dev/full"), 2)
    assert "/dev/full is a device, not a regular file" in result.err
    after = os.lstat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_symlink_is_never_replaced(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = no_traceback(residency("plan", "--stack", "sg", "--out", link), 2)
    assert f"{link} is a symlink" in result.err
    assert link.is_symlink() and target.read_text() == "keep"


def test_a_fifo_is_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = no_traceback(residency("plan", "--stack", "sg", "--out", fifo), 2)
    assert "is a FIFO" in result.err and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_audit_never_overwrites_the_export_it_audits(sg_export, tmp_path):
    export = tmp_path / "x.json"
    shutil.copy(sg_export, export)
    before = export.read_bytes()
    result = no_traceback(residency("audit", "--stack", "sg", "--export", export, "--output", export), 2)
    assert "is an input of this command" in result.err
    assert export.read_bytes() == before


def test_report_never_overwrites_the_preflight_it_shows(tmp_path):
    preflight = tmp_path / "preflight.json"
    preflight.write_text("{}")
    result = no_traceback(residency("report", "--stack", "sg", "--preflight", preflight, "--output", preflight), 2)
    assert "is an input of this command" in result.err and preflight.read_text() == "{}"


def test_plan_never_overwrites_a_stack_file(tmp_path):
    project = project_copy(tmp_path, sg=stack_config("sg"))
    stack_file = project / "Pulumi.sg.yaml"
    before = stack_file.read_text()
    result = no_traceback(residency("plan", "--stack", "sg", "--out", stack_file, project=project), 2)
    assert "is an input of this command" in result.err and stack_file.read_text() == before


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path):
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o640)
    no_traceback(residency("plan", "--stack", "sg", "--out", kept), 0)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and json.loads(kept.read_text())["version"] == 3
    new = tmp_path / "new.json"
    subprocess.run(["bash", "-c", f"umask 027 && exec {SCRIPT} plan --stack sg --out {new}"],
                   env=user_env(), check=True, capture_output=True, timeout=300)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0666 & ~027, as open() would create it


# --- 2. input strictness ----------------------------------------------------------------------------

def test_an_export_with_no_resources_is_bad_input(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"version": 3, "deployment": {"resources": []}}))
    result = no_traceback(residency("audit", "--stack", "sg", "--export", empty), 2)
    assert "holds no resources" in result.err and "nothing to audit" in result.err


def test_a_malformed_resource_is_bad_input_naming_its_urn(sg_export, tmp_path):
    doc = json.loads(sg_export.read_text())
    victim = next(r for r in doc["deployment"]["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    victim["inputs"] = ["not", "an", "object"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = no_traceback(residency("audit", "--stack", "sg", "--export", bad), 2)
    position = doc["deployment"]["resources"].index(victim)
    assert f"resource #{position} ({victim['urn']}): 'inputs' must be an object, got list" in result.err


def test_a_resource_without_a_urn_is_named_by_its_position(sg_export, tmp_path):
    doc = json.loads(sg_export.read_text())
    doc["deployment"]["resources"][3]["urn"] = 42
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = no_traceback(residency("audit", "--stack", "sg", "--export", bad), 2)
    assert "resource #3: 'urn' must be a string, got int" in result.err


def write_stack(project: Path, name: str, text: str) -> Path:
    path = project / f"Pulumi.{name}.yaml"
    path.write_text(text)
    return path


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path):
    project = project_copy(tmp_path)
    write_stack(project, "dup", 'config:\n  ai-companion:accountId: "111111111111"\n  aws:region: ap-southeast-1\n'
                "  ai-companion:geography: SG\n  ai-companion:options: [zmo]\n  aws:region: us-east-1\n")
    result = no_traceback(residency("plan", "--stack", "dup", project=project), 2)
    assert "key 'aws:region' is given twice (lines 3 and 6)" in result.err


def test_an_account_id_read_as_a_number_says_to_quote_it(tmp_path):
    project = project_copy(tmp_path)
    write_stack(project, "octal", "config:\n  ai-companion:accountId: 012345670123\n  aws:region: ap-southeast-1\n"
                "  ai-companion:geography: SG\n  ai-companion:options: [zmo]\n")
    result = no_traceback(residency("plan", "--stack", "octal", project=project), 2)
    assert '012345670123 is read by YAML as the number 1402433619; quote it ("012345670123")' in result.err


def test_an_unknown_region_is_unknown_with_a_did_you_mean_before_any_geography_check(tmp_path):
    project = project_copy(tmp_path, sg={**stack_config("sg"), "aws:region": "ap-southeast-l"})
    result = no_traceback(residency("plan", "--stack", "sg", project=project), 2)
    assert "aws:region: 'ap-southeast-l' is not an AWS region; did you mean 'ap-southeast-1'?" in result.err
    assert "outside geography" not in result.err


def test_a_real_region_outside_the_geography_is_still_named_as_outside(tmp_path):
    project = project_copy(tmp_path, sg={**stack_config("sg"), "aws:region": "us-east-1"})
    result = no_traceback(residency("plan", "--stack", "sg", project=project), 2)
    assert "'us-east-1' is outside geography SG" in result.err and "not an AWS region" not in result.err


def test_a_misspelt_connector_gets_a_did_you_mean(tmp_path):
    config = stack_config("us")
    config["ai-companion:federated"] = {**config["ai-companion:federated"], "connectors": ["anthropc"]}
    project = project_copy(tmp_path, us=config)
    result = no_traceback(residency("plan", "--stack", "us", project=project), 2)
    assert "'anthropc' is not in the US connector catalog" in result.err and "did you mean 'anthropic'?" in result.err


def test_a_misspelt_stack_gets_a_did_you_mean():
    for argv in (("plan", "--stack", "sgg"), ("cost", "--stack", "sgg"), ("scp", "--stack", "sgg")):
        result = no_traceback(residency(*argv), 2)
        assert "unknown stack 'sgg'" in result.err and "did you mean 'sg'?" in result.err, argv


@pytest.mark.parametrize("command", ["plan", "cost"])
def test_every_all_error_names_its_stack_file(tmp_path, command):
    project = project_copy(tmp_path, sg=stack_config("sg"))
    write_stack(project, "broken", "config:\n  aws:region: ap-southeast-1\n  aws:region: ap-southeast-1\n")
    result = no_traceback(residency(command, "--all", project=project), 2)
    assert "Pulumi.broken.yaml" in result.err


# --- 3. consistency ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("audit", "--live", "--stack", "eu"),
    ("models", "--stack", "eu"),
    ("seed", "--stack", "eu", "--weights", "/nonexistent-weights", "--bucket", "b"),
    ("cost", "--refresh", "--prices", "{tmp}/prices.yaml"),
    ("evidence", "--stack", "eu", "--since", "7d"),
], ids=lambda a: a[0] + (" --refresh" if "--refresh" in a else ""))
def test_missing_credentials_is_one_exit_code_everywhere(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = no_traceback(residency(*argv, **NO_CREDENTIALS), 2)
    assert "no AWS credentials found" in result.err
    assert not (tmp_path / "prices.yaml").exists()


@pytest.mark.parametrize("command", [("models", "--stack", "eu"), ("cost", "--refresh", "--prices", "/nonexistent/p.yaml")])
def test_an_unknown_aws_profile_is_bad_input_not_a_bug(command):
    """An AWS_PROFILE naming no profile (even an empty one) is the user's setting, named as such."""
    for profile in ("", "no-such-profile"):
        result = no_traceback(residency(*command, **{**NO_CREDENTIALS, "AWS_PROFILE": profile}), 2)
        assert f"AWS_PROFILE: The config profile ({profile}) could not be found" in result.err


def test_seed_refuses_a_malformed_image_reference():
    result = no_traceback(residency("seed", "--stack", "sg", "--image", "not a ref!!"), 2)
    assert "'not a ref!!' is not a valid image reference" in result.err


def test_one_version_for_the_package_the_sarif_and_the_pack(sg_export):
    version = no_traceback(residency("--version"), 0).out.split()
    assert version[0] == "residency" and re.fullmatch(r"\d+\.\d+\.\d+", version[1])
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())["version"]
    sarif = json.loads(no_traceback(residency("audit", "--stack", "sg", "--export", sg_export,
                                              "--format", "sarif"), 0).out)
    import importlib.metadata

    assert {version[1], str(pack), sarif["runs"][0]["tool"]["driver"]["semanticVersion"],
            importlib.metadata.version("ai-companion")} == {version[1]}
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dynamic"] == ["version"]


def test_python_m_policy_says_how_the_pack_runs():
    done = subprocess.run([sys.executable, "-m", "policy"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pulumi preview --policy-pack policy" in done.stderr


def test_cost_help_names_where_base_plans_come_from():
    out = " ".join(no_traceback(residency("cost", "--help"), 0).out.split())
    assert "`residency cost --all --plan-out DIR`" in out and "plan --all --out" not in out


def test_cost_refuses_plan_out_over_the_base_it_compares(tmp_path):
    result = no_traceback(residency("cost", "--stack", "sg", "--base", tmp_path, "--plan-out", tmp_path), 2)
    assert "--plan-out is the --base directory" in result.err


# --- 4. review formats ------------------------------------------------------------------------------

def test_plan_json_lists_the_resources_with_the_text_count():
    doc = json.loads(no_traceback(residency("plan", "--stack", "sg", "--format", "json"), 0).out)
    text = no_traceback(residency("plan", "--stack", "sg"), 0).out
    counted = [r for r in doc["resources"] if r["counted"]]
    [count_line] = [line for line in text.splitlines() if re.fullmatch(r"\d+ resources \(counted: .*\)", line)]
    assert len(counted) == doc["resources_checked"] == int(count_line.split()[0]) > 20
    vpc = next(r for r in doc["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["region"] == "ap-southeast-1" and vpc["option"] == "zmo" and vpc["name"]
    assert {r["counted"] for r in doc["resources"] if r["type"].startswith("ai-companion:")} == {False}


def test_audit_markdown_links_each_rule_and_its_remediation(sg_export, tmp_path):
    doc = json.loads(sg_export.read_text())
    bucket = next(r for r in doc["deployment"]["resources"] if r["type"] == "aws:s3/bucket:Bucket")
    bucket["inputs"]["region"] = "us-east-1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = no_traceback(residency("audit", "--stack", "sg", "--export", bad, "--format", "markdown",
                                    RESIDENCY_DOCS_URL="https://example.test/docs/rules.md"), 1)
    assert result.out.startswith("### Residency audit of `sg` (SG): ❌ FINDINGS")
    assert "| CRITICAL | [RSD-001](https://example.test/docs/rules.md#rsd-001)" in result.out
    assert re.search(r"^- \*\*\[RSD-001\]\(https://example.test/docs/rules.md#rsd-001\)[^\n]*\*\*: Create the resource",
                     result.out, re.M)
    clean = no_traceback(residency("audit", "--stack", "sg", "--export", sg_export, "--format", "markdown"), 0)
    assert "✅ OK" in clean.out.splitlines()[0] and "| severity |" not in clean.out
