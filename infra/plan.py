"""`residency plan`: the offline plan of one or all stacks, with the residency verdict.

Runs the real program under Pulumi mocks (infra/synth.py) with config from `Pulumi.<stack>.yaml`,
prints what would be registered (type, name, effective region, option), the declared data paths
and the findings of the residency rules. Exit 0 when clean, 1 on findings, 2 on bad config.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from infra.config import ConfigError
from infra.loaders import InputError
from infra.output import write_atomic
from infra.stackfiles import list_stacks

HELP = "offline plan of a stack (or --all) under Pulumi mocks, with the residency verdict"
FORMATS = ("table", "json", "markdown", "mermaid")


def add_arguments(parser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file)")
    target.add_argument("--all", action="store_true", help="plan every stack file in the repo")
    parser.add_argument("--out", metavar="PATH",
                        help="write the captured graph as a `pulumi stack export` (v3); with --all, a directory "
                             "that receives <stack>.json per stack")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def plan_stack(stack: str):
    """Synthesize one stack and evaluate the residency rules on it: (plan, report)."""
    from infra.rules import Context, evaluate
    from infra.synth import synthesize

    plan = synthesize(stack)
    return plan, evaluate(plan.snapshot, Context.from_config(plan.config))


def render_table(plan, report) -> str:
    rows = [("TYPE", "NAME", "REGION", "OPTION")]
    for r in sorted(plan.snapshot.custom_resources(), key=lambda r: (r.option or "", r.type, r.name)):
        region = r.region or ("(cluster)" if r.type.startswith("kubernetes:") else "UNPLACED")
        rows.append((r.type, r.name, region, r.option or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"stack {plan.stack}: geography {plan.config.geography.code} "
             f"({', '.join(plan.config.geography.regions)}), options {', '.join(plan.config.options)}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"{len(rows) - 1} resources")
    lines.append("declared data paths (reviewed, leave the region by design):" if report.declared_paths
                 else "declared data paths: none")
    for p in report.declared_paths:
        lines.append(f"  {p['connector']}: {p['provider']} {p['host']} (processing: {p['processing']})")
    lines.append(f"findings: {len(report.findings)}")
    for f in report.findings:
        lines.append(f"  {f.rule} {f.severity} {f.type} {f.urn}: {f.message}")
    return "\n".join(lines)


def run(args) -> int:
    stacks = list_stacks() if args.all else [args.stack]
    if args.stack and args.stack not in list_stacks():
        raise InputError(f"unknown stack '{args.stack}'; stacks: {', '.join(list_stacks())}")
    results, errors = [], []
    for i, stack in enumerate(stacks, 1):
        started = time.perf_counter()
        if args.all:
            print(f"[{i}/{len(stacks)}] planning {stack} ...", file=sys.stderr, flush=True)
        try:
            plan, report = plan_stack(stack)
        except ConfigError as exc:
            if not args.all:
                raise
            errors.append(stack)
            print(f"[{i}/{len(stacks)}] {stack}: error: {exc}", file=sys.stderr)
            continue
        results.append((plan, report))
        if args.all:
            print(f"[{i}/{len(stacks)}] {stack}: {len(plan.snapshot.resources)} resources, "
                  f"{len(report.findings)} findings ({time.perf_counter() - started:.2f}s)",
                  file=sys.stderr, flush=True)
    if errors:
        print(f"residency plan: error: bad config in {', '.join(errors)}; nothing written", file=sys.stderr)
        return 2

    if args.out:
        out = Path(args.out)
        for plan, _ in results:
            target = out / f"{plan.stack}.json" if args.all else out
            write_atomic(target, json.dumps(plan.export, indent=1, sort_keys=True) + "\n", "--out", create_dirs=True)

    if args.format == "table":
        print("\n\n".join(render_table(p, r) for p, r in results))
    elif args.format == "json":
        from infra.report import to_json
        print(json.dumps([to_json(r) for _, r in results] if args.all else to_json(results[0][1]), indent=2))
    elif args.format == "markdown":
        from infra.render import markdown
        print(markdown(results))
    else:
        from infra.render import mermaid
        print("\n".join(mermaid(p, r) for p, r in results))
    return 1 if any(r.findings for _, r in results) else 0
