"""`EgressConnectors`: the Federated option's only path out of the VPC.

Connector workloads (one Kubernetes service account per connector in the `connectors` namespace)
run on a small, tainted managed node group in dedicated *connector subnets*. Those subnets, and
only those, route to the internet, through AWS Network Firewall and a NAT gateway in the same AZ:

    connector subnet --0.0.0.0/0--> firewall endpoint (same AZ) --0.0.0.0/0--> NAT gateway (same AZ)
    public subnet    --0.0.0.0/0--> internet gateway
    public subnet    --connector CIDR--> firewall endpoint (same AZ)   (symmetric return)

The firewall allows TLS only to port 443 of the exact hosts (SNI) of the enabled connectors, and
cleartext HTTP only where the catalog documents it for a connector, to its documented port. It
drops everything else, including all non-TCP traffic (QUIC) and TCP payload sent before the
handshake completes. Route 53 Resolver DNS Firewall
answers NXDOMAIN for every name outside the connector hosts and the stack's in-region AWS names,
and fails closed. The serving cluster's subnets (`Network.private_subnets`) are never touched:
they keep their local-only route tables.

Every resource here is a child of this component and, where AWS supports tags, carries
`ai-companion:path = federated-egress`; the residency rules use both to recognise this path.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.program.catalog import Connector, declared_paths, load_catalog
from infra.program.components.iam import eks_node_role, pod_identity_trust
from infra.program.components.network import s3_gateway_route

PATH_TAG = {"ai-companion:path": "federated-egress"}
CONNECTOR_NAMESPACE = "connectors"
# Label/taint of the connector nodes; connector pods select and tolerate it, nothing else does.
CONNECTOR_POOL = "connectors"

# Stateful rule-group priorities in the STRICT_ORDER policy (lower runs first): protocol guards
# before the domain allow-list, so QUIC/no-SNI traffic never reaches a pass rule.
GUARD_PRIORITY = 100
ALLOWLIST_PRIORITY = 200
STATEFUL_DEFAULT_ACTIONS = ("aws:drop_established", "aws:alert_established")
RULE_ORDER = "STRICT_ORDER"

# DNS Firewall rule priorities within the rule group (walled garden: allows first, then block *).
DNS_ALLOW_CONNECTORS_PRIORITY = 100
DNS_ALLOW_AWS_PRIORITY = 110
DNS_BLOCK_PRIORITY = 200
# Rule-group association priority on the VPC (100..9900); leaves room for org-managed groups.
DNS_ASSOCIATION_PRIORITY = 1000

# Suricata rules evaluated before the allow-list. Non-TCP egress is dropped outright: QUIC
# (UDP 443) and DoH3 would bypass SNI inspection, and no connector needs UDP or ICMP (DNS goes to
# the VPC resolver, which never crosses the firewall). TLS with an IP literal or without SNI is
# rejected (fast failure; the SNI is what the allow-list trusts). Patterns follow the AWS Network
# Firewall best-practices guide (residency-facts.md §6). A ClientHello without SNI is recognised by
# its JA4 fingerprint, whose 4th character is `d` with an SNI and `i` without one (a JA4 never
# starts with `_`, so the former `content:"_"; startswith` guard never matched). Every rule's effect
# is replayed through Suricata 7 in tests/test_suricata_rules.py.
GUARD_RULES = "\n".join((
    'drop udp $HOME_NET any -> $EXTERNAL_NET 443 (msg:"QUIC (UDP 443) egress"; sid:4400001; rev:1;)',
    'drop udp $HOME_NET any -> $EXTERNAL_NET any (msg:"Non-TCP egress: UDP"; sid:4400002; rev:1;)',
    'drop icmp $HOME_NET any -> $EXTERNAL_NET any (msg:"Non-TCP egress: ICMP"; sid:4400003; rev:1;)',
    'drop ip $HOME_NET any -> $EXTERNAL_NET any (msg:"Non-TCP egress: other IP protocols"; ip_proto:!TCP; sid:4400004; rev:1;)',
    'reject tls $HOME_NET any -> $EXTERNAL_NET any (msg:"TLS with an IP literal as SNI"; flow:to_server; '
    'tls.sni; content:"."; pcre:"/^(?:[0-9]{1,3}\\.){3}[0-9]{1,3}$/"; sid:4400005; rev:1;)',
    'reject tls $HOME_NET any -> $EXTERNAL_NET any (msg:"TLS without SNI"; flow:to_server; '
    'ja4.hash; content:"i"; offset:3; depth:1; sid:4400006; rev:2;)',
    'reject http $HOME_NET any -> $EXTERNAL_NET any (msg:"HTTP with an IP literal as Host"; flow:to_server; '
    'http.host; content:"."; pcre:"/^(?:[0-9]{1,3}\\.){3}[0-9]{1,3}$/"; sid:4400007; rev:1;)',
    # `aws:drop_established` only judges established flows: without this, a SYN carrying data
    # (TCP Fast Open) or data sent before the server's SYN-ACK leaves unjudged.
    'drop tcp $HOME_NET any -> $EXTERNAL_NET any (msg:"TCP payload before the handshake completes"; '
    'flow:not_established; dsize:>0; sid:4400008; rev:1;)',
)) + "\n"

# The allow-list is written as Suricata rules rather than a domain-list group: AWS's generated
# domain-list rules match `any` destination port and, with HTTP_HOST, cleartext HTTP too. Each
# host passes TLS (SNI, case-insensitive like AWS's own template) to 443 only; HTTP (Host) only on
# a port the catalog documents for its connector. The two final drops decide every other ClientHello
# and HTTP request at once, rather than leaving them to the default action. No keyword here is one
# Network Firewall refuses, and none is `priority`, which STRICT_ORDER groups refuse (Network
# Firewall developer guide, "Limitations and caveats for stateful rules").
TLS_PORT = 443
ALLOWLIST_SID_BASE = 4401000


def allowlist_rules(connectors: tuple[Connector, ...]) -> str:
    """The allow-list rule group's `rulesString` for the enabled connectors."""
    rules = []
    for connector in sorted(connectors, key=lambda c: c.key):
        for host in sorted(connector.hosts):
            rules.append(f'pass tls $HOME_NET any -> $EXTERNAL_NET {TLS_PORT} (ssl_state:client_hello; tls.sni; '
                         f'content:"{host}"; startswith; nocase; endswith; msg:"TLS to {host} ({connector.key})"; '
                         f'flow:to_server, established;')
            if connector.http_port is not None:
                rules.append(f'pass http $HOME_NET any -> $EXTERNAL_NET {connector.http_port} (http.host; '
                             f'content:"{host}"; startswith; endswith; msg:"HTTP to {host} ({connector.key}), '
                             f'documented"; flow:to_server, established;')
    rules.append('drop tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; msg:"TLS not to an '
                 f'allow-listed host on port {TLS_PORT}"; flow:to_server, established;')
    # A request's header names end in an empty line: AWS's own template for "any HTTP request".
    rules.append('drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:"|0d 0a|"; startswith; '
                 'msg:"HTTP not to an allow-listed host and port"; flow:to_server, established;')
    return "".join(f"{rule} sid:{ALLOWLIST_SID_BASE + n}; rev:1;)\n" for n, rule in enumerate(rules, start=1))


