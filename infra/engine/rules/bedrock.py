"""Rule class 5: Amazon Bedrock (ZM+), driven by the catalog's zm_plus section, and model
invocation logging (required in a ZM+ stack's home region, to buckets inside the geography).

Profiles are `<geo>.<model>`; a geography's own prefix comes from stacks/catalog.yaml
(`zm_plus.profile_prefix`). `global.` profiles and region-less foundation-model ARNs route to any
commercial region and are never allowed (residency-facts.md §2, §2.2).
"""

from __future__ import annotations

import re

from infra.engine.model import Resource
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, get_path, is_secret, region_verdict, rule
from infra.engine.rules.replication import bucket_region
from infra.engine.rules.patterns import as_list

BEDROCK_TYPES = ("aws:bedrock/", "aws:bedrockmodel/", "aws:bedrockagent/", "aws:bedrockagentcore/")
# One C-speed scan decides whether a resource can involve Bedrock at all.
_HINT_RE = re.compile(r"bedrock|Bedrock|\.(?:" + "|".join(P.BEDROCK_VENDORS) + r")\.")
_MANAGED_RE = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(?:service-role/)?AmazonBedrock\w*")
_ENDPOINT_RE = re.compile(r"^com\.amazonaws\.[a-z0-9-]+\.bedrock")
_VENDOR_DOT_RE = re.compile(rf"\.(?:{'|'.join(P.BEDROCK_VENDORS)})\.")


def _is_bedrock_type(type_: str) -> bool:
    return type_.startswith(BEDROCK_TYPES)


def _hinted(res: Resource, scope: Scope) -> bool:
    return _is_bedrock_type(res.type) or _HINT_RE.search(scope.facts(res).scan_text) is not None


# Policies that can grant Bedrock actions: identity policies and Bedrock's own resources and
# endpoints. Other services' resource policies (an S3 endpoint's default `"Action": "*"`, a bucket
# or key policy) only govern their own service.
_GRANTING_TYPES = ("aws:iam/", "aws:ssoadmin/") + BEDROCK_TYPES


def _can_grant_bedrock(res: Resource, props) -> bool:
    if res.type.startswith(_GRANTING_TYPES):
        return True
    if res.type == "aws:ec2/vpcEndpoint:VpcEndpoint":
        service = props.get("serviceName")
        return not isinstance(service, str) or bool(_ENDPOINT_RE.match(service))
    return False


def _allow_statements(res: Resource, scope: Scope):
    facts = scope.facts(res)
    if not _can_grant_bedrock(res, facts.props):
        return
    for _, doc in facts.policy_docs:
        for st in P.statements(doc):
            if str(st.get("Effect", "Allow")) == "Allow":
                yield st


def _grants_invoke(st: dict) -> bool:
    if "NotAction" in st:
        return not any(P.action_grants(a, P.BEDROCK_INVOKE_ACTIONS) for a in as_list(st["NotAction"]))
    return any(P.action_grants(a, P.BEDROCK_INVOKE_ACTIONS) for a in as_list(st.get("Action")))


def _managed_policies(res: Resource, scope: Scope) -> list[str]:
    """AWS-managed Bedrock policy ARNs in the properties (the raw span prescreens)."""
    facts = scope.facts(res)
    if _MANAGED_RE.search(facts.scan_text) is None:
        return []
    return _MANAGED_RE.findall(facts.text)


def _uses(res: Resource, scope: Scope) -> list[str]:
    """What makes this resource Bedrock use (empty: none)."""
    if not _hinted(res, scope):
        return []
    props = scope.facts(res).props
    uses = []
    if _is_bedrock_type(res.type):
        uses.append(f"is a Bedrock resource ({res.type})")
    if any(_grants_invoke(st) and "bedrock" in str(st.get("Action", st.get("NotAction", ""))).lower()
           for st in _allow_statements(res, scope)):
        uses.append("grants Bedrock invoke permissions")
    managed = _managed_policies(res, scope)
    if managed:
        uses.append(f"attaches {', '.join(sorted(set(managed)))}")
    service = props.get("serviceName")
    if isinstance(service, str) and _ENDPOINT_RE.match(service):
        uses.append(f"is a Bedrock VPC endpoint ({service})")
    ids = sorted({f"{m.group(1)}.{m.group(2)}" for m in P.PROFILE_ID_RE.finditer(scope.facts(res).text)})
    if ids:
        uses.append(f"references Bedrock model profile(s) {', '.join(ids[:3])}")
    return uses


