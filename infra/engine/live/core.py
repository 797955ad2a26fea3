"""Plumbing shared by every service scanner: clients, the read-only guard, faults and paging.

The scan must never pass by accident, so any failure while reading one unit (one service in one
region) -- an AWS error, a connection reset, a timeout, a body botocore cannot parse, or an
exception in our own mapping code -- is turned into one "not checked" entry for that unit (exit 3)
instead of being read as "nothing there", and the scan goes on with the next unit. After a
timeout or a refused/reset connection the rest of that unit is skipped (`UnitAbandoned`).
`ReadOnlyViolation` is never caught: it is a bug in this package, not an account condition.

Timeouts and retries are explicit (infra/engine/timeouts.py, `--connect-timeout/--read-timeout/--max-attempts`):
a dead or black-holed endpoint costs at most `max_attempts x (connect or read timeout)` plus the
standard retry mode's backoff per call, so seconds, not the minutes of botocore's defaults.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from botocore import exceptions as bx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from infra.program.config import StackConfig
from infra.engine.model import Resource
from infra.engine.timeouts import Timeouts

# Every operation the scanner may send, per botocore service name. The guard refuses anything
# else before the request is even built, so a modifying call cannot reach the account whatever a
# scanner does. All are List/Describe/Get/Head reads; tests/test_live_readonly.py checks that, and
# that nothing that returns secret material (GetSecretValue, GetPasswordData, ...) is in here.
ALLOWED_OPERATIONS: dict[str, frozenset[str]] = {
    "ec2": frozenset({
        "DescribeRegions", "DescribeVpcPeeringConnections", "DescribeTransitGatewayPeeringAttachments",
        "DescribeVpnConnections", "DescribeInternetGateways", "DescribeEgressOnlyInternetGateways",
        "DescribeNatGateways", "DescribeAddresses", "DescribeInstances", "DescribeSubnets",
        "DescribeRouteTables", "DescribeSecurityGroups", "DescribeVpcEndpoints", "DescribeClientVpnEndpoints",
        "DescribeVpcs", "DescribeNetworkAcls", "DescribeTransitGateways", "DescribeVpnGateways",
        "DescribeCustomerGateways", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions",
    }),
    "directconnect": frozenset({"DescribeConnections", "DescribeVirtualInterfaces"}),
    "dms": frozenset({"DescribeReplicationInstances"}),
    "eks": frozenset({"ListClusters", "DescribeCluster"}),
    # ListFunctions returns environment values: read on purpose (they configure where code sends data).
    "lambda": frozenset({"ListFunctions", "ListFunctionUrlConfigs", "GetPolicy"}),
    "apigateway": frozenset({"GetRestApis"}),
    "apigatewayv2": frozenset({"GetApis"}),
    "sns": frozenset({"ListTopics", "GetTopicAttributes", "ListSubscriptions"}),
    "sqs": frozenset({"ListQueues", "GetQueueAttributes"}),
    "events": frozenset({"ListEventBuses", "ListRules", "ListTargetsByRule", "ListApiDestinations"}),
    "rds": frozenset({"DescribeDBInstances", "DescribeDBClusters", "DescribeGlobalClusters"}),
    "opensearch": frozenset({"ListDomainNames", "DescribeDomains", "DescribeOutboundConnections"}),
    "redshift": frozenset({"DescribeClusters"}),
    "backup": frozenset({"ListBackupPlans", "GetBackupPlan"}),
    "organizations": frozenset({"DescribeOrganization", "ListParents", "ListPoliciesForTarget", "DescribePolicy",
                                "ListAccounts", "ListTagsForResource"}),  # the last two: --org discovery
    "elbv2": frozenset({"DescribeLoadBalancers"}),
    "elb": frozenset({"DescribeLoadBalancers"}),
    # Global edge services, read in their API home regions (edge.HOME_REGIONS) whatever the geography.
    "cloudfront": frozenset({"ListDistributions"}),
    "globalaccelerator": frozenset({"ListAccelerators"}),
    "s3control": frozenset({"ListMultiRegionAccessPoints", "GetPublicAccessBlock"}),
    "sts": frozenset({"GetCallerIdentity"}),  # the account id s3control and Organizations need
    "s3": frozenset({"ListBuckets", "GetBucketLocation", "GetBucketReplication", "HeadBucket"}),
    "kms": frozenset({"ListKeys", "DescribeKey"}),
    "iam": frozenset({"GetAccountAuthorizationDetails", "GetPolicy", "GetPolicyVersion"}),
    "bedrock": frozenset({
        "GetModelInvocationLoggingConfiguration", "ListInferenceProfiles", "GetInferenceProfile",
        "ListGuardrails", "GetGuardrail",
    }),
    "cloudwatch": frozenset({"ListMetrics"}),
    "network-firewall": frozenset({"ListRuleGroups", "DescribeRuleGroup"}),
    "route53resolver": frozenset({
        "ListFirewallDomainLists", "ListFirewallDomains", "ListFirewallRuleGroups", "ListFirewallRules",
    }),
    "logs": frozenset({"DescribeLogGroups", "DescribeSubscriptionFilters"}),
    "ecr": frozenset({"DescribeRegistry"}),
    "secretsmanager": frozenset({"ListSecrets", "DescribeSecret"}),
    "dynamodb": frozenset({"ListTables", "DescribeTable", "DescribeGlobalTable"}),
}



def register_reads(service: str, *operations: str) -> None:
    """Allow more reads: declared listings (sweep.DATA_LISTINGS) add their operations here, so
    the allow-list and the audit role's policy derive from the declarations."""
    ALLOWED_OPERATIONS[service] = ALLOWED_OPERATIONS.get(service, frozenset()) | frozenset(operations)


