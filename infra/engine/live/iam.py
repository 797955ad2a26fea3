"""IAM (account-wide, once): inline and attached policies of roles, users and groups.

Each policy becomes the pulumi-aws resource that would declare it (RolePolicy, UserPolicy,
GroupPolicy, Policy + its attachments) with `policy` as a JSON string, so the Bedrock-invoke rules
read it exactly as they read a stack export.
"""

from __future__ import annotations

import json

from infra.engine.live.core import Unit, pages

PRINCIPALS = (
    # (details list, name key, inline list, inline type, attachment type, pulumi principal input)
    ("RoleDetailList", "RoleName", "RolePolicyList", "aws:iam/rolePolicy:RolePolicy",
     "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "role"),
    ("UserDetailList", "UserName", "UserPolicyList", "aws:iam/userPolicy:UserPolicy",
     "aws:iam/userPolicyAttachment:UserPolicyAttachment", "user"),
    ("GroupDetailList", "GroupName", "GroupPolicyList", "aws:iam/groupPolicy:GroupPolicy",
     "aws:iam/groupPolicyAttachment:GroupPolicyAttachment", "group"),
)


def _doc(document) -> str:
    # boto3 already URL-decodes and parses IAM policy documents; state stores them as JSON strings.
    return document if isinstance(document, str) else json.dumps(document, sort_keys=True)


def scan(unit: Unit) -> None:
    iam = unit.client()
    details: dict[str, list] = {}
    with unit.step("GetAccountAuthorizationDetails"):
        for page in pages(iam, "get_account_authorization_details",
                          Filter=["User", "Role", "Group", "LocalManagedPolicy"]):
            for key in ("RoleDetailList", "UserDetailList", "GroupDetailList", "Policies"):
                details.setdefault(key, []).extend(page.get(key) or [])
    if not details:
        return

    attached: set[str] = set()
    for list_key, name_key, inline_key, inline_type, attach_type, principal in PRINCIPALS:
        for p in details.get(list_key, []):
            who = p[name_key]
            for pol in p.get(inline_key) or []:
                unit.add(inline_type, f"{who}:{pol['PolicyName']}",
                         {principal: who, "name": pol["PolicyName"], "policy": _doc(pol["PolicyDocument"])},
                         region=None, name=f"{principal}/{who}/{pol['PolicyName']}")
            for att in p.get("AttachedManagedPolicies") or []:
                attached.add(att["PolicyArn"])
                unit.add(attach_type, f"{who}/{att['PolicyArn']}", {principal: who, "policyArn": att["PolicyArn"]},
                         region=None, name=f"{principal}/{who}/{att['PolicyName']}")

    local = {p["Arn"]: p for p in details.get("Policies", [])}
    for arn in sorted(attached):
        policy = local.get(arn)
        with unit.step(f"policy {arn}"):
            document = next((v["Document"] for v in (policy or {}).get("PolicyVersionList") or []
                             if v.get("IsDefaultVersion")), None)
            if document is None:  # AWS-managed (arn:aws:iam::aws:policy/...): fetch its default version
                policy = policy or iam.get_policy(PolicyArn=arn)["Policy"]
                version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
                document = version["PolicyVersion"]["Document"]
            unit.add("aws:iam/policy:Policy", arn, {
                "name": policy.get("PolicyName"), "path": policy.get("Path"), "description": policy.get("Description"),
                "policy": _doc(document),
            }, outputs={"attachmentCount": policy.get("AttachmentCount"), "policyId": policy.get("PolicyId")},
                arn=arn, region=None, name=policy.get("PolicyName"))
