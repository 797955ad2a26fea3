"""Seed-upload benchmark: `residency seed --weights DIR` into moto's server on 127.0.0.1.

Writes one random file of `--mib` MiB, uploads it (multipart, SHA-256 per part), then runs the
seed again (everything present: one read pass to checksum the file, no upload) and prints both
throughputs. moto keeps objects in memory and is single-process, so this measures our client
(reading, hashing, part scheduling) plus moto, not S3.

    .venv/bin/python benchmarks/seed_upload.py [--mib 300] [--part-size 64] [--workers 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=300)
    parser.add_argument("--part-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request log lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        boto3.client("s3", region_name="eu-central-1", endpoint_url=env["AWS_ENDPOINT_URL"],
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(
            Bucket="weights-bench", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        with tempfile.TemporaryDirectory() as tmp:
            with open(Path(tmp, "model.safetensors"), "wb") as fh:
                for _ in range(args.mib):
                    fh.write(os.urandom(1024 * 1024))
            argv = [str(ROOT / ".venv/bin/residency"), "seed", "--stack", "eu", "--weights", tmp,
                    "--bucket", "weights-bench", "--part-size", str(args.part_size), "--workers", str(args.workers)]
            for label in ("upload", "rerun (present)"):
                started = time.perf_counter()
                result = subprocess.run(argv, env=env, capture_output=True, text=True)
                elapsed = time.perf_counter() - started
                if result.returncode != 0:
                    print(result.stderr, file=sys.stderr)
                    return 1
                print(f"{label:16} {args.mib} MiB in {elapsed:5.1f} s = {args.mib / elapsed:6.1f} MiB/s "
                      f"(includes ~1 s CLI start)  {result.stdout.strip()}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
