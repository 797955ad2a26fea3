"""docs/rules.md: the rule catalogue, generated from RULES (a test keeps it fresh).

    python -m infra.engine.rules.docs --write
"""

from __future__ import annotations

import sys
from pathlib import Path

from infra.program.catalog import load_catalog
from infra.engine.rules import CATEGORIES, RULES

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "rules.md"
CLASS_TITLES = {
    "placement": "1. Placement: where a resource runs",
    "references": "2. Regional references in properties",
    "network": "3. Network paths out of the region",
    "replication": "4. Replication and delivery out of the region",
    "bedrock": "5. Bedrock (ZM+)",
    "federated": "6. Federated egress connectors",
    "destinations": "7. Delivery by an AWS service to a host outside AWS",
    "global": "8. Global and multi-Region constructs",
    "exposure": "9. Public exposure",
}


# What each class covers and what it cannot see (the limits a reader must know).
CLASS_SCOPE = {
    "placement": (
        "each resource's effective region (own `region`, provider, stack config) and unplaced regional resources",
        "where a resource's data flows once placed (the other classes), regions chosen at runtime by code"),
    "references": (
        "regional ARNs, VPC endpoint service names, region fields and regional AWS hostnames in any property, "
        "JSON policy documents included, and secrets hiding such fields; a region field (copy, replica, peer, "
        "failover, secondary ...: any property whose name ends in `region(s)`, `regionName` or "
        "`availabilityZone(s)`) that is set to something other than a region fails closed",
        "region-less ARNs (S3, IAM, CloudFront) and resources addressed by name only; values computed inside "
        "application code"),
    "network": (
        "internet gateways, NAT, public IPs and subnets, default routes, open egress, peering, transit, VPN, "
        "Direct Connect, global edge services and public endpoints",
        "paths opened outside the stack (shared VPCs, RAM-shared subnets, accounts' default VPCs)"),
    "replication": (
        "S3/ECR replication, DynamoDB and Secrets Manager replicas, Backup copies, log/SNS/SQS/EventBridge "
        "destinations, multi-Region KMS keys",
        "replication configured by services outside the stack, or by application code"),
    "bedrock": (
        "Bedrock use without zm_plus, invoke scope, model/profile geography, application profiles, guardrail "
        "profiles, invocation logging",
        "which profile application code requests at runtime (only what IAM and the SCP allow)"),
    "federated": (
        "Network Firewall and DNS Firewall allow-lists against the catalog's connectors, wildcards, the "
        "global-processing opt-in, DNS ALLOW rules",
        "traffic that bypasses SNI/DNS (see residency-facts §6 pitfalls); what a connector host does with data"),
    "destinations": (
        "whatever a property is called, in any string value at any depth (environment variables, lists, JSON and "
        "YAML documents stored as strings included): the authority of a URI of any scheme (`https://`, "
        "`jdbc:postgresql://`, `sftp://`, `kafka://`, `mongodb+srv://`, `redis://`, `amqps://`, `smtp://`, "
        "`ftp://` ...; every host of `mongodb://h1,h2`; `s3://bucket` as the stack's bucket); a value that is a "
        "hostname under a public suffix (the Public Suffix List bundled with the pinned `publicsuffixlist`), "
        "`host:port`, an IP address, or a comma-separated list of them; and standalone IPv4 addresses in free "
        "text (a Corefile's `forward . 8.8.8.8`). DNS handed to resolvers is judged by where the queries go: "
        "Route 53 Resolver forwarding rules' `targetIps`, DHCP options' `domainNameServers`, pod `dnsConfig` "
        "nameservers and Corefile forwarders pass only when private (inside the VPC). In host-shaped "
        "properties (`endpoint`, `url`, `server`, `image` ...) also `host/path`, image references (Docker Hub "
        "when no registry is named) and dotted names under no public suffix (`db.corp.internal`). Not "
        "destinations: names a resource owns, matches, forwards or labels (catalog `name_property`: `name`, "
        "`domainName`, `dnsName`, a forwarding rule's domain, DNS Firewall lists, principals, API groups, "
        "keys, paths, files), tags, labels and descriptions",
        "hostnames inside free text (only URIs and standalone IPv4 addresses are read there), `host/path` "
        "and names under no public suffix outside host-shaped properties, a two-label value whose last label "
        "is also a file extension Python's MIME table knows (`mistral.ai`, `main.py`) outside host-shaped "
        "properties, `host:port` forms without a scheme other than `host:port` itself (`jdbc:oracle:thin:@host`), "
        "IPv6 addresses in free text, where a private resolver IP forwards next (VPN and Direct Connect are "
        "refused by RSD-026), hosts assembled at runtime, code in assets and archives (not in state), and "
        "where a host's DNS actually resolves"),
    "global": (
        "resource types that span Regions or route through edge locations, and properties that switch a "
        "regional resource into a global mode (catalog `global_constructs`, each with a rationale and a source)",
        "global constructs not yet in the catalog (the list is reviewed data, not exhaustive), and constructs "
        "created outside the stack that a stack resource joins by name"),
    "exposure": (
        "resource policies open to `*` without a narrowing condition, public S3 ACLs, S3 public access blocks, "
        "snapshots/AMIs/SSM documents shared with all, SageMaker direct internet, OpenSearch/EMR outside a VPC, "
        "public IPs in instances, launch templates and configurations (RSD-022)",
        "policies attached outside the stack, access granted through RAM or grants at runtime, and whether a "
        "narrowing condition's VPC endpoint or organization is itself trustworthy"),
}

