"""Every input key the program registers, at every nesting level, exists in the installed SDKs.

Pulumi's mocks skip the provider's Check, so a misspelled key inside a nested dict
(`vpc_config={"endpoint_privat_access": True}`) is accepted offline and fails only in a real
`pulumi up`. The Python constructors check top-level kwargs but not nested dict keys, which the
SDK passes through untranslated. The installed pulumi-aws and pulumi-kubernetes SDKs carry the
provider schema as `@pulumi.input_type` classes (one per object type, with the wire names of their
properties), so this test walks each registered resource's inputs against them.

Free-form maps (tags, labels, annotations, `Mapping[str, ...]`) are not checked below their keys;
JSON strings (policies) are opaque strings here; provider resources are skipped (under mocks their
inputs are JSON-stringified, and the constructors already check their top-level kwargs).
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import sys
import typing

import pytest
from pulumi import _types
from pulumi.runtime import rpc

# Importing the SDKs registers their resource modules (token -> class) with pulumi.runtime.
import pulumi_aws as aws
import pulumi_kubernetes  # noqa: F401
from infra.harness.synth import synthesize
from stack_plans import STACKS, planned

CHECKED_PACKAGES = ("aws", "kubernetes")
# Custom resources of CRDs the cluster brings (EKS Auto Mode's Karpenter): pulumi-kubernetes has no
# SDK class for them, so no schema here; tests/test_model_server.py asserts their fields.
CRD_TYPES = {"kubernetes:karpenter.sh/v1:NodePool"}


def resource_args(token: str) -> type:
    """The args input type of the resource class the SDK registered for `token`."""
    pkg, mod, _ = token.split(":")
    module = rpc.get_resource_module(pkg, mod, "")
    # `mod_info` is the SDKs' own registration record ({"fqn": module, "classes": {token: name}}).
    info = getattr(module, "mod_info", None)
    if info is None or token not in info["classes"]:
        raise LookupError(f"{token}: no resource class registered by the installed {pkg} SDK")
    cls = getattr(sys.modules[info["fqn"]], info["classes"][token])
    # The constructor names its args class (`ClusterArgs`, or `BucketVersioningInitArgs` where
    # `<Name>Args` is taken by a nested type), so read it from the code rather than guess.
    module = vars(sys.modules[cls.__module__])
    (args,) = {module[n] for n in cls.__init__.__code__.co_names if _types.is_input_type(module.get(n))}
    return args


@functools.cache
def fields(input_type: type) -> tuple[dict[str, typing.Any], frozenset[str]]:
    """(wire name -> type, all wire names) of an `@pulumi.input_type` class; forward references
    such as 'ClusterVpcConfigArgs' resolve in the class's module (which imports its `_inputs`)."""
    names = frozenset(_types.input_type_py_to_pulumi_names(input_type).values())
    return _types.input_type_types(input_type), names


def _members(typ) -> list:
    """The alternatives of a (possibly Input/Optional-wrapped) type, unwrapped."""
    typ = _types.unwrap_type(typ)
    if typing.get_origin(typ) is typing.Union:
        return [_types.unwrap_type(t) for t in typing.get_args(typ)]
    return [typ]


def check(value, typ, path: str) -> list[str]:
    """Problems in `value` (deserialized wire inputs, camelCase keys) against the SDK type `typ`."""
    if isinstance(value, dict):
        candidates = []
        for member in _members(typ):
            if _types.is_input_type(member):
                candidates.append(member)
            elif typing.get_origin(member) in (dict, collections.abc.Mapping):
                # Free-form map: keys are data. Descend only if its values are object types.
                value_type = typing.get_args(member)[1] if typing.get_args(member) else typing.Any
                if not any(_types.is_input_type(m) for m in _members(value_type)):
                    return []
                return [p for k, v in value.items() for p in check(v, value_type, f"{path}.{k}")]
        if not candidates:
            return []  # e.g. Any, or a JSON-ish string field given a dict: not a key question
        results = [_check_object(value, c, path) for c in candidates]
        return min(results, key=len)  # a union is satisfied by its best-fitting member
    if isinstance(value, list):
        for member in _members(typ):
            if typing.get_origin(member) in (list, collections.abc.Sequence):
                (item_type,) = typing.get_args(member) or (typing.Any,)
                return [p for i, v in enumerate(value) for p in check(v, item_type, f"{path}[{i}]")]
    return []


def _check_object(value: dict, input_type: type, path: str) -> list[str]:
    types, names = fields(input_type)
    problems = []
    for key, item in value.items():
        if key.startswith("__"):  # engine-added (`__defaults`, ...)
            continue
        where = f"{path}.{key}" if path else key
        if key not in names:
            problems.append(f"{where}: unknown key {key!r} in {input_type.__name__}; valid: {sorted(names)}")
        elif key in types:
            problems.extend(check(item, types[key], where))
    return problems


