"""`residency audit`: check a deployed stack against its geography, from its state or live.

    residency audit --stack STACK --export FILE [--format text|json|sarif|markdown] [--output PATH] [--docs-url URL]
    residency audit --stack STACK --live [--profile NAME] [--regions r1,r2] [--endpoint-url URL]
                    [--connect-timeout S] [--read-timeout S] [--max-attempts N]
                    [--format ...] [--output PATH]

`--export` reads a `pulumi stack export` (version 3 or 4) or a file-backend checkpoint and judges
it with the one rule set (infra/engine/rules) against the geography of `Pulumi.STACK.yaml`. `--live`
reads the account with boto3 (infra/engine/live) and judges what it finds with the same rules.

Exit codes: 0 no findings; 1 findings; 2 bad input (unreadable or unrecognized file, unknown
stack, bad config or flag); 3 the live scan was incomplete (some service/region could not be
read). 3 wins over 1: an incomplete scan proves nothing, so it must never read as a verdict; the
findings it did make are still in the report, and every line that counts findings says the scan
was incomplete.

Output goes to stdout, or atomically to `--output` (temp file + rename): never half a report.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from infra.commands.exit_codes import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from infra.engine.loaders import read_export
from infra.program.errors import InputError
from infra.commands.output import check_writable_target, emit
from infra.engine.outputs import FORMATS, OUTPUTS, render
from infra.engine.report import docs_url, verdict
from infra.engine.rules import Context, Report, evaluate
from infra.engine import suppress
from infra.program.stackfiles import load_stack_config, project_root
from infra.engine.timeouts import Timeouts

HELP = "audit a stack export/checkpoint (--export) or the live account (--live) against the stack's geography"


def add_arguments(parser) -> None:
    parser.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file); with --org, the stack of "
                                         "accounts --org-map does not place")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", metavar="FILE",
                        help="a `pulumi stack export` (v3/v4) or file-backend checkpoint JSON file")
    source.add_argument("--live", action="store_true", help="scan the AWS account read-only (boto3)")
    source.add_argument("--org", action="store_true",
                        help="scan every account of the AWS Organization (assuming --org-role in each), each "
                             "against the geography --org-map gives it")
    parser.add_argument("--as-stack", action="store_true",
                        help="with --export: judge an export whose URNs name another stack against --stack's "
                             "geography on purpose (refused otherwise)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="report format (default: text): " + "; ".join(f"{n}: {OUTPUTS[n].help}" for n in FORMATS))
    parser.add_argument("--output", metavar="PATH", help="write the report here (atomically) instead of stdout")
    parser.add_argument("--docs-url", metavar="URL",
                        help="absolute URL of docs/rules.md that rule links point to (SARIF, Markdown, ASFF, OCSF) (default: $RESIDENCY_DOCS_URL, "
                             "in GitHub Actions the repository's file at the commit, else this checkout's file)")
    parser.add_argument("--suppressions", metavar="FILE",
                        help="accepted findings with reason, owner and expiry (default: residency-suppressions.yaml "
                             "in the project directory, when there is one); an expired one fails the audit")
    parser.add_argument("--to-security-hub", action="store_true",
                        help="also import the findings into AWS Security Hub in the stack's home region "
                             "(ASFF, BatchImportFindings); a finding that does not arrive makes the exit code 3")
    live = parser.add_argument_group("live scan (--live)")
    live.add_argument("--profile", metavar="NAME", help="AWS shared-config profile")
    live.add_argument("--regions", metavar="R1,R2", help="comma-separated subset of the geography's regions")
    live.add_argument("--endpoint-url", metavar="URL",
                      help="AWS endpoint override (tests/moto); AWS_ENDPOINT_URL is honoured too")
    org = parser.add_argument_group("organization scan (--org)")
    org.add_argument("--org-role", metavar="NAME", default=None,
                     help="read-only role assumed in each account (default ai-companion-audit)")
    org.add_argument("--org-map", metavar="FILE",
                     help="YAML: accounts (id -> stack), ous (OU id -> stack), tag (account tag naming the stack)")
    org.add_argument("--pool", metavar="N", type=_positive(int), default=None,
                     help="accounts scanned at once (default 4)")
    live.add_argument("--shard", metavar="K/N", type=_shard,
                      help="scan only shard K of N of the account x region units (stable hash); combine the N "
                           "JSON reports with `residency merge`")
    add_timeout_arguments(live)


def add_timeout_arguments(group) -> None:
    """--connect-timeout, --read-timeout and --max-attempts (infra/engine/timeouts.py), for every
    command that calls AWS through the guarded clients; `timeouts_from(args)` reads them back."""
    defaults = Timeouts()
    group.add_argument("--connect-timeout", metavar="S", type=_positive(float), default=defaults.connect,
                       help=f"seconds to wait for a connection, per attempt (default {defaults.connect:g})")
    group.add_argument("--read-timeout", metavar="S", type=_positive(float), default=defaults.read,
                       help=f"seconds to wait for an answer, per attempt (default {defaults.read:g})")
    group.add_argument("--max-attempts", metavar="N", type=_positive(int), default=defaults.max_attempts,
                       help=f"attempts per call, first one included (standard retry mode; default "
                            f"{defaults.max_attempts})")


def timeouts_from(args) -> Timeouts:
    return Timeouts(connect=args.connect_timeout, read=args.read_timeout, max_attempts=args.max_attempts)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}' is not a positive number")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse


def _shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"'{text}' is not K/N with 1 <= K <= N (e.g. 3/8)")
    return int(k), int(n)


@contextmanager
def _no_gc():
    """The audit allocates millions of short-lived containers and frees none until the end;
    the cyclic GC would only rescan them (superlinear on 100k-resource exports)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def urn_stacks(snapshot) -> list[str]:
    """The stack names the snapshot's URNs carry (`urn:pulumi:<stack>::<project>::...`)."""
    return sorted({r.urn.split(":", 3)[2].split("::", 1)[0] for r in snapshot.resources
                   if r.urn.startswith("urn:pulumi:") and "::" in r.urn})


