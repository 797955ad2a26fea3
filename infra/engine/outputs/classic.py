"""The first three formats: text, JSON and SARIF 2.1.0 (infra/engine/report.py renders them)."""

from __future__ import annotations

import json

from infra.engine import report as classic
from infra.engine.outputs import Output, output


@output
class Text(Output):
    name, help, order = "text", "human-readable report", 0

    def render(self, report, docs) -> str:
        return classic.render_text(report)


@output
class Json(Output):
    name, help, order = "json", "the report as JSON (README: JSON output)", 1

    def render(self, report, docs) -> str:
        return json.dumps(classic.to_dict(report), indent=2) + "\n"


@output
class Sarif(Output):
    name, help, order = "sarif", "SARIF 2.1.0 for GitHub code scanning", 2

    def render(self, report, docs) -> str:
        return json.dumps(classic.render_sarif(report, docs), indent=2) + "\n"
