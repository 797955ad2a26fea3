"""The workflows' supply chain: zizmor-clean, actions pinned by commit, no unverified downloads,
and jobs that hold AWS credentials install only hash-locked runtime packages."""

from __future__ import annotations

import json
import re
import subprocess


from test_workflows import WORKFLOW_FILES, WORKFLOWS, _tool, load
from infra.program.stackfiles import ROOT

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# The tag each pinned commit was resolved from (git rev-parse <tag>^{commit} in the action's
# repository, fetched 2026-12-07): the comment after the SHA must name it.
PINNED = {
    "actions/checkout": ("fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09", "v5.1.0"),
    "actions/setup-python": ("ece7cb06caefa5fff74198d8649806c4678c61a1", "v6.3.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
    "github/codeql-action/upload-sarif": ("8aad20d150bbac5944a9f9d289da16a4b0d87c1e", "v4.36.2"),
    # Each resolved from the tag in the action's own repository (a fetched snapshot: git rev-parse TAG^{commit}).
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("634f93cb2916e3fdff6788551b99b062d0335ce0", "v5.0.0"),
    "actions/github-script": ("f28e40c7f34bde8b3046d885e986cb6290c5673b", "v7.1.0"),
}


def zizmor(*paths) -> list[dict]:
    """zizmor's findings at medium severity or above (offline: no GitHub API calls)."""
    done = subprocess.run([_tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "json",
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode in (0, 10, 11, 12, 13, 14), done.stderr  # 1x: findings of severity x
    return json.loads(done.stdout or "[]")


def test_zizmor_reports_nothing_at_medium_or_above():
    assert [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in zizmor(WORKFLOWS)] == []


def test_zizmor_catches_an_unpinned_action_and_a_persisted_checkout(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
                   "    steps:\n      - uses: actions/checkout@v5\n")
    assert {f["ident"] for f in zizmor(bad)} >= {"unpinned-uses", "artipacked"}


def uses_lines() -> list[tuple[str, str]]:
    return [(name, line.strip()) for name in WORKFLOW_FILES
            for line in (WORKFLOWS / name).read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]


def test_every_action_is_pinned_by_commit_with_its_tag_in_a_comment():
    lines = uses_lines()
    assert len(lines) >= 20
    for name, line in lines:
        ref, _, comment = line.split("uses:", 1)[1].partition("#")
        ref = ref.strip()
        assert SHA_PIN.match(ref), (name, line)
        action, sha = ref.split("@")
        assert PINNED[action] == (sha, comment.strip()), (name, line)


def run_scripts() -> list[tuple[str, str, str]]:
    return [(name, job_id, step.get("run", "")) for name in WORKFLOW_FILES
            for job_id, job in load(name)["jobs"].items() for step in job["steps"]]


def test_no_script_downloads_a_tool_or_pipes_one_into_a_shell():
    """Tools come from the runner image (Session Manager plugin), apt (signed archives), PyPI by
    hash (requirements.lock) or a pinned action (the Pulumi CLI); no script fetches one itself."""
    for name, job, script in run_scripts():
        assert not re.search(r"\b(curl|wget)\b", script), (name, job, script)
        assert not re.search(r"\|\s*(sudo\s+)?(ba|z)?sh\b", script), (name, job, script)
        assert "dpkg -i" not in script, (name, job, script)


def credentialed_jobs() -> list[tuple[str, str, dict]]:
    return [(name, job_id, job) for name in WORKFLOW_FILES for job_id, job in load(name)["jobs"].items()
            if any("configure-aws-credentials" in str(s.get("uses", "")) for s in job["steps"])]


def test_jobs_with_aws_credentials_install_only_the_hash_locked_runtime():
    jobs = credentialed_jobs()
    assert {(n, j) for n, j, _ in jobs} == {("deploy.yml", "deploy"), ("preview.yml", "preview"), ("audit.yml", "live-audit"),
                                             ("audit.yml", "org-audit")}
    for name, job_id, job in jobs:
        installs = [s["run"] for s in job["steps"] if re.search(r"\b(pip|make)\b", s.get("run", ""))]
        assert installs == ["make venv-locked"], (name, job_id, installs)
        # No dependency cache to restore into a credentialed job (zizmor: cache-poisoning).
        assert all("cache" not in (s.get("with") or {}) for s in job["steps"]), (name, job_id)
    target = re.search(r"^venv-locked:.*?(?=^\S|\Z)", (ROOT / "Makefile").read_text(), re.M | re.S).group(0)
    assert "--require-hashes --no-deps -r requirements.lock" in target and "requirements-dev" not in target


def lock_entries() -> dict[str, list[str]]:
    """requirements.lock: package name -> its hashes."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            spec, *hashes = line.split()
            name, _, version = spec.partition("==")
            assert version, f"not pinned: {spec}"
            entries[name.lower().replace("_", "-")] = [h for h in hashes if h.startswith("--hash=sha256:")]
    return entries


def test_the_lock_pins_every_runtime_package_by_hash():
    entries = lock_entries()
    assert all(entries.values()), [n for n, h in entries.items() if not h]
    runtime = [re.split(r"[\[=<>!~ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
               for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert set(runtime) | {"setuptools"} <= set(entries)
    assert not {"pytest", "moto", "zizmor", "scapy"} & set(entries)  # no test tools