@rule("RSD-040", "bedrock_requires_zm_plus", "Bedrock use in a stack without the zm_plus option", "CRITICAL",
      rationale="""Only ZM+ stacks may send prompts to Amazon Bedrock. In a ZMO-only or Federated
      stack, any Bedrock resource, invoke permission, managed Bedrock policy, Bedrock VPC endpoint
      or model reference opens a processing path the stack's options do not declare.""",
      remediation="Remove the Bedrock resource/permission, or enable zm_plus for this stack (where the catalog offers it).",
      category="bedrock", types=("*",), gates=("bedrock",), when=lambda ctx: not ctx.has("zm_plus"),
      stack_key="ai-companion:options")
def bedrock_requires_zm_plus(res: Resource, scope: Scope):
    if scope.ctx.has("zm_plus"):
        return
    for use in _uses(res, scope):
        yield f"{use}, but the stack's options ({', '.join(scope.ctx.options)}) do not include zm_plus"


def _wildcard_resource(value) -> str | None:
    if not isinstance(value, str):
        return None
    if value == "*":
        return "Resource '*'"
    m = P.BEDROCK_ARN_RE.match(value)
    if m and ("*" in m.group(2) or "?" in m.group(2)):
        return f"wildcard region in {value}"
    return None


@rule("RSD-041", "bedrock_invoke_scoped", "Bedrock invoke permission on '*' or a wildcard region", "HIGH",
      rationale="""`bedrock:InvokeModel*` (and Converse) on Resource "*" or on
      `arn:aws:bedrock:*:...` lets the principal call any model or profile in any region,
      including global. and other geographies' profiles.""",
      remediation="""Grant invoke on the geography's profile ARN in the home region and on the
      foundation-model ARNs of its catalogued destination regions only, conditioned on
      bedrock:InferenceProfileArn.""",
      category="bedrock", types=("*",), gates=("policy", "bedrock"))
def bedrock_invoke_scoped(res: Resource, scope: Scope):
    for st in _allow_statements(res, scope):
        if not _grants_invoke(st):
            continue
        sid = f" (Sid {st['Sid']})" if st.get("Sid") else ""
        if "NotResource" in st:
            yield f"Allow with NotResource grants Bedrock invoke on everything else{sid}"
            continue
        for value in as_list(st.get("Resource")):
            why = _wildcard_resource(value)
            if why:
                yield f"grants Bedrock invoke on {why}{sid}"
    for arn in sorted(set(_managed_policies(res, scope))):
        yield f"{arn} grants Bedrock actions on Resource '*'"


def _profile_verdict(prefix: str, model: str, scope: Scope) -> str | None:
    geo = scope.ctx.geography
    own = geo.zm_plus.profile_prefix if geo.zm_plus else None
    pid = f"{prefix}.{model}"
    if prefix == "global":
        return f"{pid} is a global. profile: it routes to any commercial region"
    if prefix != own:
        owner = scope.ctx.get_catalog().geography_of_profile_prefix(prefix)
        where = f"the {owner.code} geography" if owner else f"the '{prefix}.' geography"
        return f"{pid} is a profile of {where}, not {geo.code}" + ("" if own else f" ({geo.code} has no Bedrock geography)")
    return None


def _may_route_outside(text: str, scope: Scope) -> bool:
    """One regex pass over the resource's text: is there any profile id of another geography, or
    a region-less foundation-model ARN? Only then are the values walked to name the paths."""
    geo = scope.ctx.geography
    own = geo.zm_plus.profile_prefix if geo.zm_plus else None
    # Every profile id is `<prefix>.<vendor>.`: when each `.<vendor>.` follows the geography's own
    # prefix, no other profile is named (one search for dots, not a count per vendor).
    for m in _VENDOR_DOT_RE.finditer(text):
        start = m.start()
        if own is None or start < len(own) or not text.startswith(own, start - len(own)):
            if any(_profile_verdict(m.group(1), m.group(2), scope) for m in P.PROFILE_ID_RE.finditer(text)):
                return True
            break
    return ":::foundation-model" in text


