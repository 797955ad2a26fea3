"""Rule class 3: network paths out of the region.

Internet-facing pieces (gateways, NAT, public IPs and subnets, default routes, open egress) are
allowed only in a stack with the Federated option AND only on its egress path: a descendant of
the `ai-companion:federated:EgressConnectors` component, or a resource tagged
`ai-companion:path = federated-egress`. Peering, transit gateways, VPNs, global edge services and
public API endpoints are never allowed.
"""

from __future__ import annotations

import functools
import ipaddress

from infra.engine.model import Resource
from infra.engine.rules.engine import STANCE_NOTE, Scope, get_path, rule, truthy
from infra.engine.rules.patterns import region_of
from infra.engine.rules.patterns import as_list

# Address space that does not leave the VPC/cluster: RFC 1918, CGNAT, link-local, ULA.
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "fc00::/7", "fe80::/10"))


@functools.lru_cache(maxsize=4096)
def _internet_cidr(value: str) -> bool:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return not any(net.version == n.version and net.subnet_of(n) for n in _INTERNAL_NETS)


def is_internet_cidr(value) -> bool:
    """True for a CIDR that reaches beyond private address space (0.0.0.0/0, ::/0, public)."""
    return isinstance(value, str) and bool(value) and _internet_cidr(value)


def _outside_egress_path(res: Resource, scope: Scope) -> str | None:
    """None when the resource may open a path; else the reason it may not."""
    if scope.egress_allowed(res):
        return None
    if not scope.ctx.has("federated"):
        return "the stack's options do not include federated"
    return "it is outside the Federated egress path"


_PATH_FIX = """Keep the workload VPC private (VPC endpoints only). Internet egress belongs only in the
Federated EgressConnectors component (stacks with the federated option), behind Network Firewall."""


@rule("RSD-020", "no_internet_gateway", "Internet gateway outside the Federated egress path", "CRITICAL",
      rationale="""An internet gateway (or egress-only gateway for IPv6) connects the VPC to the
      internet: any workload with a route can send data anywhere.""",
      remediation=_PATH_FIX, category="network",
      types=("aws:ec2/internetGateway:InternetGateway", "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
             "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment"),
      controls=("CT:AWS-GR_DISALLOW_VPC_INTERNET_ACCESS",))
def no_internet_gateway(res: Resource, scope: Scope):
    why = _outside_egress_path(res, scope)
    if why:
        yield f"{res.type.rsplit(':', 1)[-1]} opens the VPC to the internet, and {why}"


@rule("RSD-021", "no_nat_gateway", "NAT gateway outside the Federated egress path", "CRITICAL",
      rationale="A public NAT gateway gives private subnets a path to the internet.",
      remediation=_PATH_FIX + " Private NAT gateways (connectivityType: private) are not flagged.",
      category="network", types=("aws:ec2/natGateway:NatGateway",))
def no_nat_gateway(res: Resource, scope: Scope):
    if res.props.get("connectivityType") == "private":
        return
    why = _outside_egress_path(res, scope)
    if why:
        yield f"public NAT gateway, and {why}"


@rule("RSD-022", "no_public_ip", "Public IP or public subnet outside the Federated egress path", "HIGH",
      rationale="""Elastic IPs, instances or launch templates that associate public addresses,
      and subnets that map public IPs on launch (or are tagged for internet-facing load
      balancers) put workloads on the internet.""",
      remediation=_PATH_FIX + " Set map_public_ip_on_launch / associate_public_ip_address to false.",
      category="network",
      types=("aws:ec2/eip:Eip", "aws:ec2/eipAssociation:EipAssociation", "aws:ec2/subnet:Subnet",
             "aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate",
             "aws:ec2/launchConfiguration:LaunchConfiguration",
             "aws:ec2/spotInstanceRequest:SpotInstanceRequest"),
      controls=("CT:EC2_INSTANCE_NO_PUBLIC_IP", "CT:AUTOSCALING_LAUNCH_CONFIG_PUBLIC_IP_DISABLED",
                "CT:SUBNET_AUTO_ASSIGN_PUBLIC_IP_DISABLED", "Prowler:ec2_launch_template_no_public_ip",
                "Prowler:ec2_instance_public_ip"))
