"""Typed, validated stack configuration.

`parse_config` turns the flat `namespace:key -> string` map that Pulumi hands a program into a
`StackConfig`, or raises `ConfigError` naming every bad key, its value and what is allowed. The
program calls it before it creates a single resource, so bad config never registers anything.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi

from infra.program.catalog import (OPTION_SERVICES, OPTIONS, BedrockModel, Catalog, Connector, Geography,
                           RegionServices, gpus_per_instance, load_catalog)

PROJECT = "ai-companion"

# Every key the program reads in its own namespace, with a one-line description for errors/docs.
KNOWN_KEYS = {
    "geography": "residency geography code from stacks/catalog.yaml",
    "options": "list drawn from zmo, zm_plus, federated",
    "vpcCidr": "IPv4 CIDR of the stack's VPC (/16 to /20)",
    "gpuInstanceType": "EC2 instance type of the GPU node group",
    "accountId": "12-digit AWS account id the stack deploys into (the provider refuses any other)",
    "gpuMaxSize": "most GPUs the GPU node pool may run, and the replica cap (>= 1)",
    "servedModel": "model directory under the weights bucket that vLLM serves",
    "modelImageDigest": "sha256:<64 hex> digest of the model-server image in the stack's ECR repository "
                        "(printed by `residency seed`); the workload layer is off until it is set",
    "zmPlus": "{models: [catalog model keys]} for the zm_plus option",
    "federated": "{connectors: [catalog connector keys], allowGlobalProcessing: bool}",
    # Read by `residency cost` only (infra/commands/pricing.py validates it); the program ignores it.
    "costUsage": "{usage key: number} monthly volumes for `residency cost` (stacks/cost_rules.yaml usage)",
}
REQUIRED = ("aws:region", f"{PROJECT}:accountId", f"{PROJECT}:geography", f"{PROJECT}:options")
ACCOUNT_ID = re.compile(r"[0-9]{12}")
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# The stack-file key `residency seed` writes and the program reads: the cluster layer is off without it.
DIGEST_KEY = f"{PROJECT}:modelImageDigest"
# Stands in for that digest in the OFFLINE plan of a stack file that has none, so `plan`, the
# plan audit and `cost` judge the cluster layer too; `pulumi up` never sees it (two-stage deploy).
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
PLACEHOLDER_NOTE = ("cluster layer planned with a placeholder image digest (the stack file has no "
                    "modelImageDigest until `residency seed`; `pulumi up` builds it only then)")
# The serving cluster's Kubernetes service CIDR, set explicitly so the kube-dns address that the
# workload's egress NetworkPolicy admits is known (the 10th address); it must not overlap the VPC.
SERVICE_CIDR = "172.20.0.0/16"
DEFAULTS = {
    "vpcCidr": "10.40.0.0/16",
    "gpuInstanceType": "g6e.xlarge",
    "gpuMaxSize": "2",
    "servedModel": "llama-3.1-8b-instruct",
}


class ConfigError(pulumi.RunError):
    """Bad stack configuration. `pulumi.RunError` makes `pulumi up` print it without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class GpuNodeGroup:
    instance_type: str
    max_size: int  # most GPUs (one per vLLM replica) the node pool may run at once


@dataclass(frozen=True)
class StackConfig:
    stack: str
    geography: Geography
    region: str
    options: tuple[str, ...]
    vpc_cidr: str
    gpu: GpuNodeGroup
    served_model: str
    account_id: str = ""
    # None until `residency seed` has put the image into ECR: the workload layer is then off.
    model_image_digest: str | None = None
    bedrock_models: tuple[BedrockModel, ...] = ()
    connectors: tuple[Connector, ...] = ()
    allow_global_processing: bool = False

    def has(self, option: str) -> bool:
        return option in self.options

    @property
    def tag_options(self) -> str:
        # AWS tag values may not contain commas everywhere; `+` is allowed by every service.
        return "+".join(self.options)


