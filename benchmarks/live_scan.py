"""Live-scan timing: `residency audit --live` (the console script) against moto's server on
127.0.0.1, a populated account, and the worst cases when no AWS answers.

    .venv/bin/python benchmarks/live_scan.py

Prints, in seconds:
- a full EU-geography scan of a populated moto account (6 regions, every service; moto has not
  enabled the opt-in region eu-south-2, so that region is "not checked" and the exit is 3);
- the same scan with the endpoint refusing connections (nothing listens on the port);
- the same scan with an endpoint that accepts connections and never answers (default timeouts:
  this is the worst case, bounded by the first call's read timeout x attempts + backoff).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from live_fixtures import hermetic_aws_env, shared_moto_server  # noqa: E402
from test_live_faults import plant_account  # noqa: E402
from test_live_readonly import populate  # noqa: E402

RESIDENCY = str(ROOT / ".venv" / "bin" / "residency")


def scan(url: str, env: dict) -> tuple[float, int, int]:
    start = time.monotonic()
    proc = subprocess.run([RESIDENCY, "audit", "--live", "--stack", "eu", "--endpoint-url", url, "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=600)
    seconds = time.monotonic() - start
    assert "Traceback" not in proc.stderr, proc.stderr
    return seconds, proc.returncode, proc.stdout.count('"service"')


def hung_endpoint() -> str:
    """Accepts TCP connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in iter(int, 1)], daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def main() -> None:
    class _Patch:  # hermetic_aws_env wants a monkeypatch: set the variables for good here
        def setenv(self, k, v):
            os.environ[k] = v

        def delenv(self, k, raising=True):
            os.environ.pop(k, None)

    tmp = Path(tempfile.mkdtemp())
    hermetic_aws_env(_Patch(), tmp)
    server = shared_moto_server()
    server.reset()
    populate(server)
    plant_account(server)
    env = dict(os.environ)
    scan(server.url, env)  # warm moto's backends (its first answers are slow), not timed
    seconds, code, units = scan(server.url, env)
    print(f"populated moto account, EU geography (6 regions): {seconds:.1f} s, exit {code}, "
          f"{units} not-checked unit(s) (eu-south-2 is not enabled in moto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}"
    seconds, code, units = scan(refused, env)
    print(f"every endpoint refusing connections: {seconds:.1f} s, exit {code}, {units} unit(s) not checked")
    seconds, code, units = scan(hung_endpoint(), env)
    print(f"every endpoint accepting and never answering (default timeouts): {seconds:.1f} s, exit {code}, "
          f"{units} unit(s) not checked")
    server.stop()


if __name__ == "__main__":
    main()
