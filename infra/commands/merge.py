"""`residency merge`: combine the JSON reports of one audit's shards (`audit --shard K/N`) into
one report, in any format.

    residency merge SHARD.json... [--format text|json|sarif|ocsf|asff|junit] [--output PATH]

The shard reports must be K/N for one N, each K once. A missing shard is a part of the scan that
was not checked: it becomes a unit not checked of its own and the exit code is 3. Suppressions
are merged by entry: used in any shard is used, expired anywhere is expired, unused only when no
shard used it. Exit codes as for `audit`.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.commands.audit import exit_code
from infra.commands.output import emit
from infra.engine.outputs import FORMATS, render
from infra.engine.report import from_dict, verdict
from infra.engine.rules.engine import Report
from infra.program.errors import InputError

HELP = "merge the JSON reports of an audit's shards (audit --shard K/N) into one report"
ENTRY_KEYS = ("rule", "account", "region", "resource", "reason", "owner", "expires")


def add_arguments(parser) -> None:
    parser.add_argument("reports", nargs="+", metavar="SHARD.json", help="`audit --format json` reports of the shards")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--output", metavar="PATH", help="write the report here (atomically) instead of stdout")


def read(path: str) -> Report:
    try:
        return from_dict(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{path}: not a JSON report of `residency audit --format json`") from None


def shards(reports: list[tuple[str, Report]]) -> tuple[int, list[int]]:
    """N, and the missing K (InputError for mixed N, a repeated K, or a report that is no shard)."""
    specs = {}
    for path, r in reports:
        k, _, n = (r.shard or "").partition("/")
        if not (k.isdigit() and n.isdigit()):
            raise InputError(f"{path}: not a shard report (no 'shard': 'K/N'); run audit with --shard K/N")
        if (int(k), int(n)) in specs:
            raise InputError(f"{path}: shard {k}/{n} given twice (also {specs[(int(k), int(n))]})")
        specs[(int(k), int(n))] = path
    counts = {n for _, n in specs}
    if len(counts) != 1:
        raise InputError(f"shard reports of different splits: {', '.join(sorted(f'{k}/{n}' for k, n in specs))}")
    (n,) = counts
    return n, [k for k in range(1, n + 1) if (k, n) not in specs]


def merge(reports: list[Report], n: int, missing: list[int]) -> Report:
    first = reports[0]
    merged = Report(stack=first.stack, geography=first.geography, resources_checked=0, findings=[], unplaced=[],
                    declared_paths=[], source=first.source, account=first.account, home_region=first.home_region,
                    regions=sorted({r for rep in reports for r in rep.regions}))
    for rep in reports:
        merged.resources_checked += rep.resources_checked
        merged.findings += rep.findings
        merged.suppressed += rep.suppressed
        merged.unplaced += rep.unplaced
        merged.declared_paths += rep.declared_paths
        merged.notes += [n_ for n_ in rep.notes if n_ not in merged.notes]
        merged.not_checked += rep.not_checked
    merged.not_checked += [{"service": "shard", "region": f"{k}/{n}", "reason": f"the report of shard {k}/{n} is "
                            "missing: its units were not checked", "kind": "shard report missing"} for k in missing]
    entries: dict[tuple, dict] = {}
    for rep in reports:
        for s in rep.suppressions:
            key = tuple(s.get(k) for k in ENTRY_KEYS)
            seen = entries.setdefault(key, {**s, "suppressed": 0, "status": "unused"})
            seen["suppressed"] += s.get("suppressed", 0)
            if s["status"] == "expired" or seen["status"] == "expired":
                seen["status"] = "expired"
            elif seen["suppressed"]:
                seen["status"] = "used"
    merged.suppressions = list(entries.values())
    return merged


def run(args) -> int:
    reports = [(path, read(path)) for path in args.reports]
    n, missing = shards(reports)
    stacks = {r.stack for _, r in reports}
    if len(stacks) != 1:
        raise InputError(f"shard reports of different stacks: {', '.join(sorted(map(str, stacks)))}")
    merged = merge([r for _, r in reports], n, missing)
    text = render(merged, args.format)
    emit(text, args.output, "merge", f"{len(reports)} of {n} shard(s): {verdict(merged)}", reads=args.reports)
    return exit_code(merged)
