"""The rule engine: `Rule`, `Context`, `Report` and `evaluate`.

One pass over the snapshot. Rules are dispatched by type token (a per-type table built once) and
grouped by their prescreen *gates* (foreign region token? secret? Bedrock mention? policy
document? destination?). A gate is answered from the source's raw JSON (a few whole-document
C-speed substring searches, when the loader indexed it: `loaders.read_export`) or from the
resource's own prescreen text (one `json.dumps`); the destination gate, whose needles are too
many for whole-document searches, by one pass over the resource's keys and string values. Only resources a gate lets through are walked in Python, so most
resources of a clean stack never are. Gates may say "maybe" wrongly, never "no" wrongly.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from infra.program.catalog import BedrockModel, Catalog, Connector, Geography, declared_paths, load_catalog
from infra.engine.model import (AWS_PROVIDER_TYPE, STACK_TYPE, Finding, Resource, Secret, Snapshot,
                         is_provider_type)
from infra.engine.rules import patterns as P

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
FEDERATED_COMPONENT = "ai-companion:federated:EgressConnectors"
EGRESS_TAG = ("ai-companion:path", "federated-egress")


@dataclass(frozen=True)
class Rule:
    """One check, checkov-style. `check(resource, scope)` yields one message per violation."""

    id: str
    name: str
    title: str
    severity: str
    rationale: str
    remediation: str
    category: str
    check: Callable[[Resource, "Scope"], Iterable[str]] = field(repr=False, compare=False)
    # Type tokens this rule looks at; a token ending in '/' or ':' is a prefix, "*" is every
    # non-provider type. Empty means "*". Providers are checked only by rules that list them.
    types: tuple[str, ...] = ()
    # Sources the rule applies to (plan, export, checkpoint, crossguard, live); empty: all.
    sources: tuple[str, ...] = ()
    # Needs other resources of the stack (CrossGuard runs it in the stack policy, not per resource).
    graph: bool = False
    # Cheap prescreens (Facts.gate names): the check runs only when one of them says "maybe".
    gates: tuple[str, ...] = ()
    # Stack-level applicability (e.g. only stacks without zm_plus); None: always.
    when: Callable[["Context"], bool] | None = field(default=None, repr=False, compare=False)
    # Once per whole-stack evaluation: `stack_check(scope)` yields (type, message) for what the
    # stack lacks (a required resource). Reported on the stack's URN. Implies graph.
    stack_check: Callable[["Scope"], Iterable[tuple[str, str]]] | None = field(
        default=None, repr=False, compare=False)
    # A value the rule cannot read (not known, secret, unresolvable) is itself a finding. CrossGuard
    # defers such findings on values that are merely unknown during preview (policy/policies.py).
    fails_closed: bool = False
    # Reference controls this rule implements, fully or partly: "CT:<id>" (AWS Control Tower) or
    # "Prowler:<check>", each optionally suffixed " (partly)". docs/rules.md's coverage table is
    # generated from these.
    controls: tuple[str, ...] = ()
    # The stack-file key whose value decides the verdict (`ai-companion:options`): a review output
    # points a finding at that key's line in Pulumi.<stack>.yaml, where a change would be made.
    stack_key: str = ""
    # Why the rule refuses a whole construct by design, whatever it connects to (any VPC peering):
    # such a finding is a stance, not a proven out-of-geography path. docs/rules.md states it.
    stance: str = ""

    def __post_init__(self):
        assert self.severity in SEVERITIES, self.severity

    def matches(self, type_: str) -> bool:
        if not self.types:
            return not is_provider_type(type_)
        return any(type_ == t or (t == "*" and not is_provider_type(type_))
                   or (t[-1] in "/:" and type_.startswith(t)) for t in self.types)


@dataclass(frozen=True)
class Context:
    """What a stack is allowed: its geography and options, from the stack config."""

    geography: Geography
    options: tuple[str, ...]
    allow_global_processing: bool = False
    connectors: tuple[Connector, ...] = ()
    bedrock_models: tuple[BedrockModel, ...] = ()
    stack: str | None = None
    catalog: Catalog | None = None

    @classmethod
    def from_config(cfg_cls, cfg) -> "Context":
        return cfg_cls(geography=cfg.geography, options=tuple(cfg.options),
                       allow_global_processing=cfg.allow_global_processing,
                       connectors=tuple(cfg.connectors), bedrock_models=tuple(cfg.bedrock_models),
                       stack=cfg.stack)

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(self.geography.regions)

    def has(self, option: str) -> bool:
        return option in self.options

    def get_catalog(self) -> Catalog:
        return self.catalog or load_catalog()


@dataclass
class Report:
    stack: str | None
    geography: str
    resources_checked: int
    findings: list[Finding]
    unplaced: list[dict]
    declared_paths: list[dict]
    notes: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    source: str = ""
    not_checked: list[dict] = field(default_factory=list)  # live scan: {service, region, reason}
    account: str = ""  # the AWS account judged (live: the caller's; export: the stack's accountId)
    home_region: str = ""  # the stack's home region (where Security Hub findings are imported)
    shard: str = ""  # "K/N" when this report covers shard K of N of the scan's units (`residency merge`)
    suppressed: list = field(default_factory=list)  # Findings accepted by a suppression (never dropped)
    suppressions: list[dict] = field(default_factory=list)  # each suppression entry with its use (suppress.py)

    @property
    def incomplete(self) -> bool:
        return bool(self.not_checked)


GATES = ("foreign", "secret", "bedrock", "policy", "destination", "region_field")
_DIRECTION_LITERALS = ("east-", "west-", "north-", "south-", "central-")  # one is in every region code
_DIRECTION_RE = r"-(?:east|west|north|south|central)"  # at least one in every region token (patterns.REGION)
# Bedrock is reached only through things that say so (bedrock:* actions, arn:aws:bedrock ARNs,
# bedrock-runtime endpoints, aws:bedrock* types, BEDROCK_* variables) or through a model id of
# the catalog's vendor. Every source uses the same needles, so the rules mean the same everywhere.
_BEDROCK_NEEDLES = ("edrock", "EDROCK", "anthropic.")
_RAW_NEEDLES = {"secret": (P.SECRET_SIG_RAW,), "policy": ("Statement",), "bedrock": _BEDROCK_NEEDLES}
_BEDROCK_TYPES = ("aws:bedrock/", "aws:bedrockmodel/", "aws:bedrockagent/", "aws:bedrockagentcore/")


# Gates answered per resource even when the source is indexed: their needles are too many (or
# too common) for whole-document searches to pay off.
RESOURCE_GATES = frozenset({"destination"})
_POLICY_KEYS = frozenset({"Version", "Id", "Statement"})


def destination_hint(value: Any, suffixes: tuple[str, ...], skip: frozenset, parse, memo: dict,
                     names: Callable[[str], tuple], named: Callable[[str], bool], key: str = "") -> bool:
    """Can this dict or list name a destination: a string in which `names` (the destination
    rule's own reader, destinations.reader) finds one that its property (`named`: a property
    that only names things) does not rule out, or a host-shaped key (`memo` caches the verdict
    per tuple of dict keys: resources of one type repeat the same shapes)? Keys in `skip`
    (metadata subtrees the rule ignores) are not entered. JSON documents stored as strings are
    read through `parse` (the resource's shared memo)."""
    if isinstance(value, dict):
        keys = tuple(value)
        hit = memo.get(keys)
        if hit is None:
            hit = memo[keys] = any(isinstance(k, str) and k.lower().endswith(suffixes) for k in keys)
        if hit:
            return True
        items = [(k, v) for k, v in value.items() if k not in skip]
    else:
        items = [(key, v) for v in value]
    for k, v in items:
        if isinstance(v, str):
            if ("." not in v and ":" not in v) or v.startswith("arn:"):
                continue  # no host, address or URI can be spelt without a dot or a colon
            doc = parse(v) if v[0] in "{[" else None
            if doc is None:
                found = names(v)
                # A bare name under a naming property is no destination; one inside a YAML
                # document (`where`) is judged by its own key there.
                if found and (not isinstance(k, str) or not named(k) or any(w or not bare for w, _, bare in found)):
                    return True
                continue
            if isinstance(doc, dict) and doc.keys() <= _POLICY_KEYS:
                continue  # an IAM policy: hosts can only sit in Principal/Condition, which the rule skips
            v = doc
        if isinstance(v, (dict, list)) and destination_hint(v, suffixes, skip, parse, memo, names, named,
                                                            k if isinstance(k, str) else key):
            return True
    return False


class Facts:
    """Per-resource facts, computed on first use and at most once."""

    __slots__ = ("res", "scope", "_props", "_text", "_foreign", "_refs", "_gates", "_raw", "_parsed",
                 "_walked", "_docs")

    def __init__(self, res: Resource, scope: "Scope"):
        self.res, self.scope = res, scope
        self._props = self._text = self._foreign = self._refs = self._walked = self._docs = None
        self._gates: dict[str, bool] = {}
        self._parsed: dict[str, Any] = {}
        self._raw = scope.raw_position(res)  # index into the source's raw text, or None

    def parse(self, value: str) -> Any:
        """A JSON document stored as a string, parsed at most once per resource (None: not one)."""
        try:
            return self._parsed[value]
        except KeyError:
            doc = self._parsed[value] = P.parse_document(value)
            return doc

    @property
    def walked(self) -> list[tuple[str, Any, bool]]:
        """(path, leaf, denied) of every leaf (patterns.walk): the one walk all rules share."""
        if self._walked is None:
            self._walked = P.walk(self.props, self.parse)
        return self._walked

    @property
    def policy_docs(self) -> list[tuple[str, dict]]:
        """(field, document) of the resource's policy documents, each parsed once: shared by the
        Bedrock/IAM rules and the public-exposure rules."""
        if self._docs is None:
            self._docs = list(P.policy_fields(self.props, self.parse))
        return self._docs

    @property
    def scan_text(self) -> str:
        """Text to prescreen with a regex: the resource's raw span in the source when indexed
        (no serialisation needed), else its prescreen text. Holds every property string (JSON
        strings escaped), so a pattern absent here is absent from the properties."""
        return self.scope.raw.text_of(self._raw) if self._raw is not None else self.text

    @property
    def props(self) -> dict:
        if self._props is None:
            self._props = self.res.props
        return self._props

    @property
    def text(self) -> str:
        """The resource's properties as one JSON string: a cheap prescreen for every rule."""
        if self._text is None:
            self._text = json.dumps(self.props, default=P.json_default)
        return self._text

    @property
    def has_secret(self) -> bool:
        return self.gate("secret")

    def gate(self, name: str) -> bool:
        """Cheap yes/no: can this resource hold anything the gated rules look for?

        From the source's raw text (whole-document C-speed searches) when the loader indexed
        it, else from this resource's own prescreen text. Never a false "no"."""
        found = self._gates.get(name)
        if found is None:
            if name == "destination":
                dest = self.scope.ctx.get_catalog().destinations
                found = dest is not None and destination_hint(
                    self.props, dest.host_properties, self.scope.destination_skip, self.parse, self.scope.key_memo,
                    self.scope.destination_names, self.scope.names_only)
            elif self._raw is not None:
                found = self._raw in self.scope.raw_hits(name)
            elif name == "region_field":
                found = bool(self.scope.snapshot.unknown.get(self.res.urn)) or next(
                    P.region_field_suspects(self.text), None) is not None
            elif name == "foreign":
                found = bool(self.foreign_tokens)
            elif name == "secret":
                found = P.SECRET_TEXT in self.text
            elif name == "bedrock":
                found = any(n in self.text for n in _BEDROCK_NEEDLES)
            else:
                found = "Statement" in self.text
            if name == "bedrock" and self.res.type.startswith(_BEDROCK_TYPES):
                found = True
            self._gates[name] = found
        return found

    @property
    def foreign_tokens(self) -> set[str]:
        """Region-looking tokens anywhere in the properties that are outside the geography."""
        if self._foreign is None:
            if self._raw is not None and not self.gate("foreign"):
                self._foreign = set()
            else:
                source = self.scan_text
                # C-speed prescreen: with the geography's regions masked, is any direction
                # literal (one is in every region code) left? Most resources stop here.
                masked = source
                for region in self.scope.regions:
                    if region in masked:
                        masked = masked.replace(region, "#")
                if any(lit in masked for lit in _DIRECTION_LITERALS):
                    self._foreign = set(P.REGION_TOKEN_RE.findall(source)) - self.scope.regions
                else:
                    self._foreign = set()
        return self._foreign

    @property
    def foreign_refs(self) -> list[tuple[str, str, str, str]]:
        """(kind, region, path, value) for regional references outside the geography.

        Deny statements of policy documents are skipped: an explicit Deny restricts, it opens
        no path (BedrockAccess denies other regions on purpose)."""
        if self._refs is None:
            refs = []
            if self.foreign_tokens:
                regions = self.scope.regions
                for path, value, denied in self.walked:
                    if denied or not isinstance(value, str):
                        continue
                    if path == "region" and value == self.res.region:
                        continue  # the placement itself: judged by the placement rules
                    for kind, region in P.regional_references(path, value):
                        if region not in regions:
                            refs.append((kind, region, path, value))
            self._refs = refs
        return self._refs


class Scope:
    """One evaluation: the context, the snapshot and lazily built indexes over it."""

    def __init__(self, snapshot: Snapshot, ctx: Context, complete: bool = True, raw=None):
        self.snapshot, self.ctx, self.complete = snapshot, ctx, complete
        self.regions = ctx.regions
        self.by_urn = {r.urn: r for r in snapshot.resources}
        self.raw = raw  # loaders.RawIndex of the source document, if any
        self._raw_pos: dict[str, int | None] = {}
        for i, u in enumerate(raw.urns if raw is not None else ()):
            # A URN that occurs twice cannot be tied to one span: those resources use their own text.
            self._raw_pos[u] = None if u in self._raw_pos else i
        self._raw_hits: dict[str, set[int]] = {}
        self._escaped: set[int] | None = None
        self._facts: dict[str, Facts] = {}
        self._ancestors: dict[str, frozenset[str]] = {}
        self._by_id: dict[str, list[Resource]] | None = None
        self.key_memo: dict[tuple, bool] = {}  # destination_hint's verdict per tuple of dict keys
        self.key_memo_regions: dict[tuple, bool] = {}  # unreadable_region_fields' per tuple of dict keys
        dest = ctx.get_catalog().destinations
        self.destination_skip = frozenset(dest.of_kind("subtree")) if dest else frozenset()
        if dest is not None:
            from infra.engine.rules.destinations import names_only, reader  # late: they import this module
            self.destination_names = reader(dest)
            self.names_only = functools.lru_cache(maxsize=4096)(lambda key: names_only(key.lower(), dest))

    @property
    def stack_urn(self) -> str:
        """Where stack-level findings are reported: the Stack resource, else `stack:<name>`."""
        for r in self.snapshot.resources:
            if r.type == STACK_TYPE:
                return r.urn
        return f"stack:{self.snapshot.stack or self.ctx.stack or ''}"

    # -- raw-text prescreen ------------------------------------------------------------------
    def _resources_containing(self, text, needles) -> set[int]:
        """Indexes of resources whose raw span contains any needle (one find per hit resource)."""
        from bisect import bisect_right

        starts, ends = self.raw.starts, self.raw.ends
        if isinstance(text, bytes):
            needles = [n.encode() for n in needles]
        hits: set[int] = set()
        for needle in needles:
            pos = text.find(needle)
            while pos != -1:
                i = bisect_right(starts, pos) - 1
                if i >= 0 and pos < ends[i]:
                    hits.add(i)
                    pos = text.find(needle, ends[i])
                else:
                    pos = text.find(needle, pos + 1)
        return hits

    def raw_position(self, res: Resource) -> int | None:
        i = self._raw_pos.get(res.urn)
        if i is None:
            return None
        if self._escaped is None:
            # JSON \u escapes could spell a region the plain-text search cannot see.
            self._escaped = (self._resources_containing(self._haystack(), ("\\u",))
                             if self.raw.escaped else set())
        return None if i in self._escaped else i

    def _region_field_hits(self) -> set[int]:
        """Resources whose raw span holds a region field that may be unreadable (one pass of C-speed
        finds over the whole document, each hit placed in its resource's span), or that have a
        value not known yet."""
        starts, ends = self.raw.starts, self.raw.ends
        hits = {self._raw_pos[u] for u in self.snapshot.unknown if self._raw_pos.get(u) is not None}
        for pos in P.region_field_suspects(self.raw.text):
            i = bisect.bisect_right(starts, pos) - 1
            if i >= 0 and pos < ends[i]:
                hits.add(i)
        return hits

    def raw_hits(self, gate: str) -> set[int]:
        hits = self._raw_hits.get(gate)
        if hits is None:
            text = self._haystack()
            if gate == "foreign":
                hits = self._foreign_hits(text)
            elif gate == "region_field":
                hits = self._region_field_hits()
            elif gate == "secret" and not self.raw.signed:
                hits = set()  # the loader found no signature key: no value is a secret
            else:
                hits = self._resources_containing(text, _RAW_NEEDLES[gate])
            self._raw_hits[gate] = hits
        return hits

    def _foreign_hits(self, text) -> set[int]:
        """Resources whose raw text has a region token outside the geography.

        Every region code contains one direction literal. Whole-document counts prove, per
        literal, whether every occurrence lies inside an occurrence of one of the geography's
        regions (their occurrences cannot overlap); only for a literal where they do not are the
        geography's regions that contain it masked (same length, offsets kept) and the literal
        searched. A clean stack's text is then searched for nothing."""
        enc = (lambda x: x.encode()) if isinstance(text, bytes) else (lambda x: x)
        if self._only_geography_directions(text, enc):
            return set()
        counts: dict[str, int] = {}

        def count(needle: str) -> int:
            if needle not in counts:
                counts[needle] = text.count(enc(needle))
            return counts[needle]

        regions = sorted(self.regions)
        searched = []
        for lit in _DIRECTION_LITERALS:
            own = [r for r in regions if lit in r]
            if not own:  # no count can prove anything: search it directly
                searched.append(lit)
                continue
            total = count(lit)
            if total and total != sum(count(r) * r.count(lit) for r in own):
                searched.append(lit)
        hits: set[int] = set()
        masked_with: frozenset[str] | None = None
        for lit in searched:
            mask = frozenset(r for r in regions if lit in r and count(r))
            if mask != masked_with:
                masked, masked_with = text, mask
                for r in sorted(mask):
                    masked = masked.replace(enc(r), enc("#" * len(r)))
            hits |= self._resources_containing(masked, (lit,))
        return hits

    def _only_geography_directions(self, text, enc) -> bool:
        """One regex pass proves the common case: every `-<direction>` (each region code has
        exactly one, and every region token at least one) lies inside an occurrence of one of the
        geography's regions. Occurrences of distinct regions cannot overlap, and a `-<direction>`
        cannot straddle a region's edge, so equal counts leave no other region token."""
        pattern = re.compile(enc(_DIRECTION_RE))
        regions = sorted(self.regions, key=len, reverse=True)
        if not regions:
            return False
        total = sum(1 for _ in pattern.finditer(text))
        inside = 0
        if total:
            per_region = {r: len(pattern.findall(enc(r))) for r in regions}
            found = re.compile(enc("|".join(map(re.escape, regions))))  # longest first
            if set(per_region.values()) == {1}:  # every real region code: just count them
                inside = sum(1 for _ in found.finditer(text))
            else:
                for m in found.finditer(text):
                    inside += per_region[m.group().decode() if isinstance(text, bytes) else m.group()]
        return total == inside

    def _haystack(self):
        return self.raw.data if self.raw.data is not None else self.raw.text

    def forget(self, res: Resource) -> None:
        """Drop one resource's facts once its rules ran: the walk and parsed documents of 100k
        resources need not stay in memory (a later lookup recomputes them)."""
        self._facts.pop(res.urn, None)

    def release(self) -> None:
        """Drop the per-resource caches (Facts refer back to the scope: break the cycle so
        reference counting frees them, not the cyclic GC)."""
        self._facts.clear()

    # -- per resource --------------------------------------------------------------------------
    def facts(self, res: Resource) -> Facts:
        f = self._facts.get(res.urn)
        if f is None or f.res is not res:
            f = self._facts[res.urn] = Facts(res, self)
        return f

    def ancestor_types(self, res: Resource) -> frozenset[str]:
        """Types of every ancestor: the parent chain, plus the type chain an engine URN carries."""
        cached = self._ancestors.get(res.urn)
        if cached is not None:
            return cached
        types = set(P.type_chain(res.urn)[:-1])
        parent = self.by_urn.get(res.parent) if res.parent else None
        if parent is not None and parent is not res:
            types.add(parent.type)
            types |= self.ancestor_types(parent)
        result = self._ancestors[res.urn] = frozenset(types)
        return result

    def in_egress_path(self, res: Resource) -> bool:
        tags = res.tags
        return (tags.get(EGRESS_TAG[0]) == EGRESS_TAG[1]) or FEDERATED_COMPONENT in self.ancestor_types(res)

    def egress_allowed(self, res: Resource) -> bool:
        return self.ctx.has("federated") and self.in_egress_path(res)

    def by_id(self, id_: str) -> list[Resource]:
        if self._by_id is None:
            index: dict[str, list[Resource]] = {}
            for r in self.snapshot.resources:
                # CrossGuard resources carry their id/arn only in their properties.
                for key in (r.id, r.outputs.get("arn"), r.outputs.get("id"), r.inputs.get("arn"), r.inputs.get("id")):
                    if isinstance(key, str) and key:
                        index.setdefault(key, []).append(r)
            self._by_id = index
        return self._by_id.get(id_, [])


def _dispatch_table(rules: Iterable[Rule]) -> Callable[[str], list[tuple[tuple[str, ...], list[Rule]]]]:
    """type -> [(gates, rules)]: rules sharing a prescreen are skipped together."""
    rules = list(rules)
    table: dict[str, list] = {}

    def for_type(type_: str):
        found = table.get(type_)
        if found is None:
            groups: dict[tuple[str, ...], list[Rule]] = {}
            for r in rules:
                if r.matches(type_):
                    groups.setdefault(r.gates, []).append(r)
            found = table[type_] = sorted(groups.items(), key=lambda g: len(g[0]))
        return found

    return for_type


def _declared_paths(snapshot: Snapshot, ctx: Context) -> list[dict]:
    declared = snapshot.stack_outputs.get("declaredDataPaths") if snapshot.stack_outputs else None
    if isinstance(declared, dict):  # {connector: {...}} form
        declared = [{"connector": k, **(v if isinstance(v, dict) else {"host": v})} for k, v in declared.items()]
    if not (isinstance(declared, list) and declared):
        declared = declared_paths(ctx.connectors, ctx.geography.code)
    return [{k: d.get(k) for k in ("connector", "provider", "host", "processing")}
            for d in declared if isinstance(d, dict)]


def evaluate(snapshot: Snapshot, ctx: Context, rules: Iterable[Rule] | None = None,
             targets: set[str] | None = None, complete: bool = True, raw=None) -> Report:
    """Run the rules over a snapshot.

    `rules` restricts the rule set (default: all), `targets` the URNs checked (default: all; the
    others still serve as context, e.g. providers), `complete=False` says the snapshot is a
    fragment (a CrossGuard per-resource check), so graph lookups that find nothing prove nothing.
    `raw` is the source's `loaders.RawIndex` (from `read_export`): an optional speed-up only.
    """
    from infra.engine.rules import RULES  # late: the rule modules import this one
    from infra.engine.rules.placement import placement_class

    active = [r for r in (RULES if rules is None else rules)
              if (not r.sources or snapshot.source in r.sources) and (r.when is None or r.when(ctx))]
    for_type = _dispatch_table(active)
    scope = Scope(snapshot, ctx, complete, raw)
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    unplaced: list[dict] = []
    kinds = {"global": 0, "neutral": 0}
    checked = 0
    hit_sets: dict[tuple[str, ...], set[int]] = {}
    if raw is not None:
        for r in active:
            if r.gates and r.gates not in hit_sets and not RESOURCE_GATES & set(r.gates):
                hit_sets[r.gates] = set().union(*(scope.raw_hits(g) for g in r.gates))
    for res in snapshot.counted_resources():
        if targets is not None and res.urn not in targets:
            continue
        checked += 1
        ri = scope.raw_position(res) if raw is not None else None
        for gates, group in for_type(res.type):
            if gates:
                if ri is not None and gates in hit_sets:
                    # Indexed source: whole-document hit sets (and a bedrock type always passes).
                    if ri not in hit_sets[gates] and not (
                            "bedrock" in gates and res.type.startswith(_BEDROCK_TYPES)):
                        continue
                else:
                    facts = scope.facts(res)
                    if not any(facts.gate(g) for g in gates):
                        continue
            for rule in group:
                for message in rule.check(res, scope):
                    key = (rule.id, res.urn, message)
                    if key not in seen:
                        seen.add(key)
                        findings.append(Finding(rule.id, rule.severity, res.urn, res.type, message, rule.title,
                                                source_position=res.source_position, region=res.region or ""))
        scope.forget(res)
        if res.region is None:
            kind = placement_class(res)
            if kind == "regional":
                unplaced.append({"urn": res.urn, "type": res.type})
            elif kind in kinds:
                kinds[kind] += 1
    if complete and targets is None:
        for rule in active:
            for type_, message in (rule.stack_check(scope) if rule.stack_check else ()):
                findings.append(Finding(rule.id, rule.severity, scope.stack_urn, type_, message, rule.title))
    notes = list(snapshot.notes)
    if snapshot.pending_operations:
        kinds_ = sorted({str(op.get("type")) for op in snapshot.pending_operations if isinstance(op, dict)})
        notes.append(f"{len(snapshot.pending_operations)} pending operation(s) ({', '.join(kinds_)}): an update was "
                     "interrupted, the cloud may differ from this state")
    if kinds["global"]:
        notes.append(f"{kinds['global']} region-less global resource(s) (IAM, Route 53 ...) are not placed by design")
    if kinds["neutral"]:
        notes.append(f"{kinds['neutral']} resource(s) of region-neutral packages (kubernetes, random ...) "
                     "are checked for references but not placed")
    scope.release()
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: (order[f.severity], f.rule, f.urn))
    return Report(
        stack=snapshot.stack or ctx.stack, geography=ctx.geography.code, resources_checked=checked,
        findings=findings, unplaced=unplaced, declared_paths=_declared_paths(snapshot, ctx),
        notes=notes, regions=list(ctx.geography.regions), source=snapshot.source,
    )