# Reference controls (residency-facts.md §4.2: the Control Tower data-residency group; Prowler checks
# that touch residency, names verified in prowler-cloud/prowler). A control no rule names is listed
# as not covered, with the reason given here.
CONTROLS = (
    ("CT:AWS-GR_REGION_DENY", "SCP: deny non-exempt actions outside governed Regions",
     "an SCP is account-level, outside any stack; `residency scp` generates one"),
    ("CT:CT.MULTISERVICE.PV.1", "SCP: Region deny per OU with exemptions",
     "an SCP is account-level, outside any stack; `residency scp` generates one"),
    ("CT:AWS-GR_DISALLOW_VPC_INTERNET_ACCESS", "SCP: no internet/egress-only gateways, default VPCs", ""),
    ("CT:AWS-GR_DISALLOW_VPN_CONNECTIONS", "SCP: no VPN/customer gateways, Client VPN", ""),
    ("CT:AWS-GR_DISALLOW_CROSS_REGION_NETWORKING", "SCP: no VPC/TGW peering, CloudFront, Global Accelerator", ""),
    ("CT:AWS-GR_RESTRICT_S3_CROSS_REGION_REPLICATION", "SCP: no s3:PutReplicationConfiguration", ""),
    ("CT:AUTOSCALING_LAUNCH_CONFIG_PUBLIC_IP_DISABLED", "Config: launch configurations without public IPs", ""),
    ("CT:DMS_REPLICATION_NOT_PUBLIC", "Config: DMS replication instances not public", ""),
    ("CT:EBS_SNAPSHOT_PUBLIC_RESTORABLE_CHECK", "Config: EBS snapshots not restorable by all", ""),
    ("CT:EC2_INSTANCE_NO_PUBLIC_IP", "Config: EC2 instances without public IPv4", ""),
    ("CT:S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC", "Config: account-level S3 public access blocks", ""),
    ("CT:EKS_ENDPOINT_NO_PUBLIC_ACCESS", "Config: EKS endpoint not public", ""),
    ("CT:ELASTICSEARCH_IN_VPC_ONLY", "Config: OpenSearch domains in a VPC", ""),
    ("CT:EMR_MASTER_NO_PUBLIC_IP", "Config: EMR master nodes without public IPs", ""),
    ("CT:LAMBDA_FUNCTION_PUBLIC_ACCESS_PROHIBITED", "Config: Lambda function policies not public", ""),
    ("CT:NO_UNRESTRICTED_ROUTE_TO_IGW", "Config: no 0.0.0.0/0 routes to an internet gateway", ""),
    ("CT:REDSHIFT_CLUSTER_PUBLIC_ACCESS_CHECK", "Config: Redshift clusters not public", ""),
    ("CT:SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET_ACCESS", "Config: SageMaker notebooks without direct internet", ""),
    ("CT:SUBNET_AUTO_ASSIGN_PUBLIC_IP_DISABLED", "Config: subnets do not auto-assign public IPs", ""),
    ("CT:SSM_DOCUMENT_NOT_PUBLIC", "Config: SSM documents not public", ""),
    ("Prowler:organizations_scp_check_deny_regions", "an SCP denies Regions outside the allowed list",
     "organization SCPs are outside any stack; `residency scp` generates one"),
    ("Prowler:s3_bucket_cross_region_replication", "requires S3 cross-Region replication",
     "conflicts with residency: RSD-030 forbids replication outside the geography"),
    ("Prowler:bedrock_model_invocation_logging_enabled", "Bedrock invocation logging on", ""),
    ("Prowler:bedrock_vpc_endpoints_configured", "Bedrock VPC endpoints exist",
     "a required resource, not a forbidden one: the BedrockAccess component creates it and its tests check it"),
    ("Prowler:bedrock_access_private_connectivity_enforced", "Bedrock access only through private connectivity",
     "needs the account's identity policies and SCPs, which are outside the stack"),
    ("Prowler:ec2_instance_public_ip", "EC2 instances without public IPs", ""),
    ("Prowler:ec2_launch_template_no_public_ip", "launch templates without public IPs", ""),
    ("Prowler:ec2_no_unrestricted_route_to_igw", "no 0.0.0.0/0 routes to an internet gateway", ""),
    ("Prowler:ec2_ebs_public_snapshot", "EBS snapshots not public", ""),
    ("Prowler:ec2_ami_public", "AMIs not public", ""),
    ("Prowler:ec2_ebs_snapshot_account_block_public_access", "EBS snapshot block public access on", ""),
    ("Prowler:s3_account_level_public_access_blocks", "account-level S3 public access blocks", ""),
    ("Prowler:s3_bucket_public_access", "S3 buckets not public", ""),
    ("Prowler:awslambda_function_not_publicly_accessible", "Lambda functions not public", ""),
    ("Prowler:opensearch_service_domains_not_publicly_accessible", "OpenSearch domains not public", ""),
)
CONTROL_IDS = {c[0] for c in CONTROLS}


