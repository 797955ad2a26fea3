"""The Service Control Policy that keeps an account in a geography (`residency scp` prints it;
the live audit's RSD-005 looks for its statements among the SCPs in force). Built from the catalog:

- `DenyOutsideGeography`: every action outside the geography's regions, except the global
  services a region deny must exempt (`region_deny_exemptions` in stacks/catalog.yaml: Control
  Tower's region-deny list reviewed down to truly global services, each with its reason). For
  every geography, so a `global.` Bedrock call (`aws:RequestedRegion` = `unspecified`) is denied
  even where ZM+ is not offered.
- `DenyEnablingRegionsOutsideGeography`: `account:*` is exempt (a global API), so enabling an
  opt-in region outside the geography is denied on its own (`account:TargetRegion`).
- `DenyGlobalConstructs`: the actions that create or feed constructs carrying data out of any
  one geography (CloudFront distributions, Global Accelerator, Cloud WAN core networks, ECR
  Public pushes ...: `global_constructs.scp_deny` in the catalog, each with its reason), denied
  in every region, so also where their control plane lives (us-east-1 for CloudFront, inside the
  US, which the region deny alone would allow).
- Where the stack enables ZM+, the aws-samples CRIS pattern (residency-facts §4.3): the Bedrock
  invoke actions leave the first statement and get their own region deny that spares calls made
  through the geography's own profile from a source region inside the geography; plus explicit
  Denies of `global.` profiles, region-less model ARNs and `unspecified` regions, and of any
  account data-retention mode but `none` (pulumi-aws cannot set that mode; the SCP holds it).

SCP Denies use `"Resource": "*"` (an SCP grants nothing).
"""

from __future__ import annotations

import hashlib
import json

from infra.program.bedrock_policy import GLOBAL_PROFILE_PATTERN, INVOKE_ACTIONS, REGIONLESS_MODEL_PATTERN
from infra.program.catalog import CatalogError, Geography, load_catalog

# Bedrock actions that run a model; batch jobs too (aws-samples Deny-...-with-Bedrock-CRIS.json).
BEDROCK_RUN_ACTIONS = (*INVOKE_ACTIONS, "bedrock:CreateModelInvocationJob")


def build_scp(geo: Geography, zm_plus: bool) -> dict:
    exemptions = load_catalog().region_deny_exemptions
    if exemptions is None:
        raise CatalogError("stacks/catalog.yaml: region_deny_exemptions is missing; the SCP needs it")
    regions = list(geo.regions)
    outside = {"StringNotEquals": {"aws:RequestedRegion": regions}}
    bedrock = list(BEDROCK_RUN_ACTIONS)
    statements = [{"Sid": "DenyOutsideGeography", "Effect": "Deny",
                   "NotAction": exemptions.not_action + (bedrock if zm_plus else []),
                   "Resource": "*", "Condition": outside},
                  {"Sid": "DenyEnablingRegionsOutsideGeography", "Effect": "Deny", "Action": "account:EnableRegion",
                   "Resource": "*", "Condition": {"StringNotEquals": {"account:TargetRegion": regions}}}]
    constructs = load_catalog().global_constructs
    if constructs is None or not constructs.scp_deny:
        raise CatalogError("stacks/catalog.yaml: global_constructs.scp_deny is missing; the SCP needs it")
    statements.append({"Sid": "DenyGlobalConstructs", "Effect": "Deny", "Action": list(constructs.scp_deny),
                       "Resource": "*"})
    if zm_plus:
        prefix = geo.zm_plus.profile_prefix
        own_profiles = [f"arn:{geo.partition}:bedrock:{r}:*:inference-profile/{prefix}.*" for r in regions]
        statements += [
            {"Sid": "DenyBedrockOutsideGeographyExceptOwnProfile", "Effect": "Deny", "Action": bedrock,
             "Resource": "*", "Condition": {**outside, "ArnNotLike": {"bedrock:InferenceProfileArn": own_profiles}}},
            {"Sid": "DenyGlobalProfiles", "Effect": "Deny", "Action": bedrock,
             "Resource": [GLOBAL_PROFILE_PATTERN, REGIONLESS_MODEL_PATTERN]},
            {"Sid": "DenyGlobalRouting", "Effect": "Deny", "Action": bedrock, "Resource": "*",
             "Condition": {"ArnLike": {"bedrock:InferenceProfileArn": GLOBAL_PROFILE_PATTERN}}},
            {"Sid": "DenyUnspecifiedRegion", "Effect": "Deny", "Action": bedrock, "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": "unspecified"}}},
            {"Sid": "DenyDataRetentionOtherThanNone", "Effect": "Deny", "Action": "bedrock:PutAccountDataRetention",
             "Resource": "*", "Condition": {"StringNotEquals": {"bedrock:DataRetentionMode": "none"}}},
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def statement_digests(policy) -> set[str]:
    """A digest per statement of a policy (dict or JSON text), insensitive to key order, string-list
    order and whitespace: the live audit compares the SCPs in force with this one by digests, so
    the policies' region lists never reach the reference rules as values."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return set()
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    statements = statements if isinstance(statements, list) else [statements] if statements else []
    return {hashlib.sha256(json.dumps(_canonical(s), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            for s in statements}


def _canonical(value):
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value
