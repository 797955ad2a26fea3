"""Every command x format x failure mode through the console script, in a subprocess, as a user
runs it (issue #14). The exit-code contract (README, "Exit codes"): 0 clean; 1 findings or drift;
2 bad input; 3 incomplete; 4 internal error; 130 interrupted. No path prints a traceback unless
--debug is given for an internal error.

`audit --live` is exercised against moto in tests/test_live_cli.py.
"""

from __future__ import annotations

import codecs
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_run import (HANG_GUARD, SCRIPT, Result, mermaid_parse, project_copy, residency, run_many, stack_config,
                     user_env)
from conftest import TEST_STACKS
from infra.program.stackfiles import ROOT, list_stacks

STACKS = list_stacks(TEST_STACKS)
TWO = ["ca", "sg"]  # a project of two stacks, in list_stacks order
# A directory no one can create files in (EROFS where /sys is mounted read-only, as in containers;
# EACCES for a non-root user elsewhere).
UNWRITABLE = Path("/sys/residency-unwritable")


def clean(result: Result, rc: int) -> Result:
    assert result.rc == rc, f"{result.argv}: exit {result.rc}, expected {rc}\n{result.err[-2000:]}"
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    return result


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """One run per command line of the matrix, concurrently (each plan is seconds of CPU).

    `--all` in JSON plans every test stack; in Markdown and Mermaid, the layout of several stacks
    is the same for two as for seven, so those plan a project of two (`TWO`)."""
    out = tmp_path_factory.mktemp("plans")
    two = project_copy(tmp_path_factory.mktemp("two"), **{stack: stack_config(stack) for stack in TWO})
    commands = {f"stack-{fmt}": ("plan", "--stack", "eu", "--format", fmt)
                for fmt in ("text", "json", "markdown", "mermaid")}
    commands["stack-table"] = ("plan", "--stack", "sg", "--format", "table")
    commands["stack-us"] = ("plan", "--stack", "us")
    commands["stack-sg"] = ("plan", "--stack", "sg", "--out", out / "new" / "dir" / "sg.json")
    commands.update({f"all-{fmt}": ("--project-dir", two, "plan", "--all", "--format", fmt)
                     for fmt in ("markdown", "mermaid")})
    commands["all-json"] = ("plan", "--all", "--format", "json", "--out", out / "all")
    results = run_many(commands)
    results["_dir"] = out
    return results


# --- plan: every format, one stack and all -------------------------------------------------------

def test_user_stack_files_plan_with_zero_findings():
    """The root Pulumi.<stack>.yaml files (the user's) only have to plan clean."""
    result = clean(residency("--project-dir", ROOT, "plan", "--all", project=None), 0)
    assert result.out.count("\nfindings: 0") + result.out.startswith("findings: 0") == len(list_stacks(ROOT))


@pytest.mark.parametrize("fmt", ["text", "table"])
def test_plan_text(plans, fmt):
    result = clean(plans[f"stack-{fmt}"], 0)
    stack = "sg" if fmt == "table" else "eu"
    assert result.out.startswith(f"stack {stack}: geography") and "findings: 0" in result.out
    assert ("deprecated; use --format text" in result.err) == (fmt == "table")
    if fmt == "table":  # the deprecated alias prints exactly the text format
        assert result.out == clean(plans["stack-sg"], 0).out


def test_plan_json_one_stack_and_all(plans):
    one = json.loads(clean(plans["stack-json"], 0).out)
    assert one["stack"] == "eu" and one["findings"] == [] and one["resources_checked"] > 100
    every = json.loads(clean(plans["all-json"], 0).out)
    assert [r["stack"] for r in every] == STACKS


def test_plan_markdown(plans):
    assert clean(plans["stack-markdown"], 0).out.startswith("# Residency plan")
    md = clean(plans["all-markdown"], 0).out
    assert [line.split("`")[1] for line in md.splitlines() if line.startswith("## Stack")] == TWO


