"""Time `residency cost --all` against `residency plan --all`, each in a fresh process.

Target (issue #15): `cost --all` in well under the time of `plan --all` plus one second: pricing
reuses the offline plan's synthesis and adds only the price lookups. Run: `make bench` or
`.venv/bin/python benchmarks/cost_all.py [--repeat N]`. Prints; never asserts (not a test).
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


def fresh(*args: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a fresh interpreter running `python -m infra ARGS`,
    imports included. CPU time is the steadier figure on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infra", *args], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pricing_share() -> tuple[float, float]:
    """In one process: seconds synthesizing every stack, and seconds pricing the results."""
    sys.path.insert(0, str(ROOT))
    from infra.commands.cost import cost_plan
    from infra.commands.pricing import load_prices, load_rules, price_snapshot
    from infra.program.stackfiles import list_stacks

    synth = price = 0.0
    for stack in list_stacks():
        started = time.perf_counter()
        plan = cost_plan(stack)  # with the cluster layer, as `cost` plans it
        synth += time.perf_counter() - started
        started = time.perf_counter()
        rules = load_rules()
        models = tuple(m.key for m in plan.config.bedrock_models)  # Bedrock tokens too, as `cost` prices them
        price_snapshot(plan.snapshot, plan.config.region, rules.usage, rules, load_prices(), stack, models)
        price += time.perf_counter() - started
    return synth, price


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    plan, cost = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        plan.append(fresh("plan", "--all"))
        cost.append(fresh("cost", "--all"))
    for name, runs in (("plan", plan), ("cost", cost)):
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        print(f"residency {name} --all: wall median {statistics.median(wall):.2f} s (min {min(wall):.2f}), "
              f"cpu median {statistics.median(cpu):.2f} s (min {min(cpu):.2f}), {args.repeat} runs")
    p, c = statistics.median(w for w, _ in plan), statistics.median(w for w, _ in cost)
    print(f"wall: cost / (plan + 1 s) = {c / (p + 1):.2f}; target: well under 1")
    synth, price = pricing_share()
    print(f"in one process: synthesis {synth:.2f} s, pricing {price * 1000:.0f} ms (all stacks)")
