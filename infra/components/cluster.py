"""`ServingCluster`: the self-hosted model-serving cluster (EKS, private API endpoint only).

A system node group and a GPU managed node group (sized from config, may scale to zero), an
in-region ECR repository for the model-server image, a versioned, KMS-encrypted, protected S3
bucket for model weights, and an EKS Pod Identity role that can read only that bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.iam import POD_IDENTITY, eks_node_role, service_trust
from infra.components.storage import private_bucket
from infra.config import GpuNodeGroup

SERVING_NAMESPACE = "model-serving"
SERVING_SERVICE_ACCOUNT = "vllm"
KUBERNETES_VERSION = "1.33"


@dataclass(frozen=True)
class ServingClusterArgs:
    stack: str
    region: str
    partition: str
    subnet_ids: list[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    kms_key_arn: pulumi.Input[str]
    gpu: GpuNodeGroup
    system_instance_type: str = "m6i.large"
    kubernetes_version: str = KUBERNETES_VERSION
    log_retention_days: int = 365


class ServingCluster(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    weights_bucket: aws.s3.Bucket
    repository: aws.ecr.Repository
    workload_role: aws.iam.Role

    def __init__(self, name: str, args: ServingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:ServingCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=True)
        policy_arn = f"arn:{args.partition}:iam::aws:policy"
        self.cluster_name = f"{name}-{args.stack}"

        cluster_role = aws.iam.Role(f"{name}-cluster", assume_role_policy=service_trust("eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"), opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-cluster", role=cluster_role.name, policy_arn=f"{policy_arn}/AmazonEKSClusterPolicy", opts=child)

        # Control-plane logs are created by EKS under this fixed name; owning it first keeps it
        # encrypted with the in-region key and protected.
        self.control_plane_logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane", name=f"/aws/eks/{self.cluster_name}/cluster",
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn, opts=protected)

        self.cluster_security_group = aws.ec2.SecurityGroup(
            f"{name}-cluster", vpc_id=args.vpc_id, description="EKS control plane: in-VPC only",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.vpc_cidr]}],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [args.vpc_cidr]}],
            opts=child)

        self.cluster = aws.eks.Cluster(
            f"{name}-eks", name=self.cluster_name, version=args.kubernetes_version, role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": args.subnet_ids, "endpoint_private_access": True,
                        "endpoint_public_access": False, "security_group_ids": [self.cluster_security_group.id]},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": args.kms_key_arn}},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane_logs]))

        node_role, _ = eks_node_role(f"{name}-nodes", args.partition, parent=self)

        self.system_nodes = aws.eks.NodeGroup(
            f"{name}-system", cluster_name=self.cluster.name, node_role_arn=node_role.arn, subnet_ids=args.subnet_ids,
            instance_types=[args.system_instance_type], ami_type="AL2023_x86_64_STANDARD",
            scaling_config={"min_size": 2, "desired_size": 2, "max_size": 3},
            labels={"ai-companion/pool": "system"}, opts=child)
        self.gpu_nodes = aws.eks.NodeGroup(
            f"{name}-gpu", cluster_name=self.cluster.name, node_role_arn=node_role.arn, subnet_ids=args.subnet_ids,
            instance_types=[args.gpu.instance_type], ami_type="AL2023_x86_64_NVIDIA",
            scaling_config={"min_size": args.gpu.min_size, "desired_size": args.gpu.min_size, "max_size": args.gpu.max_size},
            labels={"ai-companion/pool": "gpu"},
            taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}], opts=child)
        aws.eks.Addon(f"{name}-pod-identity", cluster_name=self.cluster.name, addon_name="eks-pod-identity-agent", opts=child)

        self.repository = aws.ecr.Repository(
            f"{name}-model-server", name=f"ai-companion/{args.stack}/vllm", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=False, opts=child)

        # Model weights: stateful, so versioned, KMS-encrypted, private and protected.
        self.weights_bucket = private_bucket(f"{name}-weights", args.kms_key_arn, parent=self).bucket

        # Workload identity (EKS Pod Identity): the vLLM service account can read only the weights.
        self.workload_role = aws.iam.Role(
            f"{name}-vllm", assume_role_policy=service_trust(*POD_IDENTITY), opts=child)
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
        aws.eks.PodIdentityAssociation(
            f"{name}-vllm", cluster_name=self.cluster.name, namespace=SERVING_NAMESPACE,
            service_account=SERVING_SERVICE_ACCOUNT, role_arn=self.workload_role.arn, opts=child)

        self.register_outputs({
            "clusterName": self.cluster.name,
            "weightsBucket": self.weights_bucket.bucket,
            "repositoryUrl": self.repository.repository_url,
        })
