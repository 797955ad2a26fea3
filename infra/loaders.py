"""Loaders: turn each source into the one normalized `Snapshot`.

- `snapshot_from_document`: `pulumi stack export` (v3 and v4) and file-backend checkpoints
  (`{"checkpoint": {"latest": ...}}`). The offline plan writes the same v3 format, so it is read
  through this loader too (with the config region it was planned with).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.model import Resource, Snapshot, STACK_TYPE, decode_value

# v4 features this reader understands (pulumi pkg/resource/stack/deployment.go); others are
# reported, never guessed at.
KNOWN_V4_FEATURES = {"refreshBeforeUpdate", "views", "hooks", "taint", "replaceWith"}


class InputError(ValueError):
    """An unreadable or unrecognized input file (the CLI exits 2)."""


def _name_from_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


def resource_from_state(raw: dict) -> Resource:
    if not isinstance(raw, dict) or "urn" not in raw or "type" not in raw:
        raise InputError("a resource without urn/type")
    urn = raw["urn"]
    return Resource(
        urn=urn,
        type=raw["type"],
        name=_name_from_urn(urn),
        custom=bool(raw.get("custom", False)),
        id=raw.get("id") or None,
        inputs=decode_value(raw.get("inputs") or {}),
        outputs=decode_value(raw.get("outputs") or {}),
        parent=raw.get("parent") or None,
        provider=raw.get("provider") or None,
        protect=bool(raw.get("protect", False)),
    )


def snapshot_from_document(doc: Any, stack: str | None = None, default_region: str | None = None,
                           source: str | None = None) -> Snapshot:
    """Read an export or checkpoint document (already parsed JSON)."""
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
    resources = [resource_from_state(r) for r in raw_resources]
    # A pending operation's resource may exist in the cloud without being in `resources`.
    known = {r.urn for r in resources}
    for op in pending:
        res = op.get("resource") if isinstance(op, dict) else None
        if isinstance(res, dict) and res.get("urn") not in known:
            resources.append(resource_from_state(res))
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
