"""`residency report --stack S --output report.html`: one self-contained page for auditors.

The page holds, for one stack: the data-path map drawn as an inline SVG (commands/map_svg.py,
from the same graph as the Mermaid map), the rules' findings on the offline plan with each
rule's rationale and remediation, the declared data paths, the Service Control Policy the stack
calls for (`residency scp`), the preflight and evidence results where they were read, and the
monthly cost (`residency cost`).

Evidence is read live when `--evidence-since 7d` is given and credentials allow, or taken from
`--evidence FILE` (the JSON of `residency evidence --format json`); preflight from `--preflight
FILE` (the JSON `residency preflight` writes). Anything not read says "not read" and why; the page
never claims more than was read.

Self-contained: no script, no external stylesheet, font, image or link target; a
Content-Security-Policy meta (`default-src 'none'; style-src 'unsafe-inline'; img-src data:`)
makes the browser refuse any fetch the page might still try. tests/test_report_html.py opens it
in headless Chromium and checks that nothing was requested.

Exit codes: 0 the page was written (whatever it reports); 2 bad input (unknown stack, unreadable
--evidence/--preflight file, unwritable --output); 4 internal error.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from infra.commands.exit_codes import EXIT_OK
from infra.commands.output import check_writable_target, write_atomic
from infra.program.errors import InputError

HELP = "write one self-contained HTML report for auditors: map, findings, SCP, preflight, evidence, cost"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
NOT_READ = "not read"
EVIDENCE_KEYS = frozenset({"stack", "geography", "window", "records", "processed", "findings", "not_read"})
STYLE = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:24px auto;max-width:1200px;color:#1c2b33;
line-height:1.45;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:2px solid #cfd8dc;padding-bottom:4px;
margin-top:32px}h3{font-size:15px;margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0;width:100%}th,td{border:1px solid #cfd8dc;padding:4px 8px;
text-align:left;vertical-align:top;font-size:13px}th{background:#eceff1}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.ok{background:#e8f5e9;color:#1b5e20}.finding{background:#ffebee;color:#b71c1c}
.notread{background:#fff8e1;color:#8d6e00}
pre{background:#f5f7f8;border:1px solid #cfd8dc;padding:8px;overflow:auto;font-size:12px;max-height:420px}
figure{margin:8px 0;overflow-x:auto}figcaption{font-size:12px;color:#546e7a}
svg#data-path-map{max-width:100%;height:auto}
.muted{color:#546e7a;font-size:12px}
"""


def add_arguments(parser) -> None:
    parser.add_argument("--stack", required=True, help="stack name (a Pulumi.<stack>.yaml file)")
    parser.add_argument("--output", required=True, metavar="FILE", help="the HTML file to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--evidence", metavar="FILE", help="JSON of `residency evidence --format json` to show")
    source.add_argument("--evidence-since", metavar="SINCE",
                        help="read the evidence live over this window (e.g. 7d) with the caller's credentials")
    parser.add_argument("--preflight", metavar="FILE", help="JSON written by `residency preflight` to show")
    parser.add_argument("--profile", help="AWS named profile for --evidence-since")
    parser.add_argument("--endpoint-url", help="endpoint for --evidence-since (default: AWS's)")


def _read_json(path: str | None, option: str) -> dict | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{option}: cannot read {path} as JSON: {exc}") from exc


def _status(ok: bool | None, text: str) -> str:
    kind = "notread" if ok is None else ("ok" if ok else "finding")
    return f'<span class="status {kind}">{escape(text)}</span>'


def _table(head: tuple[str, ...], rows: list[tuple], numeric: tuple[int, ...] = ()) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{escape(str(c))}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


# --- sections -----------------------------------------------------------------------------------

def map_section(plan, report) -> str:
    from infra.commands.map_svg import svg
    from infra.commands.render import data_path_map, mermaid_title

    title = mermaid_title(plan)
    return (f"<h2>Data-path map</h2><figure>{svg(data_path_map(plan, report), title)}"
            f"<figcaption>{escape(title)}. Green: inside the geography; red dashed: a host that may process "
            "anywhere (a reviewed opt-in). Drawn from the offline plan, the same graph as "
            "<code>residency plan --format mermaid</code>.</figcaption></figure>")


