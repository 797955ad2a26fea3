"""Time the test suite as `make test` runs it: wall time and CPU (children included).

Target (issue #25): the whole suite in 3 minutes of wall time on a quiet 2-core machine.
Run: `.venv/bin/python benchmarks/suite_time.py [--exec]` (`--exec` sets RESIDENCY_TEST_EXEC=1,
every command an exec of the console script, as preview.yml's console-script job runs it).
Prints; never asserts (not a test).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 180


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exec", action="store_true", help="exec the console script for every command")
    args = parser.parse_args()
    # As `make test` runs it: .pyc files written even where PYTHONDONTWRITEBYTECODE is set.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "", **({"RESIDENCY_TEST_EXEC": "1"} if args.exec else {})}
    load = os.getloadavg()[0]
    reference = reference_loop()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfE", "-n", "auto", "--dist", "loadfile", "-p",
                           "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"pytest: {summary} (exit {done.returncode})")
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"  {line}")
    print(f"wall {wall:.0f} s (target {TARGET_S} s on 2 quiet cores: {'met' if wall <= TARGET_S else 'NOT met'}), "
          f"CPU {cpu:.0f} s on {os.cpu_count()} CPUs ({cpu / (wall * (os.cpu_count() or 1)):.0%} busy), "
          f"load average before: {load:.1f}")
    print(f"reference loop: {reference:.2f} s before, {reference_loop():.2f} s after (the same work: how fast "
          f"this machine ran at the time; shared virtual machines vary by 10-15%)")


def reference_loop() -> float:
    """CPU seconds of a fixed pure-Python loop."""
    start = time.process_time()
    total = 0
    for i in range(20_000_000):
        total += i * i % 7
    return time.process_time() - start


if __name__ == "__main__":
    main()
