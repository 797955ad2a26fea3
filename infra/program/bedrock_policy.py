"""Bedrock IAM documents for ZM+, as pure functions of the catalog (no Pulumi import).

The `BedrockAccess` component, `residency scp`, `residency models` and the tests all build the
same ARNs and policies from here, so there is one definition of "the allowed models" per
geography. Allows list exact ARNs only; Denies may use wildcards (`arn:*:bedrock:*:*:...`)
because a wildcard in a Deny can only take permissions away.
"""

from __future__ import annotations

import re

from infra.program.catalog import BedrockModel, Geography

# Converse uses InvokeModel and ConverseStream InvokeModelWithResponseStream (residency-facts §2.1).
INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
# An invoke that names a guardrail also needs ApplyGuardrail on that guardrail.
APPLY_GUARDRAIL = "bedrock:ApplyGuardrail"
GLOBAL_PROFILE_PATTERN = "arn:*:bedrock:*:*:inference-profile/global.*"
REGIONLESS_MODEL_PATTERN = "arn:*:bedrock:::foundation-model/*"
# Bedrock writes invocation logs to this fixed stream name (model-invocation-logging docs).
LOG_STREAM = "aws/bedrock/modelinvocations"
# stacks/program.py names the ZM+ component "bedrock"; `residency evidence` reads this group.
BEDROCK_COMPONENT_NAME = "bedrock"


def invocation_log_group(component: str = BEDROCK_COMPONENT_NAME) -> str:
    """The in-region CloudWatch Logs group the BedrockAccess component sends invocation logs to."""
    return f"/ai-companion/{component}/bedrock-invocations"


def foundation_model_arn(partition: str, region: str, model_id: str) -> str:
    # Foundation models have no account and no geography prefix in their ARN.
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"


def profile_arn(geo: Geography, account: str, model: BedrockModel) -> str:
    # Pinned to the home region: the same `eu.` profile called from another source region can
    # route to that region too (residency-facts §2, e.g. eu-west-2).
    return (f"arn:{geo.partition}:bedrock:{geo.home_region}:{account}:inference-profile/"
            f"{model.profile_id(geo.zm_plus.profile_prefix)}")


def model_grants(geo: Geography, account: str, models: tuple[BedrockModel, ...]) -> list[dict]:
    """Per model: `{"model", "profile", "resources"}`; `profile` is None for an in-region model."""
    grants = []
    for m in models:
        if m.access == "in_region":
            grants.append({"model": m, "profile": None,
                           "resources": [foundation_model_arn(geo.partition, geo.home_region, m.model_id)]})
        else:
            grants.append({"model": m, "profile": profile_arn(geo, account, m),
                           "resources": [foundation_model_arn(geo.partition, r, m.model_id) for r in m.destinations]})
    return grants


def allowed_arns(geo: Geography, account: str, models: tuple[BedrockModel, ...]) -> list[str]:
    """Every ARN the workload may invoke: profiles first, then foundation models, no duplicates."""
    grants = model_grants(geo, account, models)
    ordered = [g["profile"] for g in grants if g["profile"]] + [r for g in grants for r in g["resources"]]
    return list(dict.fromkeys(ordered))


def _sid(key: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", key) if p)


def workload_policy(geo: Geography, account: str, models: tuple[BedrockModel, ...],
                    guardrail_arn: str, guardrail_version: str) -> dict:
    """The workload role's inline policy (see the module docstring for what each part does)."""
    p, home, prefix = geo.partition, geo.home_region, geo.zm_plus.profile_prefix
    guardrail_id = f"{guardrail_arn}:{guardrail_version}"
    with_guardrail = {"bedrock:GuardrailIdentifier": guardrail_id}
    any_bedrock = f"arn:{p}:bedrock:*:*:*"
    own_profiles = f"arn:{p}:bedrock:{home}:{account}:inference-profile/{prefix}.*"
    grants = model_grants(geo, account, models)
    allow: list[dict] = []
    in_region = [r for g in grants if g["profile"] is None for r in g["resources"]]
    if in_region:
        allow.append({"Sid": "InvokeInRegionModels", "Effect": "Allow", "Action": list(INVOKE_ACTIONS),
                      "Resource": in_region, "Condition": {"StringEquals": dict(with_guardrail)}})
    profiles = [g["profile"] for g in grants if g["profile"]]
    if profiles:
        allow.append({"Sid": "InvokeGeographyProfiles", "Effect": "Allow", "Action": list(INVOKE_ACTIONS),
                      "Resource": profiles, "Condition": {"StringEquals": dict(with_guardrail)}})
    for g in grants:
        if g["profile"]:
            allow.append({
                "Sid": f"RouteProfile{_sid(g['model'].key)}", "Effect": "Allow", "Action": list(INVOKE_ACTIONS),
                "Resource": g["resources"],
                "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": g["profile"], **with_guardrail}}})
    allow.append({"Sid": "ApplyStackGuardrail", "Effect": "Allow", "Action": APPLY_GUARDRAIL, "Resource": guardrail_arn})
    deny = [
        {"Sid": "DenyWithoutStackGuardrail", "Effect": "Deny", "Action": list(INVOKE_ACTIONS),
         "Resource": any_bedrock, "Condition": {"StringNotEquals": dict(with_guardrail)}},
        {"Sid": "DenyGlobalProfiles", "Effect": "Deny", "Action": list(INVOKE_ACTIONS),
         "Resource": [GLOBAL_PROFILE_PATTERN, REGIONLESS_MODEL_PATTERN]},
        # Any profile other than the geography's own, called from the home region.
        {"Sid": "DenyOtherProfiles", "Effect": "Deny", "Action": list(INVOKE_ACTIONS), "Resource": any_bedrock,
         "Condition": {"Null": {"bedrock:InferenceProfileArn": "false"},
                       "ArnNotLike": {"bedrock:InferenceProfileArn": own_profiles}}},
        {"Sid": "DenyModelsOutsideGeography", "Effect": "Deny", "Action": list(INVOKE_ACTIONS),
         "NotResource": [foundation_model_arn(p, r, "*") for r in geo.regions] + [own_profiles]},
        {"Sid": "DenyRequestedRegionOutsideGeography", "Effect": "Deny",
         "Action": [*INVOKE_ACTIONS, APPLY_GUARDRAIL], "Resource": any_bedrock,
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": list(geo.regions)}}},
    ]
    return {"Version": "2012-10-17", "Statement": allow + deny}


def endpoint_policy(principal_arns: list[str], arns: list[str], guardrail_arn: str) -> dict:
    """The bedrock-runtime endpoint policy: these principals, the invoke actions, these ARNs."""
    principal = {"AWS": list(principal_arns)}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "InvokeConfiguredModels", "Effect": "Allow", "Principal": principal,
         "Action": list(INVOKE_ACTIONS), "Resource": list(arns)},
        {"Sid": "ApplyStackGuardrail", "Effect": "Allow", "Principal": principal,
         "Action": APPLY_GUARDRAIL, "Resource": guardrail_arn},
    ]}


def bedrock_source(partition: str, region: str, account: str) -> dict:
    # Confused-deputy guard for the Bedrock service principal (model-invocation-logging docs).
    return {"StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:bedrock:{region}:{account}:*"}}
