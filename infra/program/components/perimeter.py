"""The stack's data perimeter, after AWS's published examples
(github.com/aws-samples/data-perimeter-policy-examples, commit 8e0d3c5: vpc_endpoint_policies/).

VPC endpoint policies (`endpoint_policy`): a request through an endpoint must come from the
stack's account and reach a resource of the stack's account (`AllowRequestsByOrgsIdentitiesToOrgsResources`
with the account in place of the organization: the stack files know the account, not the
organization id), or come from an AWS service principal (`AllowRequestsByAWSServicePrincipals`),
plus, per service, the AWS-owned resources the stack reads (`AllowRequestsToAWSOwnedResources`,
trimmed to what the stack uses). So a hostile image or a shell on the tunnel cannot copy weights
or prompts to another account's bucket or repository in the same region, nor use outside
credentials through the endpoint.

Bucket policies (`bucket_policy`): deny requests without TLS, requests by principals of other
accounts (AWS service principals aside), and uploads that ask for another encryption or key than
the stack key (the bucket's default encryption).
"""

from __future__ import annotations

import json

# AWS-owned buckets the stack reads through the S3 endpoints (aws-samples s3_endpoint_policy.json,
# `AllowRequestsToAWSOwnedResources`): ECR image layers, the tunnel's Amazon Linux 2023 package
# repositories, and the SSM agent's updates and documents.
AWS_OWNED_BUCKETS = ("prod-{region}-starport-layer-bucket", "al2023-repos-{region}-de612dc2",
                     "amazon-ssm-{region}", "aws-ssm-{region}", "aws-ssm-document-attachments-{region}")
# Pulls of images in AWS-owned registries (EKS add-on images for the connector node group): reads
# only, so they carry nothing out (aws-samples ecr.api_endpoint_policy.json allows them by account).
ECR_PULLS = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
             "ecr:BatchCheckLayerAvailability"]
# Reads of AWS-owned SSM parameters and documents (aws-samples ssm_endpoint_policy.json).
SSM_AWS_RESOURCES = ["arn:{partition}:ssm:{region}::parameter/aws/*", "arn:{partition}:ssm:{region}::document/*"]


def _allow(sid: str, condition: dict | None = None, action="*", resource="*") -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource}
    return {**statement, "Condition": condition} if condition else statement


def endpoint_policy(service: str, region: str, partition: str, account_id: str) -> str:
    """The endpoint policy (JSON) of the interface or gateway endpoint of `service` ("s3", "ecr.api", ...)."""
    own_principal = {"StringEquals": {"aws:PrincipalAccount": account_id}}
    statements = [
        _allow("AllowRequestsByAccountIdentitiesToAccountResources",
               {"StringEquals": {"aws:PrincipalAccount": account_id, "aws:ResourceAccount": account_id}}),
        _allow("AllowRequestsByAWSServicePrincipals", {"Bool": {"aws:PrincipalIsAWSService": "true"}}),
    ]
    if service == "s3":
        statements.append(_allow("AllowReadsOfAWSOwnedBuckets", action=["s3:GetObject", "s3:ListBucket"],
                                 resource=[f"arn:{partition}:s3:::{b.format(region=region)}/*" for b in AWS_OWNED_BUCKETS]))
    if service in ("ecr.api", "ecr.dkr"):
        statements.append(_allow("AllowAccountIdentitiesToPullImages", own_principal, action=ECR_PULLS))
    if service == "ssm":
        statements.append(_allow("AllowAccountIdentitiesToReadAWSOwnedSsmResources", own_principal,
                                 action=["ssm:Describe*", "ssm:List*", "ssm:Get*"],
                                 resource=[r.format(partition=partition, region=region) for r in SSM_AWS_RESOURCES]))
    if service == "ec2":
        statements.append(_allow("AllowAccountIdentitiesToUseAWSImagesAndPrefixLists", own_principal,
                                 action=["ec2:RunInstances", "ec2:CreateTags", "ec2:GetManagedPrefixListEntries"],
                                 resource=[f"arn:{partition}:ec2:*::image/*", f"arn:{partition}:ec2:*:aws:prefix-list/*"]))
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def bucket_policy(bucket_arn: str, account_id: str, kms_key_arn: str) -> str:
    """Deny non-TLS requests, other accounts' principals and uploads without the stack key."""
    both = [bucket_arn, f"{bucket_arn}/*"]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyRequestsWithoutTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": both,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyPrincipalsOfOtherAccounts", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": both,
         "Condition": {"StringNotEquals": {"aws:PrincipalAccount": account_id},
                       "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}},
        # An upload without encryption headers gets the bucket default, the stack key; one that
        # names another encryption or another key is refused.
        {"Sid": "DenyUploadsWithAnotherEncryption", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                       "Null": {"s3:x-amz-server-side-encryption": "false"}}},
        {"Sid": "DenyUploadsWithAnotherKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn},
                       "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}}},
    ]})
