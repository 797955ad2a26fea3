"""Read the project's stack files the way the Pulumi CLI would, without the CLI.

Unit-test runtimes never read `Pulumi.<stack>.yaml` (pulumi/pulumi#4472), so the offline plan, the
audits and the tests load it here: project defaults from `Pulumi.yaml` first, then the stack file,
flattened to Pulumi's `namespace:key -> string` config map.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import yaml

from infra.program.config import PROJECT, StackConfig, config_string, parse_config
from infra.program.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SECRET_PLACEHOLDER = "[secret]"
# `residency --project-dir DIR` (or this variable) points the CLI at another checkout.
PROJECT_DIR_ENV = "RESIDENCY_PROJECT_DIR"
STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def project_root() -> Path:
    return Path(os.environ.get(PROJECT_DIR_ENV) or ROOT)


def list_stacks(root: Path | None = None) -> list[str]:
    """Stacks that have a `Pulumi.<stack>.yaml` file, sorted."""
    root = root or project_root()
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return data


def load_stack_values(stack: str, root: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """The flat config map of a stack and its secret keys (secure values become a placeholder)."""
    root = root or project_root()
    if not STACK_NAME.fullmatch(stack or ""):
        raise InputError(f"invalid stack name '{stack}': use letters, digits, '-' and '_'")
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        stacks = list_stacks(root)
        close = difflib.get_close_matches(stack, stacks, n=1, cutoff=0.5)
        raise InputError(f"unknown stack '{stack}': no {path.name}; stacks: {', '.join(stacks) or 'none'}"
                         + (f"; did you mean '{close[0]}'?" if close else ""))
    values: dict[str, str] = {}
    project = read_yaml(root / "Pulumi.yaml")
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict) and ("default" in spec or "value" in spec):
            values[full] = config_string(spec.get("value", spec.get("default")))
        elif not isinstance(spec, dict):
            values[full] = config_string(spec)
    secret_keys = []
    for key, value in (read_yaml(path).get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            value, _ = SECRET_PLACEHOLDER, secret_keys.append(full)
        values[full] = config_string(value)
    return values, secret_keys


def load_stack_config(stack: str, root: Path | None = None) -> StackConfig:
    values, _ = load_stack_values(stack, root)
    return parse_config(values, stack)
