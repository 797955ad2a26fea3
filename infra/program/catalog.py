"""The region catalog (stacks/catalog.yaml), loaded and validated once.

Everything that needs to know which regions, models or hosts belong to a geography asks this
module. A catalog that contradicts itself (a profile destination outside its geography, a wildcard
host, an option without its section) is refused at load time, so no rule ever reasons over it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).resolve().parents[2] / "stacks" / "catalog.yaml"
OPTIONS = ("zmo", "zm_plus", "federated")
MODEL_ACCESS = ("in_region", "inference_profile")
PROCESSING = ("in_geography", "global")
# Bedrock geographic inference-profile prefixes; `global.` routes to any commercial region.
GLOBAL_PROFILE_PREFIX = "global"


class CatalogError(ValueError):
    """The catalog file is malformed or contradicts itself."""


@dataclass(frozen=True)
class BedrockModel:
    key: str
    model_id: str
    access: str  # in_region | inference_profile
    destinations: tuple[str, ...]  # regions a profile may route to from the home region
    # Source regions the model can be called from: a profile's destinations from a source are
    # `destinations` plus the source itself; an in-region model is offered in exactly these.
    sources: tuple[str, ...] = ()

    def profile_id(self, prefix: str) -> str | None:
        return f"{prefix}.{self.model_id}" if self.access == "inference_profile" else None

    def from_source(self, region: str) -> "BedrockModel":
        """The model as called from `region` (a stack's home region)."""
        if self.access != "inference_profile":
            return self
        return dataclasses.replace(self, destinations=tuple(sorted(set(self.destinations) | {region})))


@dataclass(frozen=True)
class ZmPlus:
    profile_prefix: str
    checked: str
    source: str
    models: dict[str, BedrockModel]


@dataclass(frozen=True)
class Connector:
    key: str
    provider: str
    hosts: tuple[str, ...]
    processing: str  # in_geography | global
    # Cleartext HTTP is refused (API keys travel in headers) unless the provider documents it:
    # then the port it serves HTTP on, and the source that says so.
    http_port: int | None = None
    http_source: str = ""


@dataclass(frozen=True)
class Federated:
    checked: str
    source: str
    connectors: dict[str, Connector]

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(h for c in self.connectors.values() for h in c.hosts)


@dataclass(frozen=True)
class Geography:
    code: str
    stack: str
    name: str
    partition: str
    home_region: str
    regions: tuple[str, ...]
    availability_zones: tuple[str, ...]
    options: tuple[str, ...]
    zm_plus: ZmPlus | None = None
    federated: Federated | None = None
    # `global`: a global data cluster (US), where a connector that processes data anywhere is a
    # reviewed opt-in; `local` (EU and the rest): connectors reach in-geography endpoints only.
    data_cluster: str = "local"

    @property
    def local_cluster(self) -> bool:
        return self.data_cluster != "global"

    def contains(self, region: str) -> bool:
        return region in self.regions

    def at(self, home: "RegionServices") -> "Geography":
        """This geography as seen by a stack whose home region is `home.region`: its zones, and
        the Bedrock models (with their destinations) that can be called from there."""
        if home.region == self.home_region:
            return self
        zm_plus = self.zm_plus and dataclasses.replace(self.zm_plus, models={
            k: m.from_source(home.region) for k, m in self.zm_plus.models.items() if home.region in m.sources})
        return dataclasses.replace(self, home_region=home.region, availability_zones=home.availability_zones,
                                   zm_plus=zm_plus)


@dataclass(frozen=True)
class RegionServices:
    """What a region offers to a stack that makes it its home (catalog `region_services`)."""

    region: str
    availability_zones: tuple[str, ...]
    services: tuple[str, ...]  # botocore endpoint names: eks, network-firewall
    gpu_families: tuple[str, ...]


# What each option needs from its home region's `services` (ZM+ needs the models' `sources`).
OPTION_SERVICES = {"zmo": ("eks",), "zm_plus": (), "federated": ("network-firewall",)}


@dataclass(frozen=True)
class RegionDenyExemptions:
    """Actions a region-deny SCP exempts (global services), each with the reason it is kept;
    `not_action` is the NotAction list. `dropped`: reviewed and not exempt, with the reason."""

    checked: str
    source: str
    services: dict[str, str]
    actions: dict[str, str]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def not_action(self) -> list[str]:
        return [f"{s}:*" for s in self.services] + list(self.actions)


@dataclass(frozen=True)
class KubernetesVersion:
    """The EKS Kubernetes minor version every serving cluster runs, with its support window."""
    version: str
    end_of_standard_support: str  # YYYY-MM-DD
    checked: str
    source: str


@dataclass(frozen=True)
class NonDestination:
    kind: str  # url_prefix | host_suffix | subtree | name_property
    match: str
    reason: str


@dataclass(frozen=True)
class Destinations:
    """What the delivery rule (RSD-055) reads as a destination, and the reviewed exceptions."""

    aws_dns_suffixes: tuple[str, ...]
    host_properties: tuple[str, ...]
    image_properties: tuple[str, ...]
    implicit_registry: str
    non_destinations: tuple[NonDestination, ...]
    bucket_schemes: tuple[str, ...] = ()  # URI schemes whose authority is an S3 bucket (`s3://b/k`)

    def of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(n.match for n in self.non_destinations if n.kind == kind)


@dataclass(frozen=True)
class GlobalType:
    type: str
    rationale: str
    source: str


@dataclass(frozen=True)
class GlobalProperty:
    """A property that switches a regional resource into a global mode."""

    type: str
    path: str  # dotted; a segment ending in [] walks every element of a list
    when: str | tuple[str, ...]  # "set" | "true" | values that switch it
    rationale: str
    source: str


@dataclass(frozen=True)
class GlobalConstructs:
    checked: str
    types: dict[str, GlobalType]
    properties: tuple[GlobalProperty, ...]
    covered_by: tuple[tuple[str, str], ...]  # (what, rule id) judged by another rule
    scp_deny: dict[str, str] = field(default_factory=dict)  # IAM action (pattern) -> why every SCP denies it

    def properties_of(self, type_: str) -> tuple[GlobalProperty, ...]:
        return tuple(p for p in self.properties if p.type == type_)


@dataclass(frozen=True)
class Catalog:
    options: dict[str, str]
    partitions: dict[str, str]
    geographies: dict[str, Geography]
    path: Path = field(default=CATALOG_PATH)
    region_deny_exemptions: RegionDenyExemptions | None = None
    kubernetes: KubernetesVersion | None = None
    destinations: Destinations | None = None
    global_constructs: GlobalConstructs | None = None
    region_services: dict[str, RegionServices] = field(default_factory=dict)
    gpu_families: tuple[str, ...] = ()

    def geography(self, code: str) -> Geography:
        return self.geographies[code]

    def by_stack(self, stack: str) -> Geography:
        for geo in self.geographies.values():
            if geo.stack == stack:
                return geo
        raise KeyError(stack)

    @property
    def all_regions(self) -> frozenset[str]:
        return frozenset(r for g in self.geographies.values() for r in g.regions)

    def geography_of_profile_prefix(self, prefix: str) -> Geography | None:
        for geo in self.geographies.values():
            if geo.zm_plus and geo.zm_plus.profile_prefix == prefix:
                return geo
        return None


def _require(mapping: dict, key: str, where: str):
    if not isinstance(mapping, dict) or key not in mapping:
        raise CatalogError(f"{where}: missing required key '{key}'")
    return mapping[key]


def _parse_zm_plus(code: str, geo: Geography, raw: dict) -> ZmPlus:
    where = f"geographies.{code}.zm_plus"
    prefix = _require(raw, "profile_prefix", where)
    if prefix == GLOBAL_PROFILE_PREFIX:
        raise CatalogError(f"{where}.profile_prefix: 'global.' profiles are never allowed")
    models = {}
    for key, m in (_require(raw, "models", where) or {}).items():
        mwhere = f"{where}.models.{key}"
        access = _require(m, "access", mwhere)
        if access not in MODEL_ACCESS:
            raise CatalogError(f"{mwhere}.access: '{access}' is not one of {', '.join(MODEL_ACCESS)}")
        destinations = tuple(m.get("destinations") or ())
        if access == "inference_profile" and not destinations:
            raise CatalogError(f"{mwhere}.destinations: a profile needs its destination regions")
        outside = [r for r in destinations if r not in geo.regions]
        if outside:
            raise CatalogError(
                f"{mwhere}.destinations: {', '.join(outside)} outside {code} ({', '.join(geo.regions)})"
            )
        sources = tuple(m.get("sources") or (geo.home_region,))
        if geo.home_region not in sources or any(r not in geo.regions for r in sources):
            raise CatalogError(f"{mwhere}.sources: must include {geo.home_region} and only {code} regions")
        models[key] = BedrockModel(key, _require(m, "model_id", mwhere), access, destinations, sources)
    return ZmPlus(prefix, str(_require(raw, "checked", where)), raw.get("source", ""), models)


DATA_CLUSTERS = ("global", "local")


def _parse_federated(code: str, raw: dict) -> Federated:
    where = f"geographies.{code}.federated"
    connectors = {}
    for key, c in (_require(raw, "connectors", where) or {}).items():
        cwhere = f"{where}.connectors.{key}"
        hosts = tuple(_require(c, "hosts", cwhere))
        bad = [h for h in hosts if "*" in h or h.startswith(".") or not h or "/" in h]
        if bad:
            raise CatalogError(f"{cwhere}.hosts: exact hostnames only, got {', '.join(bad)}")
        processing = _require(c, "processing", cwhere)
        if processing not in PROCESSING:
            raise CatalogError(f"{cwhere}.processing: '{processing}' is not one of {', '.join(PROCESSING)}")
        connectors[key] = Connector(key, _require(c, "provider", cwhere), hosts, processing,
                                    *_parse_cleartext_http(c.get("cleartext_http"), f"{cwhere}.cleartext_http"))
    return Federated(str(_require(raw, "checked", where)), raw.get("source", ""), connectors)


def _parse_cleartext_http(raw, where: str) -> tuple[int | None, str]:
    """`cleartext_http: {port, source}`: a documented plain-HTTP port of a connector, or nothing."""
    if raw is None:
        return None, ""
    if not isinstance(raw, dict) or not str(raw.get("source") or "").strip():
        raise CatalogError(f"{where}: needs `port` and the `source` that documents cleartext HTTP")
    port = raw.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise CatalogError(f"{where}.port: a TCP port (1-65535), got {port!r}")
    return port, str(raw["source"])


def _parse_exemptions(raw: dict) -> RegionDenyExemptions:
    where = "region_deny_exemptions"
    sections = {}
    for key in ("services", "actions", "dropped"):
        value = raw.get(key) or {}
        if key == "services":
            value = _require(raw, key, where)
        if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip() for v in value.values()):
            raise CatalogError(f"{where}.{key}: expected a mapping of name -> the reason (a non-empty string)")
        sections[key] = {str(k): v for k, v in value.items()}
    services, actions, dropped = sections["services"], sections["actions"], sections["dropped"]
    bad = [s for s in services if not re.fullmatch(r"[a-z0-9-]+", s)]
    bad += [a for a in actions if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", a)]
    if bad:
        raise CatalogError(f"{where}: expected service prefixes and service:Action names, got {', '.join(bad)}")
    both = sorted(set(dropped) & (set(services) | set(actions)))
    if both:
        raise CatalogError(f"{where}: {', '.join(both)} both exempt and dropped")
    # Exempting Bedrock from the region deny would let any model run anywhere.
    if "bedrock" in services or any(a.startswith("bedrock") for a in actions):
        raise CatalogError(f"{where}: bedrock must not be exempt from the region deny")
    return RegionDenyExemptions(str(_require(raw, "checked", where)), raw.get("source", ""), services, actions, dropped)


def _parse_kubernetes(raw: dict) -> KubernetesVersion:
    where = "kubernetes"
    version = str(_require(raw, "version", where))
    if not re.fullmatch(r"1\.[0-9]+", version):
        raise CatalogError(f"{where}.version: '{version}' is not a Kubernetes minor version such as 1.35")
    end = str(_require(raw, "end_of_standard_support", where))
    checked = str(_require(raw, "checked", where))
    for key, value in (("end_of_standard_support", end), ("checked", checked)):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise CatalogError(f"{where}.{key}: '{value}' is not a YYYY-MM-DD date")
    # A version checked after its standard support ended is a stale pick, not a fact to deploy.
    if end <= checked:
        raise CatalogError(f"{where}: {version} left EKS standard support on {end}, before it was checked ({checked})")
    return KubernetesVersion(version, end, checked, raw.get("source", ""))


NON_DESTINATION_KINDS = ("url_prefix", "host_suffix", "subtree", "name_property")
_TYPE_TOKEN_RE = re.compile(r"aws:[a-z0-9]+/[a-zA-Z0-9]+:[A-Za-z0-9]+")


def _parse_destinations(raw: dict) -> Destinations:
    where = "destinations"
    non = []
    for i, n in enumerate(_require(raw, "non_destinations", where) or []):
        nwhere = f"{where}.non_destinations[{i}]"
        kind = _require(n, "kind", nwhere)
        if kind not in NON_DESTINATION_KINDS:
            raise CatalogError(f"{nwhere}.kind: '{kind}' is not one of {', '.join(NON_DESTINATION_KINDS)}")
        if not str(_require(n, "reason", nwhere)).strip():
            raise CatalogError(f"{nwhere}.reason: every known non-destination needs a reason")
        non.append(NonDestination(kind, str(_require(n, "match", nwhere)), str(n["reason"])))
    lower = lambda key: tuple(str(x).lower() for x in (_require(raw, key, where) or ()))  # noqa: E731
    return Destinations(lower("aws_dns_suffixes"), lower("host_properties"), lower("image_properties"),
                        str(_require(raw, "implicit_registry", where)), tuple(non),
                        tuple(str(x).lower() for x in raw.get("bucket_schemes") or ()))


def _parse_global_constructs(raw: dict) -> GlobalConstructs:
    where = "global_constructs"
    types = {}
    for token, t in (_require(raw, "types", where) or {}).items():
        twhere = f"{where}.types.{token}"
        if not _TYPE_TOKEN_RE.fullmatch(str(token)):
            raise CatalogError(f"{twhere}: not a pulumi-aws type token (aws:<module>/<name>:<Type>)")
        types[token] = GlobalType(token, str(_require(t, "rationale", twhere)), str(_require(t, "source", twhere)))
    props = []
    for i, p in enumerate(_require(raw, "properties", where) or []):
        pwhere = f"{where}.properties[{i}]"
        token = str(_require(p, "type", pwhere))
        if not _TYPE_TOKEN_RE.fullmatch(token):
            raise CatalogError(f"{pwhere}.type: '{token}' is not a pulumi-aws type token")
        when = _require(p, "when", pwhere)
        if isinstance(when, list) and when:
            when = tuple(str(v) for v in when)
        elif when not in ("set", "true"):
            raise CatalogError(f"{pwhere}.when: expected set, true or a list of values, got {when!r}")
        props.append(GlobalProperty(token, str(_require(p, "path", pwhere)), when,
                                    str(_require(p, "rationale", pwhere)), str(_require(p, "source", pwhere))))
    covered = []
    for i, c in enumerate(raw.get("covered_by") or []):
        rule_id = str(_require(c, "rule", f"{where}.covered_by[{i}]"))
        if not re.fullmatch(r"RSD-\d{3}", rule_id):
            raise CatalogError(f"{where}.covered_by[{i}].rule: '{rule_id}' is not a rule id")
        covered.append((str(_require(c, "what", f"{where}.covered_by[{i}]")), rule_id))
    scp_deny = {str(a): str(why) for a, why in (raw.get("scp_deny") or {}).items()}
    if not all(why.strip() for why in scp_deny.values()) or not all(":" in a for a in scp_deny):
        raise CatalogError(f"{where}.scp_deny: each entry is `service:Action: why` (the reason is required)")
    return GlobalConstructs(str(_require(raw, "checked", where)), types, tuple(props), tuple(covered), scp_deny)


def _parse_region_services(raw: dict, regions: frozenset[str]) -> tuple[dict[str, RegionServices], tuple[str, ...]]:
    where = "region_services"
    _require(raw, "checked", where)
    families = tuple(_require(raw, "gpu_families", where))
    services = {}
    for region, r in (_require(raw, "regions", where) or {}).items():
        rwhere = f"{where}.regions.{region}"
        if region not in regions:
            raise CatalogError(f"{rwhere}: not a region of any geography")
        azs = tuple(_require(r, "availability_zones", rwhere))
        if len(azs) < 2 or any(not az.startswith(region) for az in azs):
            raise CatalogError(f"{rwhere}.availability_zones: need 2+ zones of {region}, got {', '.join(azs)}")
        gpu = tuple(r.get("gpu_families") or ())
        unknown = [f for f in gpu if f not in families]
        if unknown:
            raise CatalogError(f"{rwhere}.gpu_families: {', '.join(unknown)} not in region_services.gpu_families")
        services[region] = RegionServices(region, azs, tuple(r.get("services") or ()), gpu)
    return services, families


def parse_catalog(raw: dict, path: Path = CATALOG_PATH) -> Catalog:
    if not isinstance(raw, dict) or raw.get("schema_version") != 1:
        raise CatalogError(f"{path}: expected schema_version: 1")
    options = _require(raw, "options", str(path))
    if tuple(options) != OPTIONS:
        raise CatalogError(f"options: expected exactly {', '.join(OPTIONS)}")
    partitions = _require(raw, "partitions", str(path))
    geographies = {}
    stacks = set()
    for code, g in _require(raw, "geographies", str(path)).items():
        where = f"geographies.{code}"
        regions = tuple(_require(g, "regions", where))
        home = _require(g, "home_region", where)
        if home not in regions:
            raise CatalogError(f"{where}.home_region: '{home}' is not one of its regions {', '.join(regions)}")
        azs = tuple(_require(g, "availability_zones", where))
        if len(azs) < 2 or any(not az.startswith(home) for az in azs):
            raise CatalogError(f"{where}.availability_zones: need 2+ zones of {home}, got {', '.join(azs)}")
        geo_options = tuple(_require(g, "options", where))
        unknown = [o for o in geo_options if o not in OPTIONS]
        if unknown or "zmo" not in geo_options:
            raise CatalogError(f"{where}.options: must include zmo and only {', '.join(OPTIONS)}")
        partition = _require(g, "partition", where)
        if partition not in partitions:
            raise CatalogError(f"{where}.partition: '{partition}' is not one of {', '.join(partitions)}")
        stack = _require(g, "stack", where)
        if stack in stacks:
            raise CatalogError(f"{where}.stack: '{stack}' is used twice")
        stacks.add(stack)
        geo = Geography(code, stack, g.get("name", code), partition, home, regions, azs, geo_options)
        for option in ("zm_plus", "federated"):
            if (option in geo_options) != (option in g):
                raise CatalogError(f"{where}: a '{option}' section is required exactly when options include it")
        cluster = g.get("data_cluster", "local")
        if cluster not in DATA_CLUSTERS:
            raise CatalogError(f"{where}.data_cluster: '{cluster}' is not one of {', '.join(DATA_CLUSTERS)}")
        geo = Geography(
            code, stack, geo.name, partition, home, regions, azs, geo_options,
            zm_plus=_parse_zm_plus(code, geo, g["zm_plus"]) if "zm_plus" in g else None,
            federated=_parse_federated(code, g["federated"]) if "federated" in g else None,
            data_cluster=cluster,
        )
        if geo.local_cluster and geo.federated:
            global_ = [k for k, c in geo.federated.connectors.items() if c.processing == "global"]
            if global_:
                raise CatalogError(f"{where}.federated.connectors: {', '.join(global_)} process(es) data globally, and "
                                   f"{code} is a local data cluster: list only in-geography connectors")
        geographies[code] = geo
    exemptions = _parse_exemptions(raw["region_deny_exemptions"]) if "region_deny_exemptions" in raw else None
    kubernetes = _parse_kubernetes(raw["kubernetes"]) if "kubernetes" in raw else None
    destinations = _parse_destinations(raw["destinations"]) if "destinations" in raw else None
    global_constructs = _parse_global_constructs(raw["global_constructs"]) if "global_constructs" in raw else None
    all_regions = frozenset(r for g in geographies.values() for r in g.regions)
    services, families = (_parse_region_services(raw["region_services"], all_regions)
                          if "region_services" in raw else ({}, ()))
    return Catalog(dict(options), dict(partitions), geographies, path, exemptions, kubernetes,
                   destinations, global_constructs, services, families)


# GPUs per instance type: one table, kept beside the prices that use it too (`pool_units` of
# stacks/cost_rules.yaml, with its source: Karpenter's generated instance-type reference).
GPU_TABLE_PATH = CATALOG_PATH.parent / "cost_rules.yaml"


# libyaml's parser when PyYAML was built with it (the wheels are), else PyYAML's own: same documents,
# about ten times faster. The catalog, its price files and stored YAML values are all read with it.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def gpus_per_instance(path: Path = GPU_TABLE_PATH) -> dict[str, int]:
    """GPUs of one instance, by instance type (types missing from the table are unknown)."""
    raw = yaml.load(Path(path).read_text(), Loader=YAML_LOADER) or {}
    return dict(((raw.get("pool_units") or {}).get("nvidia.com/gpu") or {}).get("per_instance") or {})


@functools.cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Load and validate the catalog; cached so every caller shares one parsed copy."""
    try:
        raw = yaml.load(Path(path).read_text(), Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
    return parse_catalog(raw, Path(path))


def declared_paths(connectors: tuple[Connector, ...], geography: str) -> list[dict]:
    """One declared data path per enabled connector host: the stack's `declaredDataPaths` output,
    and what the audits list when a source carries no such output."""
    return [
        {"connector": c.key, "provider": c.provider, "host": host, "processing": c.processing,
         "processing_geography": geography if c.processing == "in_geography" else "global"}
        for c in connectors for host in c.hosts
    ]
