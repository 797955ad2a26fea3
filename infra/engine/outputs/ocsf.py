"""OCSF 1.3.0 Detection Finding (class 2004) events, one per finding, as a JSON array.

Schema: schemas/ocsf/detection_finding-1.3.0.bundle.json (its `source` says where it comes from).
Suppressed findings have status Suppressed (3); units not checked are events with status Other
(99) and severity Unknown (0), so an incomplete scan never reads as a clean one.
"""

from __future__ import annotations

import json

from infra.engine.outputs import Output, account_of, every_finding, fingerprint, now, output, partition_of
from infra.engine.report import TOOL_NAME, help_uri
from infra.engine.rules import RULES_BY_ID

VERSION = "1.3.0"
SEVERITY_ID = {"LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
CLASS = {"category_uid": 2, "category_name": "Findings", "class_uid": 2004, "class_name": "Detection Finding",
         "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create"}


def _cloud(account: str, region: str) -> dict:
    cloud = {"provider": "AWS", "account": {"uid": account, "type_id": 10, "type": "AWS Account"}}
    return {**cloud, "region": region} if region else cloud


def _event(report, *, uid, title, desc, severity, status, analytic, time, account, region, resource=None,
           remediation=None) -> dict:
    event = {
        **CLASS, "time": time, "message": desc,
        "severity_id": SEVERITY_ID.get(severity, 0), "severity": severity.title() if severity in SEVERITY_ID else "Unknown",
        "status_id": status[0], "status": status[1],
        "metadata": {"version": VERSION, "profiles": ["cloud"], "product": {"name": TOOL_NAME, "vendor_name": "ai-companion"},
                     "log_name": f"residency/{report.stack}/{report.source or 'audit'}"},
        "finding_info": {"uid": uid, "title": title, "desc": desc, "analytic": analytic,
                         "types": ["Data Residency"]},
        "cloud": _cloud(account, region),
    }
    if resource:
        event["resources"] = [resource]
    if remediation:
        event["remediation"] = remediation
    return event


class Ocsf(Output):
    name, help, order = "ocsf", "OCSF 1.3.0 Detection Finding events (JSON array)", 10
    schema = "schemas/ocsf/detection_finding-1.3.0.bundle.json"

    def events(self, report, docs: str | None = None) -> list[dict]:
        time = int(now().timestamp() * 1000)
        events = []
        for f in every_finding(report):
            rule = RULES_BY_ID.get(f.rule)
            status = (3, "Suppressed") if f.suppressed else (1, "New")
            account = account_of(report, f)
            resource = {"uid": f.urn, "type": f.type, "cloud_partition": partition_of(f.region or ""),
                        **({"region": f.region} if f.region else {})}
            events.append(_event(
                report, uid=fingerprint(report, f), title=f.title or f.rule, desc=f.message,
                severity=f.severity, status=status, time=time, account=account, region=f.region,
                analytic={"uid": f.rule, "name": rule.name if rule else f.rule, "type_id": 1, "type": "Rule"},
                resource=resource,
                remediation={"desc": (rule.remediation if rule else "") +
                             (f" Suppressed: {f.suppressed.reason} (owner {f.suppressed.owner}, until "
                              f"{f.suppressed.expires})." if f.suppressed else ""),
                             "references": [help_uri(f.rule, docs)]}))
        for n in report.not_checked:
            events.append(_event(
                report, uid=f"not-checked/{n.get('account', report.account)}/{n['service']}/{n['region']}",
                title=f"Not checked: {n['service']} in {n['region']}", desc=n["reason"], severity="UNKNOWN",
                status=(99, "Other"), time=time, account=n.get("account") or report.account or "000000000000",
                region=n["region"] if n["region"][:2].isalpha() and "-" in n["region"] else "",
                analytic={"uid": "not-checked", "name": n.get("kind") or "not checked", "type_id": 99,
                          "type": "Other"}))
        return events

    def render(self, report, docs) -> str:
        return json.dumps(self.events(report, docs), indent=2) + "\n"


output(Ocsf)
