"""The rule catalogue itself: stable IDs, complete metadata, docs/rules.md in step."""

import re

from infra.rules import CATEGORIES, RULES
from infra.rules import docs


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
    assert docs.DOC_PATH.read_text() == docs.render(), "docs/rules.md is stale: python -m infra.rules.docs --write"
