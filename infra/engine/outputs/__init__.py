"""Report formats: one `Output` class per format, one file per class (as Prowler's
prowler/lib/outputs/output.py and its subclasses). Every module in this package is loaded, so a new
format is one new file: a class with a `name`, a `help` line and `render(report) -> str`,
registered with `@output`. `FORMATS` (the `--format` choices) comes from the registry.

Formats that have a published schema name it (`schema`): the tests validate every format's output
against the schema shipped in schemas/ with its source.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from datetime import datetime, timezone

from infra.engine.model import Finding
from infra.engine.rules.engine import Report


class Output:
    name = ""
    help = ""
    order = 50  # place among the --format choices (text first: the default)
    schema: str | None = None  # repo path of the published schema the output validates against

    def render(self, report: Report, docs: str) -> str:
        """The report in this format; `docs` is the absolute URL of docs/rules.md that rule links
        point into (infra.engine.report.docs_url)."""
        raise NotImplementedError


OUTPUTS: dict[str, Output] = {}


def output(cls: type[Output]) -> type[Output]:
    if not cls.name or cls.name in OUTPUTS:
        raise ValueError(f"output format name {cls.name!r} is empty or taken")
    OUTPUTS[cls.name] = cls()
    return cls




# --- what several formats need ------------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def partition_of(region: str) -> str:
    """The AWS partition of a region (by its prefix; AWS's own endpoint data says the same)."""
    for prefix, partition in (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"),
                              ("us-isob-", "aws-iso-b"), ("eusc-", "aws-eusc")):
        if region.startswith(prefix):
            return partition
    return "aws"


def fingerprint(report: Report, f: Finding) -> str:
    """Stable across runs: the same rule on the same resource with the same message."""
    return hashlib.sha256(f"{report.stack}|{f.account}|{f.rule}|{f.urn}|{f.message}".encode()).hexdigest()


def every_finding(report: Report) -> list[Finding]:
    """Active findings, then suppressed ones (each carries its `suppressed` entry)."""
    return list(report.findings) + list(report.suppressed)


def account_of(report: Report, f: Finding) -> str:
    return f.account or report.account or "000000000000"


def render(report: Report, fmt: str, docs: str | None = None) -> str:
    """`docs`: the rules documentation URL (--docs-url); default docs_url()."""
    from infra.engine.report import docs_url

    if fmt not in OUTPUTS:
        raise ValueError(f"unknown format '{fmt}'; allowed: {', '.join(FORMATS)}")
    return OUTPUTS[fmt].render(report, docs or docs_url())


# Every module of this package is a format: loading them fills OUTPUTS (after the helpers above,
# which they import).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
FORMATS = tuple(sorted(OUTPUTS, key=lambda n: (OUTPUTS[n].order, n)))