def no_public_ip(res: Resource, scope: Scope):
    props = res.props
    reasons = []
    if res.type in ("aws:ec2/eip:Eip", "aws:ec2/eipAssociation:EipAssociation"):
        reasons.append("Elastic IP")
    elif res.type == "aws:ec2/subnet:Subnet":
        if truthy(props.get("mapPublicIpOnLaunch")):
            reasons.append("subnet maps public IPs on launch")
        if res.tags.get("kubernetes.io/role/elb") not in (None, "0", ""):
            reasons.append("subnet is tagged for internet-facing load balancers (kubernetes.io/role/elb)")
    else:
        if truthy(props.get("associatePublicIpAddress")):
            reasons.append("associates a public IP address")
        for i, nic in enumerate(as_list(props.get("networkInterfaces"))):
            if isinstance(nic, dict) and truthy(nic.get("associatePublicIpAddress")):
                reasons.append(f"networkInterfaces[{i}] associates a public IP address")
    why = _outside_egress_path(res, scope) if reasons else None
    if why:
        yield f"{'; '.join(reasons)}, and {why}"


def _route_destinations(res: Resource):
    props = res.props
    if res.type == "aws:ec2/route:Route":
        yield "", props.get("destinationCidrBlock"), props.get("destinationIpv6CidrBlock")
    else:
        for i, route in enumerate(as_list(props.get("routes"))):
            if isinstance(route, dict):
                yield f"routes[{i}] ", route.get("cidrBlock"), route.get("ipv6CidrBlock")


@rule("RSD-023", "no_internet_route", "Route to 0.0.0.0/0 or ::/0 outside the Federated egress path", "HIGH",
      rationale="""A default route sends every non-local destination out of the VPC (to a gateway,
      NAT, firewall or appliance).""",
      remediation=_PATH_FIX, category="network",
      types=("aws:ec2/route:Route", "aws:ec2/routeTable:RouteTable", "aws:ec2/defaultRouteTable:DefaultRouteTable"),
      controls=("CT:NO_UNRESTRICTED_ROUTE_TO_IGW", "Prowler:ec2_no_unrestricted_route_to_igw"))
def no_internet_route(res: Resource, scope: Scope):
    hits = [f"{where}{cidr}" for where, v4, v6 in _route_destinations(res)
            for cidr in (v4, v6) if cidr in ("0.0.0.0/0", "::/0")]
    why = _outside_egress_path(res, scope) if hits else None
    if why:
        yield f"default route {', '.join(hits)}, and {why}"


def _egress_cidrs(res: Resource):
    """(where, cidr) of every allow-egress rule of security groups, SG rules, NACLs, NetworkPolicies."""
    p = res.props
    t = res.type
    if t in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        for i, e in enumerate(as_list(p.get("egress"))):
            if isinstance(e, dict):
                for c in as_list(e.get("cidrBlocks")) + as_list(e.get("ipv6CidrBlocks")):
                    yield f"egress[{i}]", c
    elif t == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if p.get("type") == "egress":
            for c in as_list(p.get("cidrBlocks")) + as_list(p.get("ipv6CidrBlocks")):
                yield "egress rule", c
    elif t == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        for c in (p.get("cidrIpv4"), p.get("cidrIpv6")):
            yield "egress rule", c
    elif t in ("aws:ec2/networkAcl:NetworkAcl", "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl"):
        for i, e in enumerate(as_list(p.get("egress"))):
            if isinstance(e, dict) and str(e.get("action", "")).lower() == "allow":
                for c in (e.get("cidrBlock"), e.get("ipv6CidrBlock")):
                    yield f"egress[{i}]", c
    elif t == "aws:ec2/networkAclRule:NetworkAclRule":
        if truthy(p.get("egress")) and str(p.get("ruleAction", "")).lower() == "allow":
            for c in (p.get("cidrBlock"), p.get("ipv6CidrBlock")):
                yield "egress rule", c
    elif t == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
        for i, e in enumerate(as_list(get_path(p, "spec", "egress"))):
            peers = as_list(e.get("to") if isinstance(e, dict) else None)
            if isinstance(e, dict) and not peers:  # Kubernetes: a rule without `to` admits every destination
                yield f"spec.egress[{i}] (no `to`: every destination)", "0.0.0.0/0"
            for j, peer in enumerate(peers):
                block = peer.get("ipBlock") if isinstance(peer, dict) else None
                if isinstance(block, dict):
                    yield f"spec.egress[{i}].to[{j}]", block.get("cidr")


