"""Shared fixtures (kept minimal).

The tests plan and audit their own stack files (tests/fixtures/stacks), not the user-editable
`Pulumi.<stack>.yaml` files at the root: RESIDENCY_PROJECT_DIR points there for the whole session,
set here before any test module lists the stacks. Tests of what is derived from the root files
(docs maps, policy pack configs, workflow matrices) use `project_files`.

- `synth`: `infra.harness.synth.synthesize(stack, values=None, program=None)`, with Pulumi's runtime
  reset afterwards, for tests that plan a variant of a stack.
- `planned`: the cached plan of a stack file (stack_plans.planned), read-only.
- `project_files`: point the stack readers at the repository's own Pulumi.<stack>.yaml files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT

TEST_STACKS = Path(__file__).resolve().parent / "fixtures" / "stacks"
os.environ[PROJECT_DIR_ENV] = str(TEST_STACKS)


@pytest.fixture
def synth():
    import pulumi

    from infra.harness.synth import synthesize

    yield synthesize
    pulumi.runtime.reset_options()


@pytest.fixture
def planned():
    from stack_plans import planned as plan_of

    return plan_of


@pytest.fixture
def project_files(monkeypatch):
    monkeypatch.setenv(PROJECT_DIR_ENV, str(ROOT))
    return ROOT