def audit_export(path: str | Path, stack: str, ctx: Context | None = None, check_stack: bool = False) -> Report:
    """Judge an export/checkpoint file against the stack's geography (InputError on bad input).
    `check_stack` refuses an export whose URNs name another stack (the CLI, unless --as-stack)."""
    cfg = load_stack_config(stack) if ctx is None else None
    ctx = ctx or Context.from_config(cfg)
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--export: {path} is a directory, not an export file")
    with _no_gc():
        # The snapshot is freed (by reference counting) before the GC is back on: the collector
        # never has to walk the millions of objects the audit allocated.
        report = _evaluate_file(path, stack, ctx, check_stack)
    if cfg is not None:
        report.account, report.home_region = cfg.account_id, cfg.region
    return report


def _evaluate_file(path: Path, stack: str, ctx: Context, check_stack: bool) -> Report:
    # An export does not record aws:region, so a default provider proves nothing (fail closed).
    snapshot, raw = read_export(path, stack=stack)
    if not any(r.custom for r in snapshot.resources):
        raise InputError(f"--export {path} holds no resources (only {len(snapshot.resources)} stack or component "
                         "entries): nothing to audit. Export a stack that has been deployed, or plan one with "
                         "`residency plan --stack S --out FILE`")
    others = [s for s in urn_stacks(snapshot) if s != stack]
    if check_stack and others:
        raise InputError(f"--export {path} is an export of stack {', '.join(repr(s) for s in others)} (its URNs "
                         f"say so), not of stack '{stack}'; audit it with --stack {others[0]}, or pass "
                         f"--as-stack to judge it against {stack}'s geography on purpose")
    return evaluate(snapshot, ctx, raw=raw)


def audit_live(args) -> Report:
    from infra.engine import live  # boto3 only when needed

    cfg = load_stack_config(args.stack)
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def progress(message: str) -> None:
        print(f"residency audit: {message}", file=sys.stderr)

    timeouts = timeouts_from(args)
    scan = live.scan_account(cfg, profile=args.profile, regions=args.regions, endpoint_url=endpoint,
                             progress=progress, timeouts=timeouts, shard=args.shard)
    report = evaluate(scan.snapshot, Context.from_config(cfg))
    report.not_checked = [{"service": n.service, "region": n.region, "reason": n.reason, "kind": n.kind}
                          for n in scan.not_checked]
    report.account, report.home_region = scan.account or cfg.account_id, cfg.region
    report.shard = f"{args.shard[0]}/{args.shard[1]}" if args.shard else ""
    return report


