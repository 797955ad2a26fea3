"""Rule class 3: network paths out of the region (RSD-020..028)."""

import pytest

from rules_kit import component, ctx, fired, res, run

EGRESS = "ai-companion:federated:EgressConnectors"
NO_FED = ctx("EU", options=("zmo", "zm_plus"))


def in_path(type_, name="x", inputs=None):
    parent = component(EGRESS, "egress")
    return [parent, res(type_, name, inputs=inputs, parent=parent)]


PATH_RULES = [
    ("RSD-020", "aws:ec2/internetGateway:InternetGateway", {}),
    ("RSD-020", "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway", {}),
    ("RSD-021", "aws:ec2/natGateway:NatGateway", {"subnetId": "subnet-1"}),
    ("RSD-022", "aws:ec2/eip:Eip", {"domain": "vpc"}),
    ("RSD-022", "aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": True}),
    ("RSD-022", "aws:ec2/subnet:Subnet", {"tags": {"kubernetes.io/role/elb": "1"}}),
    ("RSD-022", "aws:ec2/launchTemplate:LaunchTemplate", {"networkInterfaces": [{"associatePublicIpAddress": "true"}]}),
    ("RSD-023", "aws:ec2/route:Route", {"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": "nat-1"}),
    ("RSD-023", "aws:ec2/route:Route", {"destinationIpv6CidrBlock": "::/0"}),
    ("RSD-023", "aws:ec2/routeTable:RouteTable", {"routes": [{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}]}),
    ("RSD-024", "aws:ec2/securityGroup:SecurityGroup", {"egress": [{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]}),
    ("RSD-024", "aws:ec2/securityGroupRule:SecurityGroupRule", {"type": "egress", "ipv6CidrBlocks": ["::/0"]}),
    ("RSD-024", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {"cidrIpv4": "160.79.104.0/23"}),
    ("RSD-024", "aws:ec2/networkAclRule:NetworkAclRule", {"egress": True, "ruleAction": "allow", "cidrBlock": "0.0.0.0/0"}),
    ("RSD-024", "aws:ec2/networkAcl:NetworkAcl", {"egress": [{"action": "allow", "cidrBlock": "0.0.0.0/0"}]}),
    ("RSD-024", "kubernetes:networking.k8s.io/v1:NetworkPolicy", {"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}),
    # A rule without `to` admits every destination (Kubernetes NetworkPolicy semantics), ports or not.
    ("RSD-024", "kubernetes:networking.k8s.io/v1:NetworkPolicy", {"spec": {"egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}}),
]


@pytest.mark.parametrize("rule,type_,inputs", PATH_RULES)
def test_internet_path_outside_the_egress_path_fires(rule, type_, inputs):
    r = res(type_, "x", inputs=inputs)
    [f] = fired(run([r]), rule, r.urn)
    assert "outside the Federated egress path" in f.message


@pytest.mark.parametrize("rule,type_,inputs", PATH_RULES)
def test_internet_path_inside_the_egress_path_of_a_federated_stack_is_quiet(rule, type_, inputs):
    assert not fired(run(in_path(type_, "x", inputs)), rule)


@pytest.mark.parametrize("rule,type_,inputs", PATH_RULES)
def test_egress_path_without_the_federated_option_fires(rule, type_, inputs):
    [f] = fired(run(in_path(type_, "x", inputs), NO_FED), rule)
    assert "do not include federated" in f.message


def test_egress_path_tag_counts_like_the_component():
    tagged = res("aws:ec2/natGateway:NatGateway", "nat", inputs={"tags": {"ai-companion:path": "federated-egress"}})
    assert not fired(run([tagged]), "RSD-021")
    assert fired(run([tagged], NO_FED), "RSD-021")


def test_egress_path_is_found_through_the_whole_parent_chain():
    top = component(EGRESS, "egress")
    mid = res("ai-companion:federated:Subnets", "mid", prov=None, custom=False, parent=top)
    route = res("aws:ec2/route:Route", "r", inputs={"destinationCidrBlock": "0.0.0.0/0"}, parent=mid)
    assert not fired(run([top, mid, route]), "RSD-023")


@pytest.mark.parametrize("type_,inputs", [
    ("aws:ec2/natGateway:NatGateway", {"connectivityType": "private"}),
    ("aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": False, "tags": {"kubernetes.io/role/internal-elb": "1"}}),
    ("aws:ec2/route:Route", {"destinationCidrBlock": "10.1.0.0/16"}),
    ("aws:ec2/securityGroup:SecurityGroup", {"egress": [{"protocol": "-1", "cidrBlocks": ["10.40.0.0/16"]}]}),
    ("aws:ec2/securityGroupRule:SecurityGroupRule", {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"]}),
    ("aws:ec2/networkAclRule:NetworkAclRule", {"egress": True, "ruleAction": "deny", "cidrBlock": "0.0.0.0/0"}),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy",
     {"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}, {"ipBlock": {"cidr": "169.254.170.23/32"}}]}]}}),
    # Pods only (selectors), or no egress rule at all (deny all).
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy",
     {"spec": {"egress": [{"to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]}]}}),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", {"spec": {"policyTypes": ["Egress"], "egress": []}}),
])
def test_private_only_network_resources_are_quiet(type_, inputs):
    report = run([res(type_, "x", inputs=inputs)])
    assert not [f for f in report.findings if f.rule.startswith("RSD-02")]


def test_kubernetes_network_policy_open_to_the_internet_fires():
    np = res("kubernetes:networking.k8s.io/v1:NetworkPolicy", "np", prov=None,
             inputs={"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}})
    assert fired(run([np]), "RSD-024", np.urn)


@pytest.mark.parametrize("rule,type_,inputs", [
    ("RSD-025", "aws:ec2/vpcPeeringConnection:VpcPeeringConnection", {"peerRegion": "us-east-1"}),
    ("RSD-025", "aws:ec2transitgateway/transitGateway:TransitGateway", {}),
    ("RSD-025", "aws:ec2transitgateway/peeringAttachment:PeeringAttachment", {"peerRegion": "eu-west-1"}),
    ("RSD-026", "aws:ec2/vpnConnection:VpnConnection", {}),
    ("RSD-026", "aws:ec2/vpnGateway:VpnGateway", {}),
    ("RSD-027", "aws:cloudfront/distribution:Distribution", {}),
    ("RSD-027", "aws:globalaccelerator/accelerator:Accelerator", {}),
    ("RSD-027", "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint", {}),
])
def test_never_allowed_paths_fire_even_in_the_egress_path(rule, type_, inputs):
    assert fired(run([res(type_, "x", inputs=inputs)]), rule)
    assert fired(run(in_path(type_, "x", inputs)), rule)


def test_non_path_resources_do_not_trip_path_rules():
    report = run([res("aws:ec2/vpc:Vpc", "v"), res("aws:s3/bucket:Bucket", "b")])
    assert not [f for f in report.findings if f.rule.startswith("RSD-02")]


@pytest.mark.parametrize("type_,inputs", [
    ("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPrivateAccess": True}}),  # provider default: public
    ("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": True}}),
    ("aws:lb/loadBalancer:LoadBalancer", {"loadBalancerType": "network"}),
    ("aws:rds/instance:Instance", {"publiclyAccessible": True}),
    ("aws:lambda/functionUrl:FunctionUrl", {"authorizationType": "AWS_IAM"}),
    ("aws:apigateway/restApi:RestApi", {"endpointConfiguration": {"types": ["REGIONAL"]}}),
    ("kubernetes:core/v1:Service", {"spec": {"type": "LoadBalancer"}}),
])
def test_public_endpoints_fire(type_, inputs):
    assert fired(run([res(type_, "x", inputs=inputs)]), "RSD-028")


@pytest.mark.parametrize("type_,inputs", [
    ("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True}}),
    ("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": "false"}}),
    ("aws:lb/loadBalancer:LoadBalancer", {"internal": True}),
    ("aws:rds/instance:Instance", {"publiclyAccessible": False}),
    ("aws:apigateway/restApi:RestApi", {"endpointConfiguration": {"types": ["PRIVATE"]}}),
    ("kubernetes:core/v1:Service", {"spec": {"type": "LoadBalancer"}, "metadata": {"annotations": {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}}),
    ("kubernetes:core/v1:Service", {"spec": {"type": "ClusterIP"}}),
])
def test_private_endpoints_are_quiet(type_, inputs):
    assert not fired(run([res(type_, "x", inputs=inputs)]), "RSD-028")
