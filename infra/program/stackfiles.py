"""Read the project's stack files the way the Pulumi CLI would, without the CLI.

Unit-test runtimes never read `Pulumi.<stack>.yaml` (pulumi/pulumi#4472), so the offline plan, the
audits and the tests load it here: project defaults from `Pulumi.yaml` first, then the stack file,
flattened to Pulumi's `namespace:key -> string` config map.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from infra.program.config import PROJECT, StackConfig, config_string, did_you_mean, parse_config
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


class StrictLoader(yaml.SafeLoader):
    """YAML as a stack file must be read: a key given twice is refused (PyYAML would keep the
    last one silently, so `aws:region` given twice planned in the second region), and a number
    spelled otherwise than in plain decimal (`012345670123` is octal to YAML 1.1, `0x1f`, `1_000`,
    `1:20`) is refused with the advice to quote it, since an account id read as a number loses its
    digits."""


def _strict_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise InputError(f"{loader.name}: key '{key}' is given twice (lines {seen[key]} and {line}); "
                             "keep one")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _strict_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    text = node.value
    if text.lstrip("+-") != str(abs(value)) and node.style is None:
        raise InputError(f"{loader.name}: line {node.start_mark.line + 1}: {text} is read by YAML as the number "
                         f"{value}; quote it (\"{text}\") to keep it as written (account ids always need quotes "
                         "when they start with 0)")
    return value


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:int", _strict_int)


def unknown_stack(stack: str, root: Path | None = None) -> InputError:
    """The error for a stack with no stack file, with the closest name and the list."""
    known = list_stacks(root)
    return InputError(f"unknown stack '{stack}': no Pulumi.{stack}.yaml{did_you_mean(stack, known)}; "
                      f"stacks: {', '.join(known) or 'none'}")


def read_yaml(path: Path) -> dict:
    try:
        loader = StrictLoader(path.read_text())
        loader.name = str(path)
        try:
            data = loader.get_single_data() or {}
        finally:
            loader.dispose()
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
        raise unknown_stack(stack, root)
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


def stack_key_lines(stack: str, root: Path | None = None) -> dict[str, int]:
    """The 1-based line of `config:` and of each key under it in `Pulumi.<stack>.yaml`, keys
    namespaced as Pulumi reads them (`options` -> `ai-companion:options`); {} without a readable file."""
    try:
        document = yaml.compose((root or project_root()).joinpath(f"Pulumi.{stack}.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}
    for key, value in document.value if isinstance(document, yaml.MappingNode) else ():
        if key.value == "config":
            lines["config"] = key.start_mark.line + 1
            for name, _ in value.value if isinstance(value, yaml.MappingNode) else ():
                lines[name.value if ":" in name.value else f"{PROJECT}:{name.value}"] = name.start_mark.line + 1
    return lines