def findings_section(report) -> str:
    from infra.engine.rules import RULES_BY_ID

    paths = [(p["connector"], p["provider"], p["host"], p["processing"]) for p in report.declared_paths]
    out = ["<h2>Findings on the plan</h2>",
           f"<p>{_status(not report.findings, f'{len(report.findings)} finding(s)')} "
           f"{report.resources_checked} resources checked by {len(RULES_BY_ID)} rules.</p>"]
    for f in report.findings:
        rule = RULES_BY_ID.get(f.rule)
        out.append(f"<h3>{escape(f.rule)} {escape(f.severity)}: {escape(f.title or (rule.title if rule else ''))}</h3>"
                   f"<p><b>Resource</b> {escape(f.urn)} ({escape(f.type)})<br><b>What</b> {escape(f.message)}</p>")
        if rule:
            out.append(f"<p><b>Why it matters</b> {escape(rule.rationale)}<br>"
                       f"<b>Remediation</b> {escape(rule.remediation)}</p>")
    out.append("<h3>Declared data paths (reviewed)</h3>")
    out.append(_table(("Connector", "Provider", "Host", "Processing"), paths) if paths
               else "<p>none: no data path leaves the geography.</p>")
    return "".join(out)


def scp_section(stack: str) -> str:
    from infra.commands.scp import scp_for_stack

    document = scp_for_stack(stack)
    policy = json.dumps(document, indent=2)
    return ("<h2>Service Control Policy</h2><p>The policy this stack calls for (<code>residency scp --stack "
            f"{escape(stack)}</code>); whether it is attached in the organization: {_status(None, NOT_READ)} "
            "(<code>residency audit --live</code> reads the SCPs in force).</p>"
            f"<details open><summary>{len(document.get('Statement', []))} statement(s)</summary>"
            f"<pre>{escape(policy)}</pre></details>")


def _preflight_ok(doc: dict) -> bool | None:
    """Passed, failed, or unknown: the preflight file's `ok`, else its `exit` code."""
    if isinstance(doc.get("ok"), bool):
        return doc["ok"]
    return doc["exit"] == 0 if "exit" in doc else None


def preflight_section(doc: dict | None) -> str:
    if doc is None:
        return (f"<h2>Preflight</h2><p>{_status(None, NOT_READ)} no preflight result was given "
                "(<code>--preflight FILE</code>).</p>")
    ok = _preflight_ok(doc)
    label = "passed" if ok else ("failed" if ok is not None else "read")
    return (f"<h2>Preflight</h2><p>{_status(ok, label)}</p>"
            f"<pre>{escape(json.dumps(doc, indent=2))}</pre>")


def evidence_section(doc: dict | None, why_not: str) -> str:
    if doc is None:
        return f"<h2>Evidence: where inference ran</h2><p>{_status(None, NOT_READ)} {escape(why_not)}</p>"
    if doc["not_read"]:
        verdict = _status(None, f"{NOT_READ}: {doc['not_read']}")
    else:
        verdict = _status(not doc["findings"], f"{len(doc['findings'])} request group(s) outside {doc['geography']}"
                          if doc["findings"] else f"every request processed inside {doc['geography']}")
    rows = [(r["day"], r["model"], r["processed_in"], r["requests"], r["in_both_records"],
             {True: "yes", False: "NO"}.get(r["in_geography"], "not stated")) for r in doc["processed"]]
    out = ["<h2>Evidence: where inference ran</h2>",
           f"<p>{verdict} window {escape(doc['window']['start'])} to {escape(doc['window']['end'])}; records: "
           f"{escape(doc['records']['cloudtrail'])} (<code>additionalEventData.inferenceRegion</code>) and "
           f"{escape(doc['records']['invocation_logs'])} (<code>inferenceRegion</code>).</p>",
           _table(("Day (UTC)", "Model or profile", "Processed in", "Requests", "In both records", "In geography"),
                  rows, numeric=(3, 4)) if rows else
           "" if doc["not_read"] else "<p>No Bedrock runtime requests recorded in the window.</p>"]
    out += [f"<p>{_status(False, 'finding')} {escape(f)}</p>" for f in doc["findings"]]
    return "".join(out)


def cost_section(stack: str, plan) -> str:
    from infra.commands.cost import cost_stack, money, short_type, to_json, total_text
    from infra.commands.pricing import load_prices

    cost, _ = cost_stack(stack, load_prices(), plan=plan)  # priced from the plan the page already holds
    doc = to_json(cost, None)
    top = sorted(cost.priced, key=lambda r: -r.monthly)[:12]
    rows = [(r.name, short_type(r.type), money(r.monthly), money(r.at_max),
             "; ".join(f"{line.part}: {line.basis}" for line in r.lines) or r.note) for r in top]
    notes = "".join(f"<li>{escape(a)}</li>" for a in doc["assumptions"])
    unpriced = "".join(f"<li>{escape(u['name'])} ({escape(short_type(u['type']))}): "
                       f"{'usage open: ' if u['usage_item'] else ''}{escape(u['reason'])}</li>"
                       for u in doc["not_priced"])
    return ("<h2>Cost</h2>"
            # The same words as `residency cost`: a total with unpriced items is a lower bound, never a sum.
            f"<p><b>{escape(total_text(cost))}</b> ({escape(cost.currency)}); prices checked "
            f"{escape(cost.checked or 'never')}; {len(cost.open_resources)} resource(s) not priced, "
            f"{len(cost.open_usage)} usage item(s) open, {cost.free} free.</p>"
            + _table(("Resource", "Type", "Monthly", "At max", "Basis"), rows, numeric=(2, 3))
            + (f"<ul class=muted>{notes}</ul>" if notes else "")
            + (f"<details><summary>{len(doc['not_priced'])} not priced or usage open</summary>"
               f"<ul class=muted>{unpriced}</ul></details>" if unpriced else ""))


