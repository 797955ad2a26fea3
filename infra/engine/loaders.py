"""Loaders: turn each source into the one normalized `Snapshot`.

- `snapshot_from_document`: `pulumi stack export` (v3 and v4) and file-backend checkpoints
  (`{"checkpoint": {"latest": ...}}`). The offline plan writes the same v3 format, so it is read
  through this loader too (with the config region it was planned with).
"""

from __future__ import annotations

import json
import sys
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from infra.engine.model import SIG_KEY, UNKNOWN, Resource, Snapshot, STACK_TYPE, decode_value
from infra.program.errors import InputError

# v4 features this reader understands (pulumi pkg/resource/stack/deployment.go); others are
# reported, never guessed at.
KNOWN_V4_FEATURES = {"refreshBeforeUpdate", "views", "hooks", "taint", "replaceWith"}


def _name_from_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


# The shape of each field of a resource in a stack export (stack-export-format.md): a field of
# another shape is bad input that names the resource, never a crash deeper in the rules.
_FIELD_SHAPES = {"urn": (str,), "type": (str,), "custom": (bool,), "protect": (bool,), "id": (str,),
                 "inputs": (dict,), "outputs": (dict,), "parent": (str,), "provider": (str,),
                 "dependencies": (list,), "propertyDependencies": (dict,)}
_SHAPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "a list"}


def check_resource_shape(raw: Any, position: int | None = None) -> None:
    """InputError naming the resource (its URN, else its position) when a field has the wrong shape."""
    where = f"resource #{position}" if position is not None else "a resource"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected an object, got {type(raw).__name__}")
    if isinstance(raw.get("urn"), str):
        where += f" ({raw['urn']})"
    for field in ("urn", "type"):
        if field not in raw:
            raise InputError(f"{where}: no '{field}'")
    for field, shapes in _FIELD_SHAPES.items():
        value = raw.get(field)
        if value is not None and not isinstance(value, shapes):
            raise InputError(f"{where}: '{field}' must be {_SHAPE_NAMES[shapes[0]]}, got {type(value).__name__}")


def resource_from_state(raw: dict, decode: Callable[[Any], Any] = decode_value, position: int | None = None) -> Resource:
    check_resource_shape(raw, position)
    urn = raw["urn"]
    return Resource(
        urn=urn,
        type=raw["type"],
        name=_name_from_urn(urn),
        custom=bool(raw.get("custom", False)),
        id=raw.get("id") or None,
        inputs=decode(raw.get("inputs") or {}),
        outputs=decode(raw.get("outputs") or {}),
        parent=raw.get("parent") or None,
        provider=raw.get("provider") or None,
        protect=bool(raw.get("protect", False)),
        property_dependencies=raw.get("propertyDependencies") if isinstance(raw.get("propertyDependencies"), dict) else {},
        source_position=raw.get("sourcePosition") if isinstance(raw.get("sourcePosition"), str) else "",
    )


def snapshot_from_document(doc: Any, stack: str | None = None, default_region: str | None = None,
                           source: str | None = None, decode: Callable[[Any], Any] = decode_value) -> Snapshot:
    """Read an export or checkpoint document (already parsed JSON).

    `decode` turns raw property maps into model values; `read_export` passes an identity when it
    has already decoded them."""
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), int):
        raise InputError("not a Pulumi stack export or checkpoint: no integer 'version'")
    version = doc["version"]
    if version not in (3, 4):
        raise InputError(f"unsupported deployment version {version}; supported: 3, 4")
    notes = []
    if version >= 4:
        unknown = sorted(set(doc.get("features") or []) - KNOWN_V4_FEATURES)
        if unknown:
            notes.append(f"unknown v4 features (not interpreted): {', '.join(unknown)}")
    if "deployment" in doc:
        deployment, kind = doc["deployment"], "export"
    elif "checkpoint" in doc:
        checkpoint = doc["checkpoint"]
        if not isinstance(checkpoint, dict):
            raise InputError("'checkpoint' is not an object")
        deployment, kind = checkpoint.get("latest") or {}, "checkpoint"
        stack = stack or checkpoint.get("stack")
    else:
        raise InputError("neither 'deployment' (stack export) nor 'checkpoint' (file backend) present")
    if not isinstance(deployment, dict):
        raise InputError(f"'{kind}' deployment is not an object")
    raw_resources = deployment.get("resources") or []
    pending = deployment.get("pending_operations") or []
    if not isinstance(raw_resources, list) or not isinstance(pending, list):
        raise InputError("'resources' and 'pending_operations' must be lists")
    resources = [resource_from_state(r, decode, i) for i, r in enumerate(raw_resources)]
    # A pending operation's resource may exist in the cloud without being in `resources`.
    known = {r.urn for r in resources}
    for op in pending:
        res = op.get("resource") if isinstance(op, dict) else None
        if isinstance(res, dict) and res.get("urn") not in known:
            resources.append(resource_from_state(res, decode))
            notes.append(f"pending {op.get('type')} operation on {res.get('urn')}")
    outputs = next((r.outputs for r in resources if r.type == STACK_TYPE), {})
    return Snapshot(resources, source or kind, stack, default_region, outputs, pending, notes)


