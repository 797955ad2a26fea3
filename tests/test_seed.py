"""`residency seed` through the console script, against moto's server on 127.0.0.1.

The S3 part runs for real against moto: multipart upload with SHA-256 part checksums, the skip of
objects already present, the resume of a killed upload (ListParts), a corrupted part caught by the
composite checksum, the geography check on an S3 source (GetBucketLocation) and the server-side
copy of an in-geography one. A WSGI layer in front of moto (`Wire`) counts requests and injects
the faults. The image copy runs a fake `skopeo` on PATH that records what it was given: ECR
itself cannot be reached from here (see tests/test_seed_image.py for what is and is not covered).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from infra.cli import main
from infra.commands.seed_weights import Copier, Progress, part_count, part_size_for, same_checksum, source_objects
from infra.program.stackfiles import ROOT
from live_fixtures import HOME, aws_env, moto  # noqa: F401
from cli_run import run_script

RESIDENCY = str(ROOT / ".venv/bin/residency")
MIB = 1024 * 1024
MODEL = "llama-3.1-8b-instruct"  # Pulumi.yaml's servedModel default (the eu stack does not override it)
BUCKET = "weights-eu"
REPO = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/ai-companion/eu/vllm"


class Wire:
    """WSGI layer between the client and moto: records S3 writes, and can fail or corrupt them."""

    def __init__(self, app):
        self.app = app
        self.writes: list[tuple[str, str, dict]] = []  # (method, path, query)
        self.on_upload_part = None  # callable(part_number, body) -> body | None (None: hold/fail)
        self.on_head = None  # callable(path, headers) -> headers: rewrite a HEAD response
        self.deny_writes = False
        self.deny_location = False  # GetBucketLocation answers AccessDenied
        self.in_flight = 0  # requests inside this layer now (a held part outlives its killed client)
        self.idle = threading.Condition()

    def __call__(self, environ, start_response):
        with self.idle:
            self.in_flight += 1
        try:
            return self.handle(environ, start_response)
        finally:
            with self.idle:
                self.in_flight -= 1
                self.idle.notify_all()

    def drained(self, timeout: float = 60) -> bool:
        """Wait until no request is inside moto: a reset while a held part is still being stored
        makes moto answer the reset with a 500 (seen in CI as the next test's setup error)."""
        with self.idle:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout)

    def handle(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if method == "GET" and "location" in query and self.deny_location:
            return self.access_denied(start_response)
        if method == "HEAD" and self.on_head:
            def rewrite(status, headers, *exc_info):
                return start_response(status, self.on_head(path, headers), *exc_info)
            return self.app(environ, rewrite)
        if path.startswith("/moto-api") or method not in ("PUT", "POST", "DELETE") or "HTTP_X_AMZ_TARGET" in environ:
            return self.app(environ, start_response)  # reads, and JSON-protocol (non-S3) calls
        self.writes.append((method, path, query))
        if self.deny_writes:
            return self.access_denied(start_response)
        if method == "PUT" and "partNumber" in query and self.on_upload_part:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = environ["wsgi.input"].read(length)
            data = self.on_upload_part(int(query["partNumber"]), data)
            if data is None:
                start_response("500 Internal Server Error", [("Content-Length", "0")])
                return [b""]
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
        return self.app(environ, start_response)

    @staticmethod
    def access_denied(start_response):
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message></Error>")
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def upload_parts(self) -> list[int]:
        return [int(q["partNumber"]) for m, _, q in self.writes if m == "PUT" and "partNumber" in q]


@pytest.fixture
def wire(moto):  # noqa: F811
    original = moto.recorder.app
    moto.recorder.app = layer = Wire(original)
    try:
        yield layer
    finally:
        assert layer.drained(), "a request was still inside moto 60 s after the test"
        moto.recorder.app = original


@pytest.fixture
def s3(moto):  # noqa: F811
    client = moto.client("s3", HOME)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": HOME})
    return client


def seed(moto, *argv, env=None):  # noqa: F811
    """The console script in a subprocess, as a user runs it."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.url, **(env or {})}
    return run_script(argv, env, timeout=120)


@pytest.fixture
def seed_here(moto, monkeypatch, capsys):  # noqa: F811
    """The same CLI in this process (`infra.cli.main`), for the many cheap failure paths: a
    subprocess costs about a second of imports each."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)

    def run(*argv, env=None):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err)
    return run


