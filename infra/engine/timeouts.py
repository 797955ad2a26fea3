"""Per-call limits of the live scan's AWS clients (kept out of infra.engine.live so `audit --export` does
not import boto3).

A dead endpoint (connection refused) costs milliseconds per attempt; a black-holed one costs
`connect` per attempt; one that accepts and never answers costs `read` per attempt. The standard
retry mode adds a random backoff of at most 2^attempt s between attempts. botocore's own
defaults are 60 s connect and 60 s read with legacy retries: minutes per call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0  # s per attempt
    read: float = 10.0  # s per attempt
    max_attempts: int = 3  # per call, the first one included (botocore's total_max_attempts)
    # botocore retry mode: "standard", or "adaptive" (client-side rate limiting on throttling: the
    # organization scan, where many accounts' units share the caller's own request rate).
    retry_mode: str = "standard"