# Error codes by meaning (botocore/AWS service docs). Anything else is still "not checked".
ACCESS_DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException",
    "Forbidden", "AuthorizationError", "NotAuthorized", "AllAccessDisabled",
}
REGION_DISABLED = {
    "OptInRequired", "UnrecognizedClientException", "AuthFailure", "InvalidClientTokenId",
    "SubscriptionRequiredException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
}
THROTTLED = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "SlowDown",
    "RequestThrottled", "RequestThrottledException", "LimitExceededException", "EC2ThrottledException",
}
RETRIES = {"mode": "standard"}
_XML_ERROR_RE = re.compile(r"<Code>([^<]+)</Code>\s*<Message>([^<]*)</Message>")


class ReadOnlyViolation(RuntimeError):
    """The scanner tried an operation outside ALLOWED_OPERATIONS (a bug; never swallowed)."""


class MalformedAnswer(Exception):
    """A 2xx answer that is not what AWS sends: cut short, or not JSON where JSON is due.

    botocore reads an unparsable JSON body as `{"message": <body>}` and a short body as whatever
    arrived; either would read as "nothing there", a pass by accident.
    """


def _check_answer(http_response, model, **_: Any) -> None:
    """after-call: refuse a truncated body, or a non-JSON body from a JSON protocol."""
    if not 200 <= http_response.status_code < 300 or http_response.raw is None:  # None: botocore's Stubber
        return
    body = http_response.content or b""
    length = http_response.headers.get("content-length")
    encoded = http_response.headers.get("content-encoding", "identity") != "identity"  # length is of the wire form
    if length and length.isdigit() and int(length) != len(body) and not encoded and model.http.get("method") != "HEAD":
        raise MalformedAnswer(f"{model.name}: the answer was cut short ({len(body)} of {length} bytes)")
    if model.metadata.get("protocol") in ("json", "rest-json") and body.strip() and not model.has_streaming_output:
        try:
            json.loads(body)
        except ValueError:
            raise MalformedAnswer(f"{model.name}: the answer is not JSON: {body[:80]!r}") from None


class UnitAbandoned(Exception):
    """A unit's endpoint stopped answering (timeout, refused or reset): its remaining steps are
    skipped rather than each waiting out the same timeouts."""


