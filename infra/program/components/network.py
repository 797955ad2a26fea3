"""`Network`: the stack's private, in-region VPC.

Private subnets only (one per catalogued AZ), no internet or NAT gateway, no public IPs. AWS APIs
are reached through VPC endpoints in the home region, each with the data-perimeter policy
(`perimeter.endpoint_policy`: the account's principals to the account's resources), and flow logs
go to an in-region log group encrypted with the stack's KMS key. The Federated egress path, where enabled, is added by its own
component and never touches these subnets' routes.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.components.iam import service_trust
from infra.program.components.perimeter import endpoint_policy
# Interface endpoints a private EKS cluster needs (residency-facts.md §5): image pulls (ecr.*),
# node bootstrap (ec2, eks), IRSA/STS, Pod Identity (eks-auth), the in-tree NLB integration
# (elasticloadbalancing), logs, KMS for SSE-KMS objects, and Systems Manager (`ssm`,
# `ssmmessages`, `ec2messages`) for the API tunnel's port-forward sessions (`ApiTunnel`).
# No `autoscaling`: EKS Auto Mode launches GPU nodes itself, no Cluster Autoscaler calls it.
# `s3` is also an *interface* endpoint (besides the free gateway) so that pods reach S3 on in-VPC
# addresses and the workload's egress NetworkPolicy can stay "VPC CIDR only".
INTERFACE_ENDPOINTS = (
    "ecr.api", "ecr.dkr", "ec2", "sts", "eks", "eks-auth", "elasticloadbalancing",
    "logs", "kms", "s3", "ssm", "ssmmessages", "ec2messages",
)


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    partition: str
    cidr: str
    availability_zones: tuple[str, ...]
    kms_key_arn: pulumi.Input[str]
    account_id: str
    endpoints: tuple[str, ...] = INTERFACE_ENDPOINTS
    flow_log_retention_days: int = 365


def s3_gateway_route(name: str, table: aws.ec2.RouteTable, gateway: aws.ec2.VpcEndpoint,
                     opts: pulumi.ResourceOptions) -> aws.ec2.VpcEndpointRouteTableAssociation:
    """S3 (in-region, through the gateway endpoint and its policy) from the subnets of `table`."""
    return aws.ec2.VpcEndpointRouteTableAssociation(
        f"{name}-s3", route_table_id=table.id, vpc_endpoint_id=gateway.id, opts=opts)


def private_subnet_cidrs(cidr: str, count: int) -> list[str]:
    """Carve `count` equal private subnets from the first half of the VPC CIDR (the second half
    stays free for optional paths such as the Federated egress subnets)."""
    net = ipaddress.ip_network(cidr)
    return [str(s) for s in list(net.subnets(new_prefix=net.prefixlen + 3))[:count]]


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    private_subnets: list[aws.ec2.Subnet]
    private_route_tables: list[aws.ec2.RouteTable]
    endpoint_security_group: aws.ec2.SecurityGroup

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cidr = args.cidr

        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_support=True,
                               enable_dns_hostnames=True, tags={"Name": f"{name}-vpc"}, opts=child)

        # Lock the default security group down to nothing: no rule means no traffic.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[], opts=child)

        self.private_subnets, self.private_route_tables = [], []
        for az, cidr in zip(args.availability_zones, private_subnet_cidrs(args.cidr, len(args.availability_zones))):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{az}", vpc_id=self.vpc.id, cidr_block=cidr, availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{az}", "kubernetes.io/role/internal-elb": "1"}, opts=child)
            # One route table per AZ with only the implicit local route (plus the S3 gateway).
            table = aws.ec2.RouteTable(f"{name}-private-{az}", vpc_id=self.vpc.id,
                                       tags={"Name": f"{name}-private-{az}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{az}", subnet_id=subnet.id, route_table_id=table.id, opts=child)
            self.private_subnets.append(subnet)
            self.private_route_tables.append(table)

        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints", vpc_id=self.vpc.id, description="HTTPS from the VPC to AWS service endpoints",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.cidr]}],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [args.cidr]}],
            opts=child)

        prefix = f"com.amazonaws.{args.region}"
        # Route tables join the gateway by association resources only, never `route_table_ids`:
        # the Federated connector tables (egress.py) join the same endpoint later, and the two
        # ways of managing one endpoint's route tables overwrite each other (pulumi-aws,
        # VpcEndpointRouteTableAssociation: "Do not use the same resource ID in both").
        self.s3_gateway = aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway", vpc_id=self.vpc.id, service_name=f"{prefix}.s3", vpc_endpoint_type="Gateway",
            policy=endpoint_policy("s3", args.region, args.partition, args.account_id), opts=child)
        for az, table in zip(args.availability_zones, self.private_route_tables):
            s3_gateway_route(f"{name}-private-{az}", table, self.s3_gateway, child)
        self.interface_endpoints = {}
        for service in args.endpoints:
            extra = {}
            if service == "s3":
                # Resolve S3 to the interface endpoint inside the VPC too (not only for on-prem).
                extra = {"dns_options": {"private_dns_only_for_inbound_resolver_endpoint": False}}
            self.interface_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}", vpc_id=self.vpc.id, service_name=f"{prefix}.{service}",
                vpc_endpoint_type="Interface", private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[self.endpoint_security_group.id],
                policy=endpoint_policy(service, args.region, args.partition, args.account_id),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.s3_gateway]) if service == "s3" else child,
                **extra)

        # Flow logs: stateful evidence, so protected, in-region and KMS-encrypted.
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/ai-companion/{name}/vpc-flow-logs",
            retention_in_days=args.flow_log_retention_days, kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        flow_role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=service_trust("vpc-flow-logs.amazonaws.com"),
                                 opts=child)
        aws.iam.RolePolicy(
            f"{name}-flow-logs", role=flow_role.id,
            policy=self.flow_log_group.arn.apply(lambda arn: json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow",
                               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                               "Resource": [arn, f"{arn}:*"]}]})),
            opts=child)
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=self.vpc.id, traffic_type="ALL",
                        log_destination_type="cloud-watch-logs", log_destination=self.flow_log_group.arn,
                        iam_role_arn=flow_role.arn, opts=child)

        self.register_outputs({
            "vpcId": self.vpc.id,
            "privateSubnetIds": [s.id for s in self.private_subnets],
        })
