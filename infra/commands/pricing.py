"""Pricing a snapshot: the rules of stacks/cost_rules.yaml applied with the prices of stacks/prices.yaml.

Every custom resource of a plan is either priced (a line per charged part, each with the basis it
was computed from), free (a type with no charge of its own), or *not priced* with the reason: no
rule for its type, no price for its region, an input the rule needs is unknown. Not priced is
never counted as 0; totals are labelled as covering the priced resources only.

A part with `usage:` in its rule is driven by the usage profile, not by the resource existing:
when its price is missing, that part is a *usage item open* (named with the part, the price and
why) and the resource's other parts are still priced, so the total stays known. A missing price
of any other part (hours, per month, per instance, counts) leaves the whole resource not priced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra.program.catalog import YAML_LOADER
from infra.program.errors import InputError
from infra.engine.model import Resource, Snapshot

ROOT = Path(__file__).resolve().parents[2]
RULES_PATH = ROOT / "stacks" / "cost_rules.yaml"
PRICES_PATH = ROOT / "stacks" / "prices.yaml"
USAGE_KEY = "ai-companion:costUsage"
PART_KEYS = ("part", "price", "by", "key", "share_of", "hours", "count", "usage", "retention", "scaling", "pool")
UNPRICED_CHARGE_KEYS = ("charge", "reason", "when")
# Workloads whose pods a node pool's capacity is launched for (their replicas x requested units).
POOL_WORKLOAD_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
VARIANT_KEYS = ("when", "stack_has", "parts", "note")
QUERY_KEYS = ("service", "by", "filters", "usagetype", "unit", "scale", "keep")
# Usage items: priced from the usage profile and the stack's configuration, not from a resource.
BEDROCK_TYPE = "usage:bedrock/tokens:Model"
BEDROCK_PRICES = (("input", "bedrock_input_mtok", "bedrock_input_mtok"),
                  ("output", "bedrock_output_mtok", "bedrock_output_mtok"))  # (part, price key, usage key)


class PriceDataError(InputError):
    """stacks/cost_rules.yaml or a price file is malformed (exit 2, like any bad input file)."""


class Unpriceable(Exception):
    """A resource cannot be priced; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Part:
    part: str
    price: str
    by: str | None = None  # input path selecting the entry of a keyed price (the instance type)
    key: str | None = None  # a fixed entry of a keyed price, for what the plan does not name
    share_of: str | None = None  # `price` is a fraction of this (keyed) price, read with the same by/key
    hours: bool = False
    count: str | None = None
    usage: str | None = None
    retention: str | None = None
    scaling: str | None = None
    pool: str | None = None  # a Karpenter NodePool sized by this extended resource (nvidia.com/gpu)


