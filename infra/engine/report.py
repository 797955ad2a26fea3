"""Render a residency `Report` as text, JSON or SARIF 2.1.0 (GitHub code scanning).

JSON: an object with `stack`, `geography`, `regions`, `source`, `resources_checked`, `findings`
(each `rule`, `name`, `severity`, `urn`, `type`, `message`, `title`), `unplaced` (each `urn`,
`type`), `declared_paths` (each `connector`, `provider`, `host`, `processing`), `notes` and
`not_checked` (live scans: each `service`, `region`, `reason`, `kind`: one entry per unit, a
service in a region, that could not be read; `kind` is what the text summary groups by).

Text: the findings, then each not-checked unit once (grouped by kind), then a summary that counts
findings by rule and not-checked units by kind, then the closing `result:` line. An incomplete
scan never reads as a verdict: its header and closing line say INCOMPLETE.

SARIF: one run; `tool.driver.rules` lists every rule (id, name, short/full description, help,
helpUri, security-severity); each result names its rule, a level, the message, the stack file
`Pulumi.<stack>.yaml` as its physical location and the resource URN as its logical location.
"""

from __future__ import annotations

import hashlib
import json
import os

from infra.engine.rules import RULES, RULES_BY_ID
from infra.engine.rules.engine import Report

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
# GitHub code scanning ranks security alerts by this number (0.1-10).
SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0"}
TOOL_NAME = "ai-companion-residency"
DOCS_PATH = "docs/rules.md"


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


def _help_uri(rule_id: str) -> str:
    """Absolute URL when running in GitHub Actions (or RESIDENCY_DOCS_URL), else the repo path."""
    anchor = f"#{rule_id.lower()}"
    base = os.environ.get("RESIDENCY_DOCS_URL")
    if not base and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        ref = os.environ.get("GITHUB_SHA", "HEAD")
        base = f"{server}/{os.environ['GITHUB_REPOSITORY']}/blob/{ref}/{DOCS_PATH}"
    return f"{base or DOCS_PATH}{anchor}"


help_uri = _help_uri  # for the other formats (infra/engine/outputs)


def sarif_rules() -> list[dict]:
    return [{
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rationale},
        "help": {"text": f"{r.rationale}\nRemediation: {r.remediation}",
                 "markdown": f"**{r.title}** ({r.severity})\n\n{r.rationale}\n\n**Remediation:** {r.remediation}"},
        "helpUri": _help_uri(r.id),
        "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
        "properties": {"tags": ["security", "data-residency", r.category],
                       "security-severity": SECURITY_SEVERITY[r.severity], "precision": "high"},
    } for r in RULES]


def render_sarif(report: Report) -> dict:
    index = {r.id: i for i, r in enumerate(RULES)}
    artifact = f"Pulumi.{report.stack}.yaml"
    results = []
    for f in list(report.findings) + list(report.suppressed):
        fingerprint = hashlib.sha256(f"{f.rule}|{f.urn}|{f.message}".encode()).hexdigest()
        results.append({
            "ruleId": f.rule,
            "ruleIndex": index.get(f.rule, -1),
            "level": SARIF_LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{f.title}: {f.message} ({f.type})"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": artifact},
                                     "region": {"startLine": 1}},
                "logicalLocations": [{"fullyQualifiedName": f.urn, "name": f.urn.rsplit("::", 1)[-1],
                                      "kind": "resource"}],
            }],
            "partialFingerprints": {"residencyFinding/v1": fingerprint},
            "properties": {"severity": f.severity, "resourceType": f.type},
            **({"suppressions": [{"kind": "external", "status": "accepted", "justification":
                                  f"{f.suppressed.reason} (owner {f.suppressed.owner}, until {f.suppressed.expires})"}]}
               if f.suppressed else {}),
        })
    run = {
        "tool": {"driver": {"name": TOOL_NAME, "informationUri": _help_uri("").rstrip("#"),
                            "semanticVersion": "1.0.0", "rules": sarif_rules()}},
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


def render(report: Report, fmt: str) -> str:
    if fmt == "text":
        return render_text(report)
    if fmt == "json":
        return json.dumps(to_dict(report), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(render_sarif(report), indent=2) + "\n"
    raise ValueError(f"unknown format '{fmt}'; allowed: {', '.join(FORMATS)}")
