"""`residency evidence`: where the stack's Bedrock requests were processed.

The records are shaped like AWS's documented examples (tests/fixtures/evidence/README.md says
which). The console-script tests run `.venv/bin/residency` against moto's server on 127.0.0.1:
CloudWatch Logs is moto's own (put_log_events / FilterLogEvents); moto 5.2.5 has no CloudTrail
LookupEvents, so the server answers it with a canned page (live_fixtures.MISSING_IN_MOTO, the
same mechanism the live-scan tests use). Paging over several pages, resuming after a fault and
the read-only guard are tested in-process with botocore's Stubber on real clients.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

import live_fixtures
from cli_run import residency
from infra import cli
from infra.commands import evidence as evidence_cmd
from infra.engine import evidence
from infra.engine.live.core import ReadOnlyViolation
from infra.program.bedrock_policy import LOG_STREAM, invocation_log_group
from live_fixtures import aws_env, moto  # noqa: F401

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "evidence"
TRAIL_EXAMPLE = json.loads((FIXTURES / "cloudtrail-invoke-model.json").read_text())
LOG_EXAMPLE = json.loads((FIXTURES / "invocation-log.json").read_text())
SONNET_EU = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU_EU = "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
GROUP = invocation_log_group()
# The window of every test ends here: a fixed hour, recent enough for moto's log retention checks.
END = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
UNTIL = END.isoformat()


def at(hours_ago: float) -> datetime:
    return END - timedelta(hours=hours_ago)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def trail_event(request_id: str, when: datetime, model: str = SONNET_EU, processed: str | None = "eu-west-1",
                error: str | None = None) -> dict:
    """A LookupEvents entry: the documented record, as the JSON string CloudTrailEvent."""
    record = copy.deepcopy(TRAIL_EXAMPLE)
    record.update(eventTime=iso(when), requestID=request_id, eventID=f"e-{request_id}")
    record["requestParameters"]["modelId"] = model
    if processed is None:
        record.pop("additionalEventData")
    else:
        record["additionalEventData"]["inferenceRegion"] = processed
    if error:
        record["errorCode"] = error
    return {"EventId": record["eventID"], "EventName": record["eventName"], "EventTime": when,
            "EventSource": record["eventSource"], "CloudTrailEvent": json.dumps(record)}


def log_record(request_id: str, when: datetime, model: str = SONNET_EU, processed: str = "eu-west-1") -> dict:
    record = copy.deepcopy(LOG_EXAMPLE)
    record.update(timestamp=iso(when), requestId=request_id, modelId=model, inferenceRegion=processed)
    return {"timestamp": int(when.timestamp() * 1000), "message": json.dumps(record)}


# --- the records as AWS writes them -------------------------------------------------------------

def test_the_documented_cloudtrail_example_names_its_processing_region():
    request = evidence.from_cloudtrail({"CloudTrailEvent": json.dumps(TRAIL_EXAMPLE)})
    assert (request.model, request.source_region, request.processed_in) == (SONNET_EU, "eu-central-1", "eu-west-1")
    assert request.request_id == TRAIL_EXAMPLE["requestID"] and not request.refused


def test_the_documented_invocation_log_example_names_its_processing_region():
    request = evidence.from_invocation_log(json.dumps(LOG_EXAMPLE))
    assert (request.model, request.source_region, request.processed_in) == (SONNET_EU, "eu-central-1", "eu-west-1")


def test_a_foundation_model_call_is_processed_where_it_was_sent_and_a_profile_call_must_say():
    in_region = dict(TRAIL_EXAMPLE, requestParameters={"modelId": "arn:aws:bedrock:eu-central-1::foundation-model/x"})
    in_region.pop("additionalEventData")
    assert evidence.from_cloudtrail(in_region).processed_in == "eu-central-1"
    unstated = dict(TRAIL_EXAMPLE)
    unstated.pop("additionalEventData")
    assert evidence.from_cloudtrail(unstated).processed_in == evidence.UNSTATED


def test_other_bedrock_events_are_not_requests():
    assert evidence.from_cloudtrail(dict(TRAIL_EXAMPLE, eventName="ListFoundationModels")) is None
    assert evidence.from_cloudtrail(dict(TRAIL_EXAMPLE, eventSource="s3.amazonaws.com")) is None


def test_a_request_in_both_records_counts_once_and_is_confirmed():
    t = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    trail = evidence.from_cloudtrail(trail_event("r1", t, processed=None))
    log = evidence.from_invocation_log(log_record("r1", t)["message"])
    [merged] = evidence.merge([trail, log])
    assert merged.processed_in == "eu-west-1" and merged.sources == {evidence.TRAIL, evidence.LOG}


def test_day_windows_cut_at_utc_midnight():
    start = datetime(2026, 12, 1, 18, tzinfo=timezone.utc)
    windows = list(evidence.day_windows(start, start + timedelta(hours=30)))
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == [
        ("2026-12-01T18:00:00+00:00", "2026-12-02T00:00:00+00:00"),
        ("2026-12-02T00:00:00+00:00", "2026-12-03T00:00:00+00:00")]


def test_the_clients_refuse_anything_but_the_two_reads():
    client = evidence.make_client(boto3.Session(aws_access_key_id="x", aws_secret_access_key="x"), "logs",
                                  "eu-central-1", "http://127.0.0.1:9")
    with pytest.raises(ReadOnlyViolation, match="refusing logs:DeleteLogGroup"):
        client.delete_log_group(logGroupName=GROUP)


# --- the console script against moto ------------------------------------------------------------

def put_logs(server, records: list[dict], group: str = GROUP) -> None:
    logs = server.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=LOG_STREAM)
    if records:
        logs.put_log_events(logGroupName=group, logStreamName=LOG_STREAM,
                            logEvents=sorted(records, key=lambda e: e["timestamp"]))


@pytest.fixture
def trail(monkeypatch):
    """What the server answers to CloudTrail LookupEvents (one page)."""
    def answer(events: list[dict]) -> None:
        page = {"Events": [dict(e, EventTime=e["EventTime"].timestamp()) for e in events]}
        monkeypatch.setitem(live_fixtures.MISSING_IN_MOTO, ("cloudtrail", "LookupEvents"), page)
    return answer


def run_evidence(server, *argv: str):
    return residency("evidence", "--stack", "eu", "--since", "3d", "--until", UNTIL, *argv,
                     AWS_ENDPOINT_URL=server.url)


def test_every_request_inside_the_geography_exits_0(moto, trail):  # noqa: F811
    trail([trail_event("r1", at(2)), trail_event("r2", at(30), HAIKU_EU, "eu-north-1"),
           trail_event("r3", at(5), error="AccessDeniedException")])
    put_logs(moto, [log_record("r1", at(2)), log_record("r2", at(30), HAIKU_EU, "eu-north-1"),
                    log_record("r4", at(50), processed="eu-central-1")])
    result = run_evidence(moto)
    assert result.rc == 0, result.out + result.err
    assert "every request recorded was processed inside EU" in result.out
    assert "refused (processed nowhere): 1 request(s): AccessDeniedException x1" in result.out
    assert "FINDING" not in result.out and result.err == ""
    doc = json.loads(run_evidence(moto, "--format", "json").out)
    assert sorted((r["model"], r["processed_in"], r["requests"], r["in_both_records"]) for r in doc["processed"]) == [
        (HAIKU_EU, "eu-north-1", 1, 1), (SONNET_EU, "eu-central-1", 1, 0), (SONNET_EU, "eu-west-1", 1, 1)]


def test_a_request_processed_outside_the_geography_exits_1(moto, trail):  # noqa: F811
    trail([trail_event("r1", at(2))])
    put_logs(moto, [log_record("r1", at(2)), log_record("r9", at(26), processed="us-east-1")])
    result = run_evidence(moto, "--format", "json")
    assert result.rc == 1, result.out + result.err
    doc = json.loads(result.out)
    assert doc["complete"] and len(doc["findings"]) == 1
    assert f"{SONNET_EU}: 1 request(s) processed in us-east-1, outside EU" in doc["findings"][0]
    assert {(r["processed_in"], r["in_geography"]) for r in doc["processed"]} == {("eu-west-1", True),
                                                                                 ("us-east-1", False)}


def test_records_that_cannot_be_read_exit_3(moto, trail):  # noqa: F811
    trail([trail_event("r1", at(2))])  # no invocation log group: the logs cannot be read
    result = run_evidence(moto)
    assert result.rc == 3, result.out + result.err
    assert "INCOMPLETE, not read: stack eu in eu-central-1" in result.err
    assert "FilterLogEvents failed: ResourceNotFoundException" in result.err and "Traceback" not in result.err
    assert "no Bedrock runtime requests recorded" not in result.out  # nothing read is not "nothing there"


def test_a_record_that_is_not_what_aws_writes_exits_3(moto, trail):  # noqa: F811
    trail([])
    put_logs(moto, [{"timestamp": int(at(2).timestamp() * 1000), "message": "not json"}])
    result = run_evidence(moto)
    assert result.rc == 3 and "NOT READ" in result.out and "JSONDecodeError" in result.err


def test_a_profile_request_whose_region_no_record_states_exits_3(moto, trail):  # noqa: F811
    trail([trail_event("r1", at(2), processed=None)])
    put_logs(moto, [])
    result = run_evidence(moto)
    assert result.rc == 3 and "1 inference-profile request(s) with no processing Region" in result.err
    assert "FINDING" not in result.out and "(OUTSIDE)" not in result.out  # not proven either way


def test_cloudtrail_of_every_source_region_named_is_read(moto, trail):  # noqa: F811
    trail([trail_event("r1", at(2))])  # the canned page answers both Regions: one request, counted once
    put_logs(moto, [log_record("r1", at(2))])
    with moto.recording() as calls:
        result = run_evidence(moto, "--regions", "eu-central-1,eu-west-1", "--format", "json")
    assert result.rc == 0, result.out + result.err
    assert {c.region for c in calls if c.operation == "LookupEvents"} == {"eu-central-1", "eu-west-1"}
    assert {c.operation for c in calls} == {"LookupEvents", "FilterLogEvents"}  # reads, nothing else
    doc = json.loads(result.out)
    assert doc["records"]["cloudtrail"] == "LookupEvents in eu-central-1, eu-west-1"
    assert [r["requests"] for r in doc["processed"]] == [1]


@pytest.mark.parametrize("argv, says", [
    (("--stack", "atlantis"), "unknown stack 'atlantis'"),
    (("--stack", "eu", "--regions", "eu-central-1,Frankfurt"), "--regions: Frankfurt is not a Region name"),
    (("--stack", "eu", "--since", "7x"), "--since: '7x' is not <n>d or <n>h"),
    (("--stack", "eu", "--since", "91d"), "over 90d, the most CloudTrail Event history keeps"),
    (("--stack", "eu", "--until", "yesterday"), "--until: 'yesterday' is not an ISO 8601 time"),
])
def test_bad_input_exits_2(aws_env, argv, says):  # noqa: F811
    result = residency("evidence", *argv, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.rc == 2 and says in result.err and "Traceback" not in result.err


def test_a_resume_file_of_another_window_is_bad_input(aws_env, tmp_path):  # noqa: F811
    checkpoint = tmp_path / "eu.json"
    checkpoint.write_text(json.dumps({"stack": "eu", "start": "2026-01-01T00:00:00+00:00", "end": UNTIL,
                                      "log_group": GROUP, "regions": ["eu-central-1"], "done_until": UNTIL,
                                      "tally": {}}))
    result = residency("evidence", "--stack", "eu", "--until", UNTIL, "--resume-file", str(checkpoint),
                       AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.rc == 2 and "is for another run (start differ: start '2026-01-01T00:00:00+00:00')" in result.err


def test_a_stack_without_zm_plus_has_nothing_to_read(aws_env):  # noqa: F811
    result = residency("evidence", "--stack", "sg", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.rc == 0 and "sg: no zm_plus" in result.out


# --- paging and resuming, with botocore's Stubber ---------------------------------------------

class Stubbed:
    """Real cloudtrail and logs clients (guarded like the command's) with a Stubber each."""

    def __init__(self):
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.cloudtrail = evidence.make_client(session, "cloudtrail", "eu-central-1", "http://127.0.0.1:9")
        self.logs = evidence.make_client(session, "logs", "eu-central-1", "http://127.0.0.1:9")
        self.trail_stub, self.logs_stub = Stubber(self.cloudtrail), Stubber(self.logs)

    def day(self, start: datetime, end: datetime, trail_pages: list[list[dict]], log_pages: list[list[dict]]):
        attrs = [{"AttributeKey": "EventSource", "AttributeValue": "bedrock.amazonaws.com"}]
        for i, events in enumerate(trail_pages):
            params = {"LookupAttributes": attrs, "StartTime": start, "EndTime": end}
            if i:
                params["NextToken"] = f"t{i}"
            page = {"Events": events, **({"NextToken": f"t{i + 1}"} if i + 1 < len(trail_pages) else {})}
            self.trail_stub.add_response("lookup_events", page, params)
        for i, events in enumerate(log_pages):
            params = {"logGroupName": GROUP, "startTime": int(start.timestamp() * 1000),
                      "endTime": int(end.timestamp() * 1000) - 1}
            if i:
                params["nextToken"] = f"l{i}"
            page = {"events": events, **({"nextToken": f"l{i + 1}"} if i + 1 < len(log_pages) else {})}
            self.logs_stub.add_response("filter_log_events", page, params)

    def activate(self, monkeypatch):
        self.trail_stub.activate()
        self.logs_stub.activate()
        clients = {"cloudtrail": self.cloudtrail, "logs": self.logs}
        monkeypatch.setattr(evidence_cmd, "make_client", lambda session, service, *a, **k: clients[service])


@pytest.fixture
def in_process(monkeypatch, aws_env, capsys):  # noqa: F811
    monkeypatch.setattr(cli, "COMMANDS", {"evidence": "infra.commands.evidence"})

    def run(stubbed: Stubbed, *argv: str):
        stubbed.activate(monkeypatch)
        rc = cli.main(["evidence", "--stack", "eu", *argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


DAY1 = datetime(2026, 11, 30, tzinfo=timezone.utc)
DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)


def test_every_page_of_both_records_is_read(in_process):
    s = Stubbed()
    s.day(DAY1, DAY2, [[trail_event("a", DAY1 + timedelta(hours=1))], [trail_event("b", DAY1 + timedelta(hours=2))]],
          [[log_record("a", DAY1 + timedelta(hours=1))], [log_record("c", DAY1 + timedelta(hours=3), processed="eu-west-3")]])
    rc, out, err = in_process(s, "--since", "1d", "--until", DAY2.isoformat(), "--format", "json")
    assert rc == 0, out + err
    s.trail_stub.assert_no_pending_responses()
    s.logs_stub.assert_no_pending_responses()
    rows = {(r["processed_in"], r["requests"], r["in_both_records"]) for r in json.loads(out)["processed"]}
    assert rows == {("eu-west-1", 2, 1), ("eu-west-3", 1, 0)}


def test_a_long_window_resumes_from_its_checkpoint(in_process, tmp_path):
    checkpoint = tmp_path / "resume.json"
    argv = ("--since", "2d", "--until", DAY3.isoformat(), "--resume-file", str(checkpoint), "--format", "json")
    first = Stubbed()
    first.day(DAY1, DAY2, [[trail_event("a", DAY1 + timedelta(hours=1))]], [[]])
    first.trail_stub.add_client_error("lookup_events", "ThrottlingException", "slow down", 400)
    rc, out, err = in_process(first, *argv)
    assert rc == 3 and f"{DAY2.date()}: LookupEvents failed: ThrottlingException" in err
    assert "rerun with --resume-file" in err
    saved = json.loads(checkpoint.read_text())
    assert saved["done_until"] == DAY2.isoformat()

    second = Stubbed()  # only day 2 is read again; day 1's count comes from the checkpoint
    second.day(DAY2, DAY3, [[trail_event("b", DAY2 + timedelta(hours=1), processed="ap-south-1")]], [[]])
    rc, out, err = in_process(second, *argv)
    assert rc == 1, out + err
    second.trail_stub.assert_no_pending_responses()
    doc = json.loads(out)
    assert [(r["day"], r["processed_in"]) for r in doc["processed"]] == [
        (str(DAY1.date()), "eu-west-1"), (str(DAY2.date()), "ap-south-1")]
    assert doc["findings"] == [f"{DAY2.date()} {SONNET_EU}: 1 request(s) processed in ap-south-1, "
                               f"outside EU ({', '.join(doc['regions'])})"]