def weights_dir(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    (root / "tokenizer").mkdir(parents=True)
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(12 * MIB))  # three 5 MiB parts
    (root / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (root / "tokenizer" / "tokenizer.json").write_text("{}")
    (root / "empty.txt").write_bytes(b"")
    (root / ".cache" / "huggingface" / "download.lock").write_text("tool metadata")
    return root


def stored(s3, key):  # noqa: F811
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def composite(data: bytes, part_size: int) -> str:
    digests = [hashlib.sha256(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode() + f"-{len(digests)}"


# --- local directory -----------------------------------------------------------------------------

def test_local_directory_is_uploaded_in_checksummed_parts(moto, s3, wire, tmp_path):  # noqa: F811
    root = weights_dir(tmp_path)
    result = seed(moto, "seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET, "--part-size", "5")
    assert result.returncode == 0, result.stderr
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"{MODEL}/{name}" for name in ("model.safetensors", "config.json", "tokenizer/tokenizer.json",
                                                  "empty.txt")}
    data = (root / "model.safetensors").read_bytes()
    assert stored(s3, f"{MODEL}/model.safetensors") == data
    assert stored(s3, f"{MODEL}/tokenizer/tokenizer.json") == b"{}"
    head = s3.head_object(Bucket=BUCKET, Key=f"{MODEL}/model.safetensors", ChecksumMode="ENABLED")
    # S3's composite of the three parts (moto 5.2.5 drops the `-3` suffix S3 adds)
    assert head["ChecksumSHA256"].partition("-")[0] == composite(data, 5 * MIB).partition("-")[0]
    assert head["Metadata"]["seed-part-size"] == str(5 * MIB)
    # two single-part files, one 3-part file (the empty one is a PutObject)
    assert sorted(wire.upload_parts()) == [1, 1, 1, 2, 3]
    assert f"s3://{BUCKET}/{MODEL}/ (4 objects" in result.stdout and "4 uploaded" in result.stdout
    assert "residency seed: weights 100.0%" in result.stderr  # plain progress lines when not a TTY

    wire.writes.clear()
    again = seed(moto, "seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET, "--part-size", "5")
    assert again.returncode == 0 and "4 present" in again.stdout
    assert wire.writes == []  # a second run writes nothing


def test_outputs_file_names_the_bucket(seed_here, s3, tmp_path):  # noqa: F811
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"weightsBucket": BUCKET, "modelRepositoryUrl": REPO, "region": HOME}))
    result = seed_here("seed", "--stack", "eu", "--weights", str(weights_dir(tmp_path)), "--outputs", str(outputs))
    assert result.returncode == 0, result.stderr
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 4


def test_a_killed_upload_resumes_from_the_parts_already_stored(moto, s3, wire, tmp_path):  # noqa: F811
    root = tmp_path / "weights"
    root.mkdir()
    data = os.urandom(17 * MIB)  # four parts of 5 MiB
    (root / "model.safetensors").write_bytes(data)
    reached, release = threading.Event(), threading.Event()

    def hold_part_3(number, body):
        if number == 3:
            reached.set()
            release.wait(30)
            return None  # the client is gone by now
        return body

    wire.on_upload_part = hold_part_3
    argv = ["seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET, "--part-size", "5", "--workers", "1"]
    process = subprocess.Popen([RESIDENCY, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "AWS_ENDPOINT_URL": moto.url})
    try:
        assert reached.wait(60), "the upload never reached part 3"
        process.send_signal(signal.SIGKILL)  # a crash, not a clean exit: nothing can tidy up
        process.wait(30)
    finally:
        release.set()
        process.kill()
    (upload,) = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    held = s3.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
    assert [p["PartNumber"] for p in held] == [1, 2]

    wire.on_upload_part, wire.writes[:] = None, []
    result = seed(moto, *argv)
    assert result.returncode == 0, result.stderr
    assert "1 resumed" in result.stdout
    assert sorted(wire.upload_parts()) == [3, 4]  # parts 1 and 2 were reused, not sent again
    assert stored(s3, f"{MODEL}/model.safetensors") == data
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_ctrl_c_exits_130_and_sends_no_further_part(moto, s3, wire, tmp_path):  # noqa: F811
    root = tmp_path / "weights"
    root.mkdir()
    (root / "model.safetensors").write_bytes(os.urandom(17 * MIB))
    reached, release = threading.Event(), threading.Event()

    def hold_part_2(number, body):
        if number == 2:
            reached.set()
            release.wait(30)
        return body  # the part in flight completes

    wire.on_upload_part = hold_part_2
    process = subprocess.Popen([RESIDENCY, "seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET,
                                "--part-size", "5", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "AWS_ENDPOINT_URL": moto.url})
    try:
        assert reached.wait(60), "the upload never reached part 2"
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
    finally:
        release.set()
    assert process.wait(30) == 130
    assert b"Traceback" not in process.stderr.read()
    assert wire.upload_parts() == [1, 2]  # parts 3 and 4 were never sent
    (upload,) = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]  # kept for the next run


def test_a_corrupted_part_is_a_checksum_mismatch_and_a_rerun_repairs_it(moto, s3, wire, tmp_path):  # noqa: F811
    """moto (unlike S3) does not check a part against its checksum header on arrival, but it
    derives the object's checksum from the bytes it stored: the corruption must show there."""
    root = weights_dir(tmp_path)
    wire.on_upload_part = lambda number, body: (body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                                               if number == 2 else body)
    argv = ("seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET, "--part-size", "5")
    result = seed(moto, *argv)
    assert result.returncode == 3
    assert f"checksum mismatch for s3://{BUCKET}/{MODEL}/model.safetensors" in result.stderr
    assert "Traceback" not in result.stderr

    wire.on_upload_part = None
    repaired = seed(moto, *argv)
    assert repaired.returncode == 0, repaired.stderr
    assert "differs from" in repaired.stderr
    assert stored(s3, f"{MODEL}/model.safetensors") == (root / "model.safetensors").read_bytes()


def test_a_changed_remote_object_is_replaced(seed_here, s3, tmp_path):  # noqa: F811
    root = weights_dir(tmp_path)
    argv = ("seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET, "--part-size", "5")
    assert seed_here(*argv).returncode == 0
    s3.put_object(Bucket=BUCKET, Key=f"{MODEL}/config.json", Body=b"tampered", ChecksumAlgorithm="SHA256")
    result = seed_here(*argv)
    assert result.returncode == 0 and "1 uploaded, 3 present" in result.stdout
    assert stored(s3, f"{MODEL}/config.json") == (root / "config.json").read_bytes()


def test_an_object_with_bad_seed_metadata_is_uploaded_again(seed_here, s3, tmp_path):  # noqa: F811
    root = tmp_path / "weights"
    root.mkdir()
    (root / "config.json").write_text("{}")
    s3.put_object(Bucket=BUCKET, Key=f"{MODEL}/config.json", Body=b"{}", Metadata={"seed-part-size": "0"},
                  ChecksumAlgorithm="SHA256")
    result = seed_here("seed", "--stack", "eu", "--weights", str(root), "--bucket", BUCKET)
    assert result.returncode == 0 and "1 uploaded" in result.stdout
    head = s3.head_object(Bucket=BUCKET, Key=f"{MODEL}/config.json", ChecksumMode="ENABLED")
    assert head["Metadata"]["seed-part-size"] == str(64 * MIB)


def test_a_write_fault_is_incomplete(seed_here, s3, wire, tmp_path):  # noqa: F811
    wire.deny_writes = True
    result = seed_here("seed", "--stack", "eu", "--weights", str(weights_dir(tmp_path)), "--bucket", BUCKET)
    assert result.returncode == 3
    assert "residency seed: incomplete: uploading" in result.stderr and "AccessDenied" in result.stderr
    assert "Traceback" not in result.stderr


# --- S3 sources ----------------------------------------------------------------------------------

def source_bucket(moto, region, name="hf-mirror", objects=None, **put):  # noqa: F811
    client = moto.client("s3", region)
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=name, **config)
    objects = objects or {"llama/model.safetensors": os.urandom(2 * MIB), "llama/config.json": b"{}"}
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body, **put)
    return objects


def test_an_in_geography_source_is_copied_server_side(moto, s3, wire):  # noqa: F811
    objects = source_bucket(moto, "eu-west-1", ChecksumAlgorithm="CRC64NVME")
    argv = ("seed", "--stack", "eu", "--weights", "s3://hf-mirror/llama/", "--bucket", BUCKET)
    result = seed(moto, *argv)
    assert result.returncode == 0, result.stderr
    for key, body in objects.items():
        assert stored(s3, f"{MODEL}/{key.split('/', 1)[1]}") == body
    assert wire.upload_parts() == []  # CopyObject: the bytes never left S3
    assert "2 copied" in result.stdout
    again = seed(moto, *argv)
    assert again.returncode == 0 and "2 present" in again.stdout


def test_a_copy_whose_checksum_differs_from_the_source_is_a_mismatch(seed_here, moto, s3, wire):  # noqa: F811
    source_bucket(moto, "eu-west-1", objects={"llama/config.json": b"{}"}, ChecksumAlgorithm="CRC64NVME")
    # S3 reports a different checksum for the copy than for its source (what a corrupted copy looks like).
    wire.on_head = lambda path, headers: [(k, "AAAAAAAAAAA=" if k.lower() == "x-amz-checksum-crc64nvme" else v)
                                          for k, v in headers] if path.startswith(f"/{BUCKET}/") else headers
    result = seed_here("seed", "--stack", "eu", "--weights", "s3://hf-mirror/llama", "--bucket", BUCKET)
    assert result.returncode == 3
    assert f"checksum mismatch copying s3://hf-mirror/llama/config.json to s3://{BUCKET}/{MODEL}/config.json" \
        in result.stderr


def test_objects_over_the_copy_limit_are_copied_in_parts_with_a_full_object_checksum(moto, s3, wire):  # noqa: F811
    data = os.urandom(12 * MIB)
    source_bucket(moto, "eu-west-1", objects={"llama/model.safetensors": data}, ChecksumAlgorithm="CRC64NVME")
    (src,) = source_objects(moto.client("s3", "eu-west-1"), "hf-mirror", "llama", MODEL)
    assert src.algorithm == "CRC64NVME" and src.dest_key == f"{MODEL}/model.safetensors"
    copier = Copier(s3, BUCKET, Progress(src.size, stream=io.StringIO()), part_size=5 * MIB, max_copy_object=5 * MIB)
    assert copier.copy(src) == "copied"
    assert wire.upload_parts() == [1, 2, 3]  # UploadPartCopy, 5 + 5 + 2 MiB
    head = s3.head_object(Bucket=BUCKET, Key=src.dest_key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == src.checksum
    assert stored(s3, src.dest_key) == data
    assert copier.copy(src) == "present"


def test_a_source_outside_the_geography_is_refused_before_anything_is_written(moto, s3, wire):  # noqa: F811
    source_bucket(moto, "us-east-1")
    result = seed(moto, "seed", "--stack", "eu", "--weights", "s3://hf-mirror/llama", "--bucket", BUCKET)
    assert result.returncode == 2
    assert ("--weights: s3://hf-mirror is in us-east-1, outside geography EU (eu-central-1, eu-west-1, "
            "eu-west-3, eu-north-1, eu-south-1, eu-south-2); refused") in result.stderr
    assert [w for w in wire.writes if BUCKET in w[1]] == []
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_a_source_whose_region_cannot_be_read_is_refused_as_incomplete(seed_here, moto, s3, wire):  # noqa: F811
    source_bucket(moto, "eu-west-1")
    wire.deny_location, wire.writes[:] = True, []  # fail closed: an unproven region is not in the geography
    result = seed_here("seed", "--stack", "eu", "--weights", "s3://hf-mirror/llama", "--bucket", BUCKET)
    assert result.returncode == 3
    assert ("cannot read the region of source bucket 'hf-mirror' (GetBucketLocation: AccessDenied); "
            "nothing was written") in result.stderr
    assert wire.writes == []


def test_a_source_without_a_full_object_checksum_is_refused(moto, seed_here, s3):  # noqa: F811
    from botocore.config import Config
    import boto3
    plain = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto.url,
                         config=Config(request_checksum_calculation="when_required"))
    plain.create_bucket(Bucket="plain", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    plain.put_object(Bucket="plain", Key="m/weights.bin", Body=b"x" * 1000)
    result = seed_here("seed", "--stack", "eu", "--weights", "s3://plain/m", "--bucket", BUCKET)
    assert result.returncode == 3
    assert "cannot verify a copy of 1 source object(s) without a full-object checksum" in result.stderr
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


# --- bad input: exit 2, nothing written ----------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--stack", "eu", "--weights", "."], "no weights bucket: pass --bucket NAME or --outputs FILE"),
    (["--stack", "eu", "--image", "vllm/vllm-openai:v1"], "no ECR repository: pass --repository URL"),
    (["--stack", "eu"], "nothing to seed"),
    (["--stack", "eu", "--weights", ".", "--bucket", BUCKET, "--write-config"], "--write-config writes the image"),
    (["--stack", "eu", "--weights", "/nonexistent", "--bucket", BUCKET], "/nonexistent is not a directory"),
    (["--stack", "eu", "--weights", "s3://Bad_Bucket", "--bucket", BUCKET], "is not an s3://bucket/prefix URI"),
    (["--stack", "eu", "--weights", "s3://absent/x", "--bucket", BUCKET], "source bucket 'absent' does not exist"),
    (["--stack", "eu", "--weights", ".", "--bucket", "absent"], "weights bucket 'absent' does not exist"),
    (["--stack", "eu", "--weights", ".", "--bucket", BUCKET, "--part-size", "4"], "--part-size must be at least 5"),
    (["--stack", "eu", "--image", "x:1", "--repository", "docker.io/library/x"], "is not an ECR repository URL"),
    (["--stack", "eu", "--image", "x:1", "--repository", REPO.replace("eu-central-1", "eu-west-1")],
     "is in eu-west-1, not stack eu's region eu-central-1"),
    (["--stack", "eu", "--weights", ".", "--bucket", BUCKET, "--profile", "nobody"],
     "--profile: The config profile (nobody)"),
])
def test_bad_input_exits_2(seed_here, s3, argv, message):  # noqa: F811
    result = seed_here("seed", *argv)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_stack_exits_2_from_the_console_script(moto):  # noqa: F811
    result = seed(moto, "seed", "--stack", "mars", "--weights", ".")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "residency seed: error: unknown stack 'mars': no Pulumi.mars.yaml; stacks: au, ca, eu" in result.stderr