def test_plan_mermaid_one_stack_is_one_titled_diagram(plans):
    text = clean(plans["stack-mermaid"], 0).out
    assert mermaid_parse(text) == {"ok": True, "type": "flowchart-v2"}
    assert re.match(r'---\ntitle: "stack eu: EU data paths, home region eu-central-1"\n---\nflowchart LR\n', text)


def test_plan_mermaid_all_is_one_valid_titled_diagram_per_stack(plans):
    text = clean(plans["all-mermaid"], 0).out
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == len(TWO)
    assert mermaid_parse(blocks) == [{"ok": True, "type": "flowchart-v2"}] * len(TWO)
    for stack, block in zip(TWO, blocks):
        assert f'title: "stack {stack}: ' in block


def test_the_mermaid_check_rejects_diagrams_back_to_back(plans):
    """The --all output before #14 (flowcharts concatenated, untitled) fails the same parser."""
    blocks = re.findall(r"```mermaid\n---\n.*?\n---\n(.*?)```", plans["all-mermaid"].out, re.S)
    verdict = mermaid_parse("\n".join(blocks[:2]))
    assert verdict["ok"] is False


def test_plan_out_creates_missing_directories_and_all_writes_one_export_per_stack(plans):
    clean(plans["stack-sg"], 0)
    assert json.loads((plans["_dir"] / "new" / "dir" / "sg.json").read_text())["version"] == 3
    clean(plans["all-json"], 0)
    assert sorted(p.name for p in (plans["_dir"] / "all").iterdir()) == [f"{s}.json" for s in STACKS]


# --- one resource count ---------------------------------------------------------------------------

def test_one_resource_count_in_every_output(plans, tmp_path):
    text = plans["stack-text"].out
    table_rows = text.splitlines().index(next(l for l in text.splitlines() if re.match(r"\d+ resources \(", l)))
    [footer] = [int(l.split()[0]) for l in text.splitlines() if re.match(r"\d+ resources \(counted: ", l)]
    assert table_rows - 2 == footer  # rows between the TYPE header and the footer
    assert json.loads(plans["stack-json"].out)["resources_checked"] == footer
    assert f"| `eu` | EU | `eu-central-1` | zmo, zm_plus, federated | {footer} |" in plans["stack-markdown"].out
    progress = plans["all-json"].err
    assert f"eu: {footer} resources," in progress
    exported = plans["_dir"] / "all" / "eu.json"
    audit = clean(residency("audit", "--stack", "eu", "--export", exported, "--format", "json"), 0)
    assert json.loads(audit.out)["resources_checked"] == footer


def test_declared_paths_are_labelled_by_processing(plans):
    eu = plans["stack-text"].out
    assert "declared data paths, processing inside the geography (reviewed):" in eu
    assert "leave the region by design" not in eu and "global processing" not in eu
    us = clean(plans["stack-us"], 0).out
    inside = us.index("processing inside the geography")
    outside = us.index("declared data paths, global processing")
    assert "us.api.openai.com" in us[inside:outside] and "api.anthropic.com" in us[outside:]


# --- other commands, every format -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_audit_every_format_to_stdout_and_to_a_new_directory(plans, fmt, tmp_path):
    export = plans["_dir"] / "all" / "eu.json"
    shown = clean(residency("audit", "--stack", "eu", "--export", export, "--format", fmt), 0).out
    target = tmp_path / "missing" / f"report.{fmt}"
    clean(residency("audit", "--stack", "eu", "--export", export, "--format", fmt, "--output", target), 0)
    assert target.read_text() == shown
    if fmt != "text":
        json.loads(shown)


def test_scp_prints_a_policy():
    policy = json.loads(clean(residency("scp", "--stack", "eu"), 0).out)
    assert policy["Version"] == "2012-10-17"


def test_models_on_a_stack_without_zm_plus_exits_0_nothing_to_check():
    result = clean(residency("models", "--stack", "sg"), 0)
    assert "nothing to check" in result.out


# --- bad input: exit 2, a message naming the problem ---------------------------------------------

