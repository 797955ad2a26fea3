"""A small IAM policy evaluator: enough of the AWS evaluation logic to test our own policies.

Supported: Allow/Deny, Action/NotAction and Resource/NotResource with `*`/`?` wildcards, and the
condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike,
ArnNotEquals, ArnNotLike, Bool and Null (plus the `...IfExists` suffix), and the set qualifiers
`ForAnyValue:` / `ForAllValues:` in front of them. Not supported (raises `Unsupported` rather than
guessing): numeric/date/IP operators, policy variables. Principals are not evaluated: pass only the policies that apply to the caller.

Semantics followed (IAM User Guide, "Policy evaluation logic" and "Condition operators"):
- an explicit Deny anywhere wins; otherwise an Allow is needed; otherwise the request is
  implicitly denied;
- statement elements are ANDed, several values for one key are ORed;
- a key missing from the request makes a positive operator false and a negated operator
  (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike) true; `...IfExists` makes any operator
  true when the key is missing;
- `ForAnyValue:` holds when at least one of the request's values satisfies the operator (false
  when the key is missing); `ForAllValues:` when every value does (true when it is missing);
- action names and condition-key names are case-insensitive, values and resources are not;
- ARN patterns are matched per colon-separated component (the sixth, the resource, may itself
  contain colons), so a `*` never spans a component: `arn:*:bedrock:::foundation-model/*` matches
  only the region-less ARN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"


class Unsupported(ValueError):
    """A policy element this evaluator does not model."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _glob(value: str, pattern: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def arn_like(value: str, pattern: str) -> bool:
    """ArnLike: component-wise wildcard match (a `*` pattern matches anything)."""
    if pattern == "*":
        return True
    v, p = value.split(":", 5), pattern.split(":", 5)
    if len(v) != 6 or len(p) != 6:
        return _glob(value, pattern)
    return all(_glob(a, b) for a, b in zip(v, p))


def action_matches(action: str, pattern: str) -> bool:
    return _glob(action, pattern, case=False)


def resource_matches(resource: str, pattern: str) -> bool:
    return arn_like(resource, pattern) if pattern.startswith("arn:") or pattern == "*" else _glob(resource, pattern)


_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_MATCHERS = {
    "StringEquals": lambda v, p: v == p,
    "StringNotEquals": lambda v, p: v == p,
    "StringLike": _glob,
    "StringNotLike": _glob,
    "ArnEquals": arn_like,
    "ArnLike": arn_like,
    "ArnNotEquals": arn_like,
    "ArnNotLike": arn_like,
    "Bool": lambda v, p: str(v).lower() == str(p).lower(),
}


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    lowered = {k.lower(): v for k, v in context.items()}
    present = key.lower() in lowered
    values = [str(v) for v in _list(lowered.get(key.lower()))]
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        qualifier, _, single = operator.partition(":")
        each = [_condition_holds(single, key, expected, {key: v}) for v in values]
        return all(each) if qualifier == "ForAllValues" else any(each)
    if operator == "Null":
        want_missing = str(expected).lower() == "true"
        return (not present) == want_missing
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if base not in _MATCHERS:
        raise Unsupported(f"condition operator {operator}")
    if not present:
        return if_exists or base in _NEGATED
    match = _MATCHERS[base]
    patterns = [str(p) for p in _list(expected)]
    hit = any(match(v, p) for v in values for p in patterns)
    return not hit if base in _NEGATED else hit


def statement_applies(statement: dict, request: Request) -> bool:
    """Whether a statement's Action, Resource and Condition all match the request."""
    if "Action" in statement:
        if not any(action_matches(request.action, a) for a in _list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(request.action, a) for a in _list(statement["NotAction"])):
            return False
    else:
        raise Unsupported("statement without Action or NotAction")
    if "Resource" in statement:
        if not any(resource_matches(request.resource, r) for r in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(resource_matches(request.resource, r) for r in _list(statement["NotResource"])):
            return False
    else:
        raise Unsupported("statement without Resource or NotResource")
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def statements(policies: dict | Iterable[dict]) -> list[dict]:
    docs = [policies] if isinstance(policies, dict) else list(policies)
    return [s for d in docs for s in _list(d.get("Statement"))]


def matching(policies: dict | Iterable[dict], request: Request) -> list[dict]:
    """The statements that apply to a request (useful in assertion messages)."""
    return [s for s in statements(policies) if statement_applies(s, request)]


def evaluate(policies: dict | Iterable[dict], action: str, resource: str,
             context: dict[str, Any] | None = None) -> str:
    """`Allow`, `Deny` (explicit) or `ImplicitDeny` for one request against the policies."""
    hits = matching(policies, Request(action, resource, dict(context or {})))
    if any(s["Effect"] == "Deny" for s in hits):
        return DENY
    return ALLOW if any(s["Effect"] == "Allow" for s in hits) else IMPLICIT_DENY


def allowed(policies, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    return evaluate(policies, action, resource, context) == ALLOW