# Faults after which the rest of a unit is not tried (each further call would cost the timeouts).
ABANDON_KINDS = {"timed out", "unreachable endpoint or connection reset"}


class NotChecked(NamedTuple):
    service: str
    region: str  # an AWS region, or "global" for IAM
    reason: str  # the first failure in the unit (and how many more steps failed after it)
    kind: str = "not checked"  # fault_kind(): what the summary groups by

    def __str__(self) -> str:
        return f"not checked: {self.service} in {self.region}: {self.reason}"


def _guard(service: str, operations: dict[str, frozenset[str]] = ALLOWED_OPERATIONS) -> Callable[..., None]:
    allowed = operations.get(service, frozenset())

    def before_parameter_build(model, **_: Any) -> None:
        if model.name not in allowed:
            raise ReadOnlyViolation(f"refusing {service}:{model.name}: only the listed reads are sent")

    return before_parameter_build


def _error_code(exc: ClientError) -> tuple[str, str]:
    """(code, message) of an AWS error, also when the body came in another protocol than expected."""
    err = exc.response.get("Error", {})
    code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
    message = " ".join(str(err.get("Message") or "").split())
    embedded = _XML_ERROR_RE.search(message) if code.isdigit() else None
    return (embedded.group(1), embedded.group(2)) if embedded else (code, message)


