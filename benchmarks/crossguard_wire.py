"""Latency of the CrossGuard pack over the analyzer gRPC protocol, per stack (informational).

Runs the engine harness of tests/crossguard_wire.py on every stack's offline plan (update and
first preview) and prints the per-resource Analyze latency (mean, p95) and the AnalyzeStack
latency. Usage: .venv/bin/python benchmarks/crossguard_wire.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program.stackfiles import list_stacks, load_stack_values  # noqa: E402
from infra.harness.synth import synthesize  # noqa: E402
from tests import crossguard_wire as wire  # noqa: E402


def main() -> int:
    print(f"{'stack':6} {'mode':8} {'resources':>9} {'Analyze mean ms':>15} {'p95 ms':>7} {'AnalyzeStack ms':>15}")
    for stack in list_stacks():
        values, _ = load_stack_values(stack)
        resources = synthesize(stack).export["deployment"]["resources"]
        config = (wire.PACK_DIR / f"config.{stack}.json").read_text()
        for mode, batch, dry_run in (("update", resources, False), ("preview", wire.first_preview(resources), True)):
            lat = wire.run_engine(stack, values, batch, config, dry_run=dry_run).latency()
            print(f"{stack:6} {mode:8} {lat['resources']:>9} {lat['analyze_mean_ms']:>15.1f} "
                  f"{lat['analyze_p95_ms']:>7.1f} {lat['analyze_stack_ms']:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