# --- helpers the rule modules share -------------------------------------------------------------

RULE_REGISTRY: list[Rule] = []


def rule(id: str, name: str, title: str, severity: str, rationale: str, remediation: str,
         category: str, types: tuple[str, ...] = (), sources: tuple[str, ...] = (), graph: bool = False,
         gates: tuple[str, ...] = (), when: Callable[[Context], bool] | None = None,
         stack_check: Callable[[Scope], Iterable[tuple[str, str]]] | None = None, fails_closed: bool = False,
         controls: tuple[str, ...] = (), stack_key: str = "", stance: str = ""):
    """Decorator: register `fn(resource, scope) -> Iterable[str]` as a Rule."""

    def wrap(fn):
        assert all(g in GATES for g in gates), gates
        RULE_REGISTRY.append(Rule(id, name, title, severity, " ".join(rationale.split()),
                                  " ".join(remediation.split()), category, fn, types, sources,
                                  graph or stack_check is not None, gates, when, stack_check, fails_closed,
                                  controls, stack_key, " ".join(stance.split())))
        return fn

    return wrap


STANCE_NOTE = "refused by stance (see docs/rules.md), not a proven path out of the geography"


def is_secret(value: Any) -> bool:
    return isinstance(value, Secret)


def get_path(value: Any, *keys) -> Any:
    for k in keys:
        if isinstance(value, dict):
            value = value.get(k)
        elif isinstance(value, list) and isinstance(k, int) and -len(value) <= k < len(value):
            value = value[k]
        else:
            return None
    return value