def _json(key: str, raw: str, problems: list[str], expect: str = "") -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        if expect:
            problems.append(f"{key}: expected {expect}; got '{raw}'")
        else:
            problems.append(f"{key}: '{raw}' is not valid JSON/YAML structured config")
        return None


@functools.cache
def aws_regions() -> frozenset[str]:
    """Every region AWS has announced, in any partition, from botocore's partition data (shipped
    offline; it also names regions that its per-service endpoint data does not list yet)."""
    from botocore.loaders import create_loader

    data = create_loader().load_data("partitions")
    return frozenset(r for p in data["partitions"] for r in p.get("regions", {}) if r != "aws-global")


def did_you_mean(name: str, choices) -> str:
    """'; did you mean 'x'?' for the closest of `choices`, or '' when none is close."""
    near = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{near[0]}'?" if near else ""


def _did_you_mean(key: str) -> str | None:
    """The known key a misspelt one most likely meant (`ai-compnion:geography` -> ...:geography)."""
    ns, _, name = key.partition(":")
    candidates = [f"{PROJECT}:{k}" for k in KNOWN_KEYS] + ["aws:region"]
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    if not match and ns == PROJECT:
        match = [f"{PROJECT}:{m}" for m in difflib.get_close_matches(name, KNOWN_KEYS, n=1, cutoff=0.6)]
    return match[0] if match and match[0] != key else None


@functools.cache
def ec2_instance_types() -> frozenset[str]:
    """Every EC2 instance type botocore's EC2 service model knows (its InstanceType enum)."""
    from botocore.loaders import create_loader

    # The loader alone: a botocore session would read the user's AWS config (and fail on a bad
    # AWS_PROFILE) just to validate a stack file offline.
    shapes = create_loader().load_service_model("ec2", "service-2")["shapes"]
    return frozenset(shapes["InstanceType"]["enum"])


def _check_instance_type(instance_type: Any, catalog: Catalog, home: RegionServices | None) -> list[str]:
    key = f"{PROJECT}:gpuInstanceType"
    if not isinstance(instance_type, str) or instance_type not in ec2_instance_types():
        close = difflib.get_close_matches(str(instance_type), sorted(ec2_instance_types()), n=1)
        return [f"{key}: '{instance_type}' is not an EC2 instance type (botocore's InstanceType list)"
                + (f"; did you mean '{close[0]}'?" if close else "")]
    family = instance_type.split(".")[0]
    if catalog.gpu_families and family not in catalog.gpu_families:
        return [f"{key}: '{instance_type}' is not a GPU instance type of a catalogued GPU family: {', '.join(catalog.gpu_families)}"]
    if home is not None and family not in home.gpu_families:
        return [f"{key}: family {family} is not catalogued in {home.region}; "
                f"offered there: {', '.join(home.gpu_families) or 'none'}"]
    return []


def _missing_services(home: RegionServices, options: list) -> list[str]:
    """What the home region lacks for the stack's options (catalog region_services)."""
    missing = [f"{svc} (needed by {option})" for option in OPTIONS if option in options
               for svc in OPTION_SERVICES[option] if svc not in home.services]
    if missing:
        return [f"aws:region: '{home.region}' does not offer {', '.join(missing)}; catalog region_services"]
    return []


def _models_from(region: str, models: tuple[BedrockModel, ...], problems: list[str]) -> tuple[BedrockModel, ...]:
    """The configured models as called from the stack's home region; models not callable there
    are problems."""
    usable = []
    for m in models:
        if region in m.sources:
            usable.append(m.from_source(region))
        else:
            how = "in-region" if m.access == "in_region" else "through its geographic profile"
            problems.append(f"{PROJECT}:zmPlus.models: '{m.key}' is not offered {how} from {region}; "
                            f"source regions: {', '.join(m.sources)}")
    return tuple(usable)


def _int(key: str, raw: str, problems: list[str]) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        problems.append(f"{key}: '{raw}' is not an integer")
        return None


