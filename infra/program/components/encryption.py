"""`StackKey`: the stack's in-region customer-managed KMS key.

Every encrypted thing in the stack (flow logs, weights, cluster secrets, logs, connector secrets)
uses this one key, created in the stack's home region and never multi-Region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class StackKeyArgs:
    region: str
    partition: str
    account_id: pulumi.Input[str]
    # ZM+: Bedrock writes invocation logs to an SSE-KMS bucket as its own service principal.
    bedrock_invocation_logs: bool = False


class StackKey(pulumi.ComponentResource):
    key: aws.kms.Key

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def key_policy(account_id: str) -> str:
            root = f"arn:{args.partition}:iam::{account_id}:root"
            return json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": root},
                     "Action": "kms:*", "Resource": "*"},
                    # CloudWatch Logs encrypts log groups with the key, but only for this account's
                    # log groups in this region (encryption-context condition).
                    {"Sid": "RegionalLogsUse", "Effect": "Allow",
                     "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                     "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                     "Resource": "*",
                     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                               f"arn:{args.partition}:logs:{args.region}:{account_id}:*"}}},
                ] + ([
                    # Only this account's Bedrock in this region (confused-deputy guard).
                    {"Sid": "BedrockInvocationLogs", "Effect": "Allow",
                     "Principal": {"Service": "bedrock.amazonaws.com"},
                     "Action": "kms:GenerateDataKey", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                                   "ArnLike": {"aws:SourceArn": f"arn:{args.partition}:bedrock:{args.region}:{account_id}:*"}}},
                ] if args.bedrock_invocation_logs else []),
            })

        # A key is stateful: deleting it destroys every piece of data it encrypts.
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"ai-companion data key ({args.region})",
            enable_key_rotation=True,
            multi_region=False,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.account_id).apply(key_policy),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.alias = aws.kms.Alias(f"{name}-alias", name=f"alias/{name}", target_key_id=self.key.key_id, opts=child)
        self.register_outputs({"keyArn": self.key.arn})
