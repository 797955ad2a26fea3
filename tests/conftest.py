"""Shared fixtures (kept minimal).

- `synth`: `infra.synth.synthesize(stack, values=None, program=None)`, with Pulumi's runtime
  reset afterwards, for tests that plan a variant of a stack.
- `planned`: the cached plan of a stack file (stack_plans.planned), read-only.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def synth():
    import pulumi

    from infra.synth import synthesize

    yield synthesize
    pulumi.runtime.reset_options()


@pytest.fixture
def planned():
    from stack_plans import planned as plan_of

    return plan_of
