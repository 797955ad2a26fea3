"""`DnsFirewall`: the walled garden of a stack without Federated connectors.

A VPC with no internet path can still leak through DNS: the VPC resolver recursively resolves any
name, so a workload can encode data into queries for a domain whose name server someone else
runs. Route 53 Resolver DNS Firewall answers only the home region's AWS names
(`egress.aws_dns_names`: what the interface endpoints, the private EKS API and EKS Auth need) and
NXDOMAINs everything else, failing closed. Stacks with Federated connectors get the same walled
garden, plus the connector hosts, from `EgressConnectors` (one rule group per VPC, not two).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.program.components.egress import (DNS_ALLOW_AWS_PRIORITY, DNS_ASSOCIATION_PRIORITY, DNS_BLOCK_PRIORITY,
                                             aws_dns_names)


@dataclass(frozen=True)
class DnsFirewallArgs:
    stack: str
    region: str
    partition: str
    vpc_id: pulumi.Input[str]


class DnsFirewall(pulumi.ComponentResource):
    rule_group: aws.route53.ResolverFirewallRuleGroup

    def __init__(self, name: str, args: DnsFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:DnsFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"ai-companion-{args.stack}"
        aws_domains = aws.route53.ResolverFirewallDomainList(
            f"{name}-aws", name=f"{prefix}-aws-in-region", domains=aws_dns_names(args.region, args.partition), opts=child)
        everything = aws.route53.ResolverFirewallDomainList(
            f"{name}-everything", name=f"{prefix}-everything", domains=["*"], opts=child)
        self.rule_group = aws.route53.ResolverFirewallRuleGroup(name, name=f"{prefix}-walled-garden", opts=child)
        aws.route53.ResolverFirewallRule(
            f"{name}-allow-aws", name="allow-aws-in-region", action="ALLOW", firewall_rule_group_id=self.rule_group.id,
            firewall_domain_list_id=aws_domains.id, priority=DNS_ALLOW_AWS_PRIORITY,
            firewall_domain_redirection_action="TRUST_REDIRECTION_DOMAIN", opts=child)
        aws.route53.ResolverFirewallRule(
            f"{name}-block", name="block-everything-else", action="BLOCK", block_response="NXDOMAIN",
            firewall_rule_group_id=self.rule_group.id, firewall_domain_list_id=everything.id,
            priority=DNS_BLOCK_PRIORITY, opts=child)
        aws.route53.ResolverFirewallRuleGroupAssociation(
            name, name=f"{prefix}-walled-garden", vpc_id=args.vpc_id, firewall_rule_group_id=self.rule_group.id,
            priority=DNS_ASSOCIATION_PRIORITY, mutation_protection="ENABLED", opts=child)
        # Fail closed: if DNS Firewall cannot evaluate a query, the query is not answered.
        aws.route53.ResolverFirewallConfig(name, resource_id=args.vpc_id, firewall_fail_open="DISABLED", opts=child)
        self.register_outputs({"ruleGroupId": self.rule_group.id})
