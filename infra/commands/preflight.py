"""`residency preflight --stack S [--profile P] [--endpoint-url U]`: can this account take the
stack's first `pulumi up`? Read-only; nothing is created.

The stack's needs come from its offline plan (infra/harness/synth.py) and its config; each check
(infra/engine/preflight/checks.py) passes, fails with the fix to apply, or is not checked with why.
Progress goes to stderr, the report to stdout (or atomically to `--output`).

Exit codes: 0 every check passed; 1 a check failed (whatever else); 3 nothing failed but
something was not checked; 2 bad input (unknown stack, bad config or flag, no credentials);
4 internal error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infra.commands.audit import add_timeout_arguments, timeouts_from
from infra.commands.exit_codes import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from infra.commands.output import check_writable_target, emit
from infra.engine.preflight import CHECKS, FAILED, NOT_CHECKED, PASSED, Preflight
from infra.program.errors import InputError

HELP = "check read-only that the AWS account can take the stack's first `pulumi up` (region, services, quotas, ...)"
MARK = {PASSED: "PASS", FAILED: "FAIL", NOT_CHECKED: "NOT CHECKED"}


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--profile", metavar="NAME", help="AWS shared-config profile")
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="AWS endpoint override (tests/moto); AWS_ENDPOINT_URL is honoured too")
    ids = [c.id for c in CHECKS]
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--check", action="append", choices=ids, metavar="ID",
                       help=f"run only this check (repeatable): {', '.join(ids)}")
    which.add_argument("--skip", action="append", choices=ids, metavar="ID",
                       help="leave this check out (repeatable); the report says which were left out")
    parser.add_argument("--format", choices=tuple(FORMATTERS), default="text", help="report format (default: text)")
    add_timeout_arguments(parser)
    parser.add_argument("--output", metavar="PATH", help="write the report here (atomically) instead of stdout")


def verdict(report: Preflight) -> str:
    counts = f"{report.count(PASSED)} passed, {report.count(FAILED)} failed, {report.count(NOT_CHECKED)} not checked"
    if report.count(FAILED):
        return f"the account cannot take the first `pulumi up` yet ({counts})"
    if report.count(NOT_CHECKED):
        return f"no verdict: something was not checked ({counts})"
    return f"the account can take the first `pulumi up` ({counts})"


def exit_code(report: Preflight) -> int:
    if report.count(FAILED):
        return EXIT_FINDINGS
    return EXIT_INCOMPLETE if report.count(NOT_CHECKED) else EXIT_OK


def to_dict(report: Preflight) -> dict:
    needs = report.needs
    return {
        "stack": needs.cfg.stack, "geography": needs.cfg.geography.code, "region": needs.region,
        "verdict": verdict(report), "exitCode": exit_code(report),
        "counts": {s: report.count(s) for s in (PASSED, FAILED, NOT_CHECKED)}, "leftOut": left_out(report),
        "needs": {"services": list(needs.services), "endpointServices": list(needs.endpoint_services),
                  "instances": [{"role": i.role, "instanceType": i.instance_type, "zones": list(i.zones)}
                                for i in needs.instances],
                  "kubernetesVersion": needs.kubernetes_version, "gpuMaxSize": needs.cfg.gpu.max_size,
                  "bedrockModels": [m.model_id for m in needs.cfg.bedrock_models]},
        "checks": [{"id": r.check, "title": r.title, "status": r.status, "detail": r.outcome.detail,
                    **({"fix": r.outcome.fix} if r.outcome.fix else {})} for r in report.results],
    }


def left_out(report: Preflight) -> list[str]:
    """Checks that apply to the stack but were not asked for (--check / --skip)."""
    ran = {r.check for r in report.results}
    return [c.id for c in CHECKS if c.applies(report.needs) and c.id not in ran]


def render_text(report: Preflight) -> str:
    cfg = report.needs.cfg
    lines = [f"preflight of stack {cfg.stack}: geography {cfg.geography.code}, home region {cfg.region}"]
    if left_out(report):
        lines.append(f"  left out on request: {', '.join(left_out(report))}")
    width = max(len(MARK[r.status]) for r in report.results) if report.results else 0
    for r in report.results:
        lines.append(f"  {MARK[r.status].ljust(width)}  {r.check}: {r.title}")
        lines.append(f"  {' ' * width}    {r.outcome.detail}")
        if r.outcome.fix:
            lines.append(f"  {' ' * width}    fix: {r.outcome.fix}")
    lines.append(verdict(report))
    return "\n".join(lines) + "\n"


FORMATTERS = {"text": render_text, "json": lambda report: json.dumps(to_dict(report), indent=2) + "\n"}


def preflight(args) -> Preflight:
    from infra.engine.credentials import aws_session
    from infra.engine.live.core import Clients
    from infra.engine.preflight import allowed_operations, needs_from_plan, run_checks
    from infra.harness.synth import synthesize
    from infra.program.stackfiles import load_stack_config

    load_stack_config(args.stack)  # bad stack or config: exit 2 before credentials are asked for
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise InputError(f"--endpoint-url: '{endpoint}' is not an http(s) URL")
    session = aws_session(args.profile)

    def progress(message: str) -> None:
        print(f"residency preflight: {message}", file=sys.stderr)

    progress(f"planning stack {args.stack} offline to derive what it needs")
    plan = synthesize(args.stack)
    needs = needs_from_plan(plan.snapshot, plan.config)
    clients = Clients(session, args.endpoint_url, timeouts_from(args), allowed=allowed_operations(),
                      user_agent="residency-preflight")
    only = args.check or ([c.id for c in CHECKS if c.id not in args.skip] if args.skip else None)
    return run_checks(needs, clients, progress, only=only)


def run(args) -> int:
    if args.output:
        check_writable_target(Path(args.output), "--output")
    report = preflight(args)
    text = FORMATTERS[args.format](report)
    emit(text, args.output, "preflight", f"stack {args.stack}: {verdict(report)}")
    return exit_code(report)
