"""Precompiled patterns and small parsers shared by the rules.

Everything here is data or a pure function: what a region, an ARN, a regional hostname, a VPC
endpoint service name, a Bedrock profile id or an IAM policy document looks like.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from typing import Any, Iterator

from infra.engine.model import SECRET_SIG, Secret

# Region codes of every partition (aws, aws-cn, aws-us-gov, aws-iso*, aws-eusc). Deliberately
# wider than the catalog, so a region the catalog never heard of is still recognised as a region.
REGION = (
    r"(?:us|eu|ap|sa|ca|me|af|il|mx|cn|eusc)(?:-gov|-iso[a-z]?)?"
    r"-(?:central|north|south|east|west|northeast|northwest|southeast|southwest|de-east|de-west)-\d{1,2}"
)
# A region token inside any text (an availability-zone letter may follow: `eu-west-1a`).
REGION_TOKEN_RE = re.compile(rf"(?<![a-z0-9])({REGION})(?=[a-z]?(?![a-z0-9]))")
REGION_VALUE_RE = re.compile(rf"({REGION})[a-z]?")  # fullmatch: a region or an AZ name
ARN_RE = re.compile(r"arn:(aws(?:-[a-z]+)*):([a-z0-9-]+):([^:\s\"']*):([^:\s\"']*):")
ENDPOINT_SERVICE_RE = re.compile(rf"com\.amazonaws\.(?:vpce\.)?({REGION})\.")
# `<region>.amazonaws.com`, or with one service label after the region (`x.<region>.eks.amazonaws.com`,
# `vpce-1.vpce-svc.<region>.vpce.amazonaws.com`, `name.<region>.elb.amazonaws.com`).
HOSTNAME_RE = re.compile(
    rf"(?:^|(?<=[./@-]))({REGION})\.(?:[a-z0-9-]+\.)?"
    r"(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|api\.aws|on\.aws)(?![a-z0-9-])"
)
# Keys whose value is a region (or an AZ) by name: `region`, `serviceRegion`, `regionName`,
# `regions`, `availabilityZone(s)` … compared lower-cased.
REGION_KEY_SUFFIXES = ("region", "regions", "regionname", "availabilityzone", "availabilityzones")
# Environment-style name/value pairs (Kubernetes env, Lambda-like maps) whose name says region.
REGION_ENV_RE = re.compile(r"(?i)(?:^|_)(?:default_)?region$")

# Where a secret hides something a rule must read: policy documents, regions, ARNs, endpoints,
# hosts, destinations, replicas, allow-lists. Matched against every path segment, lower-cased.
CHECKED_FIELD_RE = re.compile(
    r"(?:policy|document|region|regions|regionname|arn|arns|endpoint|endpoints|host|hosts|hostname|"
    r"destination|destinations|replica|replicas|servicename|domain|domains|domainname|targets|url|urls|uri|"
    r"rulessource|rulessourcelist|rulesstring|copyfrom|modelsource|crossregionconfig|"
    r"replicationconfiguration|rules)$"
)

# Bedrock inference-profile ids: `<geo>.<vendor>.<model>`. Vendors are listed so that federated
# hosts such as `eu.api.openai.com` are not mistaken for profiles.
PROFILE_PREFIXES = ("us-gov", "us", "eu", "apac", "jp", "au", "ca", "in", "global")
BEDROCK_VENDORS = ("anthropic", "amazon", "meta", "mistral", "cohere", "ai21", "deepseek", "writer",
                   "openai", "qwen", "twelvelabs", "stability", "luma")
PROFILE_ID_RE = re.compile(
    rf"(?<![a-z0-9.-])({'|'.join(p.replace('-', r'-') for p in PROFILE_PREFIXES)})"
    rf"\.((?:{'|'.join(BEDROCK_VENDORS)})\.[a-z0-9][\w.:-]*)"
)
BEDROCK_ARN_RE = re.compile(r"arn:(aws(?:-[a-z]+)*):bedrock:([^:\"'\s]*):([^:\"'\s]*):([^\s\"']+)")
# Actions that let a principal run a model (Converse* maps to InvokeModel*).
BEDROCK_INVOKE_ACTIONS = (
    "bedrock:invokemodel", "bedrock:invokemodelwithresponsestream", "bedrock:converse",
    "bedrock:conversestream", "bedrock-mantle:createchatcompletion", "bedrock-mantle:invokemodel",
)

SECRET_SIG_RAW = SECRET_SIG  # how a secret looks in raw state JSON
SECRET_MARK = "\x1bsecret\x1b"  # what a Secret serialises to in a resource's prescreen text
SECRET_TEXT = json.dumps(SECRET_MARK)[1:-1]


def json_default(value: Any) -> Any:
    return SECRET_MARK if isinstance(value, Secret) else None


def last_key(path: str) -> str:
    """`a.b[0].c[2]` -> `c`; `a[1]` -> `a`."""
    key = path.rsplit(".", 1)[-1]
    return key.split("[", 1)[0]


def is_region(value: Any) -> bool:
    return isinstance(value, str) and REGION_VALUE_RE.fullmatch(value) is not None


def region_of(value: str) -> str | None:
    m = REGION_VALUE_RE.fullmatch(value) if isinstance(value, str) else None
    return m.group(1) if m else None


def parse_arn(value: Any) -> tuple[str, str, str, str, str] | None:
    """(partition, service, region, account, resource) of a string that is an ARN, else None."""
    if not isinstance(value, str) or not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) < 6:
        return None
    return parts[1], parts[2], parts[3], parts[4], parts[5]


def is_deny(statement: Any) -> bool:
    return isinstance(statement, dict) and statement.get("Effect") == "Deny"


def parse_document(value: str) -> Any:
    """A JSON document stored as a string (`{...}` / `[...]`), else None."""
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, (dict, list)) else None


def walk(value: Any, parse=parse_document) -> list[tuple[str, Any, bool]]:
    """(path, leaf, denied) for every leaf, in one pass, plus `{name: *REGION, value: v}` pairs as
    `<path>.region`.

    JSON documents stored as strings (IAM, bucket and endpoint policies) are descended into,
    through `parse` (engine.Facts passes a per-resource memo, so each document is parsed once).
    `denied`: the leaf is inside an `Effect: Deny` statement of a policy document (any
    `Statement`); an explicit Deny naming a region or a model restricts, it opens no path.
    """
    out: list[tuple[str, Any, bool]] = []
    _visit(value, "", False, parse, out)
    return out


def _visit(value: Any, path: str, denied: bool, parse, out: list) -> None:
    # A module-level function, not a closure: a recursive closure is a reference cycle that
    # would keep every resource alive until the cyclic GC runs.
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str) and "value" in value and REGION_ENV_RE.search(name):
            out.append(((f"{path}.region" if path else "region"), value["value"], denied))
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if k == "Statement" and not denied:
                if isinstance(v, list):
                    for i, st in enumerate(v):
                        _visit(st, f"{sub}[{i}]", is_deny(st), parse, out)
                else:
                    _visit(v, sub, is_deny(v), parse, out)
                continue
            _visit(v, sub, denied, parse, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _visit(v, f"{path}[{i}]", denied, parse, out)
    elif isinstance(value, str) and len(value) > 1 and value[0] in "{[":
        doc = parse(value)
        if doc is None:
            out.append((path, value, denied))
        else:
            _visit(doc, path, denied, parse, out)
    else:
        out.append((path, value, denied))


# The end of a region field's key and the start of its value in JSON text (a resource's raw span or
# prescreen text): the cheap gate of unreadable_region_fields, tried only where a C-speed find saw
# a needle. Values in JSON documents stored as strings are escaped (`\\"`) and not matched;
# unreadable_region_fields does not read those either.
REGION_FIELD_TAIL_RE = re.compile(
    r'(?i)(?:egion(?:s|name)?|vailabilityzones?)"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(null|true|false)\b|(.))')
_REGION_FIELD_NEEDLES = ("egion", "EGION", "vailabilityZone", "VAILABILITYZONE")


def region_field_suspects(text: str) -> Iterator[int]:
    """Offsets in JSON text of region fields whose value may be unreadable (never a false no)."""
    for needle in _REGION_FIELD_NEEDLES:
        pos = text.find(needle)
        while pos != -1:
            m = REGION_FIELD_TAIL_RE.match(text, pos)
            if m is not None and suspect_region_value(m):
                yield pos
            pos = text.find(needle, pos + 1)


def suspect_region_value(m: re.Match) -> bool:
    """Can this REGION_FIELD_TAIL_RE match be an unreadable region field? Never a false no."""
    text, literal, other = m.groups()
    if literal is not None:
        return False
    if other is not None:
        return True  # a list, an object or a number: read it
    return text not in ("", "true", "false", "True", "False") and not is_region(text)


def unreadable_region_fields(value: Any, memo: dict, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every region field (`peerRegion`, `replicaRegions`, `destinationRegion`,
    `availabilityZone` ... REGION_KEY_SUFFIXES) whose value is set but is not a region or an AZ
    name: a template, an expression, `global`. Flags (`multiRegion: true`) are not region
    fields. Policy documents (`Statement`) are not
    entered: their region conditions restrict, they direct nothing. The resource's own top-level
    `region` is its placement (the placement rules judge it). `memo` caches, per tuple of dict
    keys, whether any of them is a region field."""
    if isinstance(value, dict):
        keys = tuple(value)
        has = memo.get(keys)
        if has is None:
            has = memo[keys] = any(isinstance(k, str) and k.lower().endswith(REGION_KEY_SUFFIXES) for k in keys)
        for k, v in value.items():
            if k == "Statement":
                continue
            sub = f"{path}.{k}" if path else str(k)
            if has and isinstance(k, str) and k.lower().endswith(REGION_KEY_SUFFIXES) and sub != "region":
                for i, item in enumerate(v) if isinstance(v, list) else ((None, v),):
                    if item is None or item == "" or isinstance(item, (dict, list, Secret, bool)) or is_region(item):
                        continue
                    if isinstance(item, str) and item.lower() in ("true", "false"):
                        continue  # a flag (`multiRegion`), judged by the rule of its construct
                    yield (sub if i is None else f"{sub}[{i}]"), item
            if isinstance(v, (dict, list)):
                yield from unreadable_region_fields(v, memo, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                yield from unreadable_region_fields(v, memo, f"{path}[{i}]")


def regional_references(path: str, value: str) -> Iterator[tuple[str, str]]:
    """(kind, region) for every regional reference in one string leaf.

    Kinds: `arn`, `endpoint_service`, `hostname`, `region_field`. Region-less ARNs (S3, IAM,
    CloudFront, Route 53) carry no region and yield nothing; wildcard regions are not regions.
    """
    key = last_key(path).lower()
    if key.endswith(REGION_KEY_SUFFIXES):
        region = region_of(value)
        if region:
            yield "region_field", region
            return
    if "arn:" in value:
        for m in ARN_RE.finditer(value):
            region = m.group(3)
            if region and REGION_VALUE_RE.fullmatch(region):
                yield "arn", region
    if "com.amazonaws." in value:
        for m in ENDPOINT_SERVICE_RE.finditer(value):
            yield "endpoint_service", m.group(1)
    if "." in value:
        for m in HOSTNAME_RE.finditer(value):
            yield "hostname", m.group(1)


def policy_fields(props: dict, parse=parse_document) -> Iterator[tuple[str, dict]]:
    """(field, document) of a resource's policy documents: in its policy-ish top-level fields
    (`policy`, `assumeRolePolicy`, `inlinePolicies`, `accessPolicies`, `policyDocument`,
    `content` …). Prefer engine.Facts.policy_docs, which parses each document once."""
    for key, value in props.items():
        k = key.lower()
        if "polic" in k or k == "content":
            for doc in policy_documents(value, parse):
                yield key, doc


def policy_documents(value: Any, parse=parse_document) -> Iterator[dict]:
    """Every IAM-style policy document (a dict with `Statement`) inside a value, at any depth,
    including documents stored as JSON strings."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield value
            return
        for v in value.values():
            yield from policy_documents(v, parse)
    elif isinstance(value, list):
        for v in value:
            yield from policy_documents(v, parse)
    elif isinstance(value, str) and len(value) > 1 and value[0] == "{" and "Statement" in value:
        doc = parse(value)
        if doc is not None:
            yield from policy_documents(doc, parse)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(doc: dict) -> list[dict]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def action_grants(pattern: Any, actions: tuple[str, ...]) -> bool:
    """Whether an IAM Action pattern (wildcards allowed) covers any of `actions`."""
    return isinstance(pattern, str) and _action_grants(pattern.lower(), actions)


@functools.lru_cache(maxsize=8192)
def _action_grants(pattern: str, actions: tuple[str, ...]) -> bool:
    # Policies repeat a handful of action patterns: each is matched once.
    return any(fnmatch.fnmatchcase(a, pattern) for a in actions)


def normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def type_chain(urn: str) -> list[str]:
    """The parent type chain an engine URN carries (`a$b$c` -> [a, b, c])."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []
