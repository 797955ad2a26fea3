"""Time `residency plan --all`: seconds per stack and in total, in one process as the CLI runs.

Target (issue #2): all seven stacks in under 20 s on a 2-core machine. Run: `make bench` or
`.venv/bin/python benchmarks/plan_all.py [--repeat N]`. Prints; never asserts (not a test).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def in_process(repeat: int) -> None:
    from infra.commands.plan import plan_stack
    from infra.program.stackfiles import list_stacks

    for stack in list_stacks():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            plan, report = plan_stack(stack)
            times.append(time.perf_counter() - started)
        print(f"{stack:>4}: {statistics.median(times):6.3f} s  ({len(plan.snapshot.resources)} resources, "
              f"{len(report.findings)} findings)")


def whole_command() -> float:
    """The real thing: a fresh interpreter running `python -m infra plan --all` (imports included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infra", "plan", "--all"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    in_process(args.repeat)
    total = [whole_command() for _ in range(args.repeat)]
    print(f"residency plan --all (fresh process, {args.repeat} runs): median {statistics.median(total):.2f} s, "
          f"max {max(total):.2f} s; target < 20 s")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