def egress_subnet_cidrs(cidr: str, count: int) -> dict[str, list[str]]:
    """Per-AZ CIDRs for the connector, firewall and public subnets.

    `Network` uses the first /(p+3) blocks of the VPC for its private subnets; block 4 is split
    for the connector subnets (a quarter each) and block 5 into /28s for the firewall (first four)
    and the NAT gateways' public subnets (next four). Blocks 6 and 7 stay free.
    """
    if count > 4:
        raise ValueError(f"at most 4 availability zones are supported, got {count}")
    net = ipaddress.ip_network(cidr)
    blocks = list(net.subnets(new_prefix=net.prefixlen + 3))
    small = list(blocks[5].subnets(new_prefix=28))
    return {
        "connector": [str(s) for s in list(blocks[4].subnets(new_prefix=net.prefixlen + 5))[:count]],
        "firewall": [str(s) for s in small[:count]],
        "public": [str(s) for s in small[4:4 + count]],
    }


# ECR serves image layers from its own S3 bucket through a redirect the registry writes. In
# us-east-1 that bucket also answers under the legacy global S3 name; which name the redirect
# carries is not documented, so both are admitted there (exact name, the bucket is in-region;
# the S3 gateway endpoint routes it and has no restricting policy). docs/conformance.md, "ECR pull".
ECR_LEGACY_LAYER_NAMES = {"us-east-1": ["prod-us-east-1-starport-layer-bucket.s3.amazonaws.com"]}


