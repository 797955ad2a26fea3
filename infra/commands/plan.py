"""`residency plan`: the offline plan of one or all stacks, with the residency verdict.

Runs the real program under Pulumi mocks (infra/harness/synth.py) with config from `Pulumi.<stack>.yaml`,
prints what would be registered (type, name, effective region, option), the declared data paths
and the findings of the residency rules. Exit 0 when clean, 1 on findings, 2 on bad config or an
unwritable --out (README, "Exit codes").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from infra.commands.exit_codes import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from infra.program.config import ConfigError
from infra.program.errors import InputError
from infra.engine.model import COUNTED_RESOURCES, STACK_TYPE
from infra.commands.output import check_writable_target, write_atomic
from infra.program.stackfiles import list_stacks, unknown_stack

HELP = "offline plan of a stack (or --all) under Pulumi mocks, with the residency verdict"
FORMATS = ("text", "json", "markdown", "mermaid")
DEPRECATED_FORMATS = {"table": "text"}  # the text format's old name in plan


def add_arguments(parser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file)")
    target.add_argument("--all", action="store_true", help="plan every stack file in the repo")
    parser.add_argument("--out", metavar="PATH",
                        help="write the captured graph as a `pulumi stack export` (v3); with --all, a directory "
                             "that receives <stack>.json per stack (missing directories are created)")
    parser.add_argument("--format", choices=FORMATS + tuple(DEPRECATED_FORMATS), default="text",
                        help="output format (default: text; `table` is a deprecated alias of text)")


def plan_stack(stack: str):
    """Synthesize one stack and evaluate the residency rules on it: (plan, report)."""
    from infra.engine.rules import Context, evaluate
    from infra.harness.synth import synthesize

    plan = synthesize(stack)  # the cluster layer included, with a placeholder digest before `seed`
    report = evaluate(plan.snapshot, Context.from_config(plan.config))
    report.notes += [f"assumed: {a}" for a in plan.assumptions]
    return plan, report


def path_heading(processing: str) -> str:
    """Declared paths are labelled by what they are: in-geography or global processing."""
    if processing == "in_geography":
        return "declared data paths, processing inside the geography (reviewed):"
    return f"declared data paths, {processing} processing: data may leave the geography (reviewed opt-in):"


def render_text(plan, report) -> str:
    rows = [("TYPE", "NAME", "REGION", "OPTION")]
    for r in sorted(plan.snapshot.counted_resources(), key=lambda r: (r.option or "", r.type, r.name)):
        region = r.region or ("(cluster)" if r.type.startswith("kubernetes:") else "UNPLACED")
        rows.append((r.type, r.name, region, r.option or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"stack {plan.stack}: geography {plan.config.geography.code} "
             f"({', '.join(plan.config.geography.regions)}), home region {plan.config.region}, "
             f"options {', '.join(plan.config.options)}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"{report.resources_checked} resources ({COUNTED_RESOURCES})")
    lines += [note for note in report.notes if note.startswith("assumed: ")]
    if not report.declared_paths:
        lines.append("declared data paths: none")
    for processing in sorted({p["processing"] for p in report.declared_paths}, key=lambda p: p != "in_geography"):
        lines.append(path_heading(processing))
        lines += [f"  {p['connector']}: {p['provider']} {p['host']} (processing: {p['processing']})"
                  for p in report.declared_paths if p["processing"] == processing]
    lines.append(f"findings: {len(report.findings)}")
    for f in report.findings:
        lines.append(f"  {f.rule} {f.severity} {f.type} {f.urn}: {f.message}")
    return "\n".join(lines)


def plan_json(plan, report) -> dict:
    """The audit report of the plan, plus what the text format lists: every resource registered,
    with `counted` true for those in `resources_checked` (COUNTED_RESOURCES)."""
    from infra.engine.report import to_dict

    counted = {id(r) for r in plan.snapshot.counted_resources()}
    resources = [{"type": r.type, "name": r.name, "urn": r.urn,
                  "region": r.region or ("(cluster)" if r.type.startswith("kubernetes:") else None),
                  "option": r.option, "counted": id(r) in counted}
                 for r in plan.snapshot.resources if r.type != STACK_TYPE]
    return {**to_dict(report), "resources": resources}


def render(results: list, fmt: str, all_stacks: bool) -> str:
    if fmt == "text":
        return "\n\n".join(render_text(p, r) for p, r in results) + "\n"
    if fmt == "json":
        docs = [plan_json(p, r) for p, r in results]
        return json.dumps(docs if all_stacks else docs[0], indent=2) + "\n"
    if fmt == "markdown":
        from infra.commands.render import markdown

        return markdown(results)
    from infra.commands.render import mermaid_document

    return mermaid_document(results)


def run(args) -> int:
    fmt = DEPRECATED_FORMATS.get(args.format, args.format)
    if fmt != args.format:
        print(f"residency plan: --format {args.format} is deprecated; use --format {fmt}", file=sys.stderr)
    stacks = list_stacks() if args.all else [args.stack]
    if args.stack and args.stack not in list_stacks():
        raise unknown_stack(args.stack)
    if not stacks:
        raise InputError("no Pulumi.<stack>.yaml files in the project directory")
    if args.out:  # refuse before minutes of planning what cannot be written
        check_writable_target(Path(args.out), "--out", directory=args.all)
    results, errors = [], []
    for i, stack in enumerate(stacks, 1):
        started = time.perf_counter()
        if args.all:
            print(f"[{i}/{len(stacks)}] planning {stack} ...", file=sys.stderr, flush=True)
        try:
            plan, report = plan_stack(stack)
        except (ConfigError, InputError) as exc:
            if not args.all:
                raise
            errors.append(f"Pulumi.{stack}.yaml")
            print(f"[{i}/{len(stacks)}] Pulumi.{stack}.yaml: error: {exc}", file=sys.stderr)
            continue
        results.append((plan, report))
        if args.all:
            print(f"[{i}/{len(stacks)}] {stack}: {report.resources_checked} resources, "
                  f"{len(report.findings)} findings ({time.perf_counter() - started:.2f}s)",
                  file=sys.stderr, flush=True)
    if errors:
        print(f"residency plan: error: bad config in {', '.join(errors)}; nothing written", file=sys.stderr)
        return EXIT_BAD_INPUT

    text = render(results, fmt, args.all)  # before writing: a render bug must not leave exports behind
    if args.out:
        out = Path(args.out)
        for plan, _ in results:
            target = out / f"{plan.stack}.json" if args.all else out
            write_atomic(target, json.dumps(plan.export, indent=1, sort_keys=True) + "\n", "--out")
    sys.stdout.write(text)
    return EXIT_FINDINGS if any(r.findings for _, r in results) else EXIT_OK