def fault_kind(exc: BaseException) -> str:
    """What kind of failure, in words a person groups by (the summary's "not checked" groups)."""
    if isinstance(exc, ClientError):
        code, _ = _error_code(exc)
        if code in ACCESS_DENIED or code == "403":
            return "access denied"
        if code in REGION_DISABLED:
            return "region not enabled or credentials not valid there"
        if code in THROTTLED:
            return "throttled beyond the retries"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return "service error (5xx)" if status >= 500 or code.startswith("5") else "AWS error"
    if isinstance(exc, (bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return "timed out"
    if isinstance(exc, (bx.ConnectionError, bx.ConnectionClosedError, OSError)) or \
            type(exc).__module__.startswith(("urllib3", "http.client")):
        return "unreachable endpoint or connection reset"
    if isinstance(exc, (ResponseParserError, bx.IncompleteReadError, MalformedAnswer)):
        return "unreadable answer (not an AWS response)"
    if isinstance(exc, BotoCoreError):
        return "client error"
    if isinstance(exc, (KeyError, TypeError, ValueError, AttributeError, IndexError)):
        return "unexpected answer shape, or a bug in the scanner"
    return "unexpected error in the scanner (a bug: please report it)"


def fault(exc: BaseException) -> str:
    """A one-line reason for a failed call: the error code or exception, and what it means."""
    if isinstance(exc, ClientError):
        code, message = _error_code(exc)
        return f"{code} on {exc.operation_name} ({fault_kind(exc)})" + (f": {message[:200]}" if message else "")
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__} ({fault_kind(exc)}): {text}"


def bucket_location(s3, bucket: str) -> str:
    loc = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    # Legacy values: None/"" is us-east-1, "EU" is eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)


def endpoint_configured(endpoint_url: str | None) -> bool:
    return bool(endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"))


def drop_account_label(request, **_: Any) -> None:
    """s3control sends to `<account id>.<endpoint host>`. That resolves on AWS's own hosts only; an
    emulator behind --endpoint-url (moto on 127.0.0.1) is one host routing by path, so there the
    account label is dropped before signing."""
    parts = urlsplit(request.url)
    label, _, rest = parts.netloc.partition(".")
    if len(label) == 12 and label.isdigit() and rest and ".amazonaws." not in rest:
        request.url = urlunsplit(parts._replace(netloc=rest))


class Clients:
    """One guarded client per (service, region), created on first use. `allowed` is the guard's
    allow-list (the live scan's by default; `residency preflight` passes its checks' own)."""

    def __init__(self, session, endpoint_url: str | None = None, timeouts: Timeouts = Timeouts(),
                 allowed: dict[str, frozenset[str]] = ALLOWED_OPERATIONS, user_agent: str = "residency-audit"):
        self.session = session
        self.endpoint_url = endpoint_url
        self.allowed = allowed
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()  # units run in threads; a boto3 session is not thread-safe
        s3 = {"addressing_style": "path"} if endpoint_configured(endpoint_url) else None
        self.config = Config(retries={**RETRIES, "mode": timeouts.retry_mode, "total_max_attempts": timeouts.max_attempts},
                             s3=s3,
                             connect_timeout=timeouts.connect, read_timeout=timeouts.read,
                             user_agent_extra=f"ai-companion-{user_agent}")

    def __call__(self, service: str, region: str):
        key = (service, region)
        with self._lock:
            return self._cache[key] if key in self._cache else self._create(key)

    def _create(self, key: tuple[str, str]):
        service, region = key
        kwargs = {"region_name": region, "config": self.config}
        if self.endpoint_url:  # else botocore honours AWS_ENDPOINT_URL itself
            kwargs["endpoint_url"] = self.endpoint_url
        client = self.session.client(service, **kwargs)
        client.meta.events.register("before-parameter-build", _guard(service, self.allowed))
        client.meta.events.register("after-call", _check_answer)
        if service == "s3control":
            client.meta.events.register("before-sign", drop_account_label)
        self._cache[key] = client
        return client


def pages(client, operation: str, **params) -> Iterator[dict]:
    """Every page of a list call: botocore's paginator when it has one, else NextToken loops."""
    if client.can_paginate(operation):
        yield from client.get_paginator(operation).paginate(**params)
        return
    method = getattr(client, operation)
    while True:
        page = method(**params)
        yield page
        token_key = next((k for k in ("NextToken", "nextToken") if page.get(k)), None)
        if token_key is None:
            return
        params = {**params, token_key: page[token_key]}


def tags_dict(tags: Any) -> dict:
    """AWS tag lists ([{Key, Value}] or [{key, value}]) or maps, as a plain dict."""
    if isinstance(tags, dict):
        return dict(tags)
    out = {}
    for t in tags or []:
        key = t.get("Key", t.get("key"))
        if key is not None:
            out[key] = t.get("Value", t.get("value", ""))
    return out


def prune(value: Any) -> Any:
    """Drop None members (Pulumi state omits unset inputs)."""
    if isinstance(value, dict):
        return {k: prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


@dataclass
class Scan:
    """State of one account scan: what was found and what could not be checked."""

    cfg: StackConfig
    clients: Clients
    regions: tuple[str, ...]
    progress: Callable[[str], None] = lambda _msg: None
    resources: dict[str, Resource] = field(default_factory=dict)
    order: dict[tuple[str, str], int] = field(default_factory=dict)  # planned units, for a stable report
    _failed: dict[tuple[str, str], list] = field(default_factory=dict)  # unit -> [first entry, later count]
    abandoned: set[tuple[str, str]] = field(default_factory=set)  # units whose endpoint stopped answering
    _bucket_regions: dict[str, str | None] = field(default_factory=dict)
    account: str = ""  # the scanned account's id, once a unit has read it (STS GetCallerIdentity)
    sweeping: bool = False  # the regions outside the geography are swept (sweep.py)
    sweep_regions: tuple[str, ...] = ()  # the enabled regions outside the geography
    lock: threading.Lock = field(default_factory=threading.Lock)  # units run in threads

    def for_region(self, service: str, region: str) -> "Unit":
        return Unit(self, service, region)

    def mark(self, service: str, region: str, reason: str, kind: str) -> None:
        """Record a unit as not checked: once per unit, whatever number of its steps failed."""
        key = (service, region)
        with self.lock:
            if kind in ABANDON_KINDS:
                self.abandoned.add(key)
            if key in self._failed:
                self._failed[key][1] += 1
            else:
                self._failed[key] = [NotChecked(service, region, reason, kind), 0]

    @property
    def not_checked(self) -> list[NotChecked]:
        """One entry per unit, in the planned order of the units (whichever thread failed first)."""
        keys = sorted(self._failed, key=lambda k: (self.order.get(k, len(self.order)), k))
        return [entry._replace(reason=f"{entry.reason} (and {more} more failed step(s))") if more else entry
                for entry, more in (self._failed[k] for k in keys)]


@dataclass
class Unit:
    """One service in one region ("global" for IAM): what each scanner function receives."""

    scan: Scan
    service: str
    region: str

    @property
    def cfg(self) -> StackConfig:
        return self.scan.cfg

    def client(self, service: str | None = None, region: str | None = None):
        region = region or (self.region if self.region != "global" else self.cfg.region)
        return self.scan.clients(service or self.service, region)

    def skip(self, what: str, exc: BaseException) -> None:
        self.scan.mark(self.service, self.region, f"{what}: {fault(exc)}", fault_kind(exc))

    def step(self, what: str) -> "_Step":
        """`with unit.step("VPN connections"):` records any failure inside as this unit not
        checked, and carries on with the unit's next step."""
        return _Step(self, what)

    def add(self, type_: str, rid: str, inputs: dict, *, outputs: dict | None = None, arn: str | None = None,
            name: str | None = None, region: str | None | bool = True) -> Resource:
        """Record a resource. `region=True` means the region it was found in; None for global ones."""
        where = self.region if region is True else region
        inputs = prune(inputs)
        if where:
            inputs["region"] = where
        urn = arn or f"live:{where or 'global'}:{type_}:{rid}"
        outputs = prune({**(outputs or {}), "id": rid, **({"arn": arn} if arn else {})})
        name = name or tags_dict(inputs.get("tags")).get("Name") or rid
        resource = Resource(urn=urn, type=type_, name=name, custom=True, id=rid, inputs=inputs, outputs=outputs)
        with self.scan.lock:
            existing = self.scan.resources.get(urn)
            if existing is not None:  # the same thing seen from two regions (peering, replicas): merge
                existing.inputs = {**resource.inputs, **existing.inputs}
                existing.outputs = {**resource.outputs, **existing.outputs}
                return existing
            self.scan.resources[urn] = resource
        return resource

    def bucket_region(self, bucket: str) -> str | None:
        """A bucket's region by GetBucketLocation (cached); None when it cannot be resolved."""
        cache = self.scan._bucket_regions
        if bucket not in cache:
            try:
                cache[bucket] = bucket_location(self.client("s3"), bucket)
            except ReadOnlyViolation:
                raise
            except Exception as exc:  # noqa: BLE001 -- unresolved: the rules fail closed on it
                cache[bucket] = None
                self.scan.progress(f"{self.service} {self.region}: bucket {bucket}: region unknown ({fault(exc)})")
        return cache[bucket]

    def add_bucket(self, bucket: str) -> Resource | None:
        """Record a referenced bucket with its resolved region, so rules can place a destination.

        An unresolvable bucket is not recorded: the rules then cannot prove where the data goes
        and report it (fail closed).
        """
        region = self.bucket_region(bucket)
        if region is None:
            return None
        return self.add("aws:s3/bucket:Bucket", bucket, {"bucket": bucket}, arn=f"arn:{self.partition}:s3:::{bucket}",
                        region=region)

    @property
    def partition(self) -> str:
        return self.cfg.geography.partition


class _Step:
    def __init__(self, unit: Unit, what: str):
        self.unit, self.what = unit, what

    def __enter__(self) -> "_Step":
        if (self.unit.service, self.unit.region) in self.unit.scan.abandoned:
            raise UnitAbandoned(f"{self.what}: not tried, the endpoint stopped answering")  # ends the unit
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, Exception) and not isinstance(exc, ReadOnlyViolation):
            self.unit.skip(self.what, exc)
            return True
        return False


def camel(value: Any) -> Any:
    """AWS PascalCase members as pulumi-aws camelCase (RulesSourceList -> rulesSourceList, ID -> id)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k[:-2] + "Id" if k.endswith("ID") and len(k) > 2 else k
            key = "id" if key == "ID" else key[:1].lower() + key[1:]
            out[key] = camel(v)
        return out
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value
