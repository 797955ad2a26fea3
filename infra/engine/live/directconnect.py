"""Direct Connect: dedicated/hosted connections and virtual interfaces (a private path out of AWS)."""

from __future__ import annotations

from infra.engine.live.core import Unit, tags_dict

GONE = {"deleted", "deleting", "rejected"}
VIF_TYPES = {"private": "aws:directconnect/privateVirtualInterface:PrivateVirtualInterface",
             "public": "aws:directconnect/publicVirtualInterface:PublicVirtualInterface",
             "transit": "aws:directconnect/transitVirtualInterface:TransitVirtualInterface"}


def scan(unit: Unit) -> None:
    dx = unit.client()
    with unit.step("DescribeConnections"):
        for c in dx.describe_connections()["connections"]:
            if c.get("connectionState") in GONE:
                continue
            unit.add("aws:directconnect/connection:Connection", c["connectionId"], {
                "name": c.get("connectionName"), "bandwidth": c.get("bandwidth"), "location": c.get("location"),
                "tags": tags_dict(c.get("tags")),
            }, name=c.get("connectionName"))
    with unit.step("DescribeVirtualInterfaces"):
        for v in dx.describe_virtual_interfaces()["virtualInterfaces"]:
            if v.get("virtualInterfaceState") in GONE:
                continue
            unit.add(VIF_TYPES.get(v.get("virtualInterfaceType"), VIF_TYPES["private"]), v["virtualInterfaceId"], {
                "name": v.get("virtualInterfaceName"), "connectionId": v.get("connectionId"), "vlan": v.get("vlan"),
                "bgpAsn": v.get("asn"), "addressFamily": v.get("addressFamily"),
                "vpnGatewayId": v.get("virtualGatewayId"), "dxGatewayId": v.get("directConnectGatewayId"),
            }, name=v.get("virtualInterfaceName"))
