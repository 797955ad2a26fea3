"""S3: per bucket, its replication rules (each destination bucket's region resolved), its bucket
policy and its ACL (the exposure rules RSD-057 and RSD-059 judge them); and the account-level
Block Public Access settings. Buckets outside the geography are recorded there (the sweep)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.engine.live.core import (ReadOnlyViolation, Unit, UnitAbandoned, bucket_location, camel, pages,
                                    register_reads)

register_reads("s3", "GetBucketPolicy", "GetBucketAcl")
NO_REPLICATION = {"ReplicationConfigurationNotFoundError", "NoSuchReplicationConfiguration"}
NO_POLICY = {"NoSuchBucketPolicy"}
NO_PUBLIC_ACCESS_BLOCK = "NoSuchPublicAccessBlockConfiguration"
BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def scan_account_public_access_block(unit: Unit) -> None:
    """Account-wide S3 Block Public Access (s3control, read in the home region). None configured
    means every setting is off: recorded as such, never skipped."""
    with unit.step("GetPublicAccessBlock"):
        account = unit.scan.account = unit.client("sts", unit.cfg.region).get_caller_identity()["Account"]
        try:
            conf = unit.client("s3control", unit.cfg.region).get_public_access_block(
                AccountId=account)["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != NO_PUBLIC_ACCESS_BLOCK:
                raise
            conf = {}
        unit.add("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", account, {
            "accountId": account, **{k[:1].lower() + k[1:]: bool(conf.get(k)) for k in BLOCK_SETTINGS},
        }, region=unit.cfg.region, name=f"s3-block-public-access-{account}")


def scan(unit: Unit) -> None:
    """ListBuckets is account-wide: buckets in the scanned regions are checked, once."""
    scan_account_public_access_block(unit)
    regions = unit.scan.regions
    try:
        buckets = [b for page in pages(unit.client("s3", unit.cfg.region), "list_buckets") for b in page["Buckets"]]
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- any fault: the account's buckets are not checked
        unit.skip("ListBuckets", exc)
        return
    for b in buckets:
        name = b["Name"]
        region = b.get("BucketRegion")
        if region is None:
            try:
                region = bucket_location(unit.client("s3", unit.cfg.region), name)
            except ReadOnlyViolation:
                raise
            except Exception as exc:  # noqa: BLE001 -- any fault: not checked
                for r in regions:  # it could be in any scanned region: fail closed for all
                    unit.scan.for_region("s3", r).skip(f"bucket {name}", exc)
                continue
        unit.scan._bucket_regions.setdefault(name, region)
        if region not in regions:
            if unit.scan.sweeping and region not in unit.cfg.geography.regions:
                # A bucket outside the geography holds data there: RSD-001 reports it.
                unit.add("aws:s3/bucket:Bucket", name, {"bucket": name}, arn=f"arn:{unit.partition}:s3:::{name}",
                         region=region)
            continue
        here = unit.scan.for_region("s3", region)
        if ("s3", region) in unit.scan.abandoned:
            continue  # already not checked: its endpoint stopped answering
        try:
            _replication(here, name)
            _policy_and_acl(here, name)
        except UnitAbandoned:
            continue  # recorded once: the region's S3 endpoint stopped answering


def _absent(exc: BaseException, codes: set[str]) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in codes


def _replication(here: Unit, name: str) -> None:
    try:
        config = here.client("s3").get_bucket_replication(Bucket=name)["ReplicationConfiguration"]
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- any fault but "no replication": not checked
        if not _absent(exc, NO_REPLICATION):
            here.skip(f"bucket {name}", exc)
        return
    rules = camel(config.get("Rules") or [])
    for rule in rules:
        dest = (rule.get("destination") or {}).get("bucket") or ""
        here.add_bucket(dest.split(":::", 1)[-1] if dest.startswith("arn:") else dest)
    here.add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", name,
             {"bucket": name, "role": config.get("Role"), "rules": rules},
             name=name)


def _policy_and_acl(here: Unit, name: str) -> None:
    """The bucket policy (none: nothing recorded) and the ACL's grants, as pulumi-aws inputs."""
    s3 = here.client("s3")
    with here.step(f"bucket {name} policy"):
        try:
            policy = s3.get_bucket_policy(Bucket=name)["Policy"]
        except ClientError as exc:
            if not _absent(exc, NO_POLICY):
                raise
            policy = None
        if policy:
            here.add("aws:s3/bucketPolicy:BucketPolicy", name, {"bucket": name, "policy": policy}, name=name)
    with here.step(f"bucket {name} ACL"):
        acl = s3.get_bucket_acl(Bucket=name)
        grants = [{"grantee": {"type": g["Grantee"].get("Type"), "uri": g["Grantee"].get("URI"),
                               "id": g["Grantee"].get("ID")}, "permission": g.get("Permission")}
                  for g in acl.get("Grants") or []]
        here.add("aws:s3/bucketAclV2:BucketAclV2", name, {"bucket": name, "accessControlPolicy": {
            "grants": grants, "owner": {"id": (acl.get("Owner") or {}).get("ID")}}}, name=name)
