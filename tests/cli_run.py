"""Running the console script `.venv/bin/residency` in a subprocess, as a user does.

`residency(*argv, project=...)` runs it against the test stacks (tests/fixtures/stacks) unless a
project directory is given; `run_many` runs several command lines concurrently (each plan is a
few seconds of CPU). `mermaid_parse(text)` checks a diagram with Mermaid's own parser in node
(tests/mermaid, installed by `make test`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import TEST_STACKS
from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT

SCRIPT = ROOT / ".venv" / "bin" / "residency"
MERMAID_DIR = Path(__file__).resolve().parent / "mermaid"
HANG_GUARD = 300  # seconds: a bound against hangs, not a speed target (benchmarks/ has those)


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str


def user_env(project: Path | None = TEST_STACKS, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no test-session project override unless `project`."""
    env = {k: v for k, v in os.environ.items() if k != PROJECT_DIR_ENV}
    if project is not None:
        env[PROJECT_DIR_ENV] = str(project)
    env.update(extra)
    return env


def residency(*argv: str, project: Path | None = TEST_STACKS, cwd: Path | None = None, **env: str) -> Result:
    argv_ = [str(a) for a in argv]
    done = subprocess.run([str(SCRIPT), *argv_], cwd=cwd or ROOT, env=user_env(project, **env),
                          capture_output=True, text=True, timeout=HANG_GUARD)
    return Result(argv_, done.returncode, done.stdout, done.stderr)


def run_many(commands: dict[str, tuple]) -> dict[str, Result]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(residency, *argv) for name, argv in commands.items()}
        return {name: f.result() for name, f in futures.items()}


def project_copy(tmp_path: Path, **stacks: dict) -> Path:
    """A project directory: the test Pulumi.yaml plus the given stack configs (`name={config}`)."""
    import yaml

    shutil.copy(TEST_STACKS / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for name, config in stacks.items():
        (tmp_path / f"Pulumi.{name.replace('_', '-')}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def stack_config(stack: str) -> dict:
    import yaml

    return yaml.safe_load((TEST_STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


def mermaid_parse(text: str | list[str]):
    """Mermaid's parser (mermaid.parse under jsdom, offline): {"ok": bool, "type"|"error": str}
    for a diagram, a list of those for a list of diagrams (one node process)."""
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        raise AssertionError("Mermaid's parser is not installed: run `make test` (npm ci in tests/mermaid)")
    stdin = json.dumps(text) if isinstance(text, list) else text
    done = subprocess.run(["node", str(MERMAID_DIR / "parse.mjs")], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=MERMAID_DIR)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