def load_document(path: str | Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    except RecursionError:
        raise _too_deep(path) from None


def _too_deep(path: str | Path) -> InputError:
    """Bad input, not a bug: Python's JSON reader recurses once per level of nesting."""
    return InputError(f"{path} nests values deeper than the JSON reader allows (about "
                      f"{sys.getrecursionlimit()} levels); no Pulumi export nests that deep")


# --- Fast export reader (residency audit --export) ---------------------------------------------
# `read_export` returns the same Snapshot as load_document + snapshot_from_document, plus the raw
# JSON text of each resource (a `RawIndex`). The rules use that text as a C-speed prescreen, so a
# 100k-resource export is not walked value by value in Python. Each resource is decoded by
# `json.JSONDecoder.raw_decode` as one unit (which yields its span in the file); resources without
# special values take a shallow path that provably equals `decode_value` (checked per resource).

_WS = re.compile(r"[ \t\n\r]*").match
_DECODER = json.JSONDecoder()
# Where resource arrays sit: export `deployment.resources`, checkpoint `checkpoint.latest.resources`.
_RESOURCE_ARRAYS = {"deployment": {"resources": True}, "checkpoint": {"latest": {"resources": True}}}


@dataclass
class RawIndex:
    """Raw JSON text of a document and the span of each resource in it, in document order.

    `data` is the file's bytes when they are ASCII (offsets then equal character offsets), which
    makes whole-document substring searches several times faster than on `text`."""

    text: str
    urns: list[str]
    starts: list[int]
    ends: list[int]
    data: bytes | None = None
    # Whether the document holds any JSON `\u` escape (one could spell a region the plain-text
    # searches cannot see); True unless the loader proved otherwise.
    escaped: bool = True
    # Whether it holds the signature key of special values (secrets, assets); True unless proved
    # otherwise. Without it no value decodes to a secret.
    signed: bool = True

    def text_of(self, i: int) -> str:
        return self.text[self.starts[i]:self.ends[i]]


def _scan_array(text: str, pos: int, spans: list) -> tuple[list, int]:
    items = []
    pos = _WS(text, pos + 1).end()
    if text[pos] == "]":
        return items, pos + 1
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        items.append(value)
        spans.append((value, pos, end))
        pos = _WS(text, end).end()
        if text[pos] == ",":
            pos = _WS(text, pos + 1).end()
        elif text[pos] == "]":
            return items, pos + 1
        else:
            raise ValueError(f"expected ',' or ']' at {pos}")


def _scan_object(text: str, pos: int, tree: dict, spans: list) -> tuple[dict, int]:
    out: dict = {}
    pos = _WS(text, pos + 1).end()
    if text[pos] == "}":
        return out, pos + 1
    while True:
        if text[pos] != '"':
            raise ValueError(f"expected a key at {pos}")
        key, pos = json.decoder.scanstring(text, pos + 1)
        pos = _WS(text, pos).end()
        if text[pos] != ":":
            raise ValueError(f"expected ':' at {pos}")
        pos = _WS(text, pos + 1).end()
        sub = tree.get(key)
        if sub is True and text[pos] == "[":
            found: list = []
            value, pos = _scan_array(text, pos, found)
            spans[:] = found  # the last occurrence of a duplicate key wins, as in json.loads
        elif isinstance(sub, dict) and text[pos] == "{":
            value, pos = _scan_object(text, pos, sub, spans)
        else:
            value, pos = _DECODER.raw_decode(text, pos)
        out[key] = value
        pos = _WS(text, pos).end()
        if text[pos] == ",":
            pos = _WS(text, pos + 1).end()
        elif text[pos] == "}":
            return out, pos + 1
        else:
            raise ValueError(f"expected ',' or '}}' at {pos}")


_STRIPPED = ("__defaults", "__meta")


def _decode_resource(raw: dict, raw_text: str | None, plain_document: bool = False, proven: bool = False) -> None:
    """Decode `inputs`/`outputs` in place, exactly as decode_value would.

    Shallow path when the resource's raw text has no special value, no unknown, no escape and no
    `"__…"` key other than the top-level `__defaults`/`__meta` it strips; else decode_value.
    `plain_document`: the whole document has no special value, unknown or escape (checked once).
    `proven`: read_export proved all of this for every resource of the document at once."""
    parts = [raw.get("inputs") or {}, raw.get("outputs") or {}]
    fast = isinstance(parts[0], dict) and isinstance(parts[1], dict) and (proven or (
        raw_text is not None
        and (plain_document or (SIG_KEY not in raw_text and UNKNOWN not in raw_text and "\\u" not in raw_text))
        and raw_text.count('"__') == sum((k in p) for p in parts for k in _STRIPPED)))
    for key, part in zip(("inputs", "outputs"), parts):
        if fast:
            part.pop("__defaults", None)  # freshly parsed: ours to change in place
            part.pop("__meta", None)
            raw[key] = part
        else:
            raw[key] = decode_value(part)


def read_export(path: str | Path, stack: str | None = None, default_region: str | None = None,
                source: str | None = None) -> tuple[Snapshot, RawIndex | None]:
    """Read an export/checkpoint file: (snapshot, raw index). Same result as
    `snapshot_from_document(load_document(path), ...)`; the index is None when the file's layout
    could not be scanned resource by resource (the plain path is used then)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        # JSON's own detection (RFC 8259 §8.1): UTF-8 with or without a BOM, UTF-16/32 (a
        # PowerShell `>` redirect writes UTF-16LE with a BOM).
        encoding = json.detect_encoding(data)
        text = data.decode(encoding)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not JSON text in UTF-8/16/32: {exc.reason} at byte {exc.start}") from exc
    if encoding != "utf-8":
        data = text.encode("utf-8")  # the raw index searches UTF-8 bytes
    spans: list = []
    try:
        start = _WS(text, 0).end()
        if text[start:start + 1] != "{":
            raise ValueError("not an object")
        doc, end = _scan_object(text, start, _RESOURCE_ARRAYS, spans)
        if _WS(text, end).end() != len(text):
            raise ValueError("trailing data")
    except (ValueError, IndexError, RecursionError):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path} is not JSON: {exc}") from exc
        except RecursionError:
            raise _too_deep(path) from None
        return snapshot_from_document(doc, stack, default_region, source), None
    index = RawIndex(text, [], [], [], data if data.isascii() else None)
    hay = index.data if index.data is not None else text

    def found(needle: str) -> bool:
        return hay.find(needle.encode() if hay is data else needle) != -1

    # Whole-document facts, shared with the rules' prescreen (RawIndex).
    index.escaped, index.signed = found("\\u"), found(SIG_KEY)
    plain = not index.escaped and not index.signed and not found(UNKNOWN)
    # In a plain document every `"__` is literal text: when the document holds exactly as many as
    # the stripped keys of all resources, no resource holds another (each holds at least its own).
    stripped = sum((k in p) for raw, _, _ in spans if isinstance(raw, dict)
                   for p in (raw.get("inputs"), raw.get("outputs")) if isinstance(p, dict) for k in _STRIPPED)
    proven = plain and hay.count(b'"__' if hay is data else '"__') == stripped
    for raw, s, e in spans:
        if not isinstance(raw, dict):
            continue  # snapshot_from_document reports it
        _decode_resource(raw, None if proven else text[s:e], plain, proven)
        if isinstance(raw.get("urn"), str):
            index.urns.append(raw["urn"])
            index.starts.append(s)
            index.ends.append(e)
    deployment = doc.get("deployment") if "deployment" in doc else (doc.get("checkpoint") or {}).get("latest")
    for op in (deployment or {}).get("pending_operations") or [] if isinstance(deployment, dict) else []:
        if isinstance(op, dict) and isinstance(op.get("resource"), dict):
            _decode_resource(op["resource"], None)
    if not all(isinstance(raw, dict) for raw, _, _ in spans):
        return snapshot_from_document(json.loads(text), stack, default_region, source), None
    return snapshot_from_document(doc, stack, default_region, source, decode=_identity), index


def _identity(value: Any) -> Any:
    return value


# --- CrossGuard (pulumi_policy) arguments --------------------------------------------------------
# The engine hands policies `PolicyResource`s (stack policies) or `ResourceValidationArgs`
# (resource policies) whose props are proxies that raise on unknown values, with plaintext
# secrets and pulumi Asset/Archive objects. They are unwrapped into model values here: unknowns
# become None (the model's "not known"), assets/archives None, secrets their plaintext.

CROSSGUARD_PROVIDER_ID = "crossguard"


def _policy_value(value: Any, unknown: list[str] | None = None, path: str = "") -> Any:
    """Unwrap a CrossGuard property value; the paths of unknown values are appended to `unknown`."""
    unknown = [] if unknown is None else unknown
    # Plain values first: the abstract-class checks for proxies below cost more than the unwrapping
    # (a CrossGuard policy unwraps every property of every resource it judges).
    if isinstance(value, dict):
        return {k: _policy_value(v, unknown, f"{path}.{k}" if path else k)
                for k, v in value.items() if k not in ("__defaults", "__meta")}
    if isinstance(value, list):
        return [_policy_value(v, unknown, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        from pulumi_policy.proxy import _is_unknown

        if _is_unknown(value) or value == UNKNOWN:
            unknown.append(path)
            return None
        return value
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    from collections.abc import Mapping, Sequence

    if isinstance(value, (Mapping, Sequence)) and not isinstance(value, bytes):
        try:
            target = value["__target"]  # pulumi_policy's unknown-checking / secret proxies
        except (KeyError, IndexError, TypeError):
            target = dict(value) if isinstance(value, Mapping) else list(value)
        return _policy_value(target, unknown, path)
    if type(value).__name__ == "Secret" and hasattr(value, "value"):  # pulumi_policy.Secret
        return _policy_value(value.value, unknown, path)
    return None  # pulumi Asset/Archive objects: code, not configuration


def _is_default_provider(name: str) -> bool:
    return name == "default" or name.startswith("default_")


def _policy_custom(type_: str, provider: Any) -> bool:
    """The engine gives custom resources a provider; components have none. Provider-less resources
    with a bridged-style token (`pkg:module/x:Type`) still count as custom (fail closed)."""
    if type_ == STACK_TYPE:
        return False
    parts = type_.split(":")
    return provider is not None or type_.startswith("pulumi:providers:") or (len(parts) == 3 and "/" in parts[1])


def snapshot_from_policy_resources(resources: list, default_region: str | None = None,
                                   stack: str | None = None) -> Snapshot:
    """Turn CrossGuard arguments into a Snapshot (source "crossguard").

    `resources`: `PolicyResource`s (StackValidationArgs.resources) and/or `ResourceValidationArgs`.
    `default_region`: the stack's `aws:region` (from the pack config). Default providers
    (`default`, `default_x_y_z`) without a recorded region, and resources with no provider, take
    it: the engine configures default providers from that same stack config. Explicit providers
    never do (an explicit provider without a region proves nothing).
    """
    providers: dict[str, Resource] = {}
    out: list[Resource] = []
    unknown: dict[str, list[str]] = {}
    for item in resources:
        prov = getattr(item, "provider", None)
        ref = None
        if prov is not None:
            if prov.urn not in providers:
                provider_paths: list[str] = []
                pprops = _policy_value(prov.props, provider_paths) or {}
                if provider_paths:
                    unknown[prov.urn] = provider_paths
                if _is_default_provider(prov.name) and not pprops.get("region") and default_region:
                    pprops = {**pprops, "region": default_region}
                providers[prov.urn] = Resource(urn=prov.urn, type=prov.resource_type, name=prov.name, custom=True,
                                               id=CROSSGUARD_PROVIDER_ID, inputs=pprops)
            ref = f"{prov.urn}::{CROSSGUARD_PROVIDER_ID}"
        parent = getattr(item, "parent", None)
        parent_urn = getattr(parent, "urn", None) if parent is not None and not isinstance(parent, str) else parent
        if parent_urn is None and getattr(item, "opts", None) is not None:
            parent_urn = getattr(item.opts, "parent", None)
        type_ = item.resource_type
        if type_.startswith("pulumi:providers:"):
            props = _policy_value(item.props) or {}
            if _is_default_provider(item.name) and not props.get("region") and default_region:
                props = {**props, "region": default_region}
            providers[item.urn] = Resource(urn=item.urn, type=type_, name=item.name, custom=True,
                                           id=CROSSGUARD_PROVIDER_ID, inputs=props, parent=parent_urn)
            continue
        # A resource whose provider has unknown values (its region) is itself not fully known.
        paths: list[str] = [f"provider.{p}" for p in unknown.get(prov.urn, ())] if prov is not None else []
        out.append(Resource(
            urn=item.urn, type=type_, name=item.name, custom=_policy_custom(type_, prov),
            inputs=_policy_value(item.props, paths) or {}, parent=parent_urn or None, provider=ref,
            protect=bool(getattr(getattr(item, "opts", None), "protect", False)),
            property_dependencies={k: [getattr(d, "urn", d) for d in deps]
                                   for k, deps in (getattr(item, "property_dependencies", None) or {}).items()},
        ))
        if paths:
            unknown[item.urn] = paths
    return Snapshot(list(providers.values()) + out, "crossguard", stack, default_region, unknown=unknown)
