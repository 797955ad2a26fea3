"""The warm interpreter (tests/cli_zygote.py) is the console script, only started sooner.

Each command line runs twice, through the real script (exec of .venv/bin/residency) and through a
fork of the warm interpreter: same exit status, same stdout, same stderr. The lines cover every
exit status a user meets without AWS (0, 1, 2), a file written, a project directory and a working
directory of the command's own, and an environment variable the command reads.
"""

from __future__ import annotations

import json
import os

import pytest

from cli_run import Zygote, forkable, run_script, user_env
from stack_plans import planned

EXPORT_WITH_FINDINGS = {"version": 3, "deployment": {"resources": [{
    "urn": "urn:pulumi:eu::ai-companion::aws:s3/bucketReplicationConfig:BucketReplicationConfig::abroad",
    "type": "aws:s3/bucketReplicationConfig:BucketReplicationConfig", "custom": True, "id": "abroad",
    "inputs": {"rules": [{"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::copies-in-us-east-1"}}]},
    "outputs": {"rules": [{"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::copies-in-us-east-1"}}]},
}]}}


def both_ways(argv, env, cwd, monkeypatch):
    """(fork, exec) of one command line, whichever way the suite itself runs (RESIDENCY_TEST_EXEC)."""
    monkeypatch.delenv("RESIDENCY_TEST_EXEC", raising=False)
    assert forkable(env)
    forked = run_script(argv, env, cwd)
    monkeypatch.setenv("RESIDENCY_TEST_EXEC", "1")
    executed = run_script(argv, env, cwd)
    return forked, executed


@pytest.mark.parametrize("case", ["version", "plan-json", "unknown-stack", "findings", "out-file"])
def test_a_fork_of_the_warm_interpreter_answers_as_the_script_does(case, tmp_path, monkeypatch):
    env = user_env()
    export = tmp_path / "eu.json"
    export.write_text(json.dumps(EXPORT_WITH_FINDINGS if case == "findings" else planned("eu").export))
    argv = {"version": ["--version"],
            "plan-json": ["plan", "--stack", "ksa", "--format", "json"],
            "unknown-stack": ["plan", "--stack", "eu-west"],
            "findings": ["audit", "--stack", "eu", "--export", "eu.json", "--format", "json"],
            "out-file": ["--project-dir", str(env.pop("RESIDENCY_PROJECT_DIR")), "plan", "--stack", "sg",
                         "--out", "sg.json"]}[case]
    forked, executed = both_ways(argv, env, tmp_path, monkeypatch)
    expected_rc = {"unknown-stack": 2, "findings": 1}.get(case, 0)
    assert (forked.rc, executed.rc) == (expected_rc, expected_rc), (forked.err, executed.err)
    assert forked.out == executed.out and forked.err == executed.err
    assert forked.out or forked.err
    if case == "out-file":
        assert json.loads((tmp_path / "sg.json").read_text())["deployment"]["resources"]


def test_an_environment_an_interpreter_reads_at_start_up_gets_an_interpreter_of_its_own(monkeypatch):
    monkeypatch.delenv("RESIDENCY_TEST_EXEC", raising=False)
    env = user_env()
    assert forkable(env)
    assert not forkable({**env, "PYTHONIOENCODING": "utf-16"})
    assert not forkable({**env, "LC_ALL": "C" if Zygote.ENV.get("LC_ALL") != "C" else "C.UTF-8"})
    monkeypatch.setenv("RESIDENCY_TEST_EXEC", "1")
    assert not forkable(env)


def test_the_fork_gets_the_commands_environment_not_the_warm_interpreters(tmp_path, monkeypatch):
    monkeypatch.delenv("RESIDENCY_TEST_EXEC", raising=False)
    env = {**user_env(), "RESIDENCY_DOCS_URL": "https://docs.example.test/rules.md"}
    export = tmp_path / "eu.json"
    export.write_text(json.dumps(EXPORT_WITH_FINDINGS))
    done = run_script(["audit", "--stack", "eu", "--export", str(export), "--format", "markdown"], env, tmp_path)
    assert done.rc == 1 and "https://docs.example.test/rules.md#" in done.out
    assert "RESIDENCY_DOCS_URL" not in os.environ
