"""The rule catalogue itself: stable IDs, complete metadata, docs/rules.md in step."""

import re

from infra.engine.rules import CATEGORIES, RULES
from infra.engine.rules import docs


def test_ids_names_and_metadata():
    assert [r.id for r in RULES] == sorted(r.id for r in RULES)
    for r in RULES:
        assert re.fullmatch(r"RSD-\d{3}", r.id)
        assert re.fullmatch(r"[a-z][a-z0-9_]+", r.name)
        assert r.severity in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
        assert r.title and r.rationale and r.remediation and r.category in CATEGORIES


def test_every_rule_class_has_rules():
    assert {r.category for r in RULES} == set(CATEGORIES)


def test_docs_rules_md_is_fresh():
    assert docs.DOC_PATH.read_text() == docs.render(), "docs/rules.md is stale: python -m infra.engine.rules.docs --write"


def test_every_control_a_rule_names_is_a_reference_control():
    for r in RULES:
        for control in r.controls:
            assert control.partition(" (")[0] in docs.CONTROL_IDS, (r.id, control)


def test_uncovered_controls_say_why_and_the_table_shows_it():
    text = docs.render()
    for control, _, why_not in docs.CONTROLS:
        if not docs.rules_for(control):
            assert why_not, f"{control} has no rule and no reason"
            assert f"not covered: {why_not}" in text
    # 20 Control Tower data-residency controls (residency-facts §4.2 plus CT.MULTISERVICE.PV.1)
    assert sum(c.startswith("CT:") for c, _, _ in docs.CONTROLS) == 20


def test_every_class_says_what_it_covers_and_cannot_see():
    text = docs.render()
    assert set(docs.CLASS_SCOPE) == set(CATEGORIES)
    assert text.count("\nCannot see: ") == len(CATEGORIES)