def rules_for(control: str) -> list[str]:
    """`RSD-xxx` (or `RSD-xxx (partly)`) for each rule whose metadata names the control."""
    out = []
    for r in RULES:
        for c in r.controls:
            base, _, note = c.partition(" (")
            if base == control:
                out.append(f"{r.id}" + (f" ({note}" if note else ""))
    return out


def _coverage() -> list[str]:
    lines = ["", "## Coverage of reference controls", "",
             "Generated from each rule's `controls` metadata. *partly*: the rule covers the control's "
             "resources where the stack declares them, not the whole account.", "",
             "| Control | What it checks | Rules |", "|---|---|---|"]
    for control, what, why_not in CONTROLS:
        rules = rules_for(control)
        cell = ", ".join(rules) if rules else f"not covered: {why_not}"
        lines.append(f"| `{control}` | {_cell(what)} | {_cell(cell)} |")
    return lines


def _global_catalog() -> list[str]:
    gc = load_catalog().global_constructs
    if gc is None:
        return []
    lines = ["", "#### Catalogued global constructs (stacks/catalog.yaml)", "",
             "| Type or property | Why global | Source |", "|---|---|---|"]
    lines += [f"| `{t.type}` | {_cell(t.rationale)} | {_cell(t.source)} |" for t in gc.types.values()]
    for p in gc.properties:
        when = p.when if isinstance(p.when, str) else " or ".join(p.when)
        lines.append(f"| `{p.type}` `{p.path}` ({when}) | {_cell(p.rationale)} | {_cell(p.source)} |")
    lines += [f"| {_cell(what)} | judged by {rule_id} | |" for what, rule_id in gc.covered_by]
    return lines


def _non_destinations() -> list[str]:
    dest = load_catalog().destinations
    if dest is None:
        return []
    lines = ["", "#### Known non-destinations (stacks/catalog.yaml)", "", "| Kind | Match | Why |", "|---|---|---|"]
    lines += [f"| {n.kind} | `{n.match}` | {_cell(n.reason)} |" for n in dest.non_destinations]
    return lines


def judged_live(r) -> bool:
    """Does `residency audit --live` give this rule something to judge: the rule applies to the
    live source and the scanner records a type it looks at (or the rule checks the whole stack)."""
    from infra.engine.live import recorded_types

    if r.sources and "live" not in r.sources:
        return False
    return r.stack_check is not None or any(r.matches(t) for t in recorded_types())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    lines = [
        "# Residency rules",
        "",
        "<!-- Generated by `python -m infra.engine.rules.docs --write` from infra/engine/rules; do not edit. -->",
        "",
        "One rule set, used by `residency plan`, the CrossGuard pack (`policy/`), "
        "`residency audit --export` and `residency audit --live`. CrossGuard policy names are the rule "
        "names with dashes (`resource_region_in_geography` → `resource-region-in-geography`); rules marked "
        "*stack* run in the pack's `residency-stack-graph` policy.",
        "",
        "*Live*: whether `residency audit --live` judges the rule, i.e. the live scanner records a "
        "resource type the rule looks at (infra/engine/live; docs/live-audit.md) and the rule applies to "
        "the live source. *no*: only a plan, an export or the CrossGuard pack can give the rule its input.",
        "",
        "| ID | Name | Severity | Title | Live |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| [{r.id}](#{r.id.lower()}) | `{r.name}` | {r.severity} | {_cell(r.title)} | "
              f"{'yes' if judged_live(r) else 'no'} |" for r in RULES]
    for category in CATEGORIES:
        covers, blind = CLASS_SCOPE[category]
        lines += ["", f"## {CLASS_TITLES[category]}", "", f"Covers: {covers}.", "", f"Cannot see: {blind}."]
        for r in (r for r in RULES if r.category == category):
            scope = []
            if r.sources:
                scope.append("sources: " + ", ".join(r.sources))
            if r.graph:
                scope.append("*stack* (needs the whole stack)")
            lines += [
                "",
                f"### {r.id}",
                "",
                f"**`{r.name}`** — {r.title} ({r.severity})" + (f"; {'; '.join(scope)}" if scope else ""),
                "",
                f"- Rationale: {r.rationale}",
                f"- Remediation: {r.remediation}",
            ]
            if r.stance:
                lines.append(f"- Stance (fails closed on the whole construct): {r.stance} Its findings say "
                             "so: they are a stance, not a proven path out of the geography.")
            if r.id == "RSD-055":
                lines += _non_destinations()
            if r.id == "RSD-056":
                lines += _global_catalog()
    lines += _coverage()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC_PATH.write_text(render())
        print(DOC_PATH)
    else:
        sys.stdout.write(render())
