"""The second Service Control Policy of a stack's account: guardrails beyond regions
(`residency scp --stack S --guardrails` prints it; the first, scp_policy.py, keeps the account in
its geography). Two documents because each SCP may hold 5,120 characters; an account may have five
attached.

- `DenyRolesAndUsersWithoutTheBoundary`: no role or user is created, or has its boundary changed
  or removed, unless it carries the stack's permissions boundary (docs/iam/boundary-permissions.json);
  only the three CI roles, which an administrator creates at bootstrap, are exempt.
- `DenyInternetGateways` (ZMO-only accounts, no Federated option): the stack has no internet path
  by design, so no internet or egress-only internet gateway may be created or attached.
- `DenyResourceSharingOutsideTheOrganization`: AWS RAM shares that allow external principals
  (aws-samples/data-perimeter-policy-examples, service_control_policies/
  data_perimeter_governance_scp.json, `PreventRAMExternalResourceShare`).
- `DenyLeavingTheOrganization`: an account that left would leave every SCP behind.
- `DenyDisablingTheAuditTrail`: CloudTrail trails and AWS Config recording stay on.

SCP Denies use `"Resource": "*"` or a NotResource (an SCP grants nothing).
"""

from __future__ import annotations

from infra.program.catalog import Geography

CI_ROLES = ("preview", "deploy", "audit")
IDENTITY_CREATION = ["iam:CreateRole", "iam:CreateUser", "iam:PutRolePermissionsBoundary",
                     "iam:PutUserPermissionsBoundary"]
BOUNDARY_REMOVAL = ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"]
INTERNET_GATEWAYS = ["ec2:CreateInternetGateway", "ec2:AttachInternetGateway", "ec2:CreateEgressOnlyInternetGateway"]
AUDIT_TRAIL = ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
               "cloudtrail:PutEventSelectors", "config:StopConfigurationRecorder",
               "config:DeleteConfigurationRecorder", "config:DeleteDeliveryChannel"]


def boundary_pattern(geo: Geography, stack: str) -> str:
    return f"arn:{geo.partition}:iam::*:policy/ai-companion-boundary-{stack}"


def build_guardrails(geo: Geography, stack: str, federated: bool) -> dict:
    ci_roles = [f"arn:{geo.partition}:iam::*:role/ai-companion-{role}-{stack}" for role in CI_ROLES]
    statements = [
        {"Sid": "DenyRolesAndUsersWithoutTheBoundary", "Effect": "Deny", "Action": IDENTITY_CREATION,
         "NotResource": ci_roles,
         "Condition": {"StringNotLike": {"iam:PermissionsBoundary": boundary_pattern(geo, stack)}}},
        {"Sid": "DenyRemovingTheBoundary", "Effect": "Deny", "Action": BOUNDARY_REMOVAL, "NotResource": ci_roles},
        {"Sid": "DenyResourceSharingOutsideTheOrganization", "Effect": "Deny",
         "Action": ["ram:CreateResourceShare", "ram:UpdateResourceShare"], "Resource": "*",
         "Condition": {"Bool": {"ram:RequestedAllowsExternalPrincipals": "true"}}},
        {"Sid": "DenyLeavingTheOrganization", "Effect": "Deny", "Action": "organizations:LeaveOrganization",
         "Resource": "*"},
        {"Sid": "DenyDisablingTheAuditTrail", "Effect": "Deny", "Action": AUDIT_TRAIL, "Resource": "*"},
    ]
    if not federated:
        statements.insert(2, {"Sid": "DenyInternetGateways", "Effect": "Deny", "Action": INTERNET_GATEWAYS,
                              "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
