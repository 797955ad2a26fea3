"""Model weights into the stack's weights bucket: multipart, checksummed, resumable.

Local files go up as multipart uploads with an S3 additional checksum (SHA-256) on every part.
S3 checks each part against its checksum on arrival and derives the object's composite
checksum (`base64(sha256(part digests))-N`) from what it stored; we compute the same value from
the bytes we read and compare it after CompleteMultipartUpload, so a corrupted transfer never
passes as done. Part size and count decide the composite value, so the part size is kept in the
object's metadata (`seed-part-size`) to recompute it on the next run.

Resuming: an object already in the bucket with the local file's checksum is skipped; an
unfinished multipart upload of the same key is continued (ListParts), and each part it holds is
reused only when its size and checksum match the local bytes. Nothing is aborted on failure, so
an interrupted run continues where it stopped.

S3 sources are copied server side (CopyObject, UploadPartCopy over 5 GiB), so the weights never
leave AWS. A copy is verified against the source's full-object checksum (S3 gives every new
object a CRC64NVME one); a source object without one cannot be verified and is refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

MIB = 1024 * 1024
PART_SIZE = 64 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024 * MIB  # CopyObject's limit; larger objects are copied in parts
CHECKSUM_ALGORITHMS = ("CRC64NVME", "CRC32", "CRC32C", "SHA1", "SHA256")
PART_SIZE_KEY = "seed-part-size"


class Incomplete(Exception):
    """The seed could not finish (AWS fault, access denied): exit 3, rerun to resume."""


class ChecksumMismatch(Incomplete):
    """What S3 stored is not what we sent (or not what the source holds)."""


def aws_fault(action: str, exc: Exception) -> Incomplete:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        if err.get("Code") in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
            return ChecksumMismatch(f"{action}: S3 rejected the data as corrupted in transit ({err.get('Code')})")
        return Incomplete(f"{action}: {err.get('Code', '?')}: {err.get('Message', exc)}")
    return Incomplete(f"{action}: {exc}")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart object uploaded with SHA-256 part checksums."""
    return f"{b64(hashlib.sha256(b''.join(part_digests)).digest())}-{len(part_digests)}"


def same_checksum(stored: str | None, expected: str) -> bool:
    """S3 reports a composite checksum as `value-N` (moto 5.2.5 from HeadObject: without `-N`)."""
    if not stored:
        return False
    value, _, parts = stored.partition("-")
    want_value, _, want_parts = expected.partition("-")
    return value == want_value and parts in ("", want_parts)


