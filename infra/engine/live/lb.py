"""Load balancers (ELBv2 application/network/gateway, and classic ELB), for RSD-028's `internal`."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages


def scan_elbv2(unit: Unit) -> None:
    with unit.step("DescribeLoadBalancers"):
        for page in pages(unit.client(), "describe_load_balancers"):
            for lb in page["LoadBalancers"]:
                if (lb.get("State") or {}).get("Code") == "failed":
                    continue
                unit.add("aws:lb/loadBalancer:LoadBalancer", lb["LoadBalancerArn"], {
                    "name": lb.get("LoadBalancerName"), "loadBalancerType": lb.get("Type"),
                    # Only the internal scheme is private. A gateway LB has no listener of its own
                    # (traffic reaches it through GWLB endpoints), so it is never internet-facing.
                    "internal": lb.get("Scheme") == "internal" or lb.get("Type") == "gateway",
                    "subnets": [z["SubnetId"] for z in lb.get("AvailabilityZones") or [] if z.get("SubnetId")],
                    "securityGroups": lb.get("SecurityGroups"), "ipAddressType": lb.get("IpAddressType"),
                }, outputs={"dnsName": lb.get("DNSName"), "vpcId": lb.get("VpcId")},
                    arn=lb["LoadBalancerArn"], name=lb.get("LoadBalancerName"))


def scan_elb(unit: Unit) -> None:
    with unit.step("DescribeLoadBalancers"):
        for page in pages(unit.client(), "describe_load_balancers"):
            for lb in page["LoadBalancerDescriptions"]:
                name = lb["LoadBalancerName"]  # a classic LB's id is its name
                unit.add("aws:elb/loadBalancer:LoadBalancer", name, {
                    "name": name, "internal": lb.get("Scheme") == "internal", "subnets": lb.get("Subnets"),
                    "securityGroups": lb.get("SecurityGroups"), "availabilityZones": lb.get("AvailabilityZones"),
                }, outputs={"dnsName": lb.get("DNSName")})
