"""KMS: multi-region keys and their replicas (wherever the replicas are), and the key policy of
every customer-managed key (RSD-057 judges it; AWS-managed keys' policies are AWS's)."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages, register_reads

register_reads("kms", "GetKeyPolicy")
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"

KEY = "aws:kms/key:Key"
REPLICA = "aws:kms/replicaKey:ReplicaKey"


def scan(unit: Unit) -> None:
    kms = unit.client()
    keys: list[dict] = []
    with unit.step("ListKeys"):
        keys = [k for page in pages(kms, "list_keys") for k in page["Keys"]]
    for k in keys:
        with unit.step(f"key {k['KeyId']}"):
            meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") == "CUSTOMER" and meta.get("KeyState") != "PendingDeletion":
                policy = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
                unit.add(KEY_POLICY, meta["KeyId"], {"keyId": meta["KeyId"], "policy": policy})
            if not meta.get("MultiRegion"):
                continue  # single-region keys never leave the region
            mrc = meta.get("MultiRegionConfiguration") or {}
            primary = mrc.get("PrimaryKey") or {}
            common = {"description": meta.get("Description"), "keyUsage": meta.get("KeyUsage"),
                      "customerMasterKeySpec": meta.get("KeySpec")}
            if mrc.get("MultiRegionKeyType") == "REPLICA":
                unit.add(REPLICA, meta["KeyId"], {**common, "primaryKeyArn": primary.get("Arn"),
                                                  "enabled": meta.get("Enabled")}, arn=meta["Arn"])
            else:
                unit.add(KEY, meta["KeyId"], {**common, "multiRegion": True, "isEnabled": meta.get("Enabled")},
                         arn=meta["Arn"])
            # Every member of the key family, with its own region: replicas outside the geography
            # are placed there, and a foreign primary of a local replica is too.
            if primary.get("Arn") and primary["Arn"] != meta["Arn"]:
                unit.add(KEY, primary["Arn"].rsplit("/", 1)[-1], {"multiRegion": True}, arn=primary["Arn"],
                         region=primary.get("Region"))
            for replica in mrc.get("ReplicaKeys") or []:
                if replica.get("Arn") and replica["Arn"] != meta["Arn"]:
                    unit.add(REPLICA, replica["Arn"].rsplit("/", 1)[-1], {"primaryKeyArn": primary.get("Arn")},
                             arn=replica["Arn"], region=replica.get("Region"))
