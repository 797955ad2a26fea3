"""`residency scp --guardrails`: the account's second SCP, evaluated with infra/engine/iam_eval.py.

As in tests/test_scp.py, the account's effective permissions are the SCP's Allow (FullAWSAccess,
added here) minus its Denies; "allowed" means "not denied by the SCP".
"""

from __future__ import annotations

import json

import pytest

from infra.commands.scp import SCP_MAX_CHARS, guardrails_for_stack
from infra.engine.iam_eval import ALLOW, DENY, evaluate
from infra.program.stackfiles import PROJECT_DIR_ENV, ROOT, list_stacks, load_stack_config

FULL_ACCESS = {"Effect": "Allow", "Action": "*", "Resource": "*"}
ACCOUNT = "123456789012"
STACKS = list_stacks(ROOT)


@pytest.fixture(autouse=True)
def repo_stack_files(monkeypatch):
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)


def decide(scp, action, resource="*", **context):
    return evaluate([scp, {"Statement": [FULL_ACCESS]}], action, resource, {k.replace("__", ":"): v for k, v in context.items()})


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@pytest.mark.parametrize("stack", STACKS)
def test_no_role_or_user_without_the_stacks_boundary_except_the_ci_roles(stack):
    scp = guardrails_for_stack(stack)
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/ai-companion-boundary-{stack}"
    for action in ("iam:CreateRole", "iam:PutRolePermissionsBoundary"):
        assert decide(scp, action, role(f"ai-companion/{stack}/x")) == DENY, action  # no boundary
        assert decide(scp, action, role("x"), iam__PermissionsBoundary=f"arn:aws:iam::{ACCOUNT}:policy/Open") == DENY
        assert decide(scp, action, role(f"ai-companion/{stack}/x"), iam__PermissionsBoundary=boundary) == ALLOW
    assert decide(scp, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/alice") == DENY
    assert decide(scp, "iam:DeleteRolePermissionsBoundary", role(f"ai-companion/{stack}/x")) == DENY
    for ci in ("preview", "deploy", "audit"):  # created at bootstrap, without the boundary
        assert decide(scp, "iam:CreateRole", role(f"ai-companion-{ci}-{stack}")) == ALLOW
    assert decide(scp, "iam:CreateServiceLinkedRole", "*") == ALLOW


@pytest.mark.parametrize("stack", STACKS)
def test_internet_gateways_only_where_federated_connectors_need_them(stack):
    scp = guardrails_for_stack(stack)
    federated = load_stack_config(stack).has("federated")
    for action in ("ec2:CreateInternetGateway", "ec2:AttachInternetGateway", "ec2:CreateEgressOnlyInternetGateway"):
        assert decide(scp, action) == (ALLOW if federated else DENY), action
    assert decide(scp, "ec2:CreateVpc") == ALLOW


def test_zmo_only_stacks_exist_and_are_denied_internet_gateways():
    zmo_only = [s for s in STACKS if not load_stack_config(s).has("federated")]
    assert zmo_only and all(decide(guardrails_for_stack(s), "ec2:CreateInternetGateway") == DENY for s in zmo_only)


@pytest.mark.parametrize("stack", STACKS)
def test_no_sharing_outside_the_organization_no_leaving_no_disabling_the_trail(stack):
    scp = guardrails_for_stack(stack)
    for action in ("ram:CreateResourceShare", "ram:UpdateResourceShare"):
        assert decide(scp, action, ram__RequestedAllowsExternalPrincipals="true") == DENY
        assert decide(scp, action, ram__RequestedAllowsExternalPrincipals="false") == ALLOW
    assert decide(scp, "organizations:LeaveOrganization") == DENY
    for action in ("cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
                   "config:StopConfigurationRecorder", "config:DeleteConfigurationRecorder"):
        assert decide(scp, action) == DENY, action
    assert decide(scp, "cloudtrail:LookupEvents") == ALLOW and decide(scp, "cloudtrail:StartLogging") == ALLOW


@pytest.mark.parametrize("stack", STACKS)
def test_the_guardrails_fit_the_scp_quota_and_name_only_known_actions(stack):
    from test_aws_models import document_problems

    scp = guardrails_for_stack(stack)
    assert len(json.dumps(scp, separators=(",", ":"))) <= SCP_MAX_CHARS
    assert document_problems(scp) == []


def test_the_console_script_prints_the_guardrails_and_refuses_an_unknown_stack():
    from cli_run import residency

    done = residency("scp", "--stack", "sg", "--guardrails", "--compact", project=ROOT)
    assert done.rc == 0, done.err
    printed = json.loads(done.out)
    assert printed == guardrails_for_stack("sg")
    assert "DenyInternetGateways" in {s["Sid"] for s in printed["Statement"]}
    bad = residency("scp", "--stack", "atlantis", "--guardrails", project=ROOT)
    assert bad.rc == 2 and "Traceback" not in bad.err and "atlantis" in bad.err