def _parse_models(geo: Geography, raw: Any, catalog: Catalog, problems: list[str]) -> tuple[BedrockModel, ...]:
    key = f"{PROJECT}:zmPlus"
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        problems.append(f"{key}: expected {{models: [...]}} with at least one model")
        return ()
    unknown = set(raw) - {"models"}
    if unknown:
        problems.append(f"{key}: unknown field(s) {', '.join(sorted(unknown))}; allowed: models")
    allowed = geo.zm_plus.models if geo.zm_plus else {}
    models = []
    for name in raw["models"]:
        prefix = str(name).split(".", 1)[0] if "." in str(name) else None
        if prefix == "global":
            problems.append(f"{key}.models: '{name}' is a global. profile; global profiles are never allowed")
            continue
        owner = catalog.geography_of_profile_prefix(prefix) if prefix else None
        if owner and owner.code != geo.code:
            problems.append(
                f"{key}.models: '{name}' uses the '{prefix}.' profile of {owner.code}, not {geo.code}; "
                f"allowed: {', '.join(allowed)}"
            )
            continue
        match = allowed.get(name) or next(
            (m for m in allowed.values() if name in (m.model_id, m.profile_id(geo.zm_plus.profile_prefix))), None
        )
        if match is None:
            problems.append(f"{key}.models: '{name}' is not in the {geo.code} catalog{did_you_mean(name, allowed)}; "
                            f"allowed: {', '.join(allowed)}")
        elif match not in models:
            models.append(match)
    return tuple(models)


def _global_connector(name: str, catalog: Catalog) -> Connector | None:
    """A connector of any geography's catalog, by key or host, that processes data globally."""
    for geo in catalog.geographies.values():
        for c in (geo.federated.connectors.values() if geo.federated else ()):
            if c.processing == "global" and name in (c.key, *c.hosts):
                return c
    return None


def _parse_federated(geo: Geography, raw: Any, problems: list[str],
                     catalog: Catalog) -> tuple[tuple[Connector, ...], bool]:
    key = f"{PROJECT}:federated"
    if not isinstance(raw, dict) or not isinstance(raw.get("connectors"), list) or not raw["connectors"]:
        problems.append(f"{key}: expected {{connectors: [...], allowGlobalProcessing: bool}} with a connector")
        return (), False
    unknown = set(raw) - {"connectors", "allowGlobalProcessing"}
    if unknown:
        problems.append(f"{key}: unknown field(s) {', '.join(sorted(unknown))}; allowed: connectors, allowGlobalProcessing")
    allow_global = raw.get("allowGlobalProcessing", False)
    if not isinstance(allow_global, bool):
        problems.append(f"{key}.allowGlobalProcessing: '{allow_global}' is not true or false")
        allow_global = False
    local = f"{geo.code} is a local data cluster: its Federated connectors reach in-geography endpoints only"
    if allow_global and geo.local_cluster:
        problems.append(f"{key}.allowGlobalProcessing: {local}, whatever this says; remove it")
        allow_global = False
    catalog_connectors = geo.federated.connectors if geo.federated else {}
    by_host = {h: c for c in catalog_connectors.values() for h in c.hosts}
    connectors = []
    for name in raw["connectors"]:
        name = str(name)
        if "*" in name or name.startswith("."):
            problems.append(f"{key}.connectors: '{name}' is a wildcard; only exact catalog connectors are allowed")
            continue
        connector = catalog_connectors.get(name) or by_host.get(name)
        elsewhere = connector or _global_connector(name, catalog)
        if geo.local_cluster and elsewhere is not None and elsewhere.processing == "global":
            problems.append(f"{key}.connectors: '{name}' ({', '.join(elsewhere.hosts)}) processes data globally, "
                            f"and {local}; remove it")
            continue
        if connector is None:
            problems.append(
                f"{key}.connectors: '{name}' is not in the {geo.code} connector catalog "
                f"(global or out-of-geography hosts are refused){did_you_mean(name, catalog_connectors)}; "
                f"allowed: {', '.join(catalog_connectors)}"
            )
            continue
        if connector.processing == "global" and not allow_global:
            problems.append(
                f"{key}.connectors: '{name}' ({', '.join(connector.hosts)}) processes data globally; "
                f"{geo.code} is the global data cluster: set {key}.allowGlobalProcessing: true to accept that "
                "after review, or remove it"
            )
            continue
        if connector not in connectors:
            connectors.append(connector)
    return tuple(connectors), allow_global


