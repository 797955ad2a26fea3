"""`residency audit --to-security-hub`: import the report's ASFF findings into AWS Security Hub
(BatchImportFindings, at most 100 findings per call, in the stack's home region).

This is the audit's only write, on its own client (the live scanner's read-only guard is not
involved). A finding Security Hub refuses, or a call that fails, is named on stderr; the audit
then exits 3: the findings did not all arrive, so the delivery is incomplete.
"""

from __future__ import annotations

from botocore.config import Config

from infra.engine.credentials import aws_session
from infra.engine.outputs import OUTPUTS

BATCH = 100  # BatchImportFindings' limit per call (Security Hub API reference)


def import_findings(report, *, profile: str | None = None, endpoint_url: str | None = None,
                    session=None) -> list[str]:
    """Send the report's findings; returns what failed (empty: every finding was accepted)."""
    findings = OUTPUTS["asff"].findings(report)
    if not findings:
        return []
    client = (session or aws_session(profile)).client(
        "securityhub", region_name=report.home_region, endpoint_url=endpoint_url,
        config=Config(retries={"mode": "adaptive", "max_attempts": 5}, user_agent_extra="ai-companion-residency-audit"))
    failed: list[str] = []
    for start in range(0, len(findings), BATCH):
        chunk = findings[start:start + BATCH]
        try:
            answer = client.batch_import_findings(Findings=chunk)
        except Exception as exc:  # noqa: BLE001 -- any fault: these findings did not arrive
            failed.append(f"findings {start + 1}-{start + len(chunk)}: {type(exc).__name__}: {exc}")
            continue
        failed += [f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage')}" for f in answer.get("FailedFindings") or []]
    return failed
