"""IAM pieces several components build the same way."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

EKS_NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
POD_IDENTITY = ("pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession")


def service_trust(service: str, *actions: str) -> str:
    """A trust policy letting one AWS service principal assume the role (default: sts:AssumeRole)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions) or "sts:AssumeRole"}]})


def managed_policy_attachments(name: str, role: aws.iam.Role, partition: str, policies: tuple[str, ...],
                               parent: pulumi.Resource) -> list[aws.iam.RolePolicyAttachment]:
    """Attach AWS-managed policies to `role`; callers make what uses the role depend on the result,
    so that destroy detaches a policy only after its user is gone."""
    child = pulumi.ResourceOptions(parent=parent)
    return [aws.iam.RolePolicyAttachment(f"{name}-{p}", role=role.name, policy_arn=f"arn:{partition}:iam::aws:policy/{p}",
                                         opts=child)
            for p in policies]


def eks_node_role(name: str, partition: str, parent: pulumi.Resource,
                  tags: dict[str, str] | None = None) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role of an EKS managed node group with the three AWS-managed node policies."""
    role = aws.iam.Role(name, assume_role_policy=service_trust("ec2.amazonaws.com"), tags=tags,
                        opts=pulumi.ResourceOptions(parent=parent))
    return role, managed_policy_attachments(name, role, partition, EKS_NODE_POLICIES, parent)
