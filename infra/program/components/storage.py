"""A private, versioned, KMS-encrypted, protected S3 bucket: the one shape every stateful bucket
in the stacks takes (model weights, Bedrock invocation logs)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class PrivateBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    settings: list[pulumi.Resource]  # everything that must exist before the bucket is written to


def private_bucket(name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource) -> PrivateBucket:
    """Create the bucket and its settings as children of `parent` (so they get its provider).

    The bucket is protected: deleting it would destroy the data it holds."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(name, force_destroy=False, opts=pulumi.ResourceOptions(parent=parent, protect=True))
    versioning = aws.s3.BucketVersioning(name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        name, bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn},
                "bucket_key_enabled": True}], opts=child)
    block = aws.s3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                           ignore_public_acls=True, restrict_public_buckets=True, opts=child)
    ownership = aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                               opts=child)
    return PrivateBucket(bucket, block, [versioning, encryption, block, ownership])