def part_size_for(size: int, wanted: int) -> int:
    """`wanted`, grown when the file would need more than S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(wanted, MIN_PART_SIZE if needed <= MIN_PART_SIZE else -(-needed // MIB) * MIB)


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


# --- progress ----------------------------------------------------------------------------------

class Progress:
    """Bytes done of a known total on stderr: a redrawn bar on a terminal, plain lines otherwise
    (one per 10 %, so CI logs stay short)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.reported_tenth = -1

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            self._draw()

    def note(self, message: str) -> None:
        with self.lock:
            self.stream.write(("\r\033[K" if self.tty else "") + f"residency seed: {message}\n")
            self._draw(force=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        fraction = self.done / self.total if self.total else 1.0
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{fraction:6.1%} {self.done / MIB:,.1f}/{self.total / MIB:,.1f} MiB {self.done / MIB / elapsed:,.1f} MiB/s"
        if self.tty:
            filled = int(fraction * 30)
            self.stream.write(f"\r[{'#' * filled}{'-' * (30 - filled)}] {text}")
        elif force or int(fraction * 10) > self.reported_tenth:
            self.reported_tenth = int(fraction * 10)
            self.stream.write(f"residency seed: weights {text}\n")
        self.stream.flush()


# --- what to seed --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    size: int


@dataclass(frozen=True)
class SourceObject:
    bucket: str
    key: str
    dest_key: str
    size: int
    algorithm: str  # the source's full-object checksum algorithm
    checksum: str


def local_files(root: Path, prefix: str) -> list[LocalFile]:
    """Every file under `root` (symlinks followed, as in a Hugging Face snapshot), keyed
    `prefix/relative/path`. Dot-entries (`.cache/`, `.git/`) are tool metadata, not weights."""
    files = []
    for directory, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(directory, name)
            files.append(LocalFile(path, f"{prefix}/{path.relative_to(root).as_posix()}", path.stat().st_size))
    return files


def full_object_checksum(head: dict) -> tuple[str, str] | None:
    """(algorithm, value) of an object's full-object checksum, or None (composite or absent)."""
    if head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    for algorithm in CHECKSUM_ALGORITHMS:
        value = head.get(f"Checksum{algorithm}")
        if value and "-" not in value:  # `-N`: a composite of N parts
            return algorithm, value
    return None


def source_objects(s3, bucket: str, prefix: str, dest_prefix: str) -> list[SourceObject]:
    """Every object under the source prefix, with the checksum its copy is verified against.

    Read before anything is written: a source that cannot be verified is refused up front."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    objects, unverifiable = [], []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue  # a console "folder" marker
                head = s3.head_object(Bucket=bucket, Key=item["Key"], ChecksumMode="ENABLED")
                checksum = full_object_checksum(head)
                if checksum is None:
                    unverifiable.append(item["Key"])
                    continue
                objects.append(SourceObject(bucket, item["Key"], f"{dest_prefix}/{item['Key'][len(base):]}",
                                            head["ContentLength"], *checksum))
    except (ClientError, BotoCoreError) as exc:
        raise aws_fault(f"listing s3://{bucket}/{base}", exc) from exc
    if unverifiable:
        raise ChecksumMismatch(
            f"cannot verify a copy of {len(unverifiable)} source object(s) without a full-object checksum "
            f"(e.g. s3://{bucket}/{unverifiable[0]}); re-upload them with one "
            "(`aws s3 cp --checksum-algorithm CRC64NVME`) or seed from a local directory")
    return objects


def head(s3, bucket: str, key: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


# --- local files -------------------------------------------------------------------------------

class Uploader:
    """Uploads local files into one bucket, `workers` parts at a time."""

    def __init__(self, s3, bucket: str, progress: Progress, part_size: int = PART_SIZE, workers: int = 8):
        self.s3, self.bucket, self.progress = s3, bucket, progress
        self.part_size, self.workers = part_size, workers

    def upload(self, f: LocalFile) -> str:
        """'present' (already there), 'uploaded' or 'resumed'; raises Incomplete/ChecksumMismatch."""
        try:
            return self._upload(f)
        except (ClientError, BotoCoreError) as exc:
            raise aws_fault(f"uploading {f.path} to s3://{self.bucket}/{f.key}", exc) from exc

    def _upload(self, f: LocalFile) -> str:
        existing = head(self.s3, self.bucket, f.key)
        if existing is not None and existing["ContentLength"] == f.size:
            stored_part_size = self._stored_part_size(existing)
            if same_checksum(existing.get("ChecksumSHA256"), self._local_checksum(f, stored_part_size)):
                self.progress.add(f.size)
                return "present"
        if existing is not None:
            self.progress.note(f"s3://{self.bucket}/{f.key} differs from {f.path} (size or checksum); uploading it again")
        if f.size == 0:
            return self._put_empty(f)
        part_size = part_size_for(f.size, self.part_size)
        upload_id, held = self._unfinished_upload(f, part_size)
        resumed = bool(held)
        if upload_id is None:
            upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=f.key, ChecksumAlgorithm="SHA256",
                Metadata={PART_SIZE_KEY: str(part_size)})["UploadId"]
        numbers = range(1, part_count(f.size, part_size) + 1)
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            futures = [pool.submit(self._part, f, upload_id, n, part_size, held.get(n)) for n in numbers]
            parts = [future.result() for future in futures]
        finally:
            # On a fault or Ctrl-C, parts not yet started are dropped (not sent after the fact);
            # parts in flight finish, and the next run picks them up from ListParts.
            pool.shutdown(wait=True, cancel_futures=True)
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=f.key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag, "ChecksumSHA256": b64(digest)}
                                       for n, (digest, etag) in zip(numbers, parts)]})
        self._verify(f, composite_sha256([digest for digest, _ in parts]))
        return "resumed" if resumed else "uploaded"

    def _stored_part_size(self, existing: dict) -> int:
        """The part size recorded on the object (metadata is caller-written: a bad value just
        means the checksums will not match and the file is uploaded again)."""
        raw = existing.get("Metadata", {}).get(PART_SIZE_KEY, "")
        return int(raw) if raw.isdigit() and int(raw) > 0 else self.part_size

    def _local_checksum(self, f: LocalFile, part_size: int) -> str:
        if f.size == 0:
            return b64(hashlib.sha256(b"").digest())
        return composite_sha256([hashlib.sha256(self._read(f, n, part_size)).digest()
                                 for n in range(1, part_count(f.size, part_size) + 1)])

    @staticmethod
    def _read(f: LocalFile, number: int, part_size: int) -> bytes:
        with open(f.path, "rb") as fh:
            fh.seek((number - 1) * part_size)
            return fh.read(part_size)

    def _put_empty(self, f: LocalFile) -> str:
        empty = b64(hashlib.sha256(b"").digest())
        self.s3.put_object(Bucket=self.bucket, Key=f.key, Body=b"", ChecksumAlgorithm="SHA256", ChecksumSHA256=empty)
        self._verify(f, empty)
        return "uploaded"

    def _unfinished_upload(self, f: LocalFile, part_size: int) -> tuple[str | None, dict[int, dict]]:
        """The newest unfinished SHA-256 upload of this key with our part size, and its parts."""
        uploads = []
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=f.key):
            uploads += [u for u in page.get("Uploads", []) if u["Key"] == f.key
                        and u.get("ChecksumAlgorithm", "SHA256") == "SHA256"]
        for upload in sorted(uploads, key=lambda u: u["Initiated"], reverse=True):
            held = {}
            for page in self.s3.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=f.key, UploadId=upload["UploadId"]):
                held.update({p["PartNumber"]: p for p in page.get("Parts", [])})
            last = part_count(f.size, part_size)
            if all(n <= last and p["Size"] == min(part_size, f.size - (n - 1) * part_size) for n, p in held.items()):
                return upload["UploadId"], held
        return None, {}

    def _part(self, f: LocalFile, upload_id: str, number: int, part_size: int, held: dict | None) -> tuple[bytes, str]:
        data = self._read(f, number, part_size)
        digest = hashlib.sha256(data).digest()
        if held is not None and self._same(held, data, digest):
            self.progress.add(len(data))
            return digest, held["ETag"]
        etag = self.s3.upload_part(Bucket=self.bucket, Key=f.key, UploadId=upload_id, PartNumber=number,
                                   Body=data, ChecksumSHA256=b64(digest))["ETag"]
        self.progress.add(len(data))
        return digest, etag

    @staticmethod
    def _same(held: dict, data: bytes, digest: bytes) -> bool:
        """A part already uploaded holds these bytes: by its SHA-256 when S3 lists it (real S3
        does for checksum uploads), else by its ETag when that is the part's MD5 (plain SSE)."""
        if held.get("Size") != len(data):
            return False
        if held.get("ChecksumSHA256"):
            return held["ChecksumSHA256"] == b64(digest)
        return held.get("ETag", "").strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest()

    def _verify(self, f: LocalFile, expected: str) -> None:
        stored = head(self.s3, self.bucket, f.key) or {}
        if not same_checksum(stored.get("ChecksumSHA256"), expected):
            raise ChecksumMismatch(
                f"checksum mismatch for s3://{self.bucket}/{f.key}: S3 holds SHA256 "
                f"{stored.get('ChecksumSHA256')!r}, {f.path} is {expected!r}; the object is not trusted "
                "(rerun to upload it again)")


# --- S3 sources --------------------------------------------------------------------------------

class Copier:
    """Server-side copies into one bucket, verified against the source's full-object checksum."""

    def __init__(self, s3, bucket: str, progress: Progress, part_size: int = PART_SIZE,
                 max_copy_object: int = MAX_COPY_OBJECT):
        self.s3, self.bucket, self.progress = s3, bucket, progress
        self.part_size, self.max_copy_object = part_size, max_copy_object

    def copy(self, src: SourceObject) -> str:
        """'present' or 'copied'; raises Incomplete/ChecksumMismatch."""
        action = f"copying s3://{src.bucket}/{src.key} to s3://{self.bucket}/{src.dest_key}"
        try:
            existing = head(self.s3, self.bucket, src.dest_key)
            if existing is not None and existing.get(f"Checksum{src.algorithm}") == src.checksum:
                self.progress.add(src.size)
                return "present"
            if src.size <= self.max_copy_object:
                self.s3.copy_object(Bucket=self.bucket, Key=src.dest_key, ChecksumAlgorithm=src.algorithm,
                                    CopySource={"Bucket": src.bucket, "Key": src.key})
            else:
                self._copy_in_parts(src)
            self.progress.add(src.size)
            stored = (head(self.s3, self.bucket, src.dest_key) or {}).get(f"Checksum{src.algorithm}")
        except (ClientError, BotoCoreError) as exc:
            raise aws_fault(action, exc) from exc
        if stored != src.checksum:
            raise ChecksumMismatch(f"checksum mismatch {action}: the source's {src.algorithm} is {src.checksum!r}, "
                                   f"the copy's is {stored!r}; the object is not trusted (rerun to copy it again)")
        return "copied"

    def _copy_in_parts(self, src: SourceObject) -> None:
        # Only CRC algorithms have full-object multipart checksums; SHA full-object sources are
        # single-PUT objects, never larger than CopyObject's limit.
        part_size = part_size_for(src.size, self.part_size)
        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=src.dest_key, ChecksumAlgorithm=src.algorithm,
                                                    ChecksumType="FULL_OBJECT")["UploadId"]
        parts = []
        for number in range(1, part_count(src.size, part_size) + 1):
            start = (number - 1) * part_size
            end = min(start + part_size, src.size) - 1
            result = self.s3.upload_part_copy(Bucket=self.bucket, Key=src.dest_key, UploadId=upload_id,
                                              PartNumber=number, CopySource={"Bucket": src.bucket, "Key": src.key},
                                              CopySourceRange=f"bytes={start}-{end}")["CopyPartResult"]
            checksum = result.get(f"Checksum{src.algorithm}")
            parts.append({"PartNumber": number, "ETag": result["ETag"],
                          **({f"Checksum{src.algorithm}": checksum} if checksum else {})})
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=src.dest_key, UploadId=upload_id,
                                          ChecksumType="FULL_OBJECT", MultipartUpload={"Parts": parts})