def connector_secret_policy(secret_arn: str, role_arn: str) -> dict:
    """A connector secret's resource policy: only its connector's role may read the value."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyTheConnectorRoleReadsTheValue", "Effect": "Deny", "Principal": "*",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"], "Resource": secret_arn,
        "Condition": {"StringNotEquals": {"aws:PrincipalArn": role_arn}}}]}


def aws_dns_names(region: str, partition: str) -> list[str]:
    """In-region AWS names the whole VPC must still resolve once DNS Firewall blocks `*`.

    DNS Firewall filters every query to the VPC resolver (before private hosted zones), including
    the serving cluster's: regional service names that the interface endpoints' private DNS
    answers (ECR, S3, STS, logs, Bedrock ...), the private EKS API endpoint
    (`<id>.<gr>.<region>.eks.<suffix>`) and EKS Auth for Pod Identity (`eks-auth.<region>.api.aws`).
    Only home-region names are allowed; other regions' endpoints stay NXDOMAIN. EC2 host names
    (`*.compute.internal`) are not needed: nodes take their name from instance metadata.
    """
    dns = load_catalog().partitions[partition]
    names = [f"*.{region}.{dns}", f"*.{region}.eks.{dns}"]
    if partition == "aws":
        names.append(f"*.{region}.api.aws")  # dual-stack endpoints, EKS Auth
    names += ECR_LEGACY_LAYER_NAMES.get(region, [])
    return names


def dns_firewall_admits(name: str, domains: list[str] | tuple[str, ...]) -> bool:
    """Whether a DNS Firewall domain list matches `name`: `*.example.com` matches every name below
    example.com at any depth (not example.com itself), `*` matches everything, anything else only
    itself; case and a trailing dot do not matter."""
    name = name.lower().rstrip(".")
    for domain in (d.lower().rstrip(".") for d in domains):
        if domain == "*" or domain == name or (domain.startswith("*.") and name.endswith(domain[1:])):
            return True
    return False


def _endpoints_by_az(statuses) -> dict[str, str]:
    """Map AZ -> firewall VPC endpoint id from `firewallStatuses[0].syncStates`."""
    result = {}
    for status in statuses or []:
        for state in status.get("sync_states") or []:
            attachments = state.get("attachments") or []
            if attachments and attachments[0].get("endpoint_id"):
                result[state.get("availability_zone")] = attachments[0]["endpoint_id"]
    return result


@dataclass(frozen=True)
class EgressConnectorsArgs:
    stack: str
    geography: str
    region: str
    partition: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    kms_key_arn: pulumi.Input[str]
    connectors: tuple[Connector, ...]
    cluster_name: pulumi.Input[str]
    s3_gateway: aws.ec2.VpcEndpoint  # the VPC's S3 gateway endpoint (Network)
    namespace: str = CONNECTOR_NAMESPACE
    node_instance_type: str = "m6i.large"
    log_retention_days: int = 365
    tags: dict[str, str] = field(default_factory=dict)


class EgressConnectors(pulumi.ComponentResource):
    connector_subnets: list[aws.ec2.Subnet]
    firewall: aws.networkfirewall.Firewall
    secrets: dict[str, aws.secretsmanager.Secret]
    roles: dict[str, aws.iam.Role]
    declared_paths: list[dict]

    def __init__(self, name: str, args: EgressConnectorsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:federated:EgressConnectors", name, None, opts)
        if not args.connectors:
            raise ValueError("EgressConnectors needs at least one connector")
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=True)
        prefix = f"ai-companion-{args.stack}"
        hosts = sorted({h for c in args.connectors for h in c.hosts})
        self.declared_paths = declared_paths(args.connectors, args.geography)

        def tags(label: str, **extra: str) -> dict[str, str]:
            return {**args.tags, **PATH_TAG, "Name": f"{name}-{label}", **extra}

        # --- Domain allow-list and protocol guards (Network Firewall, STRICT_ORDER) ---------------
        home_net = {"ip_sets": [{"key": "HOME_NET", "ip_set": {"definitions": [args.vpc_cidr]}}]}
        self.allowlist = aws.networkfirewall.RuleGroup(
            f"{name}-allow-domains", name=f"{prefix}-allow-domains", type="STATEFUL",
            # Capacity is fixed at creation; room for many hosts x 2 rules.
            capacity=100,
            description="Exact hosts of the enabled Federated connectors: TLS SNI to 443 (HTTP Host where documented)",
            rule_group={
                "rule_variables": home_net,
                # Exact FQDNs, never `.domain` (which would admit every subdomain).
                "rules_source": {"rules_string": allowlist_rules(args.connectors)},
                "stateful_rule_options": {"rule_order": RULE_ORDER},
            },
            tags=tags("allow-domains"), opts=child)
        self.guards = aws.networkfirewall.RuleGroup(
            f"{name}-guards", name=f"{prefix}-egress-guards", type="STATEFUL", capacity=100,
            description=("Drop non-TCP egress (QUIC included) and payload before the TCP handshake; "
                         "reject TLS without SNI or with IP literals"),
            rule_group={
                "rule_variables": home_net,
                "rules_source": {"rules_string": GUARD_RULES},
                "stateful_rule_options": {"rule_order": RULE_ORDER},
            },
            tags=tags("guards"), opts=child)
        self.policy = aws.networkfirewall.FirewallPolicy(
            f"{name}-policy", name=f"{prefix}-egress",
            firewall_policy={
                # Everything goes to the stateful engine; no stateless shortcut passes traffic.
                "stateless_default_actions": ["aws:forward_to_sfe"],
                "stateless_fragment_default_actions": ["aws:forward_to_sfe"],
                "stateful_engine_options": {"rule_order": RULE_ORDER, "stream_exception_policy": "DROP"},
                # Handshakes may complete (so SNI/Host can be read); anything not passed is dropped.
                "stateful_default_actions": list(STATEFUL_DEFAULT_ACTIONS),
                "stateful_rule_group_references": [
                    {"resource_arn": self.guards.arn, "priority": GUARD_PRIORITY},
                    {"resource_arn": self.allowlist.arn, "priority": ALLOWLIST_PRIORITY},
                ],
            },
            tags=tags("policy"), opts=child)

        # --- Subnets, gateways and the firewall --------------------------------------------------
        cidrs = egress_subnet_cidrs(args.vpc_cidr, len(args.availability_zones))
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=args.vpc_id, tags=tags("igw"), opts=child)

        def subnet(role: str, az: str, cidr: str) -> aws.ec2.Subnet:
            return aws.ec2.Subnet(
                f"{name}-{role}-{az}", vpc_id=args.vpc_id, cidr_block=cidr, availability_zone=az,
                map_public_ip_on_launch=False, tags=tags(f"{role}-{az}", **{"ai-companion:subnet-role": role}),
                opts=child)

        def route_table(role: str, az: str, subnet_: aws.ec2.Subnet) -> aws.ec2.RouteTable:
            table = aws.ec2.RouteTable(f"{name}-{role}-{az}", vpc_id=args.vpc_id, tags=tags(f"{role}-{az}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-{role}-{az}", subnet_id=subnet_.id, route_table_id=table.id, opts=child)
            return table

        azs = args.availability_zones
        self.connector_subnets = [subnet("connector", az, c) for az, c in zip(azs, cidrs["connector"])]
        self.firewall_subnets = [subnet("firewall", az, c) for az, c in zip(azs, cidrs["firewall"])]
        self.public_subnets = [subnet("public", az, c) for az, c in zip(azs, cidrs["public"])]

        self.firewall = aws.networkfirewall.Firewall(
            f"{name}-firewall", name=f"{prefix}-egress", vpc_id=args.vpc_id,
            firewall_policy_arn=self.policy.arn,
            subnet_mappings=[{"subnet_id": s.id} for s in self.firewall_subnets],
            delete_protection=True, subnet_change_protection=True,
            tags=tags("firewall"), opts=child)
        endpoints = self.firewall.firewall_statuses.apply(_endpoints_by_az)

        self.nat_gateways = []
        self.routes: dict[str, list[aws.ec2.Route]] = {"connector": [], "firewall": [], "public": []}
        for az, connector_cidr, conn, fw, pub in zip(
                azs, cidrs["connector"], self.connector_subnets, self.firewall_subnets, self.public_subnets):
            endpoint = endpoints.apply(lambda by_az, az=az: by_az[az])
            eip = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc", tags=tags(f"nat-{az}"), opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{az}", allocation_id=eip.id, subnet_id=pub.id, connectivity_type="public",
                tags=tags(f"nat-{az}"), opts=pulumi.ResourceOptions(parent=self, depends_on=[self.internet_gateway]))
            self.nat_gateways.append(nat)

            conn_table = route_table("connector", az, conn)
            # The connector nodes pull images too: ECR's layers come from S3, which must stay
            # in-region through the gateway endpoint, not leave through the firewall (which would
            # drop it: S3 is no connector host).
            s3_gateway_route(f"{name}-connector-{az}", conn_table, args.s3_gateway, child)
            fw_table = route_table("firewall", az, fw)
            pub_table = route_table("public", az, pub)
            self.routes["connector"].append(aws.ec2.Route(
                f"{name}-connector-{az}-default", route_table_id=conn_table.id,
                destination_cidr_block="0.0.0.0/0", vpc_endpoint_id=endpoint, opts=child))
            self.routes["firewall"].append(aws.ec2.Route(
                f"{name}-firewall-{az}-default", route_table_id=fw_table.id,
                destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child))
            self.routes["public"].append(aws.ec2.Route(
                f"{name}-public-{az}-default", route_table_id=pub_table.id,
                destination_cidr_block="0.0.0.0/0", gateway_id=self.internet_gateway.id, opts=child))
            # Return traffic to the connectors passes the same AZ's endpoint (symmetric flows).
            self.routes["public"].append(aws.ec2.Route(
                f"{name}-public-{az}-return", route_table_id=pub_table.id,
                destination_cidr_block=connector_cidr, vpc_endpoint_id=endpoint, opts=child))

        # Alert and flow logs: evidence of what left the VPC, so protected, in-region, KMS-encrypted.
        self.log_groups = {
            log_type: aws.cloudwatch.LogGroup(
                f"{name}-firewall-{log_type.lower()}", name=f"/ai-companion/{args.stack}/network-firewall/{log_type.lower()}",
                retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
                tags=tags(f"firewall-{log_type.lower()}"), opts=protected)
            for log_type in ("ALERT", "FLOW")
        }
        aws.networkfirewall.LoggingConfiguration(
            f"{name}-firewall-logs", firewall_arn=self.firewall.arn,
            logging_configuration={"log_destination_configs": [
                {"log_destination": {"logGroup": group.name}, "log_destination_type": "CloudWatchLogs", "log_type": log_type}
                for log_type, group in self.log_groups.items()]},
            opts=child)

        # --- DNS Firewall: walled garden, fail closed --------------------------------------------
        connector_domains = aws.route53.ResolverFirewallDomainList(
            f"{name}-dns-connectors", name=f"{prefix}-connector-hosts", domains=hosts, tags=tags("dns-connectors"), opts=child)
        aws_domains = aws.route53.ResolverFirewallDomainList(
            f"{name}-dns-aws", name=f"{prefix}-aws-in-region", domains=aws_dns_names(args.region, args.partition),
            tags=tags("dns-aws"), opts=child)
        everything = aws.route53.ResolverFirewallDomainList(
            f"{name}-dns-everything", name=f"{prefix}-everything", domains=["*"], tags=tags("dns-everything"), opts=child)
        self.dns_rule_group = aws.route53.ResolverFirewallRuleGroup(
            f"{name}-dns", name=f"{prefix}-walled-garden", tags=tags("dns"), opts=child)
        # ALLOW rules trust CNAME redirection: the providers' hosts CNAME to CDN names that change
        # without notice, and INSPECT would NXDOMAIN them under `BLOCK *`. This widens DNS only:
        # the connection is still gated by the SNI allow-list on the host the client asked for.
        aws.route53.ResolverFirewallRule(
            f"{name}-dns-allow-connectors", name="allow-connector-hosts", action="ALLOW",
            firewall_rule_group_id=self.dns_rule_group.id, firewall_domain_list_id=connector_domains.id,
            priority=DNS_ALLOW_CONNECTORS_PRIORITY, firewall_domain_redirection_action="TRUST_REDIRECTION_DOMAIN",
            opts=child)
        aws.route53.ResolverFirewallRule(
            f"{name}-dns-allow-aws", name="allow-aws-in-region", action="ALLOW",
            firewall_rule_group_id=self.dns_rule_group.id, firewall_domain_list_id=aws_domains.id,
            priority=DNS_ALLOW_AWS_PRIORITY, firewall_domain_redirection_action="TRUST_REDIRECTION_DOMAIN",
            opts=child)
        aws.route53.ResolverFirewallRule(
            f"{name}-dns-block", name="block-everything-else", action="BLOCK", block_response="NXDOMAIN",
            firewall_rule_group_id=self.dns_rule_group.id, firewall_domain_list_id=everything.id,
            priority=DNS_BLOCK_PRIORITY, opts=child)
        aws.route53.ResolverFirewallRuleGroupAssociation(
            f"{name}-dns", name=f"{prefix}-walled-garden", vpc_id=args.vpc_id,
            firewall_rule_group_id=self.dns_rule_group.id, priority=DNS_ASSOCIATION_PRIORITY,
            mutation_protection="ENABLED", tags=tags("dns"), opts=child)
        # Fail closed: if DNS Firewall cannot evaluate a query, the query is not answered.
        aws.route53.ResolverFirewallConfig(f"{name}-dns", resource_id=args.vpc_id, firewall_fail_open="DISABLED", opts=child)

        # --- Connector nodes: the only pods whose traffic uses the connector subnets ------------
        node_role, attachments = eks_node_role(f"{name}-nodes", args.partition, parent=self, tags=tags("nodes"))
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes", cluster_name=args.cluster_name, node_role_arn=node_role.arn,
            subnet_ids=[s.id for s in self.connector_subnets], instance_types=[args.node_instance_type],
            ami_type="AL2023_x86_64_STANDARD", scaling_config={"min_size": 1, "desired_size": 1, "max_size": 2},
            labels={"ai-companion/pool": CONNECTOR_POOL},
            taints=[{"key": "ai-companion/pool", "value": CONNECTOR_POOL, "effect": "NO_SCHEDULE"}],
            tags=tags("nodes"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, *self.routes["connector"]]))

        # --- Connector credentials: one in-region secret and one role per connector -------------
        self.secrets, self.roles = {}, {}
        for connector in args.connectors:
            key = connector.key
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}", name=f"ai-companion/{args.stack}/connectors/{key}",
                description=f"API credential of the {connector.provider} connector ({', '.join(connector.hosts)})",
                kms_key_id=args.kms_key_arn, recovery_window_in_days=30,  # no `replicas`: home region only
                tags=tags(f"secret-{key}", **{"ai-companion:connector": key}), opts=protected)
            trust = pod_identity_trust(args.account_id, args.cluster_name, args.namespace, f"connector-{key}")
            role = aws.iam.Role(f"{name}-{key}", assume_role_policy=trust,
                                tags=tags(f"role-{key}", **{"ai-companion:connector": key}), opts=child)
            aws.iam.RolePolicy(
                f"{name}-{key}-secret", role=role.id,
                policy=pulumi.Output.all(secret.arn, args.kms_key_arn, args.account_id).apply(
                    lambda a: json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Sid": "ReadOwnSecret", "Effect": "Allow",
                         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": a[0]},
                        {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": a[1],
                         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com",
                                                        "kms:CallerAccount": a[2]}}},
                    ]})),
                opts=child)
            # The secret's own policy: no principal but the connector's role reads its value (an
            # administrator with secretsmanager:* included); values are put and rotated out of band
            # (docs/operations.md, "Connector secrets").
            aws.secretsmanager.SecretPolicy(
                f"{name}-{key}", secret_arn=secret.arn, block_public_policy=True,
                policy=pulumi.Output.all(secret.arn, role.arn).apply(lambda a: json.dumps(connector_secret_policy(*a))),
                opts=child)
            aws.eks.PodIdentityAssociation(
                f"{name}-{key}", cluster_name=args.cluster_name, namespace=args.namespace,
                service_account=f"connector-{key}", role_arn=role.arn, tags=tags(f"pod-identity-{key}"), opts=child)
            self.secrets[key], self.roles[key] = secret, role

        self.register_outputs({
            "firewallArn": self.firewall.arn,
            "connectorSubnetIds": [s.id for s in self.connector_subnets],
            "allowedHosts": hosts,
            "declaredDataPaths": self.declared_paths,
        })