@rule("RSD-042", "bedrock_model_in_geography", "Bedrock model or inference profile outside the geography",
      "CRITICAL",
      rationale="""A geographic profile (`eu.`, `us.` …) routes within its geography only; another
      geography's profile, a `global.` profile or a region-less foundation-model ARN
      (`arn:aws:bedrock:::foundation-model/…`, used by global profiles) processes prompts
      elsewhere. Explicit Deny statements of policy documents are not read: they restrict.""",
      remediation="Use the catalog's profile ids for this geography (`residency models --stack S` lists them).",
      category="bedrock", types=("*",), gates=("bedrock",))
def bedrock_model_in_geography(res: Resource, scope: Scope):
    if not _hinted(res, scope) or not _may_route_outside(scope.facts(res).scan_text, scope):
        return
    # Deny statements name global profiles and other regions to forbid them: not a use.
    for path, value, denied in scope.facts(res).walked:
        if denied or not isinstance(value, str):
            continue
        for m in P.PROFILE_ID_RE.finditer(value):
            verdict = _profile_verdict(m.group(1), m.group(2), scope)
            if verdict:
                yield f"{path}: {verdict}"
        for m in P.BEDROCK_ARN_RE.finditer(value):
            if m.group(2) == "" and m.group(4).startswith("foundation-model/"):
                yield f"{path}: region-less foundation-model ARN {m.group(0)} (global routing)"


@rule("RSD-043", "bedrock_application_profile_in_geography",
      "Application inference profile copied from a profile outside the geography", "CRITICAL",
      rationale="""An application inference profile inherits the routing of the model or profile
      it is copied from (`modelSource.copyFrom`; a live scan sees its destination `models`
      instead); copying another geography's or a global profile routes outside. An unknown or
      secret source cannot be proven inside.""",
      remediation="Copy from the geography's own system profile (home region ARN) or an in-region foundation model.",
      category="bedrock", types=("aws:bedrock/inferenceProfile:InferenceProfile",), fails_closed=True)
def bedrock_application_profile_in_geography(res: Resource, scope: Scope):
    props = res.props
    source = get_path(props, "modelSource", "copyFrom")
    if source in (None, "") and not is_secret(source):
        # The Bedrock API does not return what an application profile was copied from; its
        # `models` (one foundation-model ARN per destination region) say where it routes.
        models = [m.get("modelArn") if isinstance(m, dict) else m for m in as_list(props.get("models"))]
        if models:
            for i, arn in enumerate(models):
                yield from _source_verdicts(arn, f"models[{i}].modelArn", scope)
            return
    yield from _source_verdicts(source, "modelSource.copyFrom", scope)


def _source_verdicts(source, where: str, scope: Scope):
    if is_secret(source) or source in (None, ""):
        yield f"{where} is " + ("a secret" if is_secret(source) else "not known") + ": cannot be verified"
        return
    arn = P.parse_arn(source)
    if arn is None:
        yield f"{where} {source!r} is not an ARN whose region can be checked"
        return
    _, _, region, _, resource = arn
    if not region:
        yield f"{where} {source} has no region (global routing)"
    else:
        verdict = region_verdict(region, scope)
        if verdict:
            yield f"{where} {source}: {verdict}"
    m = P.PROFILE_ID_RE.search(resource)
    if m:
        verdict = _profile_verdict(m.group(1), m.group(2), scope)
        if verdict:
            yield f"{where}: {verdict}"


@rule("RSD-044", "bedrock_guardrail_no_cross_region", "Guardrail with a cross-Region guardrail profile", "HIGH",
      rationale="""A guardrail profile (`crossRegionConfig`, e.g. `us.guardrail.v1:0`) evaluates
      prompts in other regions of its geography set; the catalog does not record its destinations,
      so it cannot be proven inside.""",
      remediation="Leave crossRegionConfig unset.",
      category="bedrock", types=("aws:bedrock/guardrail:Guardrail",), fails_closed=True)
