"""Render a residency `Report` as text, JSON or SARIF 2.1.0 (GitHub code scanning).

JSON: an object with `stack`, `geography`, `regions`, `source`, `resources_checked`, `findings`
(each `rule`, `name`, `severity`, `urn`, `type`, `message`, `title`), `unplaced` (each `urn`,
`type`), `declared_paths` (each `connector`, `provider`, `host`, `processing`), `notes` and
`not_checked` (live scans: each `service`, `region`, `reason`, `kind`: one entry per unit, a
service in a region, that could not be read; `kind` is what the text summary groups by).

Text: the findings, then each not-checked unit once (grouped by kind), then a summary that counts
findings by rule and not-checked units by kind, then the closing `result:` line. An incomplete
scan never reads as a verdict: its header and closing line say INCOMPLETE.

Markdown: a pull-request comment: the verdict, a table of findings (severity, rule linked to its
documentation, resource, message), then per rule fired its remediation and documentation link.

SARIF: one run; `tool.driver.rules` lists every rule (id, name, short/full description, help,
helpUri, security-severity); each result names its rule, a level, the message, a physical
location and the resource URN as its logical location. The physical location is where a pull
request changes what the finding is about, so GitHub shows it on that line of the diff:
- a rule decided by a stack-file key (`Rule.stack_key`): that key's line in `Pulumi.<stack>.yaml`
  (the program line that registered the resource, when known, is a related location);
- any other resource finding: the program line that registered the resource, as the SDK sent it
  in RegisterResource and the engine keeps it in state (`sourcePosition`,
  `project:///<path>#<line>`), when that file is in this repository;
- otherwise (live scans, state without positions, stack-level findings) the stack file.
`helpUri` and `informationUri` are absolute (docs_url): GitHub accepts no relative link. The
output validates against the SARIF 2.1.0 schema with format checks (tests/test_report.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath
from urllib.parse import urlparse

from infra import __version__
from infra.engine.model import Finding
from infra.engine.rules import RULES, RULES_BY_ID
from infra.engine.rules.engine import Report
from infra.program.errors import InputError
from infra.program.stackfiles import ROOT, stack_key_lines

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
# GitHub code scanning ranks security alerts by this number (0.1-10).
SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0"}
TOOL_NAME = "ai-companion-residency"
DOCS_PATH = "docs/rules.md"
DOCS_URL_ENV = "RESIDENCY_DOCS_URL"


def _finding_dict(f) -> dict:
    d = {"rule": f.rule, "name": RULES_BY_ID[f.rule].name if f.rule in RULES_BY_ID else "",
         "severity": f.severity, "urn": f.urn, "type": f.type, "message": f.message, "title": f.title}
    d.update({k: getattr(f, k) for k in ("region", "account") if getattr(f, k)})
    if f.suppressed:
        d["suppressed"] = f.suppressed._asdict()
    return d


def to_dict(report: Report) -> dict:
    return {
        "stack": report.stack,
        "geography": report.geography,
        "regions": list(report.regions),
        "source": report.source,
        "resources_checked": report.resources_checked,
        **({"account": report.account} if report.account else {}),
        **({"shard": report.shard} if report.shard else {}),
        "findings": [_finding_dict(f) for f in report.findings],
        "suppressed": [_finding_dict(f) for f in report.suppressed],
        "suppressions": [dict(s) for s in report.suppressions],
        "unplaced": [dict(u) for u in report.unplaced],
        "declared_paths": [dict(d) for d in report.declared_paths],
        "notes": list(report.notes),
        "not_checked": [dict(n) for n in report.not_checked],
    }


def from_dict(d: dict) -> Report:
    """A report back from its JSON form (`residency merge`); KeyError/TypeError on another shape."""
    from infra.engine.model import Finding, Suppression

    def finding(f: dict) -> Finding:
        sup = f.get("suppressed")
        return Finding(f["rule"], f["severity"], f["urn"], f["type"], f["message"], f.get("title", ""),
                       region=f.get("region", ""), account=f.get("account", ""),
                       suppressed=Suppression(**sup) if sup else None)

    return Report(stack=d["stack"], geography=d["geography"], resources_checked=int(d["resources_checked"]),
                  findings=[finding(f) for f in d["findings"]], unplaced=list(d["unplaced"]),
                  declared_paths=list(d["declared_paths"]), notes=list(d["notes"]), regions=list(d["regions"]),
                  source=d["source"], not_checked=list(d["not_checked"]), account=d.get("account", ""),
                  suppressed=[finding(f) for f in d.get("suppressed", [])],
                  suppressions=list(d.get("suppressions", [])), shard=d.get("shard", ""))


def verdict(report: Report) -> str:
    """One line on the outcome; an incomplete scan never reads as "0 findings" alone."""
    counted = f"{len(report.findings)} finding(s)"
    if report.suppressed:
        counted += f", {len(report.suppressed)} suppressed"
    expired = [x for x in report.suppressions if x.get("status") == "expired"]
    if expired:
        counted += f", {len(expired)} expired suppression(s)"
    if report.not_checked:
        return (f"INCOMPLETE: {len(report.not_checked)} unit(s) not checked, so this is no verdict; "
                f"{counted} in what was checked")
    return counted + (" (FINDINGS)" if report.findings or expired else " (OK)")


def _by(items, key) -> dict:
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _summary(report: Report) -> list[str]:
    lines = []
    if report.findings:
        by_rule = _by(report.findings, lambda f: f.rule)
        lines.append(f"summary: {len(report.findings)} finding(s) by rule:")
        for rule_id in sorted(by_rule):
            name = RULES_BY_ID[rule_id].name if rule_id in RULES_BY_ID else ""
            lines.append(f"  {rule_id} {name}: {len(by_rule[rule_id])}")
    if report.not_checked:
        by_kind = _by(report.not_checked, lambda n: n.get("kind") or "not checked")
        lines.append(f"summary: {len(report.not_checked)} unit(s) not checked by reason:")
        for kind, units in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"  {kind}: {len(units)}")
    return lines


def render_text(report: Report) -> str:
    incomplete = " [INCOMPLETE SCAN]" if report.not_checked else ""
    lines = [
        f"residency: stack {report.stack} ({report.geography}: {', '.join(report.regions)}), "
        f"source {report.source or '-'}: {report.resources_checked} resources checked, "
        f"{len(report.findings)} finding(s), {len(report.unplaced)} unplaced{incomplete}"
    ]
    for f in report.findings:
        name = RULES_BY_ID[f.rule].name if f.rule in RULES_BY_ID else ""
        lines.append(f"{f.severity:<8} {f.rule} {name}: {f.type}")
        lines.append(f"         {f.urn}")
        lines.append(f"         {f.message}")
    if report.unplaced:
        lines.append("unplaced (no provable region):")
        lines += [f"  {u['type']}  {u['urn']}" for u in report.unplaced]
    if report.declared_paths:
        lines.append("declared data paths:")
        lines += [f"  {d.get('connector')}: {d.get('host')} ({d.get('provider')}, processing {d.get('processing')})"
                  for d in report.declared_paths]
    for units in _by(report.not_checked, lambda n: n.get("kind") or "not checked").values():
        lines += [f"not checked: {n.get('service')} in {n.get('region')}"
                  f"{' of account ' + n['account'] if n.get('account') else ''}: {n.get('reason')}" for n in units]
    for f in report.suppressed:
        lines.append(f"suppressed {f.rule} {f.urn}: {f.message} ({f.suppressed.reason}; owner "
                     f"{f.suppressed.owner}; until {f.suppressed.expires})")
    for x in report.suppressions:
        if x["status"] != "used":
            lines.append(f"suppression {x['status']}: {x['rule']} {x['resource']} (account {x['account']}, region "
                         f"{x['region']}, owner {x['owner']}, expires {x['expires']})")
    lines += [f"note: {n}" for n in report.notes]
    lines += _summary(report)
    if report.not_checked:
        lines.append(f"result: INCOMPLETE (some services/regions were not checked): {verdict(report)}")
    else:
        failed = report.findings or any(x["status"] == "expired" for x in report.suppressions)
        lines.append("result: " + ("FINDINGS" if failed else "OK"))
    return "\n".join(lines) + "\n"


def docs_url(given: str | None = None) -> str:
    """The absolute URL of the rules documentation that SARIF links to: `given` (--docs-url),
    else $RESIDENCY_DOCS_URL, else in GitHub Actions the repository's docs/rules.md at the commit
    being built, else this checkout's docs/rules.md as a file URL. InputError if not absolute."""
    url = given or os.environ.get(DOCS_URL_ENV)
    if not url and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        url = f"{server}/{os.environ['GITHUB_REPOSITORY']}/blob/{os.environ.get('GITHUB_SHA', 'HEAD')}/{DOCS_PATH}"
    if not url:
        return (ROOT / DOCS_PATH).as_uri()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "file") or (parsed.scheme != "file" and not parsed.netloc) or parsed.fragment:
        where = "--docs-url" if given else DOCS_URL_ENV
        raise InputError(f"{where}: '{url}' is not an absolute http(s) or file URL without a #fragment "
                         f"(e.g. https://github.com/OWNER/REPO/blob/main/{DOCS_PATH})")
    return url