def test_destination_in_another_region_exits_2(moto, seed_here, s3, tmp_path):  # noqa: F811
    moto.client("s3", "eu-west-1").create_bucket(Bucket="elsewhere",
                                                 CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    result = seed_here("seed", "--stack", "eu", "--weights", str(weights_dir(tmp_path)), "--bucket", "elsewhere")
    assert result.returncode == 2
    assert "weights bucket 'elsewhere' is in eu-west-1, not stack eu's region eu-central-1" in result.stderr


@pytest.mark.parametrize("outputs, message", [
    ("not json", "is not JSON"),
    ("[1]", "expected a JSON object"),
    (None, "cannot read"),
    (json.dumps({"weightsBucket": BUCKET, "region": "us-east-1"}), "region 'us-east-1' is not stack eu's region"),
])
def test_bad_outputs_file_exits_2(seed_here, tmp_path, outputs, message):  # noqa: F811
    path = tmp_path / "outputs.json"
    if outputs is not None:
        path.write_text(outputs)
    result = seed_here("seed", "--stack", "eu", "--weights", str(tmp_path), "--outputs", str(path))
    assert result.returncode == 2 and message in result.stderr


# --- the image (fake skopeo) ---------------------------------------------------------------------

FAKE_SKOPEO = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
record = json.load(open(os.environ["FAKE_SKOPEO_RECORD"])) if os.path.exists(os.environ["FAKE_SKOPEO_RECORD"]) else []
if "inspect" in args:
    record.append({"argv": args})
    sys.stdout.write(os.environ["FAKE_SKOPEO_RAW"])
else:
    auth = args[args.index("--dest-authfile") + 1]
    record.append({"argv": args, "auth": json.load(open(auth)), "auth_mode": oct(os.stat(auth).st_mode & 0o777)})
    open(args[args.index("--digestfile") + 1], "w").write(os.environ.get("FAKE_SKOPEO_DIGEST", "") + "\\n")
json.dump(record, open(os.environ["FAKE_SKOPEO_RECORD"], "w"))
sys.exit(int(os.environ.get("FAKE_SKOPEO_EXIT", "0")))
"""
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def ecr(moto):  # noqa: F811
    """The stack's repository, as the AWS layer creates it."""
    client = moto.client("ecr", HOME)
    client.create_repository(repositoryName=REPO.split("/", 1)[1], imageTagMutability="IMMUTABLE")
    return client


@pytest.fixture
def fake_skopeo(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "skopeo").write_text(FAKE_SKOPEO)
    (bin_dir / "skopeo").chmod(0o755)
    record = tmp_path / "skopeo.json"
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SKOPEO_RECORD": str(record),
            "FAKE_SKOPEO_DIGEST": DIGEST, "_record": record}