def bedrock_guardrail_no_cross_region(res: Resource, scope: Scope):
    conf = res.props.get("crossRegionConfig")
    if conf:
        profile = conf.get("guardrailProfileIdentifier") if isinstance(conf, dict) else conf
        yield f"crossRegionConfig is set ({profile})"



LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"


def _one(value):
    """A nested block: an object, or a one-element list in older state."""
    return value[0] if isinstance(value, list) and value else value


def _log_buckets(conf: dict):
    """(where, bucket name) of a loggingConfig's S3 destinations."""
    s3 = _one(conf.get("s3Config"))
    if s3:
        yield "loggingConfig.s3Config.bucketName", s3.get("bucketName") if isinstance(s3, dict) else s3
    cw = _one(conf.get("cloudwatchConfig"))
    large = _one(cw.get("largeDataDeliveryS3Config")) if isinstance(cw, dict) else None
    if large:
        yield ("loggingConfig.cloudwatchConfig.largeDataDeliveryS3Config.bucketName",
               large.get("bucketName") if isinstance(large, dict) else large)


def _log_bucket_verdict(name, scope: Scope) -> str | None:
    if is_secret(name) or not isinstance(name, str) or not name:
        return "is a secret and cannot be verified" if is_secret(name) else "is not known"
    found, region = bucket_region(name, scope)
    if not found:
        if not scope.complete:
            return None  # a fragment proves nothing; the stack-wide check decides
        return f"bucket {name} is not in this stack: its region cannot be proven"
    verdict = region_verdict(region, scope)
    return f"bucket {name}: {verdict}" if verdict else None


def _logging_missing(scope: Scope):
    """No logging configuration at all in a zm_plus stack's home region."""
    home = scope.ctx.geography.home_region
    # The live scanner records absence itself (a configuration with no loggingConfig) in the home
    # region it scanned; a home region it did not scan proves nothing.
    if not scope.ctx.has("zm_plus") or scope.snapshot.source == "live":
        return
    if not any(r.type == LOGGING and r.region == home for r in scope.snapshot.resources):
        yield LOGGING, f"no model invocation logging configuration in {home}, the home region of a zm_plus stack"


@rule("RSD-045", "bedrock_invocation_logging_in_geography",
      "Bedrock model invocation logging off, missing, or to a bucket outside the geography", "HIGH",
      rationale="""A ZM+ stack must log every model invocation in its home region, to destinations
      in the geography. Logging off (no S3 or CloudWatch destination) or absent leaves prompts
      unaudited. Invocation logs hold prompts and responses: their S3 buckets (`s3Config`, and
      `cloudwatchConfig.largeDataDeliveryS3Config`) are resolved through the bucket resource in
      the stack, and one that cannot be resolved cannot be proven inside. A CloudWatch log group
      is in the configuration's own region (Bedrock supports same-region destinations only).""",
      remediation="""Create `aws.bedrockmodel.InvocationLoggingConfiguration` in the home region
      (BedrockAccess does) with an S3 and/or CloudWatch destination, writing to buckets of the
      same stack in the geography's regions.""",
      category="bedrock", types=(LOGGING,), graph=True, stack_check=_logging_missing, fails_closed=True,
      controls=("Prowler:bedrock_model_invocation_logging_enabled",))
def bedrock_invocation_logging_in_geography(res: Resource, scope: Scope):
    conf = res.props.get("loggingConfig")
    if is_secret(conf):
        yield "loggingConfig is a secret: its destinations cannot be verified"
        return
    conf = _one(conf)
    if not isinstance(conf, dict) or not (_one(conf.get("s3Config")) or _one(conf.get("cloudwatchConfig"))):
        if scope.ctx.has("zm_plus") and res.region == scope.ctx.geography.home_region:
            yield f"model invocation logging is off in {res.region}, the home region of a zm_plus stack"
        return
    for where, name in _log_buckets(conf):
        verdict = _log_bucket_verdict(name, scope)
        if verdict:
            yield f"{where}: {verdict}"
