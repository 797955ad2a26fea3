"""`BedrockAccess` (ZM+): Anthropic models on Amazon Bedrock, scoped to the stack's geography.

- A workload role (EKS Pod Identity, the `gateway` service account) that may invoke exactly the
  configured models: an in-region model's foundation-model ARN in the home region, or the
  geography's profile ARN in the home region plus the foundation-model ARN in each catalogued
  destination region, conditioned on `bedrock:InferenceProfileArn` (residency-facts.md §2.1).
  Every Allow names the stack's guardrail (`bedrock:GuardrailIdentifier`), and explicit Denies
  block invocations without it, `global.` profiles and region-less model ARNs, other profiles,
  model ARNs outside the geography and any `aws:RequestedRegion` outside it. The documents are
  built by infra/program/bedrock_policy.py (Allows: exact ARNs only; Denies may use wildcards).
- A `bedrock-runtime` interface endpoint in the stack's VPC whose policy admits only the
  workload role, only the invoke actions, only on the allowed ARNs.
- Model invocation logging in the home region to an in-region, KMS-encrypted, versioned,
  protected S3 bucket and log group (Bedrock supports only same-account, same-region
  destinations).
- A guardrail without a cross-Region guardrail profile (which would move prompts within the
  geography, residency-facts.md §3) and a published version of it.

Not here: the account data-retention mode. pulumi-aws 7.51.1 has no resource for Bedrock
`PutAccountDataRetention` (Terraform's `aws_bedrock_account_data_retention` is newer), so the
stack cannot set it to `none`; `residency scp` emits a statement that denies setting any other
mode, and the README says to set it once per account and region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.bedrock_policy import LOG_STREAM, allowed_arns, invocation_log_group, bedrock_source, endpoint_policy, workload_policy
from infra.program.catalog import BedrockModel, Geography
from infra.program.components.cluster import SERVING_NAMESPACE
from infra.program.components.iam import pod_identity_trust
from infra.program.components import perimeter
from infra.program.components.storage import private_bucket

COMPONENT_TYPE = "ai-companion:zm_plus:BedrockAccess"
GATEWAY_SERVICE_ACCOUNT = "gateway"


@dataclass(frozen=True)
class BedrockAccessArgs:
    stack: str
    geography: Geography
    account_id: pulumi.Input[str]
    models: tuple[BedrockModel, ...]
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    endpoint_security_group_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    # The stack's in-region key; its policy lets Bedrock write SSE-KMS log objects
    # (StackKeyArgs.bedrock_invocation_logs).
    kms_key_arn: pulumi.Input[str]
    namespace: str = SERVING_NAMESPACE
    service_account: str = GATEWAY_SERVICE_ACCOUNT
    log_retention_days: int = 365


class BedrockAccess(pulumi.ComponentResource):
    role: aws.iam.Role
    endpoint: aws.ec2.VpcEndpoint
    guardrail: aws.bedrock.Guardrail
    guardrail_version: aws.bedrock.GuardrailVersion
    log_bucket: aws.s3.Bucket
    log_group: aws.cloudwatch.LogGroup
    allowed_arns: pulumi.Output

    def __init__(self, name: str, args: BedrockAccessArgs, opts: pulumi.ResourceOptions | None = None):
        geo = args.geography
        if geo.zm_plus is None or not args.models:  # parse_config guarantees this; checked before registering
            raise ValueError(f"BedrockAccess needs zm_plus models; {geo.code} has none configured")
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=True)
        p, region = geo.partition, geo.home_region
        account = pulumi.Output.from_input(args.account_id)

        # --- guardrail: no cross_region_config, so prompts are never sent to a guardrail profile.
        self.guardrail = aws.bedrock.Guardrail(
            f"{name}-guardrail", name=f"ai-companion-{args.stack}",
            description="ai-companion ZM+ guardrail (in-region, no cross-Region profile)",
            blocked_input_messaging="This request was blocked by the ai-companion guardrail.",
            blocked_outputs_messaging="This response was blocked by the ai-companion guardrail.",
            content_policy_config={"filters_configs": [
                {"type": "PROMPT_ATTACK", "input_strength": "HIGH", "output_strength": "NONE"},
                *({"type": t, "input_strength": "HIGH", "output_strength": "HIGH"}
                  for t in ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT")),
            ]},
            opts=child)
        self.guardrail_version = aws.bedrock.GuardrailVersion(
            f"{name}-guardrail", guardrail_arn=self.guardrail.guardrail_arn,
            description="published version the workload role must name", opts=child)

        # --- workload role (EKS Pod Identity) with exactly the configured models.
        self.allowed_arns = account.apply(lambda a: allowed_arns(geo, a, args.models))
        self.role = aws.iam.Role(
            f"{name}-gateway", description="ZM+ gateway: invoke the configured Bedrock models in the geography",
            assume_role_policy=pod_identity_trust(account, args.cluster_name, args.namespace, args.service_account),
            opts=child)
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-invoke", role=self.role.id,
            policy=pulumi.Output.all(account, self.guardrail.guardrail_arn, self.guardrail_version.version).apply(
                lambda a: json.dumps(workload_policy(geo, a[0], args.models, a[1], a[2]))),
            opts=child)
        aws.eks.PodIdentityAssociation(
            f"{name}-gateway", cluster_name=args.cluster_name, namespace=args.namespace,
            service_account=args.service_account, role_arn=self.role.arn, opts=child)

        # --- bedrock-runtime interface endpoint in the stack's VPC, home region only.
        self.endpoint = aws.ec2.VpcEndpoint(
            f"{name}-bedrock-runtime", vpc_id=args.vpc_id, service_name=f"com.amazonaws.{region}.bedrock-runtime",
            vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=args.subnet_ids,
            security_group_ids=[args.endpoint_security_group_id],
            policy=pulumi.Output.all(self.role.arn, self.allowed_arns, self.guardrail.guardrail_arn).apply(
                lambda a: json.dumps(endpoint_policy([a[0]], a[1], a[2]))),
            opts=child)

        # --- invocation logging: in-region, KMS-encrypted, protected bucket and log group.
        logs = private_bucket(f"{name}-invocation-logs", args.kms_key_arn, parent=self)
        self.log_bucket, public_block = logs.bucket, logs.public_access_block
        bucket_policy = aws.s3.BucketPolicy(
            f"{name}-invocation-logs", bucket=self.log_bucket.id,
            # Bedrock's own write, inside the stack's data perimeter (perimeter.bucket_policy).
            policy=pulumi.Output.all(account, self.log_bucket.arn, args.kms_key_arn).apply(lambda a: json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "BedrockWritesInvocationLogs", "Effect": "Allow",
                    "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "s3:PutObject",
                    "Resource": [f"{a[1]}/invocations/*", f"{a[1]}/large-data/*"],
                    "Condition": bedrock_source(p, region, a[0])},
                    *json.loads(perimeter.bucket_policy(a[1], a[0], a[2]))["Statement"]]})),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]))

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-invocation-logs", name=invocation_log_group(name),
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn, opts=protected)
        logging_role = aws.iam.Role(
            f"{name}-invocation-logs",
            assume_role_policy=account.apply(lambda a: json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": bedrock_source(p, region, a)}]})),
            opts=child)
        logging_policy = aws.iam.RolePolicy(
            f"{name}-invocation-logs", role=logging_role.id,
            policy=self.log_group.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{arn}:log-stream:{LOG_STREAM}"}]})),
            opts=child)
        self.logging = aws.bedrockmodel.InvocationLoggingConfiguration(
            f"{name}-invocation-logging",
            logging_config={
                "text_data_delivery_enabled": True,
                "s3_config": {"bucket_name": self.log_bucket.id, "key_prefix": "invocations"},
                "cloudwatch_config": {
                    "log_group_name": self.log_group.name, "role_arn": logging_role.arn,
                    "large_data_delivery_s3_config": {"bucket_name": self.log_bucket.id, "key_prefix": "large-data"}},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket_policy, logging_policy, *logs.settings]))

        self.register_outputs({
            "roleArn": self.role.arn,
            "endpointId": self.endpoint.id,
            "guardrailArn": self.guardrail.guardrail_arn,
            "guardrailVersion": self.guardrail_version.version,
            "allowedArns": self.allowed_arns,
        })