def project_copy(tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.eu.yaml"):
        shutil.copy(ROOT / name, project / name)
    return project


def test_image_is_copied_into_ecr_and_pinned_by_digest(moto, ecr, fake_skopeo, tmp_path):  # noqa: F811
    project = project_copy(tmp_path)
    before = (project / "Pulumi.eu.yaml").read_text()
    env = {k: v for k, v in fake_skopeo.items() if not k.startswith("_")}
    result = seed(moto, "--project-dir", str(project), "seed", "--stack", "eu", "--image",
                  "docker.io/vllm/vllm-openai:v0.10.1", "--repository", REPO, "--write-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"image: {REPO}@{DIGEST}", f"digest: {DIGEST}",
        f"pulumi config set ai-companion:modelImageDigest {DIGEST} --stack eu"]
    (record,) = json.loads(fake_skopeo["_record"].read_text())  # one call: the copy
    argv = record["argv"]
    assert argv[:5] == ["--override-os", "linux", "--override-arch", "amd64", "copy"]
    assert "--preserve-digests" in argv
    assert argv[-2:] == ["docker://docker.io/vllm/vllm-openai:v0.10.1", f"docker://{REPO}:v0.10.1"]
    registry = REPO.split("/", 1)[0]
    user, _, password = base64.b64decode(record["auth"]["auths"][registry]["auth"]).decode().partition(":")
    assert user == "AWS" and password  # moto's GetAuthorizationToken
    assert record["auth_mode"] == "0o600" and password not in " ".join(argv)
    after = (project / "Pulumi.eu.yaml").read_text()
    assert after.replace(f"  ai-companion:modelImageDigest: {DIGEST}\n", "") == before  # comments kept


@pytest.mark.parametrize("override, message", [
    ({"FAKE_SKOPEO_EXIT": "1"}, "failed (exit 1)"),
    ({"FAKE_SKOPEO_DIGEST": "sha256:short"}, "skopeo reported no sha256 digest"),
])
def test_a_failed_image_copy_is_incomplete(seed_here, ecr, fake_skopeo, override, message):  # noqa: F811
    env = {**{k: v for k, v in fake_skopeo.items() if not k.startswith("_")}, **override}
    result = seed_here("seed", "--stack", "eu", "--image", "vllm/vllm-openai:v1", "--repository", REPO, env=env)
    assert result.returncode == 3 and message in result.stderr
    assert "pulumi config set" not in result.stdout


def test_missing_skopeo_exits_2_before_anything_is_written(seed_here, s3, wire, tmp_path):  # noqa: F811
    result = seed_here("seed", "--stack", "eu", "--weights", str(weights_dir(tmp_path)), "--bucket", BUCKET,
                  "--image", "vllm/vllm-openai:v1", "--repository", REPO, env={"PATH": str(tmp_path / "nothing")})
    assert result.returncode == 2 and "--image needs skopeo on PATH" in result.stderr
    assert wire.writes == []


# --- units ---------------------------------------------------------------------------------------

def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    tty = io.StringIO()
    tty.isatty = lambda: True
    bar = Progress(100 * MIB, stream=tty)
    bar.add(50 * MIB)
    assert "\r[###############---------------]  50.0% 50.0/100.0 MiB" in tty.getvalue()
    plain = io.StringIO()
    lines = Progress(100 * MIB, stream=plain)
    for _ in range(100):
        lines.add(MIB)
    text = plain.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 11  # the first, then one per 10 %
    assert text.splitlines()[-1].startswith("residency seed: weights 100.0% 100.0/100.0 MiB")


def test_part_size_grows_to_stay_within_10000_parts():
    assert part_size_for(10 * MIB, 5 * MIB) == 5 * MIB
    huge = 1000 * 1024 * MIB  # 1000 GiB
    size = part_size_for(huge, 64 * MIB)
    assert size > 64 * MIB and size % MIB == 0 and part_count(huge, size) <= 10_000


def test_composite_checksums_compare_with_or_without_the_part_count():
    assert same_checksum("abc=-3", "abc=-3") and same_checksum("abc=", "abc=-3")
    assert not same_checksum("abc=-2", "abc=-3") and not same_checksum("abd=-3", "abc=-3")
    assert not same_checksum(None, "abc=-3")


def test_no_credentials_exits_2(seed_here, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = seed_here("seed", "--stack", "eu", "--weights", str(tmp_path), "--bucket", BUCKET)
    assert result.returncode == 2 and "no AWS credentials found" in result.stderr


def test_a_bug_is_one_line_exit_4_and_a_traceback_only_with_debug(seed_here, s3, monkeypatch, tmp_path):  # noqa: F811
    def broken(*_args, **_kwargs):
        raise KeyError("oops")

    monkeypatch.setattr("infra.commands.seed.local_files", broken)
    argv = ("seed", "--stack", "eu", "--weights", str(tmp_path), "--bucket", BUCKET)
    result = seed_here(*argv)
    assert result.returncode == 4 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("residency seed: internal error: KeyError: 'oops'; this is a bug in residency")
    debug = seed_here("--debug", *argv)
    assert debug.returncode == 4 and "Traceback (most recent call last)" in debug.stderr


MANIFEST_LIST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"digest": "sha256:" + "a1" * 32, "platform": {"os": "linux", "architecture": "arm64"}},
    {"digest": DIGEST, "platform": {"os": "linux", "architecture": "amd64"}}]})
