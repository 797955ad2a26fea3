"""Latency of the CrossGuard pack over the analyzer gRPC protocol, per stack (informational).

Runs the engine harness of tests/crossguard_wire.py on every stack's offline plan (update, first
preview, and `pulumi policy analyze --file` over the plan's export) and prints the per-resource
Analyze latency (mean, p95) and the AnalyzeStack latency. Usage: .venv/bin/python benchmarks/crossguard_wire.py
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program.stackfiles import list_stacks, load_stack_values  # noqa: E402
from infra.harness.synth import synthesize  # noqa: E402
from tests import crossguard_wire as wire  # noqa: E402


def main() -> int:
    print(f"{'stack':6} {'mode':8} {'resources':>9} {'Analyze mean ms':>15} {'p95 ms':>7} {'AnalyzeStack ms':>15}")
    for stack in list_stacks():
        values, _ = load_stack_values(stack)
        plan = synthesize(stack)
        resources = plan.export["deployment"]["resources"]
        config = (wire.PACK_DIR / f"config.{stack}.json").read_text()
        with tempfile.TemporaryDirectory() as tmp:
            export = Path(tmp) / f"{stack}.json"
            export.write_text(json.dumps(plan.export))
            runs = [("update", wire.run_engine(stack, values, resources, config, dry_run=False)),
                    ("preview", wire.run_engine(stack, values, wire.first_preview(resources), config, dry_run=True)),
                    ("analyze", wire.policy_analyze(export, config))]
        for mode, run in runs:
            lat = run.latency()
            print(f"{stack:6} {mode:8} {lat['resources']:>9} {lat['analyze_mean_ms']:>15.1f} "
                  f"{lat['analyze_p95_ms']:>7.1f} {lat['analyze_stack_ms']:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