@pytest.mark.parametrize("argv", [
    ("plan", "--stack", "atlantis"), ("audit", "--stack", "atlantis", "--export", "x.json"),
    ("scp", "--stack", "atlantis"), ("models", "--stack", "atlantis")])
def test_unknown_stack_exits_2_naming_the_stacks(argv):
    result = clean(residency(*argv), 2)
    assert "unknown stack 'atlantis'" in result.err and "eu" in result.err


@pytest.mark.parametrize("command", [("plan", "--all"), ("scp", "--stack", "eu"), ("models", "--stack", "eu"),
                                     ("audit", "--stack", "eu", "--export", "x.json")])
def test_missing_project_dir_is_named(command):
    result = clean(residency("--project-dir", "/nonexistent", *command, project=None), 2)
    assert "--project-dir: /nonexistent is not a directory" in result.err


def test_project_dir_without_pulumi_yaml_is_named(tmp_path):
    result = clean(residency("--project-dir", tmp_path, "plan", "--all", project=None), 2)
    assert "has no Pulumi.yaml" in result.err


def config_error(tmp_path, **config) -> str:
    project_copy(tmp_path, broken=config)
    return clean(residency("plan", "--stack", "broken", project=tmp_path), 2).err


def test_typo_in_a_key_is_named_with_a_did_you_mean(tmp_path):
    config = stack_config("sg")
    config["ai-compnion:geography"] = config.pop("ai-companion:geography")
    err = config_error(tmp_path, **config)
    assert "ai-compnion:geography: unknown key; did you mean 'ai-companion:geography'?" in err
    assert "'ai-compnion:geography' is set: a typo?" in err


def test_options_not_a_list_says_expected_a_list(tmp_path):
    err = config_error(tmp_path, **{**stack_config("sg"), "ai-companion:options": "zmo"})
    assert "ai-companion:options: expected a list" in err and "not valid JSON" not in err


@pytest.mark.parametrize("instance_type, expected", [
    ("g6e-xlarge", "'g6e-xlarge' is not an EC2 instance type (botocore's InstanceType list); did you mean 'g6e.xlarge'?"),
    ("m5.large", "'m5.large' is not a GPU instance type of a catalogued GPU family"),
])
def test_gpu_instance_type_is_checked_against_botocore_and_the_catalog(tmp_path, instance_type, expected):
    err = config_error(tmp_path, **{**stack_config("sg"), "ai-companion:gpuInstanceType": instance_type})
    assert expected in err


# --- several stacks per geography ------------------------------------------------------------------

def test_a_second_eu_stack_in_another_eu_region_plans_and_audits_clean(tmp_path):
    # eu-west-1 offers no g6e (stacks/catalog.yaml): the Dublin stack names a g5.
    project = project_copy(tmp_path, eu_dublin={**stack_config("eu"), "aws:region": "eu-west-1",
                                                "ai-companion:gpuInstanceType": "g5.xlarge"})
    export = tmp_path / "out" / "eu-dublin.json"
    plan = clean(residency("plan", "--stack", "eu-dublin", "--out", export, project=project), 0)
    assert "home region eu-west-1" in plan.out and "findings: 0" in plan.out
    regions = {line.split()[2] for line in plan.out.splitlines() if line.startswith("aws:")}
    assert regions == {"eu-west-1"}
    clean(residency("audit", "--stack", "eu-dublin", "--export", export, project=project), 0)


@pytest.mark.parametrize("region, overrides, missing", [
    # g6e is not offered in eu-west-3 (moto's EC2 offerings, stacks/catalog.yaml).
    ("eu-west-3", {}, "ai-companion:gpuInstanceType: family g6e is not catalogued in eu-west-3"),
    # Claude Haiku 4.5 is in-region in us-east-1 only.
    ("us-west-2", {}, "'claude-haiku-4-5' is not offered in-region from us-west-2; source regions: us-east-1"),
    # Outside the geography altogether.
    ("eu-west-2", {}, "aws:region: 'eu-west-2' is outside geography EU"),
])
def test_a_home_region_without_what_the_options_need_is_refused(tmp_path, region, overrides, missing):
    base = "us" if region.startswith("us") else "eu"
    err = config_error(tmp_path, **{**stack_config(base), "aws:region": region, **overrides})
    assert missing in err


