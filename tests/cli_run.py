"""Running the console script `.venv/bin/residency` in a process of its own, as a user does.

`residency(*argv, project=...)` runs it against the test stacks (tests/fixtures/stacks) unless a
project directory is given; `run_many` runs several command lines concurrently (each plan is a
few seconds of CPU). Each run is a new process with the command's argv, environment and working
directory, its stdout and stderr captured apart and its exit status its own. By default the
process is a fork of a warm interpreter (tests/cli_zygote.py: pulumi and the providers imported
once, which is three quarters of a plan's CPU); RESIDENCY_TEST_EXEC=1 execs the real script every
time instead (the `console-script` CI job), as does any run whose environment changes what an
interpreter fixes at start-up. `mermaid_parse(text)` checks a diagram with Mermaid's own parser in node
(tests/mermaid, installed by `make test`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
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

    # subprocess.CompletedProcess's names, for the tests written against subprocess.run
    returncode = property(lambda self: self.rc)
    stdout = property(lambda self: self.out)
    stderr = property(lambda self: self.err)


def user_env(project: Path | None = TEST_STACKS, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no test-session project override unless `project`."""
    env = {k: v for k, v in os.environ.items() if k != PROJECT_DIR_ENV}
    if project is not None:
        env[PROJECT_DIR_ENV] = str(project)
    env.update(extra)
    return env


def residency(*argv: str, project: Path | None = TEST_STACKS, cwd: Path | None = None, **env: str) -> Result:
    return run_script(argv, user_env(project, **env), cwd)


def run_script(argv, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = HANG_GUARD) -> Result:
    """The console script with exactly this argv, environment (default: this process's) and cwd."""
    argv_ = [str(a) for a in argv]
    env_ = dict(os.environ if env is None else env)
    if not forkable(env_):
        done = subprocess.run([str(SCRIPT), *argv_], cwd=cwd or ROOT, env=env_,
                              capture_output=True, text=True, timeout=timeout)
        return Result(argv_, done.returncode, done.stdout, done.stderr)
    rc, out, err = Zygote.shared().run(argv_, env_, cwd or ROOT, timeout)
    return Result(argv_, rc, out, err)


# What an interpreter reads from the environment once, at start-up: a run that changes these
# needs an interpreter of its own.
STARTUP_ENV = ("PYTHON", "LC_", "LANG")


def forkable(env: dict[str, str]) -> bool:
    if os.environ.get("RESIDENCY_TEST_EXEC") == "1":
        return False
    startup = lambda e: {k: v for k, v in e.items() if k.startswith(STARTUP_ENV)}  # noqa: E731
    return startup(env) == startup(Zygote.ENV)


class Zygote:
    """This process's warm interpreter (tests/cli_zygote.py), started on first use."""

    ENV = user_env(project=None)  # the session's environment without its project override
    _shared: Zygote | None = None
    _lock = threading.Lock()

    @classmethod
    def shared(cls) -> Zygote:
        with cls._lock:
            if cls._shared is None or cls._shared.process.poll() is not None:
                cls._shared = cls()
            return cls._shared

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="residency-zygote-")
        self.path = os.path.join(self.dir, "socket")
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_zygote.py")), self.path],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=ROOT, env=self.ENV)
        if self.process.stdout.readline().strip() != b"ready":
            raise AssertionError("the warm interpreter (tests/cli_zygote.py) did not start")
        atexit.register(self.stop)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, str, str]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            conn, pid = self.start(argv, env, cwd, out.fileno(), err.fileno(), timeout=timeout)
            with conn:
                status = self.status(conn, pid, timeout)
            if status is None:
                raise AssertionError(f"residency {' '.join(argv)}: the process (pid {pid}) died without an exit status")
            out.seek(0)
            err.seek(0)
            return status, out.read().decode(), err.read().decode()

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, stdout: int, stderr: int,
              module: str | None = None, timeout: float = HANG_GUARD) -> tuple[socket.socket, int]:
        """Fork a child for one command line (the console script, or `python -u -m module`), its
        stdin /dev/null and its stdout and stderr the given descriptors: (connection, pid). The
        connection answers with the child's exit status (`status`)."""
        request = json.dumps({"argv": argv, "env": env, "cwd": str(cwd),
                              **({"module": module} if module else {})}).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(timeout)
            conn.connect(self.path)
            with open(os.devnull, "rb") as stdin:
                socket.send_fds(conn, [struct.pack("!I", len(request)) + request], [stdin.fileno(), stdout, stderr])
            data = self._read(conn, 4)
        except BaseException:
            conn.close()
            raise
        if len(data) < 4:
            conn.close()
            raise AssertionError("the warm interpreter did not start a child")
        return conn, struct.unpack("!i", data)[0]

    @classmethod
    def status(cls, conn: socket.socket, pid: int, timeout: float) -> int | None:
        """The child's exit status (None where it died before sending it); past `timeout` it is killed."""
        conn.settimeout(timeout)
        try:
            data = cls._read(conn, 4)
        except TimeoutError:
            os.kill(pid, 9)
            raise AssertionError(f"the command ran past the hang guard ({timeout} s)") from None
        return struct.unpack("!i", data)[0] if len(data) == 4 else None

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size and (chunk := conn.recv(size - len(data))):
            data += chunk
        return data


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