# --- the page -----------------------------------------------------------------------------------

def live_evidence(stack: str, args) -> tuple[dict | None, str]:
    """Evidence read now, or (None, why not)."""
    from infra.commands.evidence import evidence
    from infra.program.bedrock_policy import invocation_log_group

    ns = argparse.Namespace(since=args.evidence_since, until=None, regions=None, profile=args.profile,
                            endpoint_url=args.endpoint_url, log_group=invocation_log_group(), resume_file=None)
    try:
        doc = evidence(stack, ns)
    except InputError as exc:
        if "--since" in str(exc):
            raise
        return None, f"could not read the account's records: {exc}"
    return (doc, "") if doc is not None else (None, "the stack has no ZM+: no Bedrock requests to read")


def read_inputs(stack: str, args) -> tuple[dict | None, dict | None, str]:
    """(evidence, preflight, why the evidence was not read), checked before the (slower) plan."""
    evidence_doc = _read_json(args.evidence, "--evidence")
    preflight_doc = _read_json(args.preflight, "--preflight")
    if preflight_doc is not None and not isinstance(preflight_doc, dict):
        raise InputError(f"--preflight: {args.preflight} is not a JSON object")
    if evidence_doc is not None:
        missing = sorted(EVIDENCE_KEYS - set(evidence_doc)) if isinstance(evidence_doc, dict) else ["(not an object)"]
        if missing:
            raise InputError(f"--evidence: {args.evidence} is not `residency evidence --format json` output "
                             f"(missing: {', '.join(missing)})")
        if evidence_doc["stack"] != stack:
            raise InputError(f"--evidence: {args.evidence} is for stack {evidence_doc['stack']!r}, not {stack!r}")
    why_not = "no evidence was given (--evidence FILE) or read (--evidence-since 7d)"
    if evidence_doc is None and args.evidence_since:
        evidence_doc, why_not = live_evidence(stack, args)
    return evidence_doc, preflight_doc, why_not


def summary_table(report, evidence_doc: dict | None, preflight_doc: dict | None) -> str:
    if evidence_doc is None or evidence_doc["not_read"]:
        evidence_status = _status(None, NOT_READ)
    else:
        evidence_status = _status(not evidence_doc["findings"],
                                  "outside the geography" if evidence_doc["findings"] else "inside")
    rows = [
        ("Plan findings", _status(not report.findings, f"{len(report.findings)} finding(s)")),
        ("Evidence", evidence_status),
        ("Preflight", _status(None, NOT_READ) if preflight_doc is None else _status(_preflight_ok(preflight_doc), "read")),
        ("SCP attached", _status(None, NOT_READ)),
    ]
    return ("<table><thead><tr><th>Check</th><th>Result</th></tr></thead><tbody>"
            + "".join(f"<tr><td>{escape(a)}</td><td>{b}</td></tr>" for a, b in rows) + "</tbody></table>")


def page(stack: str, args) -> str:
    from infra.commands.plan import plan_stack

    evidence_doc, preflight_doc, why_not = read_inputs(stack, args)
    plan, report = plan_stack(stack)
    cfg, geo = plan.config, plan.config.geography
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Residency report: stack {escape(stack)} ({escape(geo.code)})</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Residency report: stack <code>{escape(stack)}</code></h1>"
        f"<p class=muted>Geography {escape(geo.code)} ({escape(geo.name)}): {escape(', '.join(geo.regions))}; "
        f"home region {escape(cfg.region)}; options {escape(', '.join(cfg.options))}. "
        f"Generated {generated} by <code>residency report</code>.</p>"
        f"{summary_table(report, evidence_doc, preflight_doc)}{map_section(plan, report)}{findings_section(report)}"
        f"{evidence_section(evidence_doc, why_not)}{preflight_section(preflight_doc)}{scp_section(stack)}"
        f"{cost_section(stack, plan)}</body></html>\n"
    )


def run(args) -> int:
    from infra.program.stackfiles import load_stack_config

    output = Path(args.output)
    inputs = [p for p in (getattr(args, "evidence", None), getattr(args, "preflight", None)) if p]
    check_writable_target(output, "--output", reads=inputs)
    load_stack_config(args.stack)  # an unknown stack is bad input before any work
    write_atomic(output, page(args.stack, args), "--output", reads=inputs)
    print(f"residency report: wrote {output}")
    return EXIT_OK