def test_a_region_without_network_firewall_is_refused_for_federated():
    # Every catalogued EU region has Network Firewall today: take it away from eu-west-1.
    import yaml

    from infra.program.catalog import CATALOG_PATH, parse_catalog
    from infra.program.config import ConfigError, parse_config
    from infra.program.stackfiles import load_stack_values

    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["region_services"]["regions"]["eu-west-1"]["services"] = ["eks"]
    values, _ = load_stack_values("eu", TEST_STACKS)
    values = {**values, "ai-companion:gpuInstanceType": "g5.xlarge"}  # eu-west-1 offers no g6e
    with pytest.raises(ConfigError) as refused:
        parse_config({**values, "aws:region": "eu-west-1"}, "eu-dublin", parse_catalog(raw))
    assert "'eu-west-1' does not offer network-firewall (needed by federated)" in str(refused.value)
    parse_config({**values, "aws:region": "eu-west-1"}, "eu-dublin")  # the real catalog offers it


# --- exports ---------------------------------------------------------------------------------------

def test_export_of_another_stack_is_refused_unless_as_stack(plans):
    export = plans["_dir"] / "all" / "eu.json"
    refused = clean(residency("audit", "--stack", "us", "--export", export), 2)
    assert "export of stack 'eu'" in refused.err and "not of stack 'us'" in refused.err
    judged = clean(residency("audit", "--stack", "us", "--export", export, "--as-stack"), 1)
    assert "result: FINDINGS" in judged.out


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le"])
def test_bom_and_utf16_exports_are_read(plans, tmp_path, encoding):
    text = (plans["_dir"] / "all" / "sg.json").read_text()
    path = tmp_path / "export.json"
    path.write_bytes(text.encode(encoding))
    if encoding == "utf-16-le":
        path.write_bytes(codecs.BOM_UTF16_LE + text.encode(encoding))  # PowerShell's `>`
    result = clean(residency("audit", "--stack", "sg", "--export", path, "--format", "json"), 0)
    # Every resource of the export was read, not an empty document taken as clean.
    resources = [r for r in json.loads(text)["deployment"]["resources"] if r.get("custom")]  # components aren't checked
    assert len(resources) > 20
    assert json.loads(result.out)["resources_checked"] == len(resources)


def test_not_json_is_bad_input(tmp_path):
    path = tmp_path / "export.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = clean(residency("audit", "--stack", "sg", "--export", path), 2)
    assert str(path) in result.err


# --- writes: unwritable, existing, missing paths ---------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("plan", "--stack", "sg", "--out", UNWRITABLE / "sg.json"),
    ("plan", "--all", "--out", UNWRITABLE),
    ("audit", "--stack", "sg", "--export", "EXPORT", "--output", UNWRITABLE / "report.txt"),
])
def test_unwritable_output_exits_2_naming_the_path(plans, argv):
    argv = [str(plans["_dir"] / "all" / "sg.json") if a == "EXPORT" else a for a in argv]
    result = clean(residency(*argv), 2)
    assert "cannot write" in result.err and str(UNWRITABLE) in result.err
    assert not UNWRITABLE.exists()


def test_plan_all_out_at_an_existing_file_exits_2_before_planning(tmp_path):
    existing = tmp_path / "exports"
    existing.write_text("mine")
    result = clean(residency("plan", "--all", "--out", existing), 2)
    assert "exists and is not a directory" in result.err and "planning" not in result.err
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("argv", [("plan", "--stack", "sg", "--out", "DIR"),
                                  ("audit", "--stack", "sg", "--export", "EXPORT", "--output", "DIR")])
def test_output_at_a_directory_exits_2(plans, tmp_path, argv):
    argv = [tmp_path if a == "DIR" else plans["_dir"] / "all" / "sg.json" if a == "EXPORT" else a for a in argv]
    assert "is a directory" in clean(residency(*argv), 2).err


