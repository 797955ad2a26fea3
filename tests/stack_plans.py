"""Synthesized stacks shared by the tests: each stack file is planned once per test session.

`planned(stack)` is the stack as it runs once `residency seed` has put the model image into ECR:
the stack file plus a model image digest, so the cluster layer is part of every plan the tests
read. `planned_unseeded(stack)` is what `pulumi up` builds from the stack file as committed (no
digest: AWS layer only); `residency plan` itself plans it with a placeholder digest instead.
The stack files are the test suite's own (tests/fixtures/stacks, which conftest.py makes the
project directory for the session), not the user-editable ones at the repository root.
Plans are read-only for tests; a test that needs a variant calls `synthesize(stack, values)`.

The cache is keyed by stack name, so it always plans the test stack files, whatever project
directory a test has pointed the readers at when it first asks (tests of the repository's own
files set RESIDENCY_PROJECT_DIR to the root). Import this module as `stack_plans` only: under a
second name (`tests.stack_plans`) Python would load a second copy with a second cache.
"""

from __future__ import annotations

import contextlib
import functools
import os

from conftest import TEST_STACKS
from infra.harness.synth import Plan, synthesize
from infra.program.stackfiles import PROJECT_DIR_ENV, list_stacks, load_stack_values

STACKS = list_stacks(TEST_STACKS)
ZMO_ONLY = [s for s in STACKS if s not in ("us", "eu")]


# What `residency seed` would print for an image; any well-formed digest will do under mocks.
SEEDED_DIGEST = "sha256:" + "0123456789abcdef" * 4


@contextlib.contextmanager
def test_stack_files():
    """The stack readers pointed at tests/fixtures/stacks for the duration of one synthesis."""
    before = os.environ.get(PROJECT_DIR_ENV)
    os.environ[PROJECT_DIR_ENV] = str(TEST_STACKS)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROJECT_DIR_ENV, None)
        else:
            os.environ[PROJECT_DIR_ENV] = before


@functools.cache
def planned(stack: str) -> Plan:
    with test_stack_files():
        return synthesize(stack, values_with(stack, modelImageDigest=SEEDED_DIGEST))


@functools.cache
def planned_unseeded(stack: str) -> Plan:
    with test_stack_files():
        return synthesize(stack, as_committed=True)


def values_with(stack: str, **overrides: str) -> dict[str, str]:
    """The stack file's config map with `key=value` overrides (keys without namespace are ours)."""
    values, _ = load_stack_values(stack)
    for key, value in overrides.items():
        full = key.replace("__", ":") if "__" in key else f"ai-companion:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return values


def of_type(plan: Plan, type_: str):
    return [r for r in plan.snapshot.resources if r.type == type_]
