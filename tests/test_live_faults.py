"""Fault injection: `residency audit --live` against a local stand-in for AWS that fails on purpose.

A fault proxy on 127.0.0.1 (tests/fault_proxy.py) sits in front of moto's server and answers
chosen calls with 500+HTML, malformed XML or JSON, a truncated body, a reset connection, a
slow answer past the read timeout, throttling past the retries, or AccessDenied; everything
else is moto's planted account. The console script runs in a subprocess, as a user runs it. For
each fault, and several at once, the audit must finish within a bounded time, exit 3, name each
unit not checked exactly once (on stdout, never also on stderr), print no traceback, and still
report the findings of the units that did answer.

All cases run at once (one proxy each, one shared read-only moto account), so the suite costs
about one slow scan, not the sum of them.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cli_run import run_script
from fault_proxy import FaultProxy
from live_fixtures import (ACCOUNT, HOME, aws_env, hermetic_aws_env, moto, no_ecr_policies,  # noqa: F401  (fixtures)
                           shared_moto_server)

LIMITS = ["--read-timeout", "4", "--max-attempts", "2", "--connect-timeout", "2"]  # generous for a loaded CI box
BOUND_S = 45  # a generous guard against hangs, not a benchmark (benchmarks/ time the scan)

# One planted out-of-geography path per service that answers in every case but its own (the
# default VPC's public subnets are ec2's): each must still be reported when others fail.
PLANTED = {"ecr": "RSD-033", "kms": "RSD-036", "ec2": "RSD-022"}

# case -> [(fault, service, operation or REST path prefix, region)], the units expected not checked
CASES: dict[str, tuple[list[tuple], set[tuple[str, str]]]] = {
    "html500": ([("html500", "ec2", "DescribeVpnConnections", None)], {("ec2", HOME)}),
    "bad_xml": ([("bad_xml", "ec2", "DescribeSecurityGroups", None)], {("ec2", HOME)}),
    "bad_json": ([("bad_json", "dynamodb", "ListTables", None)], {("dynamodb", HOME)}),
    "truncated": ([("truncated", "secretsmanager", "ListSecrets", None)], {("secretsmanager", HOME)}),
    "reset": ([("reset", "logs", "DescribeLogGroups", None)], {("logs", HOME)}),
    "slow": ([("slow", "ecr", "DescribeRegistry", None)], {("ecr", HOME)}),
    "throttle": ([("throttle", "kms", "ListKeys", None)], {("kms", HOME)}),
    "denied": ([("denied", "iam", None, None)], {("iam", "global")}),
    "several": ([("html500", "ec2", "DescribeNatGateways", None), ("denied", "s3", None, None),
                 ("slow", "logs", None, None), ("throttle", "route53resolver", None, None),
                 ("bad_json", "secretsmanager", None, None), ("reset", "cloudfront", None, None),
                 ("bad_xml", "ec2", "DescribeRouteTables", None)],
                {("ec2", HOME), ("s3", "global"), ("s3control", "us-west-2"), ("logs", HOME), ("route53resolver", HOME),
                 ("secretsmanager", HOME), ("cloudfront", "us-east-1")}),
}


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    injected: list

    def not_checked_lines(self, stream: str) -> list[str]:
        return [line for line in stream.splitlines() if line.startswith("not checked: ")]


def environment(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp / "aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "aws-creds"),
               HOME=str(tmp))
    return env


def audit(url: str, env: dict, *extra: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    proc = run_script(["audit", "--live", "--stack", "eu", "--regions", HOME, "--endpoint-url", url,
                       *LIMITS, "--format", "text", *extra], env, timeout=BOUND_S * 2)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def plant_account(server) -> None:
    """moto's default VPC (public subnets: RSD-022), ECR replication to the US (RSD-033) and a
    multi-Region KMS key (RSD-036), plus something in every faulted service so it has work to do."""
    server.client("ecr").put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]})
    server.client("kms").create_key(MultiRegion=True, Description="planted")
    server.client("logs").create_log_group(logGroupName="app-logs")
    server.client("secretsmanager").create_secret(Name="db-password", SecretString="x")
    server.client("dynamodb").create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                                           KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                           AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    server.client("ec2").describe_regions()  # warm moto's EC2 backend: its first answer is slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    server = shared_moto_server()
    tmp = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        hermetic_aws_env(mp, tmp)
        server.reset()
        plant_account(server)
    env = environment(tmp)
    proxies = {"baseline": FaultProxy(server.url, slow_seconds=9)}
    for name, (faults, _units) in CASES.items():
        proxies[name] = FaultProxy(server.url, slow_seconds=9)
        for fault, service, operation, region in faults:
            proxies[name].plant(fault, service, operation, region)
    try:
        # The baseline first, alone: its scan makes moto build each service's backend, which moto
        # does one service at a time; the fault cases then run at once against a warm server.
        done = {"baseline": audit(proxies["baseline"].url, env)}
        with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
            futures = {name: pool.submit(audit, p.url, env) for name, p in proxies.items() if name != "baseline"}
            done.update({name: f.result() for name, f in futures.items()})
        return {name: Run(*result, injected=list(proxies[name].injected)) for name, result in done.items()}
    finally:
        for p in proxies.values():
            p.stop()


def test_baseline_through_the_proxy_is_complete_and_reports_every_planted_path(runs):
    run = runs["baseline"]
    assert run.code == 1, run.out + run.err
    assert run.not_checked_lines(run.out) == [] and "result: FINDINGS" in run.out
    for rule in PLANTED.values():
        assert f" {rule} " in run.out


@pytest.mark.parametrize("case", list(CASES))
def test_fault_is_not_checked_once_and_the_rest_is_reported(runs, case):
    run = runs[case]
    faults, units = CASES[case]
    assert {f for _s, _r, _o, f in run.injected} == {f[0] for f in faults}, "every planted fault was served"
    assert run.seconds < BOUND_S
    assert run.code == 3, run.out + run.err
    assert "Traceback" not in run.out + run.err
    named = [tuple(line[len("not checked: "):].split(":", 1)[0].split(" in ")) for line in run.not_checked_lines(run.out)]
    assert sorted(named) == sorted(units), "each unit not checked is named exactly once"
    assert run.not_checked_lines(run.err) == [], "not also on stderr"
    for service, rule in PLANTED.items():
        if (service, HOME) not in units or service == "ec2":  # ec2's other steps still ran
            assert f" {rule} " in run.out, f"{rule} from {service}, which answered, is still reported"
    closing = run.out.rstrip().splitlines()[-1]
    assert closing.startswith("result: INCOMPLETE") and f"{len(units)} unit(s) not checked" in closing
    assert "summary:" in run.out


def test_slow_answers_cost_the_read_timeout_not_minutes(runs):
    """The slow case waits read timeout x attempts (4 s x 2) plus backoff, then goes on."""
    assert runs["slow"].seconds < runs["baseline"].seconds + 15


class _NotAws(BaseHTTPRequestHandler):
    """Any web server that is not AWS: a captive portal answering 200 with HTML to everything."""

    def _any(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>Welcome to the hotel wifi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _any

    def log_message(self, *_args):
        pass


@pytest.fixture
def not_aws():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_is_not_aws_exits_3_without_a_traceback(not_aws, tmp_path, monkeypatch):
    code, out, err, seconds = audit(not_aws, environment(tmp_path))
    assert code == 3 and "Traceback" not in out + err and seconds < BOUND_S
    assert "cannot read the account: the first call, ec2:DescribeRegions in eu-central-1" in err
    assert "nothing was scanned" in err
    lines = [line for line in out.splitlines() if line.startswith("not checked: ")]
    assert len(lines) == len(set(lines)) > 10 and all("not scanned: the first call" in line for line in lines)
    assert "0 finding(s) in what was checked" in out.splitlines()[-1] and "INCOMPLETE" in out.splitlines()[-1]


def test_a_dead_endpoint_exits_3_in_seconds(tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out_file = tmp_path / "report.json"
    code, out, err, seconds = audit(f"http://127.0.0.1:{port}", environment(tmp_path), "--output", str(out_file))
    assert code == 3 and "Traceback" not in out + err and seconds < BOUND_S
    # With --output the closing line on stderr says the scan was incomplete, never just "0 findings".
    closing = err.rstrip().splitlines()[-1]
    assert "INCOMPLETE" in closing and "0 finding(s) in what was checked" in closing and str(out_file) in closing
    assert "EndpointConnectionError" in out_file.read_text()


# --- in-process: what the subprocess cases cannot reach ----------------------------------------------

def test_an_exception_in_our_mapping_code_is_that_unit_only(monkeypatch, aws_env):  # noqa: F811
    """Every exception, not only botocore's: a bug in one scanner costs its unit, not the scan."""
    import infra.engine.live as live
    from live_fixtures import StubSession
    from infra.program.stackfiles import load_stack_config

    def broken(unit):
        raise ValueError("unexpected shape")

    monkeypatch.setitem(live.REGIONAL, "eks", broken)
    stub = StubSession()
    stub.stub("ec2").add_response("describe_regions", {"Regions": [{"RegionName": HOME}]}, {"AllRegions": True})
    stub.stub("ecr").add_response("describe_registry", {"registryId": ACCOUNT, "replicationConfiguration": {"rules": [
        {"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]}}, {})
    no_ecr_policies(stub)
    result = live.scan_account(load_stack_config("eu"), regions=[HOME], session=stub, services=["eks", "ecr"])
    assert [(n.service, n.kind) for n in result.not_checked] == [
        ("eks", "unexpected answer shape, or a bug in the scanner")]
    assert "ValueError" in result.not_checked[0].reason
    assert [r.type for r in result.snapshot.resources] == ["aws:ecr/replicationConfiguration:ReplicationConfiguration"]


def test_a_write_attempt_is_never_swallowed(monkeypatch, moto):  # noqa: F811
    """A write is a bug in the scanner, never an account condition: it stops the scan (exit 4)."""
    import infra.engine.live as live
    from infra.program.stackfiles import load_stack_config

    monkeypatch.setitem(live.REGIONAL, "sqs", lambda unit: unit.client().create_queue(QueueName="x"))
    with moto.recording() as calls:
        with pytest.raises(live.ReadOnlyViolation, match="refusing sqs:CreateQueue"):
            live.scan_account(load_stack_config("eu"), regions=[HOME], endpoint_url=moto.url, services=["sqs"])
    assert [c.operation for c in calls] == ["DescribeRegions"]


@pytest.mark.parametrize("flag, value", [("--max-attempts", "0"), ("--read-timeout", "-1"), ("--connect-timeout", "x")])
def test_bad_limits_are_bad_input(tmp_path, flag, value):
    proc = run_script(["audit", "--live", "--stack", "eu", flag, value], environment(tmp_path), timeout=60)
    assert proc.returncode == 2 and flag in proc.stderr and f"'{value}' is not a positive number" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_unit_whose_endpoint_stops_answering_is_not_tried_further(moto):
    """After a reset (or timeout) the unit's remaining steps are skipped, not each timed out."""
    import infra.engine.live as live
    from infra.program.stackfiles import load_stack_config

    proxy = FaultProxy(moto.url)
    proxy.plant("reset", "ec2", "DescribeVpcs")
    try:
        with moto.recording() as calls:
            result = live.scan_account(load_stack_config("eu"), regions=[HOME], endpoint_url=proxy.url,
                                       services=["ec2", "kms"], timeouts=live.Timeouts(max_attempts=1))
    finally:
        proxy.stop()
    (entry,) = result.not_checked
    assert (entry.service, entry.kind) == ("ec2", "unreachable endpoint or connection reset")
    assert "VPCs: ConnectionClosedError" in entry.reason and "more failed step(s)" in entry.reason
    assert [c.operation for c in calls if c.service == "ec2"] == ["DescribeRegions"]  # nothing after the reset
    assert {c.service for c in calls} == {"ec2", "kms"}