# --- internal errors: exit 4, one line, traceback only with --debug --------------------------------

def inject_bug(tmp_path: Path) -> dict[str, str]:
    """A `sitecustomize` that makes the plan crash as a bug in our code would."""
    (tmp_path / "sitecustomize.py").write_text(
        "import infra.commands.plan\n"
        "def broken(stack):\n"
        "    raise KeyError('resources')\n"
        "infra.commands.plan.plan_stack = broken\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_internal_error_exits_4_with_one_line_saying_it_is_a_bug(tmp_path):
    result = clean(residency("plan", "--stack", "sg", **inject_bug(tmp_path)), 4)
    [line] = result.err.strip().splitlines()
    assert "internal error: KeyError: 'resources'" in line and "this is a bug in residency" in line
    assert "--debug" in line


def test_debug_shows_the_traceback_of_an_internal_error(tmp_path):
    result = residency("--debug", "plan", "--stack", "sg", **inject_bug(tmp_path))
    assert result.rc == 4 and "Traceback" in result.err and "KeyError: 'resources'" in result.err


# --- Ctrl-C: exit 130 quickly, no traceback, no file ----------------------------------------------

def interrupt_while_planning(argv: list[str], tmp_path: Path) -> tuple[Result, float]:
    """Start the script, wait until it is planning (a marker the test injects), send SIGINT."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, infra.harness.synth\n"
        "original = infra.harness.synth.synthesize\n"
        "def marked(*a, **k):\n"
        "    print('PLANNING', file=sys.stderr, flush=True)\n"
        "    return original(*a, **k)\n"
        "infra.harness.synth.synthesize = marked\n")
    proc = subprocess.Popen([str(SCRIPT), *argv], cwd=ROOT, env=user_env(PYTHONPATH=str(tmp_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("PLANNING") and (sum(s.startswith("PLANNING") for s in seen) >= (2 if "--all" in argv else 1)):
            break
    time.sleep(0.2)  # inside the Pulumi program run
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=HANG_GUARD)
    return Result(argv, proc.returncode, out, "".join(seen) + err), time.monotonic() - sent


@pytest.mark.parametrize("repeat", range(2))
@pytest.mark.parametrize("target", ["stack", "all"])
def test_sigint_while_planning_exits_130_leaving_no_file(tmp_path, target, repeat):
    out = tmp_path / "out"
    argv = ["plan", "--all", "--out", str(out)] if target == "all" else ["plan", "--stack", "eu", "--out", str(out / "eu.json")]
    result, elapsed = interrupt_while_planning(argv, tmp_path)
    assert result.rc == 130, result.err
    assert "Traceback" not in result.err and "interrupted" in result.err
    assert not out.exists() or not any(out.iterdir())
    assert elapsed < 30  # a hang guard: the measured time is ~0.1 s (README, "Exit codes")


# --- every registered command, present and future ---------------------------------------------------

def commands() -> list[str]:
    from infra.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help_through_the_console_script(command):
    result = clean(residency(command, "--help"), 0)
    assert result.out.startswith(f"usage: residency {command}")


@pytest.mark.parametrize("command", commands())
@pytest.mark.parametrize("error, rc", [(KeyError("resources"), 4), (KeyboardInterrupt(), 130)])
def test_the_wrapper_maps_every_command_the_same_way(command, error, rc, capsys):
    """main()'s wrapper is generic: whatever a command raises maps to the same exit code."""
    import argparse

    from infra import cli

    def run(args):
        raise error

    args = argparse.Namespace(command=command, debug=False, project_dir=None, _run=run)
    assert cli.run_command(args) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_misspelt_aws_region_is_pointed_at(tmp_path):
    config = stack_config("sg")
    config["aws:regoin"] = config.pop("aws:region")
    assert "aws:region: required key is missing ('aws:regoin' is set: a typo?)" in config_error(tmp_path, **config)
