"""Evidence timing: `residency evidence` (the console script) over long windows, against moto.

Puts N invocation-log records spread over the window into the stack's log group on moto's server
(127.0.0.1), answers CloudTrail LookupEvents with a canned page (moto 5.2.5 has none), and times
the console script reading 7, 30 and 90 days (one FilterLogEvents pager and one LookupEvents pager
per UTC day), then `residency report --stack eu` with no evidence. Prints wall time and the calls
that reached the server.

    .venv/bin/python benchmarks/evidence_window.py [--records 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import live_fixtures  # noqa: E402
from live_fixtures import shared_moto_server  # noqa: E402
from infra.program.bedrock_policy import LOG_STREAM, invocation_log_group  # noqa: E402

RECORD = json.loads((ROOT / "tests" / "fixtures" / "evidence" / "invocation-log.json").read_text())
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
       "RESIDENCY_PROJECT_DIR": str(ROOT / "tests" / "fixtures" / "stacks")}


def populate(server, records: int, end: datetime) -> None:
    logs = server.client("logs")
    group = invocation_log_group()
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=LOG_STREAM)
    # moto refuses events older than 14 days, like CloudWatch Logs: spread them over the last 13.
    step = timedelta(days=13) / records
    events = []
    for i in range(records):
        when = end - timedelta(hours=1) - step * i
        record = dict(RECORD, requestId=f"r{i}", timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      inferenceRegion=("eu-west-1", "eu-central-1", "eu-north-1")[i % 3])
        events.append({"timestamp": int(when.timestamp() * 1000), "message": json.dumps(record)})
    events.sort(key=lambda e: e["timestamp"])
    for i in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=LOG_STREAM, logEvents=events[i:i + 5000])


def timed(argv: list[str], server) -> tuple[float, int, int]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **ENV, "AWS_ENDPOINT_URL": server.url}
    with server.recording() as calls:
        start = time.perf_counter()
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "residency"), *argv], env=env, capture_output=True,
                              text=True, timeout=600)
        elapsed = time.perf_counter() - start
    return elapsed, done.returncode, len(calls)


def main() -> int:
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("AWS_")}, AWS_DEFAULT_REGION="eu-central-1")
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    server = shared_moto_server()
    server.reset()
    live_fixtures.MISSING_IN_MOTO[("cloudtrail", "LookupEvents")] = {"Events": []}
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    populate(server, args.records, end)
    print(f"{args.records} invocation-log records over 13 days")
    for since in ("7d", "30d", "90d"):
        elapsed, rc, calls = timed(["evidence", "--stack", "eu", "--since", since, "--until", end.isoformat()], server)
        print(f"evidence --since {since}: {elapsed:.1f} s wall, exit {rc}, {calls} calls")
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, rc, _ = timed(["report", "--stack", "eu", "--output", f"{tmp}/eu.html"], server)
    print(f"report --stack eu: {elapsed:.1f} s wall, exit {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
