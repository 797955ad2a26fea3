"""`ApiTunnel`: the deploy path to the private EKS API, without opening the network.

The cluster's API endpoint is private and the VPC has no internet path, so a hosted CI runner (or
a laptop) cannot reach it. This small instance sits in a private subnet with no public IP and no
inbound rule at all; its SSM agent keeps an outbound channel to Systems Manager through the
in-region `ssm`, `ssmmessages` and `ec2messages` interface endpoints. A deployer with
`ssm:StartSession` on it runs the stack's own port-forward document (`eks_api_document`), which
forwards a local port to the API endpoint's port 443 inside the VPC and nowhere else: host and port
are fixed in the document, only the local port is a parameter (the AWS-managed
`AWS-StartPortForwardingSessionToRemoteHost` takes any host). The CI roles may start sessions only
with this document, under `ssm:SessionDocumentAccessCheck` (docs/iam/*-permissions.json), so a
session without a document (a shell) is refused. The kubeconfig of the cluster layer points at the
local port and checks the API server's certificate against its real name.

Chosen over an executor inside the VPC (a self-hosted runner needs the internet to reach GitHub,
which our rules forbid) and over a managed GitOps capability (`aws.eks.Capability`: Argo CD would
pull manifests from outside the geography and the cluster layer would leave Pulumi and the policy
pack). Only Kubernetes manifests cross the tunnel, never model data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.components.iam import managed_policy_attachments, service_trust

# Local port the tunnel listens on, and what the cluster layer's kubeconfig dials.
API_TUNNEL_PORT = 8443
TUNNEL_ROLE_TAG = {"ai-companion:role": "api-tunnel"}
# Latest Amazon Linux 2023 (SSM agent preinstalled): the public SSM parameter of the home region,
# read through the stack's provider (the preview and deploy roles may read /aws/service/*).
TUNNEL_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
# The interface endpoints the SSM agent needs in a VPC without internet (Systems Manager user
# guide, "setup-create-vpc"). The instance waits for them: an agent that boots first finds no
# route to Systems Manager and backs off for a long time before it registers.
SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")


def eks_api_document_name(stack: str) -> str:
    """The stack's port-forward document (the CI roles' policies name it)."""
    return f"ai-companion-{stack}-eks-api"


def eks_api_document(api_endpoint: str) -> str:
    """A Session document (type Port) pinned to the API endpoint's host and port 443; after the
    document shape of AWS-StartPortForwardingSessionToRemoteHost, with host and port fixed."""
    return json.dumps({
        "schemaVersion": "1.0", "sessionType": "Port",
        "description": "Port-forward to this stack's private EKS API endpoint only",
        "parameters": {"localPortNumber": {"type": "String", "default": str(API_TUNNEL_PORT),
                                           "allowedPattern": "^[0-9]{1,5}$"}},
        "properties": {"type": "LocalPortForwarding", "host": api_endpoint.removeprefix("https://"),
                       "portNumber": "443", "localPortNumber": "{{ localPortNumber }}"}})


@dataclass(frozen=True)
class ApiTunnelArgs:
    partition: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    ssm_endpoints: list[pulumi.Resource]  # the SSM_ENDPOINTS interface endpoints of the VPC
    stack: str
    api_endpoint: pulumi.Input[str]
    instance_type: str = "t4g.nano"


class ApiTunnel(pulumi.ComponentResource):
    instance: aws.ec2.Instance

    def __init__(self, name: str, args: ApiTunnelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:ApiTunnel", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ami = aws.ssm.get_parameter_output(name=TUNNEL_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)).value
        role = aws.iam.Role(name, assume_role_policy=service_trust("ec2.amazonaws.com"), tags=TUNNEL_ROLE_TAG, opts=child)
        attachments = managed_policy_attachments(name, role, args.partition, ("AmazonSSMManagedInstanceCore",), parent=self)
        profile = aws.iam.InstanceProfile(name, role=role.name, opts=child)
        # No ingress: sessions arrive over the agent's own outbound channel. Egress only to the VPC
        # (the API endpoint and the SSM interface endpoints), on 443.
        self.security_group = aws.ec2.SecurityGroup(
            name, vpc_id=args.vpc_id, description="SSM port-forward to the private EKS API: no ingress",
            ingress=[],
            egress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.vpc_cidr]}],
            tags=TUNNEL_ROLE_TAG, opts=child)
        self.instance = aws.ec2.Instance(
            name, ami=ami, instance_type=args.instance_type, subnet_id=args.subnet_id,
            associate_public_ip_address=False, iam_instance_profile=profile.name,
            vpc_security_group_ids=[self.security_group.id],
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1},
            root_block_device={"encrypted": True, "kms_key_id": args.kms_key_arn, "volume_size": 8},
            tags={**TUNNEL_ROLE_TAG, "Name": name},
            # A newer AMI behind the parameter must not replace the instance on every `up`.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, *args.ssm_endpoints],
                                        ignore_changes=["ami"]))
        self.document = aws.ssm.Document(
            f"{name}-eks-api", name=eks_api_document_name(args.stack), document_type="Session",
            document_format="JSON", content=pulumi.Output.from_input(args.api_endpoint).apply(eks_api_document),
            opts=child)
        self.register_outputs({"instanceId": self.instance.id, "documentName": self.document.name})
