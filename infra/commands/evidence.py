"""`residency evidence --stack S --since 7d`: where the stack's Bedrock requests were processed.

Reads the account's own records in the stack's home region (infra/engine/evidence.py says which
fields and cites AWS): CloudTrail Event history (`LookupEvents`) and the stack's in-region model
invocation log group (`FilterLogEvents`). Reports, per UTC day and per model or inference
profile, the Regions that processed the requests and how many; a request processed outside the
geography is a finding. Read-only, paginated, bounded by the window (at most 90 days: CloudTrail
Event history keeps no more), and read one UTC day at a time: with `--resume-file` each finished
day is checkpointed, and a rerun with the same file and window carries on where a fault stopped.

Exit codes (README "Exit codes"): 0 every request processed inside the geography (or a stack
without ZM+: nothing to read); 1 a request processed outside it; 2 bad input (unknown stack, a bad
--since/--until, a resume file of another stack or window, no credentials); 3 not read: the
records could not be read (access denied, missing log group, timeout, an unreadable record) or a
profile request whose processing Region no record states. 3 wins over 1: the findings are still
printed, but the evidence is incomplete.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from infra.commands.exit_codes import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from infra.commands.output import check_writable_target, write_atomic
from infra.engine.credentials import aws_session
from infra.engine.evidence import (LOOKUP_EVENTS_MAX_DAYS, UNSTATED, Tally, day_windows, make_client, read_window)
from infra.engine.live.core import MalformedAnswer
from infra.program.bedrock_policy import invocation_log_group
from infra.program.errors import InputError
from infra.program.stackfiles import load_stack_config

HELP = "where the stack's Bedrock requests were processed, from CloudTrail and the invocation logs (1 = outside)"
FORMATS = ("text", "json")
SINCE_RE = re.compile(r"^(\d+)([dh])$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# A fault while reading, or a record that is not what AWS writes: the window is not read.
READ_FAULTS = (BotoCoreError, ClientError, ResponseParserError, MalformedAnswer, ValueError, KeyError, TypeError)


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--since", default="7d", help="how far back: <n>d or <n>h, at most 90d (default 7d)")
    parser.add_argument("--until", help="end of the window, ISO 8601 UTC (default: now)")
    parser.add_argument("--regions", metavar="R1,R2",
                        help="source Regions whose CloudTrail to read (default: the home region, where the stack "
                             "calls Bedrock); e.g. every Region of the geography, to catch calls sent elsewhere")
    parser.add_argument("--profile", help="AWS named profile to use (default: the usual credential chain)")
    parser.add_argument("--endpoint-url", help="endpoint for CloudTrail and CloudWatch Logs (default: AWS's)")
    parser.add_argument("--log-group", default=invocation_log_group(),
                        help=f"the invocation log group (default {invocation_log_group()}, what ZM+ deploys)")
    parser.add_argument("--resume-file", metavar="FILE",
                        help="checkpoint of the days read so far: written after each day, read to resume")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--output", metavar="FILE", help="write the result here instead of stdout")


def source_regions(raw: str | None, home: str) -> list[str]:
    regions = [r.strip() for r in (raw or home).split(",") if r.strip()]
    bad = [r for r in regions if not REGION_RE.match(r)]
    if bad or not regions:
        raise InputError(f"--regions: {', '.join(bad) or repr(raw)} is not a Region name (e.g. eu-central-1,eu-west-1)")
    return list(dict.fromkeys(regions))


def window(since: str, until: str | None) -> tuple[datetime, datetime]:
    m = SINCE_RE.match(since or "")
    if not m or int(m.group(1)) == 0:
        raise InputError(f"--since: '{since}' is not <n>d or <n>h with n > 0 (e.g. 7d, 36h)")
    span = timedelta(days=int(m.group(1))) if m.group(2) == "d" else timedelta(hours=int(m.group(1)))
    if span > timedelta(days=LOOKUP_EVENTS_MAX_DAYS):
        raise InputError(f"--since: {since} is over {LOOKUP_EVENTS_MAX_DAYS}d, the most CloudTrail Event history keeps")
    if until:
        try:
            end = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"--until: '{until}' is not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)") from None
        end = end.replace(tzinfo=timezone.utc) if end.tzinfo is None else end.astimezone(timezone.utc)
    else:
        end = datetime.now(timezone.utc).replace(microsecond=0)
    return end - span, end


class Checkpoint:
    """The resume file: the window, how far it was read, and the counts so far."""

    def __init__(self, path: str | None, stack: str, start: datetime, end: datetime, log_group: str,
                 regions: list[str] | None = None):
        self.path = Path(path) if path else None
        self.key = {"stack": stack, "start": start.isoformat(), "end": end.isoformat(), "log_group": log_group,
                    "regions": regions or []}
        self.done_until, self.tally = start, Tally()
        if self.path is None:
            return
        check_writable_target(self.path, "--resume-file")
        if not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text())
            mismatched = [k for k, v in self.key.items() if saved.get(k) != v]
            done_until, tally = datetime.fromisoformat(saved["done_until"]), Tally.from_dict(saved["tally"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"--resume-file: {self.path} is not a residency evidence checkpoint ({exc})") from exc
        if mismatched:
            raise InputError(f"--resume-file: {self.path} is for another run ({', '.join(mismatched)} differ: "
                             + "; ".join(f"{k} {saved.get(k)!r}" for k in mismatched)
                             + "); pass the same --stack/--since/--until/--regions, or another file")
        self.done_until, self.tally = done_until, tally

    def save(self, done_until: datetime) -> None:
        self.done_until = done_until
        if self.path is not None:
            doc = {**self.key, "done_until": done_until.isoformat(), "tally": self.tally.to_dict()}
            write_atomic(self.path, json.dumps(doc, indent=1) + "\n", "--resume-file")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{exc.operation_name} failed: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def result(cfg, start: datetime, end: datetime, checkpoint: Checkpoint, log_group: str, not_read: str,
           regions: list[str] | None = None) -> dict:
    """What `evidence` found, as data (the JSON format, and what `residency report --evidence` reads)."""
    geo, tally = cfg.geography, checkpoint.tally
    regions = regions or [cfg.region]
    rows = [{"day": day, "model": model, "processed_in": region, "requests": n,
             "in_both_records": tally.confirmed.get((day, model, region), 0),
             "in_geography": None if region == UNSTATED else geo.contains(region)}
            for (day, model, region), n in sorted(tally.processed.items())]
    findings = [f"{r['day']} {r['model']}: {r['requests']} request(s) processed in {r['processed_in']}, "
                f"outside {geo.code} ({', '.join(geo.regions)})"
                for r in rows if r["in_geography"] is False]
    unstated = sum(r["requests"] for r in rows if r["processed_in"] == UNSTATED)
    if unstated and not not_read:
        not_read = f"{unstated} inference-profile request(s) with no processing Region in any record"
    return {
        "stack": cfg.stack, "geography": geo.code, "regions": list(geo.regions), "home_region": cfg.region,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "read_until": checkpoint.done_until.isoformat(),
        "records": {"cloudtrail": f"LookupEvents in {', '.join(regions)}",
                    "invocation_logs": f"{log_group} in {cfg.region}"},
        "processed": rows,
        "refused": [{"day": d, "model": m, "error": e, "requests": n} for (d, m, e), n in sorted(tally.refused.items())],
        "findings": findings,
        "not_read": not_read,
        "complete": not not_read,
    }


def render_text(doc: dict) -> str:
    lines = [f"stack {doc['stack']}: Bedrock requests {doc['window']['start']} .. {doc['window']['end']}, "
             f"geography {doc['geography']} ({', '.join(doc['regions'])}); read from {doc['records']['cloudtrail']} "
             f"and {doc['records']['invocation_logs']}"]
    rows = [("DAY", "MODEL OR PROFILE", "PROCESSED IN", "REQUESTS", "IN BOTH RECORDS")]
    rows += [(r["day"], r["model"], r["processed_in"] + (" (OUTSIDE)" if r["in_geography"] is False else ""),
              str(r["requests"]), str(r["in_both_records"])) for r in doc["processed"]]
    if doc["processed"]:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    elif not doc["not_read"]:  # nothing read is not "nothing there"
        lines.append("no Bedrock runtime requests recorded in the window")
    refused = sum(r["requests"] for r in doc["refused"])
    if refused:
        lines.append(f"refused (processed nowhere): {refused} request(s): "
                     + ", ".join(f"{r['error']} x{r['requests']}" for r in doc["refused"]))
    lines += [f"FINDING {f}" for f in doc["findings"]]
    if doc["not_read"]:
        lines.append(f"NOT READ: {doc['not_read']} (read up to {doc['read_until']})")
    elif not doc["findings"]:
        lines.append(f"every request recorded was processed inside {doc['geography']}")
    return "\n".join(lines) + "\n"


def collect(cfg, start: datetime, end: datetime, regions: list[str], args) -> tuple[Checkpoint, str]:
    """Read every day of the window not read yet; (checkpoint, why not read or "")."""
    checkpoint = Checkpoint(args.resume_file, cfg.stack, start, end, args.log_group, regions)
    session = aws_session(args.profile)
    try:
        cloudtrails = [make_client(session, "cloudtrail", region, args.endpoint_url) for region in regions]
        logs = make_client(session, "logs", cfg.region, args.endpoint_url)
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise InputError(f"--endpoint-url: {exc}") from exc
    for day_start, day_end in day_windows(checkpoint.done_until, end):
        try:
            requests = read_window(cloudtrails, logs, args.log_group, day_start, day_end)
        except NoCredentialsError as exc:
            raise InputError("no AWS credentials found (set AWS_PROFILE, pass --profile, or provide credentials)") from exc
        except READ_FAULTS as exc:
            return checkpoint, f"{day_start.date()}: {_reason(exc)}"
        checkpoint.tally.add(requests)
        checkpoint.save(day_end)
    return checkpoint, ""


def evidence(stack: str, args) -> dict | None:
    """The evidence document for `stack`, or None for a stack without ZM+."""
    cfg = load_stack_config(stack)
    start, end = window(args.since, args.until)
    regions = source_regions(getattr(args, "regions", None), cfg.region)
    if not cfg.has("zm_plus"):
        return None
    checkpoint, not_read = collect(cfg, start, end, regions, args)
    return result(cfg, start, end, checkpoint, args.log_group, not_read, regions)


def run(args) -> int:
    resume = [args.resume_file] if getattr(args, "resume_file", None) else []
    if args.output:
        check_writable_target(Path(args.output), "--output", reads=resume)
    doc = evidence(args.stack, args)
    if doc is None:
        print(f"{args.stack}: no zm_plus; no Bedrock requests to read")
        return EXIT_OK
    text = json.dumps(doc, indent=2) + "\n" if args.format == "json" else render_text(doc)
    if args.output:
        write_atomic(Path(args.output), text, "--output", reads=resume)
    else:
        sys.stdout.write(text)
    if doc["not_read"]:
        print(f"residency evidence: INCOMPLETE, not read: stack {doc['stack']} in {doc['home_region']}: "
              f"{doc['not_read']}" + (f"; rerun with --resume-file {args.resume_file} to carry on"
                                      if args.resume_file else ""), file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if doc["findings"] else EXIT_OK