@dataclass(frozen=True)
class UnpricedCharge:
    charge: str
    reason: str
    when: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    parts: tuple[Part, ...]
    when: dict = field(default_factory=dict)
    stack_has: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Rules:
    usage: dict[str, float]  # usage key -> default
    hours_per_month: float
    retention_cap_months: float
    by_type: dict[str, tuple[Variant, ...]]
    free: frozenset[str]
    not_priced: dict[str, str]
    queries: dict[str, dict]
    pool_units: dict[str, dict[str, int]] = field(default_factory=dict)  # resource -> instance type -> units
    unpriced_charges: dict[str, tuple[UnpricedCharge, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionPrices:
    region: str
    checked: str
    source: str
    prices: dict
    unpublished: dict[str, str] = field(default_factory=dict)  # price key -> why AWS has no price here
    sources: dict[str, dict] = field(default_factory=dict)  # price key -> {checked, source}, beside the region's

    def cited(self, key: str) -> dict:
        """Where a price comes from and the date it was read."""
        return self.sources.get(key) or {"checked": self.checked, "source": self.source}


@dataclass(frozen=True)
class PriceBook:
    currency: str
    regions: dict[str, RegionPrices]


def _mapping(value, where: str, path: Path) -> dict:
    if not isinstance(value, dict):
        raise PriceDataError(f"{path}: {where}: expected a mapping")
    return value


def _unknown_keys(raw: dict, allowed: tuple[str, ...], where: str, path: Path) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise PriceDataError(f"{path}: {where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.load(Path(path).read_text(), Loader=YAML_LOADER)
    except OSError as exc:
        raise PriceDataError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PriceDataError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema_version") != 1:
        raise PriceDataError(f"{path}: expected a mapping with schema_version: 1")
    return raw


def parse_rules(raw: dict, path: Path = RULES_PATH) -> Rules:
    usage = {}
    for key, spec in _mapping(raw.get("usage"), "usage", path).items():
        default = _mapping(spec, f"usage.{key}", path).get("default")
        if isinstance(default, bool) or not isinstance(default, (int, float)) or default < 0:
            raise PriceDataError(f"{path}: usage.{key}.default: expected a number >= 0")
        if not spec.get("description"):
            raise PriceDataError(f"{path}: usage.{key}: needs a description (the profile is documented here)")
        usage[key] = float(default)
    queries = {}
    for key, query in _mapping(raw.get("queries"), "queries", path).items():
        _unknown_keys(_mapping(query, f"queries.{key}", path), QUERY_KEYS, f"queries.{key}", path)
        if not query.get("keep") and ("service" not in query or "unit" not in query):
            raise PriceDataError(f"{path}: queries.{key}: needs service and unit, or keep: <why it is not read>")
        queries[key] = query
    by_type = {}
    for type_, variants in _mapping(raw.get("rules"), "rules", path).items():
        if not isinstance(variants, list) or not variants:
            raise PriceDataError(f"{path}: rules.{type_}: expected a list of variants")
        parsed = []
        for i, variant in enumerate(variants):
            where = f"rules.{type_}[{i}]"
            _unknown_keys(_mapping(variant, where, path), VARIANT_KEYS, where, path)
            parts = []
            for part in variant.get("parts") or []:
                _unknown_keys(_mapping(part, f"{where}.parts", path), PART_KEYS, f"{where}.parts", path)
                if part.get("price") not in queries:
                    raise PriceDataError(f"{path}: {where}: price '{part.get('price')}' has no entry under queries "
                                         f"(every price must be refreshable); known: {', '.join(queries)}")
                if part.get("share_of") is not None and part["share_of"] not in queries:
                    raise PriceDataError(f"{path}: {where}: share_of '{part['share_of']}' has no entry under queries")
                if part.get("pool") is not None and part["pool"] not in raw.get("pool_units", {}):
                    raise PriceDataError(f"{path}: {where}: pool '{part['pool']}' has no table under pool_units")
                if part.get("usage") is not None and part["usage"] not in usage:
                    raise PriceDataError(f"{path}: {where}: usage '{part['usage']}' is not a usage key; "
                                         f"allowed: {', '.join(usage)}")
                parts.append(Part(**part))
            parsed.append(Variant(tuple(parts), dict(variant.get("when") or {}), variant.get("stack_has"),
                                  str(variant.get("note", ""))))
        by_type[type_] = tuple(parsed)
    free = frozenset(raw.get("free") or ())
    not_priced = dict(raw.get("not_priced") or {})
    overlap = sorted((free & set(by_type)) | (free & set(not_priced)) | (set(by_type) & set(not_priced)))
    if overlap:
        raise PriceDataError(f"{path}: type(s) listed twice among rules, free and not_priced: {', '.join(overlap)}")
    pool_units = {}
    for resource, spec in _mapping(raw.get("pool_units") or {}, "pool_units", path).items():
        units = _mapping(_mapping(spec, f"pool_units.{resource}", path).get("per_instance"),
                         f"pool_units.{resource}.per_instance", path)
        if not spec.get("source") or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in units.values()):
            raise PriceDataError(f"{path}: pool_units.{resource}: needs a source and whole numbers >= 1 per instance type")
        pool_units[resource] = dict(units)
    unpriced_charges = {}
    for type_, charges in _mapping(raw.get("unpriced_charges") or {}, "unpriced_charges", path).items():
        parsed_charges = []
        for i, charge in enumerate(charges if isinstance(charges, list) else [None]):
            where = f"unpriced_charges.{type_}[{i}]"
            _unknown_keys(_mapping(charge, where, path), UNPRICED_CHARGE_KEYS, where, path)
            if not charge.get("charge") or not charge.get("reason"):
                raise PriceDataError(f"{path}: {where}: needs charge and reason")
            parsed_charges.append(UnpricedCharge(charge["charge"], charge["reason"], dict(charge.get("when") or {})))
        unpriced_charges[type_] = tuple(parsed_charges)
    return Rules(usage, float(raw.get("hours_per_month", 730)),
                 float(raw.get("retention_cap_months", 12)), by_type, free, not_priced, queries,
                 pool_units, unpriced_charges)


def parse_prices(raw: dict, path: Path = PRICES_PATH) -> PriceBook:
    regions = {}
    for region, entry in _mapping(raw.get("regions"), "regions", path).items():
        entry = _mapping(entry, f"regions.{region}", path)
        if "checked" not in entry:
            raise PriceDataError(f"{path}: regions.{region}: missing 'checked' (the date the prices were read)")
        prices = _mapping(entry.get("prices") or {}, f"regions.{region}.prices", path)
        for key, value in prices.items():
            values = value.values() if isinstance(value, dict) else [value]
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
                raise PriceDataError(f"{path}: regions.{region}.prices.{key}: expected prices >= 0")
        sources = _mapping(entry.get("sources") or {}, f"regions.{region}.sources", path)
        for key, cited in sources.items():
            if not isinstance(cited, dict) or not cited.get("checked") or not cited.get("source"):
                raise PriceDataError(f"{path}: regions.{region}.sources.{key}: needs checked (a date) and source")
        unpublished = _mapping(entry.get("unpublished") or {}, f"regions.{region}.unpublished", path)
        both = sorted(set(unpublished) & set(prices))
        if both:
            raise PriceDataError(f"{path}: regions.{region}: {', '.join(both)} both priced and unpublished")
        regions[region] = RegionPrices(region, str(entry["checked"]), str(entry.get("source", "")), prices,
                                       {str(k): str(v) for k, v in unpublished.items()},
                                       {str(k): {"checked": str(v["checked"]), "source": str(v["source"])}
                                        for k, v in sources.items()})
    return PriceBook(str(raw.get("currency", "USD")), regions)


@functools.cache
def load_rules(path: Path = RULES_PATH) -> Rules:
    return parse_rules(_read_yaml(path), Path(path))


def load_prices(path: Path = PRICES_PATH) -> PriceBook:
    return parse_prices(_read_yaml(path), Path(path))


def parse_usage(raw: str | None, rules: Rules, where: str) -> dict[str, float]:
    """The stack's usage profile: the defaults overlaid with `ai-companion:costUsage` (a JSON
    string, as Pulumi stores structured config). Unknown keys and bad numbers are input errors."""
    usage = dict(rules.usage)
    if raw is None:
        return usage
    try:
        given = json.loads(raw)
    except ValueError:
        given = None
    if not isinstance(given, dict):
        raise InputError(f"{where} {USAGE_KEY}: expected a mapping of usage keys to numbers; "
                         f"allowed keys: {', '.join(rules.usage)}")
    for key, value in given.items():
        if key not in rules.usage:
            raise InputError(f"{where} {USAGE_KEY}: unknown key '{key}'; allowed: {', '.join(rules.usage)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InputError(f"{where} {USAGE_KEY}.{key}: '{value}' is not a number >= 0")
        usage[key] = float(value)
    return usage


@dataclass
class Line:
    part: str
    basis: str
    unit_price: float
    monthly: float
    at_min: float
    at_max: float
    prices: tuple[str, ...] = ()  # the price keys it was read from (their sources are in the price file)


@dataclass
class PricedResource:
    urn: str
    type: str
    name: str
    lines: list[Line]
    note: str = ""
    nodes: tuple[int, int, int] | None = None  # (min, desired, max) for scalable resources
    instance_type: str | None = None
    usage: bool = False  # a usage item (Bedrock tokens), not a resource of the plan

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def at_min(self) -> float:
        return sum(line.at_min for line in self.lines)

    @property
    def at_max(self) -> float:
        return sum(line.at_max for line in self.lines)

    @property
    def gpu(self) -> bool:
        # Accelerated families (g*, p*), as the stack config defines a GPU instance type.
        return self.nodes is not None and (self.instance_type or "")[:1] in ("g", "p")


@dataclass(frozen=True)
class Unpriced:
    urn: str
    type: str
    name: str
    reason: str
    usage: bool = False  # a usage-driven charge (tokens, text units): leaves the resource total known
    inputs: str = ""  # a digest of the resource's inputs: an unpriced item that did not change between two plans
    part: str = ""  # the usage part left open beside the resource's priced parts; "" = the whole item


def unpriced(r: Resource, reason: str, usage: bool = False, part: str = "") -> Unpriced:
    digest = hashlib.sha256(json.dumps(r.props, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Unpriced(r.urn, r.type, r.name, reason, usage, digest, part)


@dataclass
class StackCost:
    stack: str
    region: str
    currency: str
    checked: str | None
    usage: dict[str, float]
    priced: list[PricedResource]
    not_priced: list[Unpriced]
    free: int
    assumptions: list[str] = field(default_factory=list)  # what the plan priced assumes (shown)
    warnings: list[str] = field(default_factory=list)  # why a priced figure is not what it seems

    @property
    def monthly(self) -> float:
        """The priced part of the month: the total only when `complete`, else a lower bound."""
        return sum(r.monthly for r in self.priced)

    @property
    def open_resources(self) -> list[Unpriced]:
        return [u for u in self.not_priced if not u.usage]

    @property
    def open_usage(self) -> list[Unpriced]:
        return [u for u in self.not_priced if u.usage]

    @property
    def complete(self) -> bool:
        """Every resource-driven item is priced: the monthly total is known."""
        return not self.open_resources

    @property
    def total(self) -> float | None:
        return self.monthly if self.complete else None

    @property
    def total_at_max(self) -> float | None:
        return self.at_max if self.complete else None

    @property
    def unknown_reason(self) -> str | None:
        if self.complete:
            return None
        items = self.open_resources
        return (f"{len(items)} resource-driven item(s) not priced: "
                + "; ".join(f"{u.name} ({u.type}): {u.reason}" for u in items))

    @property
    def at_max(self) -> float:
        return sum(r.at_max for r in self.priced)

    @property
    def gpu_pools(self) -> list[PricedResource]:
        return [r for r in self.priced if r.gpu]


PATH_STEP = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


def lookup(props: dict, path: str):
    """The value at a dotted input path, or None. Steps: a key (`scalingConfig.maxSize`), a list
    index (`instanceTypes.0`), `[key]` for a key with dots in it (`spec.limits[nvidia.com/gpu]`)
    and `[field=value]` for the first list item whose field has that value
    (`requirements[key=node.kubernetes.io/instance-type].values.0`)."""
    value = props
    for bracket, plain in PATH_STEP.findall(path):
        field_, eq, wanted = bracket.partition("=")
        if eq and isinstance(value, list):
            value = next((i for i in value if isinstance(i, dict) and str(i.get(field_)) == wanted), None)
        elif isinstance(value, dict):
            value = value.get(bracket or plain)
        elif isinstance(value, list) and plain.isdigit() and int(plain) < len(value):
            value = value[int(plain)]
        else:
            return None
    return value


def _matches(variant: Variant | UnpricedCharge, props: dict, stack_types: set[str]) -> bool:
    if getattr(variant, "stack_has", None) and variant.stack_has not in stack_types:
        return False
    for path, expected in variant.when.items():
        value = lookup(props, path)
        if value not in (expected if isinstance(expected, list) else [expected]):
            return False
    return True


def _number(value, what: str) -> float:
    if isinstance(value, list):
        return float(len(value))
    if isinstance(value, str):  # Kubernetes quantities of whole units arrive as strings ("2")
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unpriceable(f"{what} is unknown")
    return float(value)


@dataclass(frozen=True)
class PoolDemand:
    instance: str
    per_node: int  # units of the pool's resource per instance
    limit: float  # the pool's spec.limits of that resource
    requested: float  # units the workloads scheduled on the pool request

    @property
    def nodes(self) -> tuple[float, float, float]:
        most = math.floor(self.limit / self.per_node)
        return 0.0, float(min(math.ceil(self.requested / self.per_node), most)), float(most)


def _pool_demand(part: Part, props: dict, rules: Rules, workloads: list[Resource]) -> PoolDemand:
    """A Karpenter NodePool sized by the extended resource `part.pool`: min 0 nodes (nodes exist
    only for pending pods), max = the pool's limit of that resource over the units per instance,
    desired = the units the stack's workloads request on the pool (replicas x container limits,
    pods whose nodeSelector the pool's labels satisfy), in whole nodes, at most max."""
    instance = lookup(props, part.by) if part.by else None
    per_node = rules.pool_units[part.pool].get(instance)
    if per_node is None:
        raise Unpriceable(f"no {part.pool} count for {instance} (cost_rules.yaml pool_units)")
    limit = lookup(props, f"spec.limits[{part.pool}]")
    if limit is None:
        raise Unpriceable(f"spec.limits[{part.pool}] is not set: the pool has no maximum")
    labels = lookup(props, "spec.template.metadata.labels") or {}
    requested = 0.0
    for w in workloads:
        pod = lookup(w.props, "spec.template.spec") or {}
        selector = pod.get("nodeSelector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        units = sum(_number(lookup(c, f"resources.limits[{part.pool}]") or 0, part.pool)
                    for c in pod.get("containers") or [])
        replicas = lookup(w.props, "spec.replicas")
        requested += (1 if replicas is None else _number(replicas, "spec.replicas")) * units
    return PoolDemand(str(instance), per_node, _number(limit, f"spec.limits[{part.pool}]"), requested)


def _pool_nodes(part: Part, props: dict, rules: Rules, workloads: list[Resource]) -> tuple[float, float, float]:
    return _pool_demand(part, props, rules, workloads).nodes


def pool_warning(name: str, pool: str, demand: PoolDemand) -> str | None:
    """Why a pool's price does not follow its instance type or its workloads, or None."""
    most = demand.nodes[2]
    if most == 0:
        return (f"{name}: its {pool} limit ({num(demand.limit)}) is less than one {demand.instance} "
                f"({demand.per_node} per instance): no node can start, so the pool costs $0 and its "
                "workloads stay pending")
    if math.ceil(demand.requested / demand.per_node) > most:
        return (f"{name}: workloads request {num(demand.requested)} {pool}, more than its limit allows "
                f"({num(most)} x {demand.instance}): priced at the limit; the rest stays pending")
    return None


def price_of(book: PriceBook, region: str, price: str, key: str | None = None, keyed: bool = False) -> float:
    """One unit price; Unpriceable, with the reason, when the price file has none (or says AWS
    publishes none in that region)."""
    table = book.regions.get(region)
    if table is None:
        raise Unpriceable(f"no {price} price for {region} (none found offline)")
    for item in ([f"{price}[{key}]"] if keyed else []) + [price]:
        if item in table.unpublished:
            raise Unpriceable(f"{item}: not published for {region} ({table.unpublished[item]})")
    value = table.prices.get(price)
    if value is None:
        raise Unpriceable(f"no {price} price for {region} (none found offline)")
    if keyed:
        if not isinstance(value, dict) or value.get(key) is None:
            raise Unpriceable(f"no {price} price for {key} in {region} (none found offline)")
        value = value[key]
    return float(value)


def _unit_price(book: PriceBook, region: str, part: Part, props: dict) -> tuple[float, str]:
    """The part's unit price and how it was read (`0.12 x $1.861` for a share of another price)."""
    keyed = part.by is not None or part.key is not None
    key = part.key if part.key is not None else lookup(props, part.by) if part.by else None
    if part.share_of:
        share, of = price_of(book, region, part.price), price_of(book, region, part.share_of, key, keyed)
        return share * of, f"{share:g} x ${of:g}"
    price = price_of(book, region, part.price, key, keyed)
    return price, f"${price:g}"


def num(value: float) -> str:
    """A quantity for people: 2000000 -> 2,000,000; 0.5 -> 0.5."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.4g}"


def _price_part(part: Part, props: dict, unit: tuple[float, str], share: int, usage: dict, rules: Rules,
                workloads: list[Resource] = ()) -> Line:
    unit_price, unit_basis = unit
    factor, basis = 1.0, []
    if part.hours:
        factor *= rules.hours_per_month
        basis.append(f"{num(rules.hours_per_month)} h")
    if part.count:
        n = _number(lookup(props, part.count), part.count)
        factor *= n
        basis.append(f"{num(n)} {part.count}")
    if part.usage:
        volume = usage[part.usage] / share
        factor *= volume
        basis.append(f"{part.usage} {num(usage[part.usage])}" + (f"/{share}" if share > 1 else ""))
    if part.retention:
        days = lookup(props, part.retention)
        months = rules.retention_cap_months if not days else min(_number(days, part.retention) / (365 / 12),
                                                                 rules.retention_cap_months)
        factor *= months
        basis.append(f"{months:.3g} months kept")
    nodes = (1.0, 1.0, 1.0)
    if part.scaling:
        scaling = lookup(props, part.scaling) or {}
        nodes = tuple(_number(scaling.get(k) if isinstance(scaling, dict) else None, f"{part.scaling}.{k}")
                      for k in ("minSize", "desiredSize", "maxSize"))
        basis.append(f"{num(nodes[1])} nodes")
    if part.pool:
        nodes = _pool_nodes(part, props, rules, workloads)
        basis.append(f"{num(nodes[1])} nodes ({part.pool} requested; max {num(nodes[2])})")
    if part.key:
        basis.append(part.key)
    basis.append(unit_basis)
    monthly = unit_price * factor
    return Line(part.part, " x ".join(basis), unit_price, monthly * nodes[1], monthly * nodes[0], monthly * nodes[2],
                (part.price,) + ((part.share_of,) if part.share_of else ()))


def _price_parts(r: Resource, variant: Variant, region: str, book: PriceBook, share: int, usage: dict,
                 rules: Rules, workloads: list[Resource]) -> tuple[list[Line], list[Unpriced]]:
    """The lines of the parts priced, and the usage parts (`usage:` in the rule) whose price is
    missing, as usage items open. A missing price of any other part raises Unpriceable: the
    resource's charge for existing is unknown."""
    lines, open_parts = [], []
    for p in variant.parts:
        try:
            unit = _unit_price(book, region, p, r.props)
        except Unpriceable as exc:
            if not p.usage:
                raise
            open_parts.append(unpriced(r, f"{p.part} (usage {p.usage}): {exc}", usage=True, part=p.part))
            continue
        lines.append(_price_part(p, r.props, unit, share, usage, rules, workloads))
    return lines, open_parts


def price_tokens(models: tuple[str, ...], region: str, usage: dict[str, float],
                 book: PriceBook) -> tuple[list[PricedResource], list[Unpriced]]:
    """Bedrock tokens, a usage item per configured model: the profile's monthly input and output
    tokens (millions) spread evenly over the models, at the price of the stack's home region: the
    source region of its calls, whatever region a geographic profile routes them to (assumed to
    be the billed rate; not verified against the Bedrock pricing page offline)."""
    priced, open_tokens = [], []
    for model in models:
        urn = f"usage:bedrock:{model}"
        try:
            lines = []
            for part, price, key in BEDROCK_PRICES:
                unit = price_of(book, region, price, model, keyed=True)
                volume = usage[key] / len(models)
                basis = f"{key} {num(usage[key])}" + (f"/{len(models)}" if len(models) > 1 else "") + f" x ${unit:g}"
                lines.append(Line(f"{part} tokens", basis, unit, volume * unit, volume * unit, volume * unit, (price,)))
        except Unpriceable as exc:
            open_tokens.append(Unpriced(urn, BEDROCK_TYPE, model, f"Bedrock tokens: {exc}", usage=True))
            continue
        priced.append(PricedResource(urn, BEDROCK_TYPE, model, lines, "usage item: tokens from the usage profile",
                                     usage=True))
    return priced, open_tokens


def price_snapshot(snapshot: Snapshot, region: str, usage: dict[str, float], rules: Rules,
                   book: PriceBook, stack: str | None = None, models: tuple[str, ...] = ()) -> StackCost:
    """Price every custom resource of `snapshot`, and the Bedrock tokens of the configured
    `models`. Kubernetes objects are billed in the cluster's region, which is the stack's
    `region`; any other resource without a region is not priced."""
    resources = snapshot.custom_resources()
    stack_types = {r.type for r in resources}
    workloads = [r for r in resources if r.type in POOL_WORKLOAD_TYPES]
    chosen: dict[str, tuple[Resource, Variant | None]] = {}
    for r in resources:
        variants = rules.by_type.get(r.type, ())
        chosen[r.urn] = (r, next((v for v in variants if _matches(v, r.props, stack_types)), None))
    shares: dict[int, int] = {}
    for _, variant in chosen.values():
        if variant is not None:
            shares[id(variant)] = shares.get(id(variant), 0) + 1

    priced, open_items, free, warnings = [], [], 0, []
    for r, variant in chosen.values():
        if r.type in rules.free:
            free += 1
            continue
        if r.type in rules.not_priced:
            open_items.append(unpriced(r, rules.not_priced[r.type], usage=True))
            continue
        if r.type not in rules.by_type:
            open_items.append(unpriced(r, "no pricing rule for this type"))
            continue
        if variant is None:
            open_items.append(unpriced(r, "no pricing rule matches its inputs"))
            continue
        where = r.region or (region if r.type.startswith("kubernetes:") else None)
        try:
            if where is None:
                raise Unpriceable("not placed in a region")
            lines, open_parts = _price_parts(r, variant, where, book, shares[id(variant)], usage, rules, workloads)
        except Unpriceable as exc:
            open_items.append(unpriced(r, str(exc)))
            continue
        open_items += open_parts
        if variant.parts and not lines:
            continue  # every part is a usage item open: nothing of it is priced
        scaling = next((p.scaling for p in variant.parts if p.scaling), None)
        pool = next((p for p in variant.parts if p.pool), None)
        nodes = None
        if scaling:
            s = lookup(r.props, scaling)
            nodes = (int(s["minSize"]), int(s["desiredSize"]), int(s["maxSize"]))
        elif pool:
            demand = _pool_demand(pool, r.props, rules, workloads)
            nodes = tuple(int(n) for n in demand.nodes)
            warnings += [w for w in [pool_warning(r.name, pool.pool, demand)] if w]
        # Charges the resource brings that the plan cannot price: listed beside its priced parts.
        open_items += [unpriced(r, f"{c.charge}: {c.reason}")
                     for c in rules.unpriced_charges.get(r.type, ()) if _matches(c, r.props, stack_types)]
        instance = next((lookup(r.props, p.by) for p in variant.parts if p.by), None)
        priced.append(PricedResource(r.urn, r.type, r.name, lines, variant.note, nodes,
                                     instance if isinstance(instance, str) else None))
    tokens, open_tokens = price_tokens(models, region, usage, book)
    priced += tokens
    open_items += open_tokens
    table = book.regions.get(region)
    priced.sort(key=lambda p: (-p.monthly, p.type, p.name))
    open_items.sort(key=lambda u: (u.type, u.name))
    return StackCost(stack or snapshot.stack or "", region, book.currency, table.checked if table else None,
                     usage, priced, open_items, free, warnings=warnings)


@dataclass(frozen=True)
class Mover:
    type: str
    name: str
    change: str  # added | removed | changed
    monthly: float  # head - base
    at_max: float


@dataclass(frozen=True)
class Delta:
    base: StackCost | None
    monthly: float
    at_max: float
    movers: list[Mover]
    newly_unpriced: list[Unpriced]
    head: StackCost | None = None

    @property
    def exact(self) -> bool:
        """The change is exact: both totals are known, or what is not priced is the same on both
        sides (the same resources with the same inputs), so it cancels out."""
        if self.base is None:
            return False
        def key(cost: StackCost) -> set:
            return {(u.urn, u.reason, u.inputs) for u in cost.open_resources}
        return key(self.head) == key(self.base)


def compare(head: StackCost, base: StackCost | None, top: int = 5) -> Delta:
    """Head minus base, per stack and per resource (by URN); movers sorted by the larger change."""
    if base is None:
        return Delta(None, head.monthly, head.at_max, [], [], head)
    before = {r.urn: r for r in base.priced}
    after = {r.urn: r for r in head.priced}
    movers = []
    for urn in sorted(before.keys() | after.keys()):
        a, b = after.get(urn), before.get(urn)
        d_monthly = (a.monthly if a else 0.0) - (b.monthly if b else 0.0)
        d_max = (a.at_max if a else 0.0) - (b.at_max if b else 0.0)
        if abs(d_monthly) < 0.005 and abs(d_max) < 0.005:
            continue
        some = a or b
        movers.append(Mover(some.type, some.name, "added" if b is None else "removed" if a is None else "changed",
                            d_monthly, d_max))
    movers.sort(key=lambda m: (-max(abs(m.monthly), abs(m.at_max)), m.type, m.name))
    # By item and part: a usage part newly open on a resource already listed still shows.
    base_unpriced = {(u.urn, u.part) for u in base.not_priced}
    return Delta(base, head.monthly - base.monthly, head.at_max - base.at_max, movers[:top],
                 [u for u in head.not_priced if (u.urn, u.part) not in base_unpriced], head)