def help_uri(rule_id: str, docs: str | None = None) -> str:
    """The documentation URL of one rule (for every format that links to it)."""
    return f"{docs or docs_url()}#{rule_id.lower()}"


def sarif_rules(docs: str | None = None) -> list[dict]:
    docs = docs or docs_url()
    return [{
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rationale},
        "help": {"text": f"{r.rationale}\nRemediation: {r.remediation}",
                 "markdown": f"**{r.title}** ({r.severity})\n\n{r.rationale}\n\n**Remediation:** {r.remediation}"},
        "helpUri": f"{docs}#{r.id.lower()}",
        "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
        "properties": {"tags": ["security", "data-residency", r.category],
                       "security-severity": SECURITY_SEVERITY[r.severity], "precision": "high"},
    } for r in RULES]


def program_position(position: str) -> tuple[str, int] | None:
    """(repository path, line) of a `project:///<path>#<line>[,<col>]` source position whose file
    is in this repository (not a dot-directory such as a virtualenv); None otherwise."""
    parsed = urlparse(position or "")
    line = parsed.fragment.split(",")[0]
    path = PurePosixPath(parsed.path.lstrip("/"))
    if parsed.scheme != "project" or not line.isdigit() or int(line) < 1 or not path.parts:
        return None
    if any(part.startswith(".") for part in path.parts) or not (ROOT / path).is_file():
        return None
    return path.as_posix(), int(line)


