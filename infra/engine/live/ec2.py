"""EC2 / VPC: peering, TGW peering, VPN, Client VPN, gateways, public IPs, routes, SGs, endpoints."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages, tags_dict

GONE = {"deleted", "deleting", "rejected", "failed", "expired", "terminated", "shutting-down"}


def _state(item: dict) -> str:
    state = item.get("State") or item.get("Status") or {}
    return (state.get("Code") or state.get("Name") or "") if isinstance(state, dict) else str(state)


def _arn(unit: Unit, owner: str | None, kind: str, rid: str, region: str | None = None) -> str:
    return f"arn:{unit.partition}:ec2:{region or unit.region}:{owner or ''}:{kind}/{rid}"


def _sides(unit: Unit, requester: dict, accepter: dict) -> tuple[dict, dict]:
    """(this side, the peer) of a peering seen from `unit.region`: the peer is the side not here."""
    if accepter.get("Region") == unit.region and requester.get("Region") != unit.region:
        return accepter, requester
    return requester, accepter


def _first_vpc(gateway: dict) -> str | None:
    return next((a["VpcId"] for a in gateway.get("Attachments") or [] if a.get("VpcId")), None)


def scan(unit: Unit) -> None:
    ec2 = unit.client()
    scan_vpcs_and_gateways(unit, ec2)
    scan_launch_templates(unit, ec2)

    with unit.step("VPC peering connections"):
        for page in pages(ec2, "describe_vpc_peering_connections"):
            for p in page["VpcPeeringConnections"]:
                if _state(p) in GONE:
                    continue
                pid, req = p["VpcPeeringConnectionId"], p.get("RequesterVpcInfo", {})
                mine, other = _sides(unit, req, p.get("AccepterVpcInfo", {}))
                # The ARN (the URN) is the requester's: both sides of one connection are one resource.
                unit.add("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", pid, {
                    "vpcId": mine.get("VpcId"), "peerVpcId": other.get("VpcId"), "peerOwnerId": other.get("OwnerId"),
                    "peerRegion": other.get("Region") or unit.region, "tags": tags_dict(p.get("Tags")),
                }, arn=_arn(unit, req.get("OwnerId"), "vpc-peering-connection", pid, req.get("Region")))

    with unit.step("transit gateway peering attachments"):
        for page in pages(ec2, "describe_transit_gateway_peering_attachments"):
            for a in page["TransitGatewayPeeringAttachments"]:
                if _state(a) in GONE:
                    continue
                aid, req = a["TransitGatewayAttachmentId"], a.get("RequesterTgwInfo", {})
                mine, other = _sides(unit, req, a.get("AccepterTgwInfo", {}))
                unit.add("aws:ec2transitgateway/peeringAttachment:PeeringAttachment", aid, {
                    "transitGatewayId": mine.get("TransitGatewayId"),
                    "peerTransitGatewayId": other.get("TransitGatewayId"), "peerAccountId": other.get("OwnerId"),
                    "peerRegion": other.get("Region") or unit.region, "tags": tags_dict(a.get("Tags")),
                }, arn=_arn(unit, req.get("OwnerId"), "transit-gateway-attachment", aid, req.get("Region")))

    with unit.step("VPN connections"):
        for page in pages(ec2, "describe_vpn_connections"):
            for v in page["VpnConnections"]:
                if _state(v) in GONE:
                    continue
                unit.add("aws:ec2/vpnConnection:VpnConnection", v["VpnConnectionId"], {
                    "customerGatewayId": v.get("CustomerGatewayId"), "type": v.get("Type"),
                    "vpnGatewayId": v.get("VpnGatewayId"), "transitGatewayId": v.get("TransitGatewayId"),
                    "staticRoutesOnly": (v.get("Options") or {}).get("StaticRoutesOnly"),
                    "tags": tags_dict(v.get("Tags")),
                }, arn=_arn(unit, None, "vpn-connection", v["VpnConnectionId"]))

    with unit.step("Client VPN endpoints"):
        for page in pages(ec2, "describe_client_vpn_endpoints"):
            for v in page["ClientVpnEndpoints"]:
                if _state(v) in GONE:
                    continue
                vid = v["ClientVpnEndpointId"]
                unit.add("aws:ec2clientvpn/endpoint:Endpoint", vid, {
                    "description": v.get("Description"), "clientCidrBlock": v.get("ClientCidrBlock"),
                    "serverCertificateArn": v.get("ServerCertificateArn"), "vpcId": v.get("VpcId"),
                    "securityGroupIds": v.get("SecurityGroupIds"), "splitTunnel": v.get("SplitTunnel"),
                    "transportProtocol": v.get("TransportProtocol"), "vpnPort": v.get("VpnPort"),
                    "dnsServers": v.get("DnsServers"), "sessionTimeoutHours": v.get("SessionTimeoutHours"),
                    "tags": tags_dict(v.get("Tags")),
                }, outputs={"dnsName": v.get("DnsName")}, arn=_arn(unit, None, "client-vpn-endpoint", vid))

    with unit.step("internet gateways"):
        for page in pages(ec2, "describe_internet_gateways"):
            for g in page["InternetGateways"]:
                unit.add("aws:ec2/internetGateway:InternetGateway", g["InternetGatewayId"], {
                    "vpcId": _first_vpc(g), "tags": tags_dict(g.get("Tags")),
                }, arn=_arn(unit, g.get("OwnerId"), "internet-gateway", g["InternetGatewayId"]))

    with unit.step("egress-only internet gateways"):
        for page in pages(ec2, "describe_egress_only_internet_gateways"):
            for g in page["EgressOnlyInternetGateways"]:
                gid = g["EgressOnlyInternetGatewayId"]
                unit.add("aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway", gid, {
                    "vpcId": _first_vpc(g), "tags": tags_dict(g.get("Tags")),
                }, arn=_arn(unit, None, "egress-only-internet-gateway", gid))

    with unit.step("NAT gateways"):
        for page in pages(ec2, "describe_nat_gateways"):
            for n in page["NatGateways"]:
                if _state(n) in GONE:
                    continue
                addrs = n.get("NatGatewayAddresses") or []
                unit.add("aws:ec2/natGateway:NatGateway", n["NatGatewayId"], {
                    "subnetId": n.get("SubnetId"), "vpcId": n.get("VpcId"),
                    "connectivityType": n.get("ConnectivityType") or "public",
                    "allocationId": next((a.get("AllocationId") for a in addrs if a.get("AllocationId")), None),
                    "tags": tags_dict(n.get("Tags")),
                }, outputs={"publicIp": next((a.get("PublicIp") for a in addrs if a.get("PublicIp")), None)},
                    arn=_arn(unit, None, "natgateway", n["NatGatewayId"]))

    with unit.step("elastic IPs"):
        for page in pages(ec2, "describe_addresses"):
            for e in page["Addresses"]:
                rid = e.get("AllocationId") or e.get("PublicIp")
                unit.add("aws:ec2/eip:Eip", rid, {
                    "domain": e.get("Domain"), "instance": e.get("InstanceId"),
                    "networkInterface": e.get("NetworkInterfaceId"), "publicIpv4Pool": e.get("PublicIpv4Pool"),
                    "networkBorderGroup": e.get("NetworkBorderGroup"), "tags": tags_dict(e.get("Tags")),
                }, outputs={"publicIp": e.get("PublicIp"), "allocationId": e.get("AllocationId")},
                    arn=_arn(unit, None, "elastic-ip", rid))

    with unit.step("instances"):
        for page in pages(ec2, "describe_instances"):
            for reservation in page["Reservations"]:
                for i in reservation["Instances"]:
                    if _state(i) in GONE:
                        continue
                    unit.add("aws:ec2/instance:Instance", i["InstanceId"], {
                        "instanceType": i.get("InstanceType"), "subnetId": i.get("SubnetId"),
                        "associatePublicIpAddress": bool(i.get("PublicIpAddress")), "tags": tags_dict(i.get("Tags")),
                    }, outputs={"publicIp": i.get("PublicIpAddress"), "publicDns": i.get("PublicDnsName") or None},
                        arn=_arn(unit, reservation.get("OwnerId"), "instance", i["InstanceId"]))

    with unit.step("subnets"):
        for page in pages(ec2, "describe_subnets"):
            for s in page["Subnets"]:
                unit.add("aws:ec2/subnet:Subnet", s["SubnetId"], {
                    "vpcId": s.get("VpcId"), "cidrBlock": s.get("CidrBlock"),
                    "availabilityZone": s.get("AvailabilityZone"),
                    "mapPublicIpOnLaunch": bool(s.get("MapPublicIpOnLaunch")),
                    "assignIpv6AddressOnCreation": bool(s.get("AssignIpv6AddressOnCreation")),
                    "tags": tags_dict(s.get("Tags")),
                }, arn=s.get("SubnetArn") or _arn(unit, s.get("OwnerId"), "subnet", s["SubnetId"]))

    with unit.step("route tables"):
        for page in pages(ec2, "describe_route_tables"):
            for t in page["RouteTables"]:
                for r in t.get("Routes") or []:
                    if r.get("GatewayId") == "local":  # the VPC's own CIDR: never leaves it
                        continue
                    dest = (r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")
                            or r.get("DestinationPrefixListId"))
                    gateway = r.get("GatewayId")
                    endpoint = gateway if str(gateway).startswith("vpce-") else None
                    unit.add("aws:ec2/route:Route", f"r-{t['RouteTableId']}-{dest}", {
                        "routeTableId": t["RouteTableId"], "destinationCidrBlock": r.get("DestinationCidrBlock"),
                        "destinationIpv6CidrBlock": r.get("DestinationIpv6CidrBlock"),
                        "destinationPrefixListId": r.get("DestinationPrefixListId"),
                        "gatewayId": None if endpoint else gateway, "vpcEndpointId": endpoint,
                        "egressOnlyGatewayId": r.get("EgressOnlyInternetGatewayId"),
                        "natGatewayId": r.get("NatGatewayId"), "transitGatewayId": r.get("TransitGatewayId"),
                        "vpcPeeringConnectionId": r.get("VpcPeeringConnectionId"),
                        "networkInterfaceId": r.get("NetworkInterfaceId"),
                        "carrierGatewayId": r.get("CarrierGatewayId"),
                        "localGatewayId": r.get("LocalGatewayId"), "coreNetworkArn": r.get("CoreNetworkArn"),
                    })

    with unit.step("security groups"):
        for page in pages(ec2, "describe_security_groups"):
            for g in page["SecurityGroups"]:
                # A VPC's default group is what pulumi-aws models as DefaultSecurityGroup.
                type_ = ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup" if g.get("GroupName") == "default"
                         else "aws:ec2/securityGroup:SecurityGroup")
                unit.add(type_, g["GroupId"], {
                    "name": g.get("GroupName"), "description": g.get("Description"), "vpcId": g.get("VpcId"),
                    "egress": [_sg_rule(p) for p in g.get("IpPermissionsEgress") or []],
                    "ingress": [_sg_rule(p) for p in g.get("IpPermissions") or []],
                    "tags": tags_dict(g.get("Tags")),
                }, arn=g.get("SecurityGroupArn") or _arn(unit, g.get("OwnerId"), "security-group", g["GroupId"]),
                    name=tags_dict(g.get("Tags")).get("Name") or g.get("GroupName"))

    with unit.step("VPC endpoints"):
        for page in pages(ec2, "describe_vpc_endpoints"):
            for e in page["VpcEndpoints"]:
                if _state(e).lower() in GONE:
                    continue
                unit.add("aws:ec2/vpcEndpoint:VpcEndpoint", e["VpcEndpointId"], {
                    "vpcId": e.get("VpcId"), "serviceName": e.get("ServiceName"),
                    "serviceRegion": e.get("ServiceRegion"),
                    "vpcEndpointType": e.get("VpcEndpointType"), "privateDnsEnabled": e.get("PrivateDnsEnabled"),
                    "routeTableIds": e.get("RouteTableIds"), "subnetIds": e.get("SubnetIds"),
                    "securityGroupIds": [g["GroupId"] for g in e.get("Groups") or []],
                    "tags": tags_dict(e.get("Tags")),
                }, outputs={"policy": e.get("PolicyDocument")},  # computed: AWS's full-access default if unset
                    arn=_arn(unit, e.get("OwnerId"), "vpc-endpoint", e["VpcEndpointId"]))


def scan_vpcs_and_gateways(unit: Unit, ec2) -> None:
    """VPCs (the default VPC of each region as DefaultVpc), network ACLs someone created, transit
    gateways, VPN and customer gateways."""
    with unit.step("VPCs"):
        for page in pages(ec2, "describe_vpcs"):
            for v in page["Vpcs"]:
                type_ = "aws:ec2/defaultVpc:DefaultVpc" if v.get("IsDefault") else "aws:ec2/vpc:Vpc"
                unit.add(type_, v["VpcId"], {
                    "cidrBlock": v.get("CidrBlock"), "instanceTenancy": v.get("InstanceTenancy"),
                    "tags": tags_dict(v.get("Tags")),
                }, outputs={"default": bool(v.get("IsDefault"))}, arn=_arn(unit, v.get("OwnerId"), "vpc", v["VpcId"]))

    with unit.step("network ACLs"):
        for page in pages(ec2, "describe_network_acls"):
            for acl in page["NetworkAcls"]:
                if acl.get("IsDefault"):
                    # Every VPC's default ACL allows all traffic and the stacks leave it so (their
                    # security groups hold egress); only an ACL someone created is a choice to judge.
                    continue
                entries = acl.get("Entries") or []
                unit.add("aws:ec2/networkAcl:NetworkAcl", acl["NetworkAclId"], {
                    "vpcId": acl.get("VpcId"), "tags": tags_dict(acl.get("Tags")),
                    "egress": [_acl_entry(e) for e in entries if e.get("Egress")],
                    "ingress": [_acl_entry(e) for e in entries if not e.get("Egress")],
                }, arn=_arn(unit, acl.get("OwnerId"), "network-acl", acl["NetworkAclId"]))

    with unit.step("transit gateways"):
        for page in pages(ec2, "describe_transit_gateways"):
            for t in page["TransitGateways"]:
                if _state(t) in GONE:
                    continue
                unit.add("aws:ec2transitgateway/transitGateway:TransitGateway", t["TransitGatewayId"], {
                    "description": t.get("Description"), "tags": tags_dict(t.get("Tags")),
                }, arn=t.get("TransitGatewayArn"))

    with unit.step("VPN gateways"):
        for page in pages(ec2, "describe_vpn_gateways"):
            for g in page["VpnGateways"]:
                if _state(g) in GONE:
                    continue
                unit.add("aws:ec2/vpnGateway:VpnGateway", g["VpnGatewayId"], {
                    "vpcId": next((a["VpcId"] for a in g.get("VpcAttachments") or []
                                   if a.get("State") == "attached"), None),
                    "amazonSideAsn": str(g["AmazonSideAsn"]) if g.get("AmazonSideAsn") else None,
                    "tags": tags_dict(g.get("Tags")),
                }, arn=_arn(unit, None, "vpn-gateway", g["VpnGatewayId"]))

    with unit.step("customer gateways"):
        for page in pages(ec2, "describe_customer_gateways"):
            for g in page["CustomerGateways"]:
                if _state(g) in GONE:
                    continue
                unit.add("aws:ec2/customerGateway:CustomerGateway", g["CustomerGatewayId"], {
                    "bgpAsn": g.get("BgpAsn"), "ipAddress": g.get("IpAddress"), "type": g.get("Type"),
                    "tags": tags_dict(g.get("Tags")),
                }, arn=_arn(unit, None, "customer-gateway", g["CustomerGatewayId"]))


def _acl_entry(e: dict) -> dict:
    """An EC2 network ACL entry in the shape of pulumi-aws NetworkAcl `egress`/`ingress` entries."""
    ports = e.get("PortRange") or {}
    return {"ruleNo": e.get("RuleNumber"), "action": e.get("RuleAction"), "protocol": e.get("Protocol"),
            "cidrBlock": e.get("CidrBlock"), "ipv6CidrBlock": e.get("Ipv6CidrBlock"),
            "fromPort": ports.get("From", 0), "toPort": ports.get("To", 0)}


def _sg_rule(p: dict) -> dict:
    """An EC2 IpPermission in the shape of pulumi-aws SecurityGroup `egress`/`ingress` entries."""
    protocol = p.get("IpProtocol", "-1")
    return {
        "protocol": protocol,
        "fromPort": p.get("FromPort", 0) if protocol != "-1" else 0,
        "toPort": p.get("ToPort", 0) if protocol != "-1" else 0,
        "cidrBlocks": [r["CidrIp"] for r in p.get("IpRanges") or []],
        "ipv6CidrBlocks": [r["CidrIpv6"] for r in p.get("Ipv6Ranges") or []],
        "prefixListIds": [r["PrefixListId"] for r in p.get("PrefixListIds") or []],
        "securityGroups": [r["GroupId"] for r in p.get("UserIdGroupPairs") or [] if r.get("GroupId")],
    }


def scan_launch_templates(unit: Unit, ec2) -> None:
    """Launch templates whose default or latest version asks for public IPs (user data is not kept)."""
    templates: list[dict] = []
    with unit.step("launch templates"):
        templates = [t for page in pages(ec2, "describe_launch_templates") for t in page["LaunchTemplates"]]
    for t in templates:
        tid = t["LaunchTemplateId"]
        with unit.step(f"launch template {tid}"):
            versions = ec2.describe_launch_template_versions(LaunchTemplateId=tid, Versions=["$Default", "$Latest"])
            nics = [{"associatePublicIpAddress": n.get("AssociatePublicIpAddress"), "subnetId": n.get("SubnetId")}
                    for v in versions["LaunchTemplateVersions"]
                    for n in (v.get("LaunchTemplateData") or {}).get("NetworkInterfaces") or []]
            unit.add("aws:ec2/launchTemplate:LaunchTemplate", tid, {
                "name": t.get("LaunchTemplateName"), "networkInterfaces": nics, "tags": tags_dict(t.get("Tags")),
            }, arn=_arn(unit, None, "launch-template", tid))
