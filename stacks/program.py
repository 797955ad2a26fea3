"""The deployable composition: one stack per geography, options switched on from config.

`main()` is what `pulumi up` runs (via the root `__main__.py`): it validates config first and
raises `ConfigError` before any resource exists. `build(cfg)` composes the components under one
explicit provider for the home region, whose default tags record geography, options and stack.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.program.catalog import load_catalog
from infra.program.components.api_tunnel import SSM_ENDPOINTS, ApiTunnel, ApiTunnelArgs
from infra.program.components.bedrock import BedrockAccess, BedrockAccessArgs
from infra.program.components.cluster import ServingCluster, ServingClusterArgs
from infra.program.components.dns_firewall import DnsFirewall, DnsFirewallArgs
from infra.program.components.egress import EgressConnectors, EgressConnectorsArgs
from infra.program.components.iam import boundary_arn, stack_owned
from infra.program.components.encryption import StackKey, StackKeyArgs
from infra.program.components.model_server import ModelServer, ModelServerArgs
from infra.program.components.network import Network, NetworkArgs
from infra.program.config import StackConfig, from_pulumi


def build(cfg: StackConfig) -> dict:
    geo = cfg.geography
    provider = aws.Provider(
        f"aws-{cfg.region}",
        region=cfg.region,
        # Account pinning: credentials of any other account are refused before anything is read.
        allowed_account_ids=[cfg.account_id],
        default_tags={"tags": {
            "ai-companion:geography": geo.code,
            "ai-companion:options": cfg.tag_options,
            "ai-companion:stack": cfg.stack,
        }},
    )
    # Every role, instance profile and bucket under the stack's own path, boundary and name prefix:
    # the only ones the deploy role may create (docs/iam/deploy-permissions.json).
    on_provider = pulumi.ResourceOptions(providers={"aws": provider}, transformations=[
        stack_owned(cfg.stack, boundary_arn(geo.partition, cfg.account_id, cfg.stack))])
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id

    key = StackKey("data", StackKeyArgs(cfg.region, geo.partition, account_id,
                                        bedrock_invocation_logs=cfg.has("zm_plus")), opts=on_provider)
    network = Network("net", NetworkArgs(
        region=cfg.region, partition=geo.partition, cidr=cfg.vpc_cidr,
        availability_zones=geo.availability_zones, kms_key_arn=key.key.arn, account_id=cfg.account_id),
        opts=on_provider)
    cluster = ServingCluster("serving", ServingClusterArgs(
        stack=cfg.stack, region=cfg.region, partition=geo.partition,
        subnet_ids=[s.id for s in network.private_subnets], vpc_id=network.vpc.id, vpc_cidr=cfg.vpc_cidr,
        kms_key_arn=key.key.arn, kubernetes_version=load_catalog().kubernetes.version, account_id=cfg.account_id,
        managed_node_groups=cfg.has("federated"),
        preview_role_arn=f"arn:{geo.partition}:iam::{cfg.account_id}:role/ai-companion-preview-{cfg.stack}"),
        opts=on_provider)
    tunnel = ApiTunnel("api-tunnel", ApiTunnelArgs(
        partition=geo.partition, vpc_id=network.vpc.id, vpc_cidr=cfg.vpc_cidr,
        subnet_id=network.private_subnets[0].id, kms_key_arn=key.key.arn,
        ssm_endpoints=[network.interface_endpoints[s] for s in SSM_ENDPOINTS],
        stack=cfg.stack, api_endpoint=cluster.cluster.endpoint), opts=on_provider)
    # The cluster layer exists once `residency seed` has put the image into ECR and its digest is
    # in the stack file; until then `up` builds the AWS layer only (docs/operations.md, first deploy).
    if cfg.model_image_digest:
        ModelServer("model", ModelServerArgs(
            region=cfg.region, cluster_name=cluster.cluster.name, cluster_endpoint=cluster.cluster.endpoint,
            cluster_ca=cluster.cluster.certificate_authority.data, repository_url=cluster.repository.repository_url,
            image_digest=cfg.model_image_digest, weights_bucket=cluster.weights_bucket.bucket,
            served_model=cfg.served_model, vpc_cidr=cfg.vpc_cidr, gpu=cfg.gpu,
            availability_zones=geo.availability_zones, workload_identity=cluster.workload_identity,
            depends_on=[cluster.cluster, *cluster.addons.values()]))

    outputs = {
        "geography": geo.code,
        "region": cfg.region,
        "options": list(cfg.options),
        "vpcId": network.vpc.id,
        "clusterName": cluster.cluster.name,
        "clusterEndpoint": cluster.cluster.endpoint,
        "apiTunnelInstanceId": tunnel.instance.id,
        "apiTunnelDocument": tunnel.document.name,
        "weightsBucket": cluster.weights_bucket.bucket,
        "modelRepositoryUrl": cluster.repository.repository_url,
        "workloadLayer": bool(cfg.model_image_digest),
        # Paths that leave the VPC by design (Federated connectors); reviewed, never silent.
        "declaredDataPaths": [],
    }
    if cfg.has("zm_plus"):
        bedrock = BedrockAccess("bedrock", BedrockAccessArgs(
            stack=cfg.stack, geography=geo, account_id=account_id, models=cfg.bedrock_models,
            vpc_id=network.vpc.id, subnet_ids=[s.id for s in network.private_subnets],
            endpoint_security_group_id=network.endpoint_security_group.id,
            cluster_name=cluster.cluster.name, kms_key_arn=key.key.arn), opts=on_provider)
        outputs["bedrock"] = {
            "roleArn": bedrock.role.arn, "endpointId": bedrock.endpoint.id,
            "guardrailArn": bedrock.guardrail.guardrail_arn, "guardrailVersion": bedrock.guardrail_version.version,
            "allowedArns": bedrock.allowed_arns}
    if not cfg.has("federated"):  # the Federated egress brings the walled garden with its connector hosts
        DnsFirewall("dns", DnsFirewallArgs(stack=cfg.stack, region=cfg.region, partition=geo.partition,
                                           vpc_id=network.vpc.id), opts=on_provider)
    if cfg.has("federated"):
        egress = EgressConnectors("egress", EgressConnectorsArgs(
            stack=cfg.stack, geography=geo.code, region=cfg.region, partition=geo.partition,
            account_id=account_id, vpc_id=network.vpc.id, vpc_cidr=cfg.vpc_cidr,
            availability_zones=geo.availability_zones, kms_key_arn=key.key.arn,
            connectors=cfg.connectors, cluster_name=cluster.cluster.name,
            s3_gateway=network.s3_gateway), opts=on_provider)
        outputs["declaredDataPaths"] = egress.declared_paths

    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs


def main() -> None:
    build(from_pulumi())
