"""Every Kubernetes object the program registers validates in STRICT mode (unknown fields are
errors) against the OpenAPI schema of the cluster's Kubernetes version, as shipped offline by
kubernetes-validate. The catalog pins EKS 1.35 and the package ships `v1.35.0`, so the exact
minor version is used; a catalog bump to a version the package lacks fails here, loudly.

Custom resources of CRDs (Auto Mode's Karpenter NodePool) have no schema in that package; their
fields are asserted in tests/test_model_server.py instead.
"""

from __future__ import annotations

import copy

import pytest
from kubernetes_validate import utils as kv

from infra.program.catalog import load_catalog
from stack_plans import STACKS, planned

CRD_GROUPS = ("karpenter.sh/",)


def schema_version() -> str:
    version = f"{load_catalog().kubernetes.version}.0"
    assert version in kv.all_versions(), f"kubernetes-validate ships no schema for {version}"
    return version


def manifest(resource) -> dict:
    """The object pulumi-kubernetes would send: apiVersion and kind from the type token, the rest
    from the registered inputs (already in the API's camelCase). A Patch resource (`ConfigMapPatch`)
    sends its object's kind as a server-side apply, so it validates as that kind."""
    _, group_version, kind = resource.type.split(":")
    kind = kind.removesuffix("Patch")
    api_version = group_version.removeprefix("core/")
    return {"apiVersion": api_version, "kind": kind,
            **{k: copy.deepcopy(v) for k, v in resource.inputs.items() if not k.startswith("__")}}


def kubernetes_objects(stack: str) -> list:
    return [r for r in planned(stack).snapshot.resources
            if r.custom and r.type.startswith("kubernetes:") and not r.type.split(":")[1].startswith(CRD_GROUPS)]


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_object_validates_strictly(stack):
    objects = kubernetes_objects(stack)
    assert {r.type.split(":")[2] for r in objects} == {"Namespace", "ServiceAccount", "ConfigMapPatch", "NetworkPolicy",
                                                      "Deployment", "Service"}
    for resource in objects:
        kv.validate(manifest(resource), schema_version(), strict=True)


def test_strict_validation_catches_an_unknown_field():
    (deployment,) = [r for r in kubernetes_objects("sg") if r.type.endswith(":Deployment")]
    body = manifest(deployment)
    body["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(body, schema_version(), strict=True)
    body = manifest(deployment)
    body["spec"]["replicas"] = "one"
    with pytest.raises(kv.ValidationError):
        kv.validate(body, schema_version(), strict=True)