def audit_org(args) -> Report:
    """Every account of the organization, attributed: findings and units not checked carry their
    account, and an account that could not be read is a unit not checked of its own."""
    import dataclasses

    from infra.engine.credentials import aws_session
    from infra.engine.live import in_shard as live_in_shard, organization

    def progress(message: str) -> None:
        print(f"residency audit: {message}", file=sys.stderr)

    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    timeouts = Timeouts(connect=args.connect_timeout, read=args.read_timeout, max_attempts=args.max_attempts)
    session = aws_session(args.profile)
    scans = organization.scan_organization(
        session, load_stack_config, mapping=organization.load_mapping(args.org_map), default_stack=args.stack,
        role=args.org_role or organization.DEFAULT_ROLE, pool=args.pool or organization.DEFAULT_POOL,
        regions=args.regions, endpoint_url=endpoint, timeouts=timeouts, progress=progress,
        home=session.region_name or "us-east-1", shard=args.shard)
    combined = Report(stack="organization", geography="", resources_checked=0, findings=[], unplaced=[],
                      declared_paths=[], source="live", home_region=session.region_name or "us-east-1",
                      shard=f"{args.shard[0]}/{args.shard[1]}" if args.shard else "")
    geographies, regions = set(), set()
    for one in scans:
        account = one.account.id
        if one.scan is None:
            if args.shard and not live_in_shard(account, "account", args.shard):
                continue  # another shard reports this account
            combined.not_checked.append({"account": account, "service": "account", "region": "all",
                                         "reason": f"{one.account.name}: {one.unreadable}",
                                         "kind": "account not readable"})
            continue
        cfg = load_stack_config(one.stack)
        report = evaluate(one.scan.snapshot, Context.from_config(cfg))
        geographies.add(cfg.geography.code)
        regions.update(cfg.geography.regions)
        combined.resources_checked += report.resources_checked
        combined.findings += [dataclasses.replace(f, account=account) for f in report.findings]
        combined.unplaced += [{**u, "account": account} for u in report.unplaced]
        combined.declared_paths += [{**d, "account": account} for d in report.declared_paths]
        combined.notes += [f"account {account} ({one.account.name}, stack {one.stack}): {n}" for n in report.notes]
        combined.not_checked += [organization.unit_not_checked(account, n) for n in one.scan.not_checked]
    combined.geography, combined.regions = ", ".join(sorted(geographies)), sorted(regions)
    try:  # the scanning (and Security Hub importing) account: the management or a delegated one
        combined.account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
    except Exception as exc:  # noqa: BLE001 -- only the ASFF product ARN needs it
        progress(f"caller account unknown ({type(exc).__name__}); findings keep their own accounts")
    unreadable = [n["account"] for n in combined.not_checked if n["kind"] == "account not readable"]
    if unreadable:
        progress(f"could not read account(s): {', '.join(unreadable)}")
    return combined


def exit_code(report: Report) -> int:
    if report.not_checked:
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if report.findings or suppress.expired(report) else EXIT_OK


def load_suppressions(path: str | None) -> list:
    """The named file, else the project's residency-suppressions.yaml when it exists."""
    if path is None:
        default = project_root() / suppress.FILE_NAME
        return suppress.load(default) if default.is_file() else []
    if not Path(path).is_file():
        raise InputError(f"--suppressions: {path} is not a file")
    return suppress.load(Path(path))


def run(args) -> int:
    scanning = args.live or args.org
    if not scanning and any(getattr(args, k, None) for k in ("regions", "endpoint_url")):
        raise InputError("--regions and --endpoint-url apply to --live and --org only")
    if not scanning and args.profile and not args.to_security_hub:
        raise InputError("--profile applies to --live, --org and --to-security-hub only")
    if not args.org and any(getattr(args, k, None) for k in ("org_role", "org_map", "pool")):
        raise InputError("--org-role, --org-map and --pool apply to --org only")
    if args.shard and not scanning:
        raise InputError("--shard applies to --live and --org only")
    if not args.org and not args.stack:
        raise InputError("--stack is required (with --export and --live)")
    if args.org and args.as_stack:
        raise InputError("--as-stack applies to --export only")
    if args.live and args.as_stack:
        raise InputError("--as-stack applies to --export only")
    if args.output:  # refuse before the work what cannot be written (e.g. the export being audited)
        check_writable_target(Path(args.output), "--output", reads=[args.export] if args.export else [])
    docs = docs_url(args.docs_url)  # a bad URL is exit 2 before any work
    hub_session = None
    if args.to_security_hub:  # credentials first: no report is judged for nowhere to send it
        from infra.engine.credentials import aws_session

        hub_session = aws_session(args.profile)
    suppressions = load_suppressions(args.suppressions)  # bad input before any scan
    if args.org:
        report = audit_org(args)
    else:
        report = audit_live(args) if args.live else audit_export(args.export, args.stack, check_stack=not args.as_stack)
    suppress.apply(report, suppressions)
    text = render(report, args.format, docs)
    emit(text, args.output, "audit", f"stack {report.stack}: {verdict(report)}", reads=[args.export] if args.export else [])
    code = exit_code(report)
    if args.to_security_hub:
        from infra.commands.security_hub import import_findings

        endpoint = (args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None) if scanning else None
        failed = import_findings(report, endpoint_url=endpoint, session=hub_session)
        for line in failed:
            print(f"residency audit: Security Hub did not take {line}", file=sys.stderr)
        print(f"residency audit: Security Hub: {'import incomplete' if failed else 'findings imported'} "
              f"into {report.home_region}", file=sys.stderr)
        if failed:
            code = EXIT_INCOMPLETE
    return code