@rule("RSD-024", "no_open_egress_rule",
      "Security group, NACL or NetworkPolicy allows egress to the internet outside the Federated path",
      "HIGH",
      rationale="""Egress to 0.0.0.0/0, ::/0 or any public address range lets a workload reach
      the internet wherever a route exists; defence in depth requires VPC-internal egress only.""",
      remediation="Restrict egress to the VPC CIDR (and VPC endpoints' security groups).",
      category="network",
      types=("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
             "aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
             "aws:ec2/networkAcl:NetworkAcl", "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl",
             "aws:ec2/networkAclRule:NetworkAclRule", "kubernetes:networking.k8s.io/v1:NetworkPolicy"))
def no_open_egress_rule(res: Resource, scope: Scope):
    hits = [f"{where} {c}" for where, c in _egress_cidrs(res) if is_internet_cidr(c)]
    why = _outside_egress_path(res, scope) if hits else None
    if why:
        yield f"egress open to the internet ({', '.join(hits)}), and {why}"


@rule("RSD-025", "no_peering_or_transit", "VPC peering, transit gateway or cross-region peering", "CRITICAL",
      rationale="""Peering and transit gateways join the VPC to other networks, possibly in other
      regions or accounts, outside what this stack can prove.""",
      remediation="Do not peer or attach the stack's VPC; reach shared services through in-region endpoints.",
      category="network",
      types=("aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
             "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter",
             "aws:ec2/peeringConnectionOptions:PeeringConnectionOptions", "aws:ec2transitgateway/"),
      controls=("CT:AWS-GR_DISALLOW_CROSS_REGION_NETWORKING (partly)",),
      stance="""Every peering connection and transit gateway is refused, even one whose peer
      region is inside the geography: the peer VPC's own routes, peerings and gateways are outside
      the stack, so where the data goes next cannot be proven. A peer region outside the
      geography, or one that cannot be read, is also named by RSD-012.""")
def no_peering_or_transit(res: Resource, scope: Scope):
    peer = res.props.get("peerRegion")
    region = region_of(peer) if isinstance(peer, str) else None
    where = ""
    if region:
        inside = "inside" if region in scope.regions else "outside"
        where = f" (peer region {region}, {inside} {scope.ctx.geography.code})"
    yield f"{res.type.rsplit(':', 1)[-1]} connects the VPC to another network{where}: {STANCE_NOTE}"


@rule("RSD-026", "no_vpn", "VPN or Direct Connect path", "CRITICAL",
      rationale="VPN connections, gateways and Direct Connect carry data to networks outside the region.",
      remediation="Do not attach VPN or Direct Connect to the stack's VPC.",
      category="network",
      types=("aws:ec2/vpnConnection:VpnConnection", "aws:ec2/vpnGateway:VpnGateway",
             "aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment", "aws:ec2/customerGateway:CustomerGateway",
             "aws:ec2/vpnConnectionRoute:VpnConnectionRoute", "aws:ec2clientvpn/", "aws:directconnect/"),
      controls=("CT:AWS-GR_DISALLOW_VPN_CONNECTIONS",),
      stance="""Every VPN and Direct Connect resource is refused: the network at the other end
      (an office, a data centre, another cloud) has no AWS region the stack could read, so its
      location cannot be proven.""")
def no_vpn(res: Resource, scope: Scope):
    yield f"{res.type.rsplit(':', 1)[-1]} opens a private path to a network the stack cannot place: {STANCE_NOTE}"


