"""The normalized resource model every source is turned into, and region placement.

Sources (the offline plan, `pulumi stack export` v3/v4, file-backend checkpoints, CrossGuard's
arguments, a live account scan) all become a `Snapshot` of `Resource`s. Each resource gets exactly
one effective region, in this order (stack-export-format.md §7, issue #5):

1. its own `region` input (pulumi-aws v7 per-resource region),
2. its provider's `region` (resolved from the `<urn>::<id>` reference; never from the name),
3. the snapshot's default region, only where the source proves which config applied (the plan and
   CrossGuard know `aws:region`; an export does not),
4. otherwise it is *unplaced*. The rules treat unplaced regional resources as findings (fail closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple, Any

# Pulumi's special-value signatures (pulumi/runtime/rpc.py, apitype).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

STACK_TYPE = "pulumi:pulumi:Stack"
AWS_PROVIDER_TYPE = "pulumi:providers:aws"
# The one resource count of every output (plan table, progress, markdown, JSON, audit): what the
# residency rules check. Snapshot.counted_resources() selects them.
COUNTED_RESOURCES = "counted: cloud resources and provider configurations; not components or the stack"


class Secret:
    """A value the rules cannot read (ciphertext). Rules that need to look there report it."""

    __slots__ = ("path",)

    def __init__(self, path: str = ""):
        self.path = path

    def __repr__(self) -> str:
        return f"Secret({self.path})"


def is_provider_type(type_: str) -> bool:
    return type_.startswith("pulumi:providers:")


def decode_value(value: Any) -> Any:
    """Turn Pulumi's wire/state special values into plain Python the rules can walk.

    Secrets with plaintext (`--show-secrets`, mocks, the `b64` provider is not decoded) are unwrapped;
    ciphertext becomes `Secret`. Resource references become their URN string; assets and archives
    become None (they carry code, not configuration); the unknown placeholder becomes None.
    """
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            if "value" in value:  # in-process (mocks / CrossGuard) shape
                return decode_value(value["value"])
            if "plaintext" in value:
                try:
                    return decode_value(json.loads(value["plaintext"]))
                except ValueError:
                    return value["plaintext"]
            return Secret()
        if sig == RESOURCE_REF_SIG:
            return value.get("urn")
        if sig in (ASSET_SIG, ARCHIVE_SIG):
            return None
        if sig == OUTPUT_SIG:
            return decode_value(value.get("value"))
        return {k: decode_value(v) for k, v in value.items() if k not in ("__defaults", "__meta")}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if value == UNKNOWN:
        return None
    return value


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    custom: bool = True
    id: str | None = None
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    parent: str | None = None
    provider: str | None = None  # "<provider urn>::<provider id>", or None
    protect: bool = False
    region: str | None = None  # effective region, set by `place`
    region_source: str = "unplaced"  # resource | provider | config | unplaced | n/a
    option: str | None = None  # zmo | zm_plus | federated, from the owning component (plan only)
    # property -> URNs its value came from (CrossGuard `propertyDependencies`, export `propertyDependencies`)
    property_dependencies: dict = field(default_factory=dict)
    # Where the program registered it, as the engine records it: `project:///<path>#<line>[,<col>]`
    source_position: str = ""

    @property
    def props(self) -> dict:
        """Inputs overlaid on outputs: what the resource is configured to do."""
        return {**self.outputs, **self.inputs}

    @property
    def tags(self) -> dict:
        for key in ("tags", "tagsAll"):
            value = self.inputs.get(key) or self.outputs.get(key)
            if isinstance(value, dict):
                return value
        return {}


@dataclass
class Snapshot:
    """One stack's resources from one source, placed in regions."""

    resources: list[Resource]
    source: str  # plan | export | checkpoint | crossguard | live
    stack: str | None = None
    default_region: str | None = None  # only where the source proves the config that applied
    stack_outputs: dict = field(default_factory=dict)
    pending_operations: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # urn -> property paths whose value is not known yet (CrossGuard during preview). Such values
    # read as None; a finding on such a resource is deferred to the update, when they are known.
    unknown: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        place(self.resources, self.default_region)

    @property
    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def counted_resources(self) -> list[Resource]:
        """The resources every output counts (COUNTED_RESOURCES): custom resources, providers included."""
        return [r for r in self.resources if r.custom and r.type != STACK_TYPE]

    def custom_resources(self) -> list[Resource]:
        return [r for r in self.resources if r.custom and not is_provider_type(r.type) and r.type != STACK_TYPE]


class Suppression(NamedTuple):
    """Why a finding is accepted for now (residency-suppressions.yaml): reported, never dropped."""
    reason: str
    owner: str
    expires: str  # ISO date


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    urn: str
    type: str
    message: str
    title: str = ""
    source_position: str = ""  # the resource's `project:///<path>#<line>`, where known
    region: str = ""  # where the resource is, when known
    account: str = ""  # the AWS account (live scans; `--org` attributes every finding)
    suppressed: Suppression | None = None


def _region_value(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != UNKNOWN else None


def place(resources: list[Resource], default_region: str | None = None) -> None:
    """Set `region`/`region_source` on every resource (see the module docstring for the order)."""
    providers = {}
    for r in resources:
        if is_provider_type(r.type):
            region = _region_value(r.inputs.get("region")) or _region_value(r.outputs.get("region"))
            providers[f"{r.urn}::{r.id}"] = region
            r.region, r.region_source = region, "n/a"
    for r in resources:
        if is_provider_type(r.type):
            continue
        if not r.custom or r.type == STACK_TYPE:
            r.region, r.region_source = None, "n/a"
            continue
        own = _region_value(r.inputs.get("region"))
        if own:
            r.region, r.region_source = own, "resource"
        elif r.provider and providers.get(r.provider):
            r.region, r.region_source = providers[r.provider], "provider"
        elif not r.provider and default_region:
            # Only the default provider falls back to config; an explicit provider without a
            # recorded region proves nothing.
            r.region, r.region_source = default_region, "config"
        else:
            r.region, r.region_source = None, "unplaced"
