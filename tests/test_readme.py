"""The README's option x geography matrix is generated from the catalog."""

from __future__ import annotations

from dataclasses import replace

from infra.program.catalog import load_catalog
from infra.commands.readme import README, matrix_markdown, render


def test_readme_matrix_matches_the_catalog():
    text = README.read_text()
    assert render(text, load_catalog()) == text, "README matrix is stale: run `python -m infra.commands.readme`"


def test_the_check_fails_when_the_catalog_changes():
    catalog = load_catalog()
    sg = replace(catalog.geographies["SG"], options=("zmo", "zm_plus"))
    changed = replace(catalog, geographies={**catalog.geographies, "SG": sg})
    assert matrix_markdown(changed) != matrix_markdown(catalog)
    assert render(README.read_text(), changed) != README.read_text()


def test_matrix_rows_follow_the_developers_matrix():
    table = matrix_markdown(load_catalog())
    rows = {line.split("|")[1].strip().split()[0]: line for line in table.splitlines()[2:]}
    assert rows["US"].endswith("| yes | yes | yes |") and rows["EU"].endswith("| yes | yes | yes |")
    for code in ("SG", "KSA", "AU", "IN", "CA"):
        assert rows[code].endswith("| yes | - | - |")
