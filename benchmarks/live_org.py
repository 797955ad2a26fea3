"""Organization-scan throughput: `residency audit --org` (infra/engine/live/organization.py) against
moto's server with many accounts (moto keys state by the assumed role's account), behind a local
proxy that adds a fixed latency to every call (tests/fault_proxy.py), for several pool sizes.

    .venv/bin/python benchmarks/live_org.py [--accounts 8] [--latency-ms 50] [--pools 1,2,4,8]

Each account is scanned in the EU home region only (25 regional units + 7 account-wide ones), so
the figure is units per second; the projection scales it to 1,000 accounts x 17 regions, and to
the issue's goal (1,000 accounts x 6 regions on 8 shards). moto and the scanner share this
machine's CPU: the rate is a floor for what the scanner does against AWS, where the servers'
work is not on the scanning machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from fault_proxy import FaultProxy  # noqa: E402
from live_fixtures import HOME, hermetic_aws_env, shared_moto_server  # noqa: E402

from infra.engine.live import ACCOUNT_WIDE, REGIONAL, organization  # noqa: E402
from infra.program.stackfiles import load_stack_config  # noqa: E402


class LatencyProxy(FaultProxy):
    def __init__(self, upstream: str, latency: float):
        super().__init__(upstream)
        self.latency = latency
        self.calls = 0

    def handle(self, h, req, body) -> None:
        time.sleep(self.latency)
        self.calls += 1  # approximate under threads; only reported
        super().handle(h, req, body)


class _Env:  # hermetic_aws_env takes pytest's monkeypatch; a plain stand-in
    @staticmethod
    def setenv(name, value):
        import os
        os.environ[name] = value

    @staticmethod
    def delenv(name, raising=False):
        import os
        os.environ.pop(name, None)


def organization_of(server, accounts: int) -> None:
    o = boto3.client("organizations", region_name="us-east-1", endpoint_url=server.url)
    o.create_organization(FeatureSet="ALL")
    for i in range(accounts - 1):
        o.create_account(Email=f"a{i}@example.com", AccountName=f"account-{i}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--pools", default="1,2,4,8")
    args = parser.parse_args()
    hermetic_aws_env(_Env, Path(tempfile.mkdtemp()))
    server = shared_moto_server()
    server.reset()
    organization_of(server, args.accounts)
    proxy = LatencyProxy(server.url, args.latency_ms / 1000)
    units_per_account = len(REGIONAL) + len(ACCOUNT_WIDE)
    session = boto3.Session(region_name="us-east-1")
    print(f"{args.accounts} accounts x {units_per_account} units (EU home region), {args.latency_ms:g} ms per call")
    # Warm-up, untimed: the first scan of a process loads every botocore service model and moto's
    # backends (about 20 s here), a once-per-shard cost that would otherwise be charged to pool 1.
    started = time.monotonic()
    organization.scan_organization(session, load_stack_config, mapping={}, default_stack="eu", pool=args.accounts,
                                   regions=[HOME], endpoint_url=proxy.url)
    print(f"warm-up scan (untimed in the rates below): {time.monotonic() - started:.1f} s")
    best = 0.0
    for pool in [int(p) for p in args.pools.split(",")]:
        proxy.calls = 0
        start = time.monotonic()
        scans = organization.scan_organization(session, load_stack_config, mapping={}, default_stack="eu",
                                               pool=pool, regions=[HOME], endpoint_url=proxy.url)
        seconds = time.monotonic() - start
        units = sum(units_per_account for s in scans if s.scan is not None)
        missed = sum(len(s.scan.not_checked) for s in scans if s.scan is not None)
        rate = units / seconds
        best = max(best, rate)
        print(f"pool {pool:>2}: {seconds:6.1f} s, {units} units, {rate:5.1f} units/s, ~{proxy.calls} calls, "
              f"{missed} unit(s) not checked")
    per_account_17 = 17 * len(REGIONAL) + len(ACCOUNT_WIDE)
    per_account_6 = 6 * len(REGIONAL) + len(ACCOUNT_WIDE)
    total_17, total_6 = 1000 * per_account_17, 1000 * per_account_6
    print(f"projection at {best:.1f} units/s per machine: 1,000 accounts x 17 regions = {total_17} units: "
          f"{total_17 / best / 60:.0f} min on 1 machine, {total_17 / best / 60 / 8:.0f} min on 8 shards")
    print(f"goal: 1,000 accounts x 6 regions = {total_6} units on 8 shards: {total_6 / best / 60 / 8:.0f} min "
          f"(target 15 min)")
    proxy.stop()


if __name__ == "__main__":
    main()
