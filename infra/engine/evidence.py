"""Residency evidence: where the account's Bedrock requests were actually processed.

Two records AWS keeps in the account name the Region that processed each request:

- **CloudTrail** (Event history, `LookupEvents`): the Bedrock runtime calls (`eventSource`
  `bedrock.amazonaws.com`; `eventName` InvokeModel, InvokeModelWithResponseStream, Converse,
  ConverseStream) are recorded in the *source* Region, and a cross-Region inference call carries
  the Region that processed it in `additionalEventData.inferenceRegion`, beside
  `requestParameters.modelId` and the source Region `awsRegion`. Source: AWS Machine Learning blog,
  "Run Generative AI inference with Amazon Bedrock in Asia Pacific (New Zealand)", section
  "Auditing and monitoring" (https://aws.amazon.com/blogs/machine-learning/run-generative-ai-inference-with-amazon-bedrock-in-asia-pacific-new-zealand),
  whose example event is the shape tests/fixtures/evidence/ copies; event source from the
  EventBridge reference (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-bedrock.html);
  Event history without a trail from https://docs.aws.amazon.com/bedrock/latest/userguide/logging-using-cloudtrail.html.
  `LookupEvents` returns each event's full record as the JSON string `CloudTrailEvent`
  (botocore's cloudtrail service model); it looks up *management* events of the last 90 days, one
  lookup attribute per call, at most two calls a second per account and Region
  (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html). That the
  runtime calls are management events (in Event history without a data-event trail) is what
  public walkthroughs show (filtering Event history on `bedrock.amazonaws.com` / `InvokeModel`);
  we did not find it stated in AWS's own list, so it is taken as reported: where an account logs
  them only as data events, the invocation logs below still carry the Region.
- **Model invocation logs** (CloudWatch Logs, the stack's in-region group,
  infra/program/bedrock_policy.invocation_log_group; stream `aws/bedrock/modelinvocations`):
  one JSON record per call with `schemaType` "ModelInvocationLog", `timestamp`, `region` (source),
  `requestId`, `operation`, `modelId` and a top-level `inferenceRegion`. The record layout is the
  one on https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html ; the
  `inferenceRegion` field is listed by Panther's schema for these logs
  (https://docs.panther.com/data-onboarding/supported-logs/aws/bedrock-model-invocation, which
  cites that page) and read by public log parsers; we found no AWS page that prints it in an
  example record, so it is treated as reported, not verified.

A request is one `requestId`: seen in both records, it is counted once. Its processing Region is
the stated `inferenceRegion`; a call on a foundation model (no inference profile) is processed
in the Region it was sent to ("Your requests never leave the AWS Region you specify", Bedrock
user guide, cross-Region inference). A profile call whose records state no processing Region is
`UNSTATED`: not proven, so the run is incomplete (exit 3), never a pass. A refused call (the
record has an `errorCode`) processed nothing and is counted apart.

Reading is read-only (an operation allow-list guards every client), paginated, bounded by the
window, and done one UTC day at a time so that a long window can be resumed from a checkpoint.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from infra.engine.live.core import Clients
from infra.engine.timeouts import Timeouts

CLOUDTRAIL_SOURCE = "bedrock.amazonaws.com"
RUNTIME_EVENTS = frozenset({"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"})
LOOKUP_EVENTS_MAX_DAYS = 90  # CloudTrail Event history keeps 90 days (CloudTrail user guide)
UNSTATED = "unstated"
TRAIL, LOG = "cloudtrail", "invocation-log"
# Every operation evidence may send; anything else is refused before the request is built.
EVIDENCE_OPERATIONS: dict[str, frozenset[str]] = {
    "cloudtrail": frozenset({"LookupEvents"}),
    "logs": frozenset({"FilterLogEvents"}),
}
# Geographic inference-profile prefixes (residency-facts §2; catalog profile_prefix values).
PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "in.", "global.")


@dataclass(frozen=True)
class Request:
    """One Bedrock runtime request as the records tell it."""
    request_id: str
    time: datetime
    model: str  # the model or inference-profile id the caller named
    source_region: str
    processed_in: str  # a Region, or UNSTATED
    refused: str = ""  # the errorCode of a refused call
    sources: frozenset[str] = frozenset()


def _model_id(raw: str) -> str:
    """`arn:...:inference-profile/eu.x` or `arn:...:foundation-model/x` -> the id after the slash."""
    return raw.rsplit("/", 1)[-1] if raw.startswith("arn:") else raw


def is_profile(model: str) -> bool:
    return model.startswith(PROFILE_PREFIXES)


def _processed_in(stated: str | None, model: str, source_region: str) -> str:
    if stated:
        return stated
    return UNSTATED if is_profile(model) else source_region


def _time(value: Any) -> datetime:
    if isinstance(value, (int, float)):  # CloudWatch Logs: milliseconds since the epoch
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


def from_cloudtrail(event: dict) -> Request | None:
    """A LookupEvents entry (its `CloudTrailEvent` JSON) -> Request; None when not a runtime call."""
    record = json.loads(event["CloudTrailEvent"]) if "CloudTrailEvent" in event else event
    if record.get("eventSource") != CLOUDTRAIL_SOURCE or record.get("eventName") not in RUNTIME_EVENTS:
        return None
    model = _model_id(str((record.get("requestParameters") or {}).get("modelId") or ""))
    region = str(record.get("awsRegion") or "")
    stated = (record.get("additionalEventData") or {}).get("inferenceRegion")
    return Request(request_id=str(record.get("requestID") or record.get("eventID")), time=_time(record["eventTime"]),
                   model=model or "unknown", source_region=region,
                   processed_in=_processed_in(stated, model, region), refused=str(record.get("errorCode") or ""),
                   sources=frozenset({TRAIL}))


def from_invocation_log(message: str) -> Request | None:
    """A model invocation log record (the CloudWatch Logs message) -> Request."""
    record = json.loads(message)
    if record.get("schemaType", "ModelInvocationLog") != "ModelInvocationLog":
        return None
    model = _model_id(str(record.get("modelId") or ""))
    region = str(record.get("region") or "")
    return Request(request_id=str(record["requestId"]), time=_time(record["timestamp"]), model=model or "unknown",
                   source_region=region, processed_in=_processed_in(record.get("inferenceRegion"), model, region),
                   refused=str(record.get("errorCode") or ""), sources=frozenset({LOG}))


def merge(requests: Iterable[Request]) -> list[Request]:
    """One Request per requestId: a stated Region wins over UNSTATED; the sources add up."""
    by_id: dict[str, Request] = {}
    for r in requests:
        seen = by_id.get(r.request_id)
        if seen is None:
            by_id[r.request_id] = r
            continue
        best = r if seen.processed_in == UNSTATED and r.processed_in != UNSTATED else seen
        by_id[r.request_id] = Request(best.request_id, min(seen.time, r.time), best.model, best.source_region,
                                      best.processed_in, seen.refused or r.refused, seen.sources | r.sources)
    return sorted(by_id.values(), key=lambda r: (r.time, r.request_id))


# --- the tally ------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Counts per (day, model, processing Region), and the refused calls per (day, model)."""
    processed: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    confirmed: Counter = field(default_factory=Counter)  # requests seen in both records

    def add(self, requests: Iterable[Request]) -> None:
        for r in requests:
            day = r.time.date().isoformat()
            if r.refused:
                self.refused[(day, r.model, r.refused)] += 1
                continue
            self.processed[(day, r.model, r.processed_in)] += 1
            if len(r.sources) > 1:
                self.confirmed[(day, r.model, r.processed_in)] += 1

    def to_dict(self) -> dict:
        return {"processed": [[*k, n] for k, n in sorted(self.processed.items())],
                "refused": [[*k, n] for k, n in sorted(self.refused.items())],
                "confirmed": [[*k, n] for k, n in sorted(self.confirmed.items())]}

    @classmethod
    def from_dict(cls, raw: dict) -> "Tally":
        def counter(rows: list) -> Counter:
            return Counter({tuple(row[:-1]): int(row[-1]) for row in rows})

        return cls(counter(raw.get("processed", [])), counter(raw.get("refused", [])),
                   counter(raw.get("confirmed", [])))