def schema_problems(resource: dict) -> list[str]:
    """Every unknown key in one exported resource's inputs, as `<type> <name>: <path>: ...`."""
    token = resource["type"]
    name = resource["urn"].rsplit("::", 1)[-1]
    problems = _check_object(resource.get("inputs") or {}, resource_args(token), "")
    return [f"{token} {name}: {p}" for p in problems]


def checked_resources(stack: str) -> list[dict]:
    return [r for r in planned(stack).export["deployment"]["resources"]
            if r.get("custom") and r["type"].split(":")[0] in CHECKED_PACKAGES and r["type"] not in CRD_TYPES]


@pytest.mark.parametrize("stack", STACKS)
def test_every_registered_input_key_is_in_the_provider_schema(stack):
    resources = checked_resources(stack)
    # Every option is enabled in some stack; this guards against the walk checking nothing.
    assert {r["type"].split(":")[0] for r in resources} == set(CHECKED_PACKAGES)
    problems = [p for r in resources for p in schema_problems(r)]
    assert not problems, "\n".join(problems)


def test_every_custom_resource_type_resolves_to_an_sdk_class():
    # A resource from another package would be skipped above; make that visible here.
    custom = {r["type"] for s in STACKS for r in planned(s).export["deployment"]["resources"]
              if r.get("custom") and not r["type"].startswith("pulumi:providers:")}
    assert {t.split(":")[0] for t in custom} <= set(CHECKED_PACKAGES)
    assert CRD_TYPES <= custom  # the exemption names what is registered, nothing else
    custom -= CRD_TYPES
    for token in custom:
        assert _types.is_input_type(resource_args(token)), token
    # `BucketVersioningArgs` is also the name of a nested type of `Bucket` in pulumi_aws.s3.
    assert resource_args("aws:s3/bucketVersioning:BucketVersioning").__name__ == "BucketVersioningInitArgs"


# --- the check can fail ---------------------------------------------------------------------------

def _registered(stack: str, token: str) -> dict:
    return copy.deepcopy(next(r for r in checked_resources(stack) if r["type"] == token))


def test_a_misspelled_nested_key_is_reported_with_its_path():
    cluster = _registered("us", "aws:eks/cluster:Cluster")
    assert schema_problems(cluster) == []
    vpc = cluster["inputs"]["vpcConfig"]
    vpc["endpointPrivatAccess"] = vpc.pop("endpointPrivateAccess")
    (problem,) = schema_problems(cluster)
    assert "vpcConfig.endpointPrivatAccess: unknown key 'endpointPrivatAccess' in ClusterVpcConfigArgs" in problem
    assert "'endpointPrivateAccess'" in problem  # the valid keys are listed


def test_a_misspelled_nested_kwarg_passes_the_mocks_and_is_caught():
    # The premise, end to end: the SDK and the mocks accept the typo (passed on untranslated).
    def program(cfg):
        aws.ec2.VpcEndpoint("typo", vpc_id="vpc-1", service_name=f"com.amazonaws.{cfg.region}.s3",
                            dns_options={"private_dns_only_for_inbound_resolver_endpoin": False,
                                         "dns_record_ip_type": "ipv4"})
        return {}

    plan = synthesize("us", program=program)
    (endpoint,) = [r for r in plan.export["deployment"]["resources"] if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    (problem,) = schema_problems(endpoint)
    assert ("dnsOptions.private_dns_only_for_inbound_resolver_endpoin: unknown key "
            "'private_dns_only_for_inbound_resolver_endpoin' in VpcEndpointDnsOptionsArgs") in problem
    assert "'privateDnsOnlyForInboundResolverEndpoint'" in problem


def test_a_snake_case_key_in_a_list_of_objects_is_reported():
    # What the SDK passes through when a nested dict key is not in the type (no translation).
    nodes = _registered("us", "aws:eks/nodeGroup:NodeGroup")
    nodes["inputs"]["taints"][0]["no_such_key"] = "x"
    (problem,) = schema_problems(nodes)
    assert "taints[0].no_such_key: unknown key 'no_such_key' in NodeGroupTaintArgs" in problem


def test_a_deeply_nested_kubernetes_key_is_reported():
    deployment = _registered("us", "kubernetes:apps/v1:Deployment")
    deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 80
    (problem,) = schema_problems(deployment)
    assert "spec.template.spec.containers[0].readinessProbe.httpGet.prot: unknown key 'prot' in HTTPGetActionArgs" in problem


def test_a_misspelled_top_level_key_is_reported():
    endpoint = _registered("us", "aws:ec2/vpcEndpoint:VpcEndpoint")
    endpoint["inputs"]["privateDnsEnable"] = True
    (problem,) = schema_problems(endpoint)
    assert "privateDnsEnable: unknown key 'privateDnsEnable' in VpcEndpointArgs" in problem


def test_free_form_maps_are_not_checked_below_their_keys():
    vpc = _registered("us", "aws:ec2/vpc:Vpc")
    vpc["inputs"]["tags"]["anyKeyAtAll"] = "ok"
    assert schema_problems(vpc) == []