def parse_config(values: Mapping[str, str], stack: str, catalog: Catalog | None = None) -> StackConfig:
    """Validate the flat config map (`ns:key -> str`, as Pulumi stores it) into a StackConfig."""
    catalog = catalog or load_catalog()
    problems: list[str] = []
    unknown_keys = [k for k in sorted(values) if k.partition(":")[0] == PROJECT and k.partition(":")[2] not in KNOWN_KEYS]
    unknown_keys += [k for k in sorted(values) if ":" in k and k.partition(":")[0] not in (PROJECT, "aws", "kubernetes")
                     and _did_you_mean(k)]
    for key in REQUIRED:
        if values.get(key) in (None, ""):
            typo = next((k for k in sorted(values) if k not in REQUIRED and _did_you_mean(k) == key), None)
            hint = f"; {KNOWN_KEYS['accountId']}, e.g. 111111111111" if key == f"{PROJECT}:accountId" else ""
            problems.append(f"{key}: required key is missing{hint}" + (f" ('{typo}' is set: a typo?)" if typo else ""))
    for key in unknown_keys:
        hint = _did_you_mean(key)
        problems.append(f"{key}: unknown key" + (f"; did you mean '{hint}'?" if hint else "")
                        + f" allowed: {', '.join(KNOWN_KEYS)}")
    if problems and any("required" in p for p in problems):
        raise ConfigError(problems)

    def get(name: str) -> str:
        return values.get(f"{PROJECT}:{name}", DEFAULTS.get(name))

    code = get("geography")
    if code not in catalog.geographies:
        raise ConfigError(problems + [f"{PROJECT}:geography: '{code}' is unknown{did_you_mean(code, catalog.geographies)}; "
                                      f"allowed: {', '.join(catalog.geographies)}"])
    geo = catalog.geography(code)

    region = values["aws:region"]
    if region not in aws_regions():  # a misspelling is not "outside the geography": say what it is
        hint = did_you_mean(region, geo.regions) or did_you_mean(region, aws_regions())  # the geography's first
        raise ConfigError(problems + [f"aws:region: '{region}' is not an AWS region{hint}"
                                      f" (geography {code}: {', '.join(geo.regions)})"])
    # Any region of the geography can be a stack's home where the catalog says its options'
    # services are offered (stacks/catalog.yaml `region_services`).
    home = catalog.region_services.get(region)
    if not geo.contains(region):
        problems.append(f"aws:region: '{region}' is outside geography {code}; allowed: {', '.join(geo.regions)}")
        home = None
    elif home is None and region != geo.home_region:
        problems.append(f"aws:region: '{region}' has no region_services entry in the catalog, so nothing is "
                        f"known to be offered there; catalogued: {', '.join(r for r in geo.regions if r in catalog.region_services)}")

    raw_options = get("options")
    options = _json(f"{PROJECT}:options", raw_options, problems, expect="a list, e.g. [zmo]")
    if options is not None:
        if not isinstance(options, list) or not options:
            problems.append(f"{PROJECT}:options: expected a list, e.g. [zmo] or [zmo, zm_plus]; got '{raw_options}'; "
                            f"allowed items: {', '.join(OPTIONS)}")
            options = []
        for option in options:
            if option not in OPTIONS:
                problems.append(f"{PROJECT}:options: '{option}' is not an option; allowed: {', '.join(OPTIONS)}")
            elif option not in geo.options:
                problems.append(f"{PROJECT}:options: '{option}' is not offered in {code}; allowed: {', '.join(geo.options)}")
        if options and "zmo" not in options:
            problems.append(f"{PROJECT}:options: every stack includes 'zmo' (the base the others build on)")
    options = tuple(o for o in OPTIONS if o in (options or []))

    cidr = get("vpcCidr")
    try:
        net = ipaddress.ip_network(cidr)
        if net.version != 4 or not 16 <= net.prefixlen <= 20 or not net.is_private:
            raise ValueError
        if net.overlaps(ipaddress.ip_network(SERVICE_CIDR)):
            problems.append(f"{PROJECT}:vpcCidr: '{cidr}' overlaps the cluster's service CIDR {SERVICE_CIDR}")
    except ValueError:
        problems.append(f"{PROJECT}:vpcCidr: '{cidr}' must be a private IPv4 CIDR from /16 to /20")

    account_id = get("accountId")
    if not ACCOUNT_ID.fullmatch(account_id):
        problems.append(f"{PROJECT}:accountId: '{account_id}' is not a 12-digit AWS account id")
    digest = get("modelImageDigest")
    if digest is not None and not IMAGE_DIGEST.fullmatch(digest):
        problems.append(f"{DIGEST_KEY}: '{digest}' must be sha256:<64 lowercase hex> "
                        "(the digest `residency seed` prints)")

    gpu_max = _int(f"{PROJECT}:gpuMaxSize", get("gpuMaxSize"), problems)
    if gpu_max is not None and gpu_max < 1:
        problems.append(f"{PROJECT}:gpuMaxSize: '{gpu_max}' must be at least 1")
    instance_type = get("gpuInstanceType")
    problems += _check_instance_type(instance_type, catalog, catalog.region_services.get(region))
    per_instance = gpus_per_instance().get(instance_type)
    if gpu_max is not None and gpu_max >= 1 and per_instance and gpu_max < per_instance:
        # The pool's `nvidia.com/gpu` limit counts whole nodes: Karpenter never launches a node
        # that would take the pool past it, so the model pod would stay pending for ever.
        problems.append(f"{PROJECT}:gpuMaxSize: {gpu_max} is smaller than the {per_instance} GPUs of one "
                        f"{instance_type} instance ({PROJECT}:gpuInstanceType), so the GPU pool could never "
                        f"launch a node; set gpuMaxSize to at least {per_instance} or pick a smaller type")
    if home is not None:
        problems += _missing_services(home, options)

    models: tuple[BedrockModel, ...] = ()
    raw_zm = values.get(f"{PROJECT}:zmPlus")
    if "zm_plus" in options:
        models = _parse_models(geo, _json(f"{PROJECT}:zmPlus", raw_zm or "null", problems), catalog, problems)
        models = _models_from(region, models, problems)
    elif raw_zm is not None:
        problems.append(f"{PROJECT}:zmPlus: set, but options do not include zm_plus")
    if home is not None:
        geo = geo.at(home)

    connectors: tuple[Connector, ...] = ()
    allow_global = False
    raw_fed = values.get(f"{PROJECT}:federated")
    if "federated" in options:
        connectors, allow_global = _parse_federated(geo, _json(f"{PROJECT}:federated", raw_fed or "null", problems),
                                                    problems, catalog)
    elif raw_fed is not None:
        problems.append(f"{PROJECT}:federated: set, but options do not include federated")

    if problems:
        raise ConfigError(problems)
    return StackConfig(
        stack=stack,
        geography=geo,
        region=region,
        options=options,
        vpc_cidr=cidr,
        gpu=GpuNodeGroup(instance_type, gpu_max),
        served_model=get("servedModel"),
        account_id=account_id,
        model_image_digest=digest,
        bedrock_models=models,
        connectors=connectors,
        allow_global_processing=allow_global,
    )


def config_string(value: Any) -> str:
    """Pulumi's config map holds strings: structured values (lists, objects, numbers) as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def current_config_values() -> dict[str, str]:
    """Every config value visible to the running program (explicit map plus PULUMI_CONFIG)."""
    from pulumi.runtime import config as rc

    values = dict(rc.get_config_env())
    values.update(rc.CONFIG.get())
    return {k: config_string(v) for k, v in values.items()}


def from_pulumi() -> StackConfig:
    """Read the running program's config through Pulumi and validate it."""
    return parse_config(current_config_values(), pulumi.get_stack())
