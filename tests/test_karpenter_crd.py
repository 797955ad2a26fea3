"""The GPU NodePool against Karpenter's own published CRD: its OpenAPI schema (jsonschema) and
every CEL rule in it (`x-kubernetes-validations`, evaluated by cel-python), after the API server's
structural defaulting, as a `kubectl apply` of a new object would meet them.

The CRD is aws/karpenter-provider-aws `pkg/apis/crds/karpenter.sh_nodepools.yaml`, shipped in
tests/fixtures/crds/ (source and licence in its README). EKS Auto Mode serves its own copy of the
`karpenter.sh/v1` NodePool CRD, which is not published; this is the closest engine that runs
offline, and Auto Mode's extra rule (the 21-day node lifetime) is held in tests/test_conformance.py.

Transition rules (those that read `oldSelf`) apply only to updates and are skipped for a create.
Kubernetes' CEL has a regex library that plain CEL lacks; its `find` is supplied here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import celpy
import jsonschema
import pytest
import yaml

from stack_plans import STACKS, of_type, planned

CRD = Path(__file__).resolve().parent / "fixtures" / "crds" / "karpenter.sh_nodepools.yaml"


def nodepool_schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def with_defaults(value, schema: dict):
    """Structural defaulting, as the API server applies it before validation."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = with_defaults(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [with_defaults(v, schema["items"]) for v in value]
    return value


def _find(text, pattern):
    """Kubernetes' CEL regex library: the first match of `pattern` in `text`, or ''."""
    match = re.search(str(pattern), str(text))
    return celpy.celtypes.StringType(match.group(0) if match else "")


CEL = celpy.Environment()


def cel_failures(value, schema: dict, path: str = "") -> list[str]:
    """Every CEL rule of `schema` (and below) that `value` breaks: `path: message`."""
    failures = []
    for check in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in check["rule"]:
            continue  # transition rule: not evaluated on create
        program = CEL.program(CEL.compile(check["rule"]), functions={"find": _find})
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if result is not celpy.celtypes.BoolType(True) and result != celpy.celtypes.BoolType(True):
            failures.append(f"{path or '.'}: {check.get('message', check['rule'])}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                failures += cel_failures(value[key], sub, f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in (schema.get("properties") or {}):
                    failures += cel_failures(item, extra, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            failures += cel_failures(item, schema["items"], f"{path}[{i}]")
    return failures


def crd_problems(obj: dict) -> list[str]:
    schema = nodepool_schema()
    obj = with_defaults(copy.deepcopy(obj), schema)
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    return problems + cel_failures(obj, schema)


def gpu_pool_object(stack: str) -> dict:
    (pool,) = of_type(planned(stack), "kubernetes:karpenter.sh/v1:NodePool")
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            **{k: copy.deepcopy(v) for k, v in pool.inputs.items() if k in ("metadata", "spec")}}


def test_the_shipped_crd_has_cel_rules_to_evaluate():
    rules = []

    def walk(node):
        if isinstance(node, dict):
            rules.extend(v["rule"] for v in node.get("x-kubernetes-validations") or [])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)
    walk(nodepool_schema())
    assert len(rules) >= 15
    for rule in rules:
        CEL.compile(rule)  # every rule parses in cel-python


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_pool_satisfies_karpenters_crd_and_its_cel_rules(stack):
    assert crd_problems(gpu_pool_object(stack)) == []


@pytest.mark.parametrize("mutate, expected", [
    # A requirement on the hostname label: refused by a CEL rule.
    (lambda s: s["template"]["spec"]["requirements"].append(
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["x"]}), "kubernetes.io/hostname"),
    # An `In` requirement without values: refused by a CEL rule.
    (lambda s: s["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": []}), "In"),
    # A restricted karpenter.sh label: refused by a CEL rule.
    (lambda s: s["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/custom", "operator": "Exists"}), "restricted"),
    # An empty node class name: refused by a CEL rule.
    (lambda s: s["template"]["spec"]["nodeClassRef"].update(name=""), "name may not be empty"),
    # A malformed duration: refused by the schema's pattern.
    (lambda s: s["template"]["spec"].update(expireAfter="30 days"), "does not match"),
])
def test_cel_rules_fire_on_a_bad_pool(mutate, expected):
    obj = gpu_pool_object("sg")
    mutate(obj["spec"])
    problems = crd_problems(obj)
    assert problems and any(expected in p for p in problems), problems
