"""A private, versioned, KMS-encrypted, protected S3 bucket: the one shape every stateful bucket
in the stacks takes (model weights, Bedrock invocation logs), inside the data perimeter
(perimeter.bucket_policy: TLS only, the account's principals only, the stack key only)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.components.perimeter import bucket_policy


@dataclass
class PrivateBucket:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    settings: list[pulumi.Resource]  # everything that must exist before the bucket is written to


def private_bucket(name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource,
                   account_id: pulumi.Input[str] | None = None) -> PrivateBucket:
    """Create the bucket and its settings as children of `parent` (so they get its provider).

    The bucket is protected: deleting it would destroy the data it holds. With `account_id`, the
    bucket gets the perimeter policy; a caller that needs statements of its own passes none and
    writes one policy with `bucket_policy`'s statements added (a bucket has one policy)."""
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
    settings = [versioning, encryption, block, ownership]
    if account_id is not None:
        settings.append(aws.s3.BucketPolicy(
            name, bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, account_id, kms_key_arn).apply(lambda a: bucket_policy(*a)),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[block])))
    return PrivateBucket(bucket, block, settings)
