"""The read-only audit role as a Pulumi component (infra/program/components/audit_role.py), under
the project's Pulumi mocks: its policy is exactly the scanner's generated allow-list, its trust
names one principal, and org_audit_roles places one per account through that account's provider."""

from __future__ import annotations

import json

import pytest

from infra.engine.live.permissions import audit_policy
from infra.program.components.audit_role import ReadOnlyAuditRole, org_audit_roles
from rules_kit import plan_with

SCANNER = "arn:aws:iam::111111111111:role/residency-scanner"
MEMBERS = ["222222222222", "333333333333", "444444444444"]


def registered(plan, type_):
    return [r for r in plan.export["deployment"]["resources"] if r["type"] == type_]


@pytest.fixture(scope="module")
def org_plan():
    def program(cfg):
        org_audit_roles(MEMBERS, policy=audit_policy(), trusted_principal=SCANNER, region=cfg.region,
                        partition=cfg.geography.partition)
        ReadOnlyAuditRole("management", policy=audit_policy(), trusted_principal=SCANNER, external_id="x-123")
    plan, _ = plan_with("eu", program)
    return plan


def test_the_role_policy_is_the_scanners_allow_list(org_plan):
    policies = registered(org_plan, "aws:iam/rolePolicy:RolePolicy")
    assert len(policies) == 4
    assert all(json.loads(p["inputs"]["policy"]) == audit_policy() for p in policies)
    actions = audit_policy()["Statement"][0]["Action"]
    assert "s3:GetBucketPolicy" in actions and "tag:GetResources" in actions
    assert not [a for a in actions if a.split(":")[1].startswith(("Put", "Create", "Delete", "Update"))]


def test_trust_names_the_scanner_and_the_external_id(org_plan):
    roles = {r["inputs"]["name"]: r for r in registered(org_plan, "aws:iam/role:Role")}
    assert set(roles) == {"ai-companion-audit"}  # one name: the scanner's default --org-role
    trusts = [json.loads(r["inputs"]["assumeRolePolicy"]) for r in registered(org_plan, "aws:iam/role:Role")]
    assert all(t["Statement"][0]["Principal"] == {"AWS": SCANNER} for t in trusts)
    assert sum("Condition" in t["Statement"][0] for t in trusts) == 1


def test_one_role_per_member_account_through_its_own_provider(org_plan):
    providers = {r["urn"].rsplit("::", 1)[-1]: r for r in registered(org_plan, "pulumi:providers:aws")}
    for account in MEMBERS:
        p = providers[f"audit-{account}"]
        assert json.loads(p["inputs"]["allowedAccountIds"]) == [account]
        assert f"iam::{account}:role/OrganizationAccountAccessRole" in p["inputs"]["assumeRoles"]


def test_a_policy_over_the_inline_limit_is_refused():
    huge = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get" + "x" * 11000],
                                                    "Resource": "*"}]}
    with pytest.raises(ValueError, match="IAM allows 10240"):
        plan_with("eu", lambda cfg: ReadOnlyAuditRole("big", policy=huge, trusted_principal=SCANNER))
