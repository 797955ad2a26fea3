"""docs/data-paths-<stack>.md are what `make docs` would write now (and the check can fail)."""

from __future__ import annotations

import json

import pytest

from infra.commands import render
from infra.program.stackfiles import ROOT, load_stack_values
from infra.harness.synth import synthesize


@pytest.mark.parametrize("stack", render.DOC_STACKS)
def test_committed_data_path_map_is_fresh(stack, project_files):
    path = render.doc_path(stack)
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make docs`"
    assert path.read_text() == render.data_path_doc(synthesize(stack)), (
        f"{path.relative_to(ROOT)} is stale: run `make docs`")


def test_the_comparison_sees_a_change_in_the_plan():
    # Dropping the Federated option from eu must change its map (no more crossing edge), so a
    # committed map cannot stay "fresh" after such a change.
    values, _ = load_stack_values("eu")
    values["ai-companion:options"] = json.dumps(["zmo", "zm_plus"])
    del values["ai-companion:federated"]
    without_federated = render.data_path_doc(synthesize("eu", values))
    assert "eu.api.openai.com" not in without_federated
    assert render.doc_path("eu").read_text() != without_federated


def test_make_docs_runs_the_writer():
    makefile = (ROOT / "Makefile").read_text()
    target = makefile[makefile.index("\ndocs:"):].split("\n\n")[0]
    assert "-m infra.commands.render --write-docs" in target