IMAGE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "config": {"digest": "sha256:" + "c0" * 32, "size": 2}, "layers": []})


def test_a_tag_already_in_ecr_with_the_same_image_is_not_pushed_again(seed_here, ecr, fake_skopeo):
    ecr.put_image(repositoryName=REPO.split("/", 1)[1], imageTag="v0.10.1", imageManifest=IMAGE_MANIFEST,
                  imageDigest=DIGEST)
    env = {**{k: v for k, v in fake_skopeo.items() if not k.startswith("_")}, "FAKE_SKOPEO_RAW": MANIFEST_LIST}
    result = seed_here("seed", "--stack", "eu", "--image", "vllm/vllm-openai:v0.10.1", "--repository", REPO, env=env)
    assert result.returncode == 0, result.stderr
    assert f"digest: {DIGEST}" in result.stdout.splitlines()
    assert f"{REPO}:v0.10.1 already holds vllm/vllm-openai:v0.10.1" in result.stderr
    (call,) = json.loads(fake_skopeo["_record"].read_text())
    assert call["argv"][:2] == ["inspect", "--raw"]  # compared, not copied


def test_a_tag_already_in_ecr_with_another_image_exits_2(seed_here, ecr, fake_skopeo):
    ecr.put_image(repositoryName=REPO.split("/", 1)[1], imageTag="v0.10.1", imageManifest=IMAGE_MANIFEST,
                  imageDigest="sha256:" + "ee" * 32)
    env = {**{k: v for k, v in fake_skopeo.items() if not k.startswith("_")}, "FAKE_SKOPEO_RAW": MANIFEST_LIST}
    result = seed_here("seed", "--stack", "eu", "--image", "vllm/vllm-openai:v0.10.1", "--repository", REPO, env=env)
    assert result.returncode == 2
    assert f"already holds sha256:{'ee' * 32}, but vllm/vllm-openai:v0.10.1 is {DIGEST}" in result.stderr


def test_a_missing_repository_exits_2_before_anything_is_written(seed_here, s3, wire, fake_skopeo, tmp_path):
    env = {k: v for k, v in fake_skopeo.items() if not k.startswith("_")}
    result = seed_here("seed", "--stack", "eu", "--weights", str(weights_dir(tmp_path)), "--bucket", BUCKET,
                       "--image", "vllm/vllm-openai:v1", "--repository", REPO, env=env)
    assert result.returncode == 2 and f"ECR repository {REPO} does not exist" in result.stderr
    assert wire.writes == [] and not fake_skopeo["_record"].exists()
