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


def pod_identity_trust(account_id: pulumi.Input[str], cluster_name: pulumi.Input[str], namespace: str,
                       service_account: str) -> pulumi.Output[str]:
    """EKS Pod Identity's trust, only for one service account of one cluster of the account: the
    session tags Pod Identity sets (EKS user guide, "Create IAM role with trust policy required by
    EKS Pod Identity": eks-cluster-name, kubernetes-namespace, kubernetes-service-account) and the
    source account. Without them any Pod Identity association in the account could use the role."""
    service, *actions = POD_IDENTITY
    return pulumi.Output.all(account_id, cluster_name).apply(lambda a: json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": service}, "Action": actions,
            "Condition": {"StringEquals": {"aws:SourceAccount": a[0], "aws:RequestTag/eks-cluster-name": a[1],
                                           "aws:RequestTag/kubernetes-namespace": namespace,
                                           "aws:RequestTag/kubernetes-service-account": service_account}}}]}))


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


# What the deploy role may create, and only so (docs/iam/deploy-permissions.json): roles and
# instance profiles under the stack's own path, each role capped by the stack's permissions
# boundary (a policy an administrator creates at bootstrap, docs/iam/boundary-permissions.json),
# and buckets whose names start with the stack's prefix.
def stack_role_path(stack: str) -> str:
    return f"/ai-companion/{stack}/"


def stack_bucket_prefix(stack: str) -> str:
    return f"ai-companion-{stack}-"


def boundary_arn(partition: str, account_id: str, stack: str) -> str:
    return f"arn:{partition}:iam::{account_id}:policy/ai-companion-boundary-{stack}"


def stack_owned(stack: str, boundary: str):
    """A resource transformation for every resource of the stack: roles get the stack's path and
    permissions boundary, instance profiles the path, unnamed buckets the stack's name prefix."""
    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        props = dict(args.props)
        if args.type_ == "aws:iam/role:Role":
            props.update(path=stack_role_path(stack), permissions_boundary=boundary)
        elif args.type_ == "aws:iam/instanceProfile:InstanceProfile":
            props.update(path=stack_role_path(stack))
        elif args.type_ == "aws:s3/bucket:Bucket" and not props.get("bucket"):
            props.update(bucket_prefix=stack_bucket_prefix(stack))
        else:
            return None
        return pulumi.ResourceTransformationResult(props, args.opts)
    return transform
