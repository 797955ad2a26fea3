"""S3: bucket replication rules, with each destination bucket's region resolved, and the
account-level Block Public Access settings."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.engine.live.core import ReadOnlyViolation, Unit, bucket_location, camel, pages

NO_REPLICATION = {"ReplicationConfigurationNotFoundError", "NoSuchReplicationConfiguration"}
NO_PUBLIC_ACCESS_BLOCK = "NoSuchPublicAccessBlockConfiguration"
BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def scan_account_public_access_block(unit: Unit) -> None:
    """Account-wide S3 Block Public Access (s3control, read in the home region). None configured
    means every setting is off: recorded as such, never skipped."""
    with unit.step("GetPublicAccessBlock"):
        account = unit.client("sts", unit.cfg.region).get_caller_identity()["Account"]
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
            continue
        here = unit.scan.for_region("s3", region)
        if ("s3", region) in unit.scan.abandoned:
            continue  # already not checked: its endpoint stopped answering
        try:
            config = here.client("s3").get_bucket_replication(Bucket=name)["ReplicationConfiguration"]
        except ReadOnlyViolation:
            raise
        except Exception as exc:  # noqa: BLE001 -- any fault but "no replication": not checked
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in NO_REPLICATION:
                continue
            here.skip(f"bucket {name}", exc)
            continue
        rules = camel(config.get("Rules") or [])
        for rule in rules:
            dest = (rule.get("destination") or {}).get("bucket") or ""
            here.add_bucket(dest.split(":::", 1)[-1] if dest.startswith("arn:") else dest)
        here.add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", name,
                 {"bucket": name, "role": config.get("Role"), "rules": rules},
                 name=name)
