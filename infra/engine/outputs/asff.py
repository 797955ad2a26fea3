"""AWS Security Finding Format (ASFF, SchemaVersion 2018-10-08), as BatchImportFindings takes it:
a JSON array of findings. `residency audit --to-security-hub` sends them (infra/commands/security_hub.py).

Schema: schemas/asff/AwsSecurityFinding.schema.json (generated from botocore's Security Hub service
model, its `source` says which). Suppressed findings carry Workflow status SUPPRESSED; units not
checked are findings with Compliance status NOT_AVAILABLE, so an incomplete scan never reads clean.
"""

from __future__ import annotations

import json

from infra.engine.outputs import Output, account_of, every_finding, fingerprint, now, output, partition_of
from infra.engine.report import TOOL_NAME, help_uri
from infra.engine.rules import RULES_BY_ID

SCHEMA_VERSION = "2018-10-08"
TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/Data Residency"


def product_arn(account: str, region: str) -> str:
    """A custom integration's product ARN (the account's own `default` product)."""
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def _finding(report, *, uid, generator, title, desc, severity, account, region, resources, compliance,
             workflow="NEW", remediation=None, fields=None) -> dict:
    stamp = now().isoformat().replace("+00:00", "Z")
    home = report.home_region or region or "us-east-1"
    finding = {
        # The importing account's own product; AwsAccountId is the account the finding is about
        # (a delegated administrator imports its members' findings so).
        "SchemaVersion": SCHEMA_VERSION, "Id": uid, "ProductArn": product_arn(report.account or account, home),
        "GeneratorId": generator, "AwsAccountId": account, "Types": [TYPE], "CreatedAt": stamp, "UpdatedAt": stamp,
        "Severity": {"Label": severity}, "Title": title[:256], "Description": desc[:1024],
        "Resources": resources, "Compliance": {"Status": compliance}, "Workflow": {"Status": workflow},
        "RecordState": "ACTIVE", "ProductName": TOOL_NAME, "CompanyName": "ai-companion",
        "ProductFields": {"residency/stack": report.stack or "", "residency/geography": report.geography,
                          **(fields or {})},
    }
    if remediation:
        finding["Remediation"] = {"Recommendation": remediation}
    return finding


class Asff(Output):
    name, help, order = "asff", "AWS Security Finding Format (JSON array for BatchImportFindings)", 11
    schema = "schemas/asff/AwsSecurityFinding.schema.json"

    def findings(self, report, docs: str | None = None) -> list[dict]:
        out = []
        for f in every_finding(report):
            rule = RULES_BY_ID.get(f.rule)
            account = account_of(report, f)
            region = f.region or report.home_region
            fields = {"residency/rule": f.rule, "residency/resourceType": f.type}
            if f.suppressed:
                fields.update({"residency/suppressedBecause": f.suppressed.reason,
                               "residency/suppressionOwner": f.suppressed.owner,
                               "residency/suppressedUntil": f.suppressed.expires})
            out.append(_finding(
                report, uid=f"residency/{report.stack}/{f.rule}/{fingerprint(report, f)[:32]}",
                generator=f"{TOOL_NAME}/{f.rule}", title=f.title or f.rule, desc=f.message, severity=f.severity,
                account=account, region=region, compliance="FAILED",
                workflow="SUPPRESSED" if f.suppressed else "NEW",
                resources=[{"Type": "Other", "Id": f.urn[:512], "Partition": partition_of(region or ""),
                            **({"Region": region} if region else {})}],
                remediation={"Text": (rule.remediation if rule else "")[:512], "Url": help_uri(f.rule, docs)}
                if rule else None, fields=fields))
        for n in report.not_checked:
            account = n.get("account") or report.account or "000000000000"
            out.append(_finding(
                report, uid=f"residency/{report.stack}/not-checked/{account}/{n['service']}/{n['region']}",
                generator=f"{TOOL_NAME}/not-checked", title=f"Residency audit could not check {n['service']} "
                f"in {n['region']}", desc=n["reason"], severity="INFORMATIONAL", account=account,
                region=report.home_region, compliance="NOT_AVAILABLE",
                resources=[{"Type": "AwsAccount", "Id": f"AWS::::Account:{account}",
                            "Partition": partition_of(report.home_region or "")}],
                fields={"residency/notChecked": n.get("kind") or "not checked"}))
        return out

    def render(self, report, docs) -> str:
        return json.dumps(self.findings(report, docs), indent=2) + "\n"


output(Asff)
