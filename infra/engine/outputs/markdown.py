"""Markdown: a pull-request comment. The verdict, a table of findings (severity, rule linked to its
documentation, resource, message), then for each rule fired its remediation and documentation link;
resources without a provable region and units not checked after it."""

from __future__ import annotations

from infra.engine.outputs import Output, output
from infra.engine.report import help_uri, verdict
from infra.engine.rules import RULES_BY_ID
from infra.engine.rules.engine import Report


def _cell(text: str) -> str:
    """Markdown table cell text: no pipe or newline breaks the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(report: Report, docs: str) -> str:
    mark = "⚠️ INCOMPLETE" if report.not_checked else ("❌ FINDINGS" if report.findings else "✅ OK")
    lines = [f"### Residency audit of `{report.stack}` ({report.geography}): {mark}", "",
             f"{report.resources_checked} resources checked against {', '.join(report.regions)} "
             f"(source: {report.source or '-'}): {verdict(report)}.", ""]
    if report.findings:
        lines += ["| severity | rule | resource | finding |", "|---|---|---|---|"]
        for f in report.findings:
            name = RULES_BY_ID[f.rule].name if f.rule in RULES_BY_ID else ""
            lines.append(f"| {f.severity} | [{f.rule}]({help_uri(f.rule, docs)}) `{name}` | `{_cell(f.urn.rsplit('::', 1)[-1])}` "
                         f"({_cell(f.type)}) | {_cell(f.message)} |")
        lines += ["", "#### How to fix", ""]
        for rule_id in sorted({f.rule for f in report.findings}):
            rule = RULES_BY_ID.get(rule_id)
            if rule is not None:
                lines.append(f"- **[{rule_id}]({help_uri(rule_id, docs)}) {_cell(rule.title)}**: {_cell(rule.remediation)}")
        lines.append("")
    if report.unplaced:
        lines += [f"{len(report.unplaced)} resource(s) have no provable region (fail closed):", ""]
        lines += [f"- `{_cell(u['urn'])}`" for u in report.unplaced] + [""]
    if report.not_checked:
        lines += [f"{len(report.not_checked)} unit(s) not checked, so this is no verdict:", ""]
        lines += [f"- {_cell(n.get('service'))} in {_cell(n.get('region'))}: {_cell(n.get('reason'))}"
                  for n in report.not_checked] + [""]
    return "\n".join(lines)


@output
class Markdown(Output):
    name, help, order = "markdown", "a pull-request comment linking each rule's documentation and remediation", 3

    def render(self, report, docs) -> str:
        return render_markdown(report, docs)
