"""The house's floors: every import points down.

infra/program (config, catalog, components, shared errors, documents derived from the catalog) is
the ground floor; infra/engine (model, loaders, rules, report, live) stands on it; infra/harness
(the offline synthesis) runs the program into the engine's model; infra/commands and infra/cli.py
sit on top. A module may import its own floor or any floor below, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parent.parent / "infra"
FLOOR = {"program": 0, "engine": 1, "harness": 2, "commands": 3, "cli": 3, "__main__": 3}


def floor_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "infra" or len(parts) < 2:
        return None
    return FLOOR.get(parts[1])


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


MODULES = sorted(p for p in INFRA.rglob("*.py"))


def test_every_module_has_a_floor():
    for path in MODULES:
        rel = path.relative_to(INFRA.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module == "infra.__init__":
            continue
        assert floor_of(module) is not None, f"{rel}: no floor in FLOOR"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(INFRA)))
def test_imports_point_down(path):
    module = ".".join(path.relative_to(INFRA.parent).with_suffix("").parts)
    own = floor_of(module)
    if own is None:
        return
    upward = [f"line {line}: {name}" for line, name in imports(path)
              if (floor_of(name) or 0) > own]
    assert not upward, f"{module} imports a floor above its own: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The check itself can fail: a program module importing the engine is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from infra.engine.loaders import read_export\nimport infra.commands.audit\n")
    found = [name for _, name in imports(bad) if (floor_of(name) or 0) > FLOOR["program"]]
    assert found == ["infra.engine.loaders", "infra.commands.audit"]


def test_the_plan_cache_has_one_name_and_holds_the_test_stack_files(monkeypatch, tmp_path):
    """One module (one cache) for the session's plans, planned from tests/fixtures/stacks even
    when a test has pointed the stack readers elsewhere before asking."""
    import sys

    import stack_plans
    from conftest import TEST_STACKS
    from infra.program.stackfiles import PROJECT_DIR_ENV

    tests_dir = Path(__file__).resolve().parent
    for path in tests_dir.glob("*.py"):  # every test module imports its helpers under their own name
        names = {m for _, m in imports(path)}
        assert not any(n.startswith("tests.") for n in names), path.name
    assert "tests.stack_plans" not in sys.modules
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path))  # an empty project: no stack files at all
    stack_plans.planned_unseeded.cache_clear()
    try:
        plan = stack_plans.planned_unseeded("sg")
    finally:
        stack_plans.planned_unseeded.cache_clear()
    assert plan.config.stack == "sg" and str(TEST_STACKS) != str(tmp_path)
    assert stack_plans.STACKS == sorted(p.name[7:-5] for p in TEST_STACKS.glob("Pulumi.*.yaml"))
