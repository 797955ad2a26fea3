"""Suppressions: `residency-suppressions.yaml`, findings accepted for a time, by whom and why.

    suppressions:
      - rule: RSD-057                    # a rule id
        account: "123456789012"          # the account, or a glob ("*")
        region: eu-central-1             # the resource's region, or a glob
        resource: "arn:aws:s3:::open-*"  # the finding's URN/ARN, or a glob
        reason: public open-data set, reviewed in SEC-123
        owner: data-team
        expires: 2027-01-31              # ISO date; the suppression holds until the end of that day

A matching, unexpired suppression moves a finding to `report.suppressed` with the suppression
attached: it is still reported (every format shows it as suppressed), it only stops counting as a
finding. An expired suppression suppresses nothing and fails the audit (exit 1): accepted risk
must be accepted again. A suppression that matched nothing is reported as unused.
`report.suppressions` lists every entry with its `status`: used, unused or expired.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from infra.engine.model import Suppression
from infra.engine.rules import RULES_BY_ID
from infra.engine.rules.engine import Report
from infra.program.errors import InputError
from infra.program.stackfiles import read_yaml

FILE_NAME = "residency-suppressions.yaml"
KEYS = ("rule", "account", "region", "resource", "reason", "owner", "expires")


@dataclass(frozen=True)
class Entry:
    rule: str
    account: str
    region: str
    resource: str
    reason: str
    owner: str
    expires: dt.date

    def matches(self, rule: str, account: str, region: str, resource: str) -> bool:
        return (self.rule == rule and fnmatchcase(account, self.account) and fnmatchcase(region, self.region)
                and fnmatchcase(resource, self.resource))

    def expired(self, today: dt.date) -> bool:
        return today > self.expires


def load(path: Path) -> list[Entry]:
    """Parse and check the file (InputError naming the entry, the key and what is allowed)."""
    try:  # the stack files' strict reader: a key given twice, or an account id YAML reads as a number, is refused
        doc = read_yaml(path)
    except InputError as exc:
        raise InputError(f"--suppressions: {exc}") from None
    if set(doc) - {"suppressions"} or not isinstance(doc.get("suppressions", []), list):
        raise InputError(f"--suppressions {path}: expected a mapping with one key, 'suppressions', a list")
    return [_entry(path, i, item) for i, item in enumerate(doc.get("suppressions") or [])]


def _entry(path: Path, i: int, item) -> Entry:
    where = f"--suppressions {path}: suppressions[{i}]"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(item) - set(KEYS))
    missing = [k for k in KEYS if item.get(k) in (None, "")]
    if unknown or missing:
        raise InputError(f"{where}: " + "; ".join(
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) +
            ([f"missing {', '.join(missing)}"] if missing else [])) + f"; keys: {', '.join(KEYS)}")
    if item["rule"] not in RULES_BY_ID:
        raise InputError(f"{where}: rule: '{item['rule']}' is not a rule id (RSD-001 ... see docs/rules.md)")
    expires = item["expires"]
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            expires = None
    if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
        raise InputError(f"{where}: expires: '{item['expires']}' is not an ISO date (YYYY-MM-DD)")
    return Entry(*(str(item[k]) for k in KEYS[:-1]), expires)


def apply(report: Report, entries: list[Entry], today: dt.date | None = None) -> None:
    """Move suppressed findings to `report.suppressed`; record every entry's status."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    used = [0] * len(entries)
    active, suppressed = [], []
    for f in report.findings:
        account = f.account or report.account
        hit = next((i for i, e in enumerate(entries)
                    if e.matches(f.rule, account, f.region, f.urn) and not e.expired(today)), None)
        if hit is None:
            active.append(f)
            continue
        used[hit] += 1
        e = entries[hit]
        suppressed.append(dataclasses.replace(f, suppressed=Suppression(e.reason, e.owner, e.expires.isoformat())))
    report.findings, report.suppressed = active, report.suppressed + suppressed
    report.suppressions = [{
        **{k: getattr(e, k) for k in KEYS[:-1]}, "expires": e.expires.isoformat(), "suppressed": n,
        "status": "expired" if e.expired(today) else ("used" if n else "unused"),
    } for e, n in zip(entries, used)]


def expired(report: Report) -> list[dict]:
    return [s for s in report.suppressions if s["status"] == "expired"]