def _physical(uri: str, line: int) -> dict:
    return {"artifactLocation": {"uri": uri}, "region": {"startLine": line}}


def _locations(f: Finding, stack_file: str, key_lines: dict[str, int]) -> tuple[dict, list[dict]]:
    """(physical location, related locations) of a finding: see the module docstring."""
    rule = RULES_BY_ID.get(f.rule)
    program = program_position(f.source_position)
    if rule is not None and rule.stack_key:
        line = key_lines.get(rule.stack_key) or key_lines.get("config") or 1
        related = [{"id": 1, "physicalLocation": _physical(*program),
                    "message": {"text": "the resource is registered here"}}] if program else []
        return _physical(stack_file, line), related
    if program:
        return _physical(*program), []
    return _physical(stack_file, 1), []


def render_sarif(report: Report, docs: str | None = None) -> dict:
    docs = docs or docs_url()
    index = {r.id: i for i, r in enumerate(RULES)}
    artifact = f"Pulumi.{report.stack}.yaml"
    key_lines = stack_key_lines(report.stack) if report.stack else {}
    results = []
    for f in list(report.findings) + list(report.suppressed):
        fingerprint = hashlib.sha256(f"{f.rule}|{f.urn}|{f.message}".encode()).hexdigest()
        physical, related = _locations(f, artifact, key_lines)
        results.append({
            "ruleId": f.rule,
            "ruleIndex": index.get(f.rule, -1),
            "level": SARIF_LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{f.title}: {f.message} ({f.type})"},
            "locations": [{
                "physicalLocation": physical,
                "logicalLocations": [{"fullyQualifiedName": f.urn, "name": f.urn.rsplit("::", 1)[-1],
                                      "kind": "resource"}],
            }],
            **({"relatedLocations": related} if related else {}),
            "partialFingerprints": {"residencyFinding/v1": fingerprint},
            "properties": {"severity": f.severity, "resourceType": f.type},
            **({"suppressions": [{"kind": "external", "status": "accepted", "justification":
                                  f"{f.suppressed.reason} (owner {f.suppressed.owner}, until {f.suppressed.expires})"}]}
               if f.suppressed else {}),
        })
    run = {
        "tool": {"driver": {"name": TOOL_NAME, "informationUri": docs,
                            "semanticVersion": __version__, "rules": sarif_rules(docs)}},
        "automationDetails": {"id": f"residency/{report.stack}/{report.source or 'audit'}/"},
        "results": results,
        "properties": {"stack": report.stack, "geography": report.geography,
                       "resourcesChecked": report.resources_checked, "unplaced": report.unplaced,
                       "notChecked": report.not_checked, "suppressions": report.suppressions},
    }
    if report.not_checked:
        run["invocations"] = [{"executionSuccessful": False, "toolExecutionNotifications": [
            {"level": "warning", "message": {"text": f"not checked: {n.get('service')} in {n.get('region')}: {n.get('reason')}"}}
            for n in report.not_checked]}]
    else:
        run["invocations"] = [{"executionSuccessful": True}]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