@rule("RSD-027", "no_global_edge_service",
      "Global edge service (CloudFront, Global Accelerator, S3 Multi-Region Access Point)", "CRITICAL",
      rationale="""Edge services terminate and cache traffic at locations worldwide; Multi-Region
      Access Points route S3 requests across regions.""",
      remediation="Serve from in-region endpoints only.",
      category="network",
      types=("aws:cloudfront/", "aws:globalaccelerator/",
             "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint",
             "aws:s3control/multiRegionAccessPointPolicy:MultiRegionAccessPointPolicy"),
      controls=("CT:AWS-GR_DISALLOW_CROSS_REGION_NETWORKING (partly)",))
def no_global_edge_service(res: Resource, scope: Scope):
    yield f"{res.type.rsplit(':', 1)[-1]} is a global edge service"


_INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": ("true", "0.0.0.0/0"),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": ("internal",),
}


def _public_endpoint(res: Resource) -> str | None:
    p, t = res.props, res.type
    if t == "aws:eks/cluster:Cluster":
        public = get_path(p, "vpcConfig", "endpointPublicAccess")
        # The provider default is true: only an explicit false is private.
        if public is not False and str(public).lower() != "false":
            return "EKS API endpoint is public (vpcConfig.endpointPublicAccess is not false)"
    elif t in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
               "aws:elb/loadBalancer:LoadBalancer"):
        if not truthy(p.get("internal")):
            return "load balancer is internet-facing (internal is not true)"
    elif t in ("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance",
               "aws:redshift/cluster:Cluster", "aws:dms/replicationInstance:ReplicationInstance"):
        if truthy(p.get("publiclyAccessible")):
            return "database endpoint is publicly accessible"
    elif t == "aws:lambda/functionUrl:FunctionUrl":
        return "Lambda function URL is a public HTTPS endpoint"
    elif t == "aws:apigatewayv2/api:Api":
        return "API Gateway v2 APIs are public endpoints"
    elif t == "aws:apigateway/restApi:RestApi":
        types = get_path(p, "endpointConfiguration", "types")
        if as_list(types) != ["PRIVATE"]:
            return "REST API endpoint is not PRIVATE"
    elif t == "kubernetes:core/v1:Service":
        if get_path(p, "spec", "type") == "LoadBalancer":
            annotations = get_path(p, "metadata", "annotations") or {}
            internal = any(str(annotations.get(k, "")).lower() in v for k, v in _INTERNAL_LB_ANNOTATIONS.items())
            if not internal:
                return "Service of type LoadBalancer without an internal-scheme annotation is internet-facing"
    return None


@rule("RSD-028", "no_public_endpoint", "Public API or service endpoint", "HIGH",
      rationale="""Public endpoints (EKS API with public access, internet-facing load balancers,
      publicly accessible databases, Lambda URLs, public API Gateway APIs, Kubernetes
      LoadBalancer Services without the internal scheme) accept traffic from anywhere.""",
      remediation="""Set endpoint_public_access=False on EKS, internal=True on load balancers,
      publicly_accessible=False on databases, PRIVATE API Gateway endpoints, and the internal
      scheme annotation on LoadBalancer Services.""",
      category="network",
      types=("aws:eks/cluster:Cluster", "aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
             "aws:elb/loadBalancer:LoadBalancer", "aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance",
             "aws:redshift/cluster:Cluster", "aws:dms/replicationInstance:ReplicationInstance",
             "aws:lambda/functionUrl:FunctionUrl", "aws:apigatewayv2/api:Api", "aws:apigateway/restApi:RestApi",
             "kubernetes:core/v1:Service"),
      controls=("CT:EKS_ENDPOINT_NO_PUBLIC_ACCESS", "CT:REDSHIFT_CLUSTER_PUBLIC_ACCESS_CHECK",
                "CT:DMS_REPLICATION_NOT_PUBLIC"))
def no_public_endpoint(res: Resource, scope: Scope):
    why = _public_endpoint(res)
    if why:
        yield why
