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

import gc
import os
from pathlib import Path

import pytest

from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT

TEST_STACKS = Path(__file__).resolve().parent / "fixtures" / "stacks"
os.environ[PROJECT_DIR_ENV] = str(TEST_STACKS)


def _moto_default_amis_only() -> None:
    """Give moto its own 44 default AMIs (moto/ec2/resources/amis.json.gz) as MOTO_AMIS_PATH.

    Without it, moto loads the ECS-optimized and "latest" AMI lists (about 1 MB of JSON) into every
    region the first time any EC2 call names that region, again after every reset: most of the live
    tests' CPU went there. The default AMIs (owned by Amazon, what describe_images(Owners=["amazon"])
    lists) stay; nothing the scanner reads depends on the other lists. Set before moto is imported.
    """
    import gzip
    import importlib.util
    import tempfile

    spec = importlib.util.find_spec("moto")
    if spec is None or "MOTO_AMIS_PATH" in os.environ:
        return
    source = Path(spec.origin).parent / "ec2" / "resources" / "amis.json.gz"
    target = Path(tempfile.gettempdir()) / f"residency-tests-moto-amis-{os.getpid()}.json"
    target.write_bytes(gzip.decompress(source.read_bytes()))
    os.environ["MOTO_AMIS_PATH"] = str(target)


_moto_default_amis_only()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Freeze the heap after each test (gc.freeze): a full collection then walks only what later
    tests allocate, not the millions of objects already there (pulumi-aws modules, botocore models,
    cached plans), which cost a test process about a tenth of its CPU (8 s of 70 in the live
    tests). The price: cyclic garbage left by earlier tests is never freed (a worker's peak memory
    grew by about 15%); reference counting still frees everything else at once."""
    gc.freeze()


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