def truthy(value: Any) -> bool:
    """Provider inputs are JSON strings under mocks and pulumi-aws 5.x: accept 'true' too."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def region_verdict(value: Any, scope: Scope) -> str | None:
    """None when `value` is a region inside the geography; otherwise why it cannot be trusted."""
    if is_secret(value):
        return "is a secret and cannot be verified"
    if value is None or value == "":
        return "is not known"
    region = P.region_of(value) if isinstance(value, str) else None
    if region is None:
        return f"'{value}' is not a region"
    if region not in scope.regions:
        return f"{region} is outside {scope.ctx.geography.code}"
    return None


def arn_region_verdict(value: Any, scope: Scope, what: str) -> str | None:
    """Same as region_verdict for a destination ARN (fail closed on region-less/unknown ARNs)."""
    if is_secret(value):
        return f"{what} is a secret and cannot be verified"
    arn = P.parse_arn(value)
    if arn is None:
        return f"{what} {value!r} is not an ARN whose region can be checked"
    region = arn[2]
    if not region:
        return f"{what} {value} carries no region"
    verdict = region_verdict(region, scope)
    return f"{what} {value}: {verdict}" if verdict else None


__all__ = ["Rule", "Context", "Report", "Scope", "Facts", "evaluate", "rule", "AWS_PROVIDER_TYPE"]