# --- windows --------------------------------------------------------------------------------------

def day_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights: the unit of work and of the checkpoint."""
    cursor = start
    while cursor < end:
        midnight = datetime(cursor.year, cursor.month, cursor.day, tzinfo=timezone.utc) + timedelta(days=1)
        stop = min(midnight, end)
        yield cursor, stop
        cursor = stop


# --- reading --------------------------------------------------------------------------------------

def make_client(session, service: str, region: str, endpoint_url: str | None = None,
                timeouts: Timeouts = Timeouts()):
    """A client of the live scan's guarded kind (live.core.Clients: timeouts, standard retries, a
    check that every answer is whole), allowed only EVIDENCE_OPERATIONS: anything else raises
    ReadOnlyViolation before a request is built."""
    return Clients(session, endpoint_url, timeouts, allowed=EVIDENCE_OPERATIONS, user_agent="residency-evidence")(
        service, region)


def trail_requests(cloudtrail, start: datetime, end: datetime) -> Iterator[Request]:
    """Bedrock runtime calls recorded in [start, end), every page. Only one lookup attribute is
    allowed per call, so the event names are filtered here; so is the time, in case an answer
    strays outside the window."""
    paginator = cloudtrail.get_paginator("lookup_events")
    for page in paginator.paginate(LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": CLOUDTRAIL_SOURCE}],
                                   StartTime=start, EndTime=end):
        for event in page.get("Events", []):
            request = from_cloudtrail(event)
            if request is not None and start <= request.time < end:
                yield request


def log_requests(logs, log_group: str, start: datetime, end: datetime) -> Iterator[Request]:
    """Invocation log records in [start, end) (CloudWatch Logs times are milliseconds)."""
    paginator = logs.get_paginator("filter_log_events")
    # The group holds Bedrock's stream only (bedrock_policy.LOG_STREAM); not naming the stream keeps a group
    # without invocations yet an empty answer rather than a missing-stream error.
    for page in paginator.paginate(logGroupName=log_group,
                                   startTime=int(start.timestamp() * 1000), endTime=int(end.timestamp() * 1000) - 1):
        for event in page.get("events", []):
            request = from_invocation_log(event["message"])
            if request is not None and start <= request.time < end:
                yield request


def read_window(cloudtrails: list, logs, log_group: str, start: datetime, end: datetime) -> list[Request]:
    """Both records of one window (CloudTrail of every source Region read, the home region's
    invocation logs), merged per request. Any fault propagates: the caller marks the window not
    read (a window is never half counted)."""
    trail = [r for cloudtrail in cloudtrails for r in trail_requests(cloudtrail, start, end)]
    return merge([*trail, *log_requests(logs, log_group, start, end)])
