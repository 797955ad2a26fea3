"""The audit role's policy, generated from the scanner's operation allow-list (core.ALLOWED_OPERATIONS,
itself fed by the declared listings): every read the scanner may send, nothing else.

    python -m infra.engine.live.permissions --write   # docs/iam/audit-permissions.json

The same document is the inline policy of the read-only role `--org` assumes in each account
(infra/program/components/audit_role.py takes it as data). A test keeps the file fresh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

POLICY_PATH = Path(__file__).resolve().parents[3] / "docs" / "iam" / "audit-permissions.json"

# The IAM prefix of a botocore client where the two differ (network-firewall is the same in both).
# botocore operation -> IAM action where the names differ (AWS Service Authorization Reference,
# https://docs.aws.amazon.com/service-authorization/latest/reference/).
IAM_ACTION_FOR = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "GetBucketAcl"): "s3:GetBucketAcl",
    ("s3", "GetBucketPolicy"): "s3:GetBucketPolicy",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3control", "ListMultiRegionAccessPoints"): "s3:ListMultiRegionAccessPoints",
    ("resourcegroupstaggingapi", "GetResources"): "tag:GetResources",
    ("resource-explorer-2", "ListIndexes"): "resource-explorer-2:ListIndexes",
    ("sts", "AssumeRole"): "sts:AssumeRole",
}
IAM_PREFIX_FOR = {"elbv2": "elasticloadbalancing", "service-quotas": "servicequotas",
                  "elb": "elasticloadbalancing", "s3control": "s3", "opensearch": "es",
                  "efs": "elasticfilesystem", "resourcegroupstaggingapi": "tag"}
# API Gateway authorizes by HTTP verb on a resource path: granted on the API lists only.
API_GATEWAY = {("apigateway", "GetRestApis"), ("apigatewayv2", "GetApis")}


def iam_action(service: str, operation: str) -> str:
    return IAM_ACTION_FOR.get((service, operation), f"{IAM_PREFIX_FOR.get(service, service)}:{operation}")


def audit_policy(allowed: dict[str, frozenset[str]] | None = None) -> dict:
    if allowed is None:
        from infra.engine.live import ALLOWED_OPERATIONS as allowed  # every listing registered
    actions = sorted({iam_action(s, op) for s, ops in allowed.items() for op in ops if (s, op) not in API_GATEWAY})
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ScanEveryRegionReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"},
        {"Sid": "ListApiGatewayApisOnly", "Effect": "Allow", "Action": ["apigateway:GET"],
         "Resource": ["arn:aws:apigateway:*::/restapis", "arn:aws:apigateway:*::/apis"]},
    ]}


def render() -> str:
    return json.dumps(audit_policy(), indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        POLICY_PATH.write_text(render())
        print(POLICY_PATH)
    else:
        sys.stdout.write(render())
