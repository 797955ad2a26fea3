"""`ServingCluster`: the self-hosted model-serving cluster (EKS Auto Mode, private API endpoint only).

Capacity comes from EKS Auto Mode: AWS runs Karpenter, the GPU drivers and NVIDIA device plugin
(in the Auto Mode node AMI), the load balancer controller, the EBS CSI driver, the Pod Identity
agent and the network policy agent, all outside the cluster's own images, so nothing has to be
pulled from a public registry. The built-in `system` node pool runs cluster add-ons; the GPU node
pool is a Kubernetes object of the cluster layer (`ModelServer`), so GPU nodes start from zero
when a model pod is pending and no Pulumi-managed desired size ever resets what Karpenter did.

Also here: an in-region ECR repository for the model-server image, a versioned, KMS-encrypted,
protected S3 bucket for model weights, and an EKS Pod Identity role that can read only that bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.components.iam import managed_policy_attachments, pod_identity_trust, service_trust
from infra.program.components.storage import private_bucket
from infra.program.config import SERVICE_CIDR

SERVING_NAMESPACE = "model-serving"
SERVING_SERVICE_ACCOUNT = "vllm"
# What the cluster role needs for Auto Mode to manage compute, block storage, load balancers and
# networking (EKS user guide, "auto-learn-iam"); the node role is the Auto Mode minimal one.
AUTO_MODE_CLUSTER_POLICIES = (
    "AmazonEKSClusterPolicy", "AmazonEKSComputePolicy", "AmazonEKSBlockStoragePolicy",
    "AmazonEKSLoadBalancingPolicy", "AmazonEKSNetworkingPolicy",
)
AUTO_MODE_NODE_POLICIES = ("AmazonEKSWorkerNodeMinimalPolicy", "AmazonEC2ContainerRegistryPullOnly")
# Add-ons that managed node groups (the Federated connector nodes) need next to Auto Mode nodes,
# which carry their own. The VPC CNI enforces NetworkPolicy there too.
MANAGED_NODE_ADDONS = {
    "vpc-cni": {"enableNetworkPolicy": "true"},
    "kube-proxy": None,
    "coredns": None,
    "eks-pod-identity-agent": None,
}


@dataclass(frozen=True)
class ServingClusterArgs:
    stack: str
    region: str
    partition: str
    subnet_ids: list[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    kms_key_arn: pulumi.Input[str]
    kubernetes_version: str
    account_id: str
    # True when managed node groups join the cluster (Federated connectors): their add-ons.
    managed_node_groups: bool = False
    # CI preview role: read-only Kubernetes access for previews of the cluster layer.
    preview_role_arn: str | None = None
    log_retention_days: int = 365


class ServingCluster(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    weights_bucket: aws.s3.Bucket
    repository: aws.ecr.Repository
    workload_role: aws.iam.Role
    workload_identity: aws.eks.PodIdentityAssociation

    def __init__(self, name: str, args: ServingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:ServingCluster", name, None, opts)
        self.cluster_name = f"{name}-{args.stack}"
        self._control_plane(name, args)
        self._access(name, args)
        self._add_ons(name, args)
        self._model_store(name, args)
        self._workload_identity(name, args)
        self.register_outputs({
            "clusterName": self.cluster.name,
            "weightsBucket": self.weights_bucket.bucket,
            "repositoryUrl": self.repository.repository_url,
        })

    def _control_plane(self, name: str, args: ServingClusterArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        cluster_role = aws.iam.Role(f"{name}-cluster", assume_role_policy=service_trust(
            "eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"), opts=child)
        cluster_attachments = managed_policy_attachments(f"{name}-cluster", cluster_role, args.partition,
                                                         AUTO_MODE_CLUSTER_POLICIES, parent=self)
        self.node_role = aws.iam.Role(f"{name}-nodes", assume_role_policy=service_trust("ec2.amazonaws.com"), opts=child)
        node_attachments = managed_policy_attachments(f"{name}-nodes", self.node_role, args.partition,
                                                      AUTO_MODE_NODE_POLICIES, parent=self)

        # Control-plane logs are created by EKS under this fixed name; owning it first keeps it
        # encrypted with the in-region key and protected.
        self.control_plane_logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane", name=f"/aws/eks/{self.cluster_name}/cluster",
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, protect=True))

        self.cluster_security_group = aws.ec2.SecurityGroup(
            f"{name}-cluster", vpc_id=args.vpc_id, description="EKS control plane: in-VPC only",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.vpc_cidr]}],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [args.vpc_cidr]}],
            opts=child)

        # The cluster depends on every policy attachment: on destroy, the roles keep their
        # policies until the cluster (and the nodes it launched) are gone.
        self.cluster = aws.eks.Cluster(
            f"{name}-eks", name=self.cluster_name, version=args.kubernetes_version, role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": args.subnet_ids, "endpoint_private_access": True,
                        "endpoint_public_access": False, "security_group_ids": [self.cluster_security_group.id]},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": args.kms_key_arn}},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            # EKS Auto Mode: compute, block storage and load balancing are switched on together.
            bootstrap_self_managed_addons=False,
            compute_config={"enabled": True, "node_pools": ["system"], "node_role_arn": self.node_role.arn},
            storage_config={"block_storage": {"enabled": True}},
            kubernetes_network_config={"elastic_load_balancing": {"enabled": True},
                                       "service_ipv4_cidr": SERVICE_CIDR},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                self.control_plane_logs, *cluster_attachments, *node_attachments]))

    def _access(self, name: str, args: ServingClusterArgs) -> None:
        """Who may use the Kubernetes API besides the cluster creator (the deploy role, admin
        through `bootstrap_cluster_creator_admin_permissions`): the preview role, read-only."""
        if not args.preview_role_arn:
            return
        child = pulumi.ResourceOptions(parent=self)
        entry = aws.eks.AccessEntry(f"{name}-preview", cluster_name=self.cluster.name,
                                    principal_arn=args.preview_role_arn, type="STANDARD", opts=child)
        aws.eks.AccessPolicyAssociation(
            f"{name}-preview-view", cluster_name=self.cluster.name, principal_arn=entry.principal_arn,
            policy_arn=f"arn:{args.partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
            access_scope={"type": "cluster"}, opts=child)

    def _add_ons(self, name: str, args: ServingClusterArgs) -> None:
        self.addons: dict[str, aws.eks.Addon] = {}
        if not args.managed_node_groups:
            return
        for addon, configuration in MANAGED_NODE_ADDONS.items():
            extra = {"configuration_values": json.dumps(configuration)} if configuration else {}
            self.addons[addon] = aws.eks.Addon(
                f"{name}-{addon}", cluster_name=self.cluster.name, addon_name=addon,
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self), **extra)

    def _model_store(self, name: str, args: ServingClusterArgs) -> None:
        self.repository = aws.ecr.Repository(
            f"{name}-model-server", name=f"ai-companion/{args.stack}/vllm", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=False, opts=pulumi.ResourceOptions(parent=self))
        # Model weights: stateful, so versioned, KMS-encrypted, private and protected.
        self.weights_bucket = private_bucket(f"{name}-weights", args.kms_key_arn, parent=self,
                                             account_id=args.account_id).bucket

    def _workload_identity(self, name: str, args: ServingClusterArgs) -> None:
        """EKS Pod Identity: the vLLM service account can read only the weights."""
        child = pulumi.ResourceOptions(parent=self)
        self.workload_role = aws.iam.Role(
            f"{name}-vllm", assume_role_policy=pod_identity_trust(args.account_id, self.cluster_name, SERVING_NAMESPACE,
                                                                  SERVING_SERVICE_ACCOUNT), opts=child)
        aws.iam.RolePolicy(
            f"{name}-vllm-weights", role=self.workload_role.id,
            policy=pulumi.Output.all(self.weights_bucket.arn, args.kms_key_arn).apply(lambda a: json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "ListWeights", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": a[0]},
                    {"Sid": "ReadWeights", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{a[0]}/*"},
                    {"Sid": "DecryptWeights", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": a[1],
                     "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}}},
                ]})),
            opts=child)
        self.workload_identity = aws.eks.PodIdentityAssociation(
            f"{name}-vllm", cluster_name=self.cluster.name, namespace=SERVING_NAMESPACE,
            service_account=SERVING_SERVICE_ACCOUNT, role_arn=self.workload_role.arn, opts=child)
