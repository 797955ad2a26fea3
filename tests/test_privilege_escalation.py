"""The published IAM privilege-escalation methods, tried against the CI roles with the project's
IAM evaluator (infra/engine/iam_eval.py): none works outside the stack's own prefix.

The list is the one cloudsplaining ships (tests/fixtures/privilege_escalation_methods.json, with
its source): Rhino Security Labs' methods plus pathfinding.cloud's, each a set of actions that
together escalate. A method is usable by a policy when every one of its actions is allowed on some
target outside the stack's prefix (another role, user, group or policy; the CI roles; another
stack's roles; the boundary; an instance or template that is not the stack's) under some request
context the caller controls (permissions boundary sent or not, any managed policy, any service a
role is passed to), always inside the geography (the worst case for the region conditions).

The roles checked: the deploy role, the preview role, and the permissions boundary, which caps
every role the deploy role may create (so a role it creates, passed to an instance it launches,
escalates no further than the boundary allows).
"""

from __future__ import annotations

import itertools
import json

import pytest

from infra.commands.render import iam_policy
from infra.engine.iam_eval import allowed
from infra.program.stackfiles import ROOT

ACCOUNT, STACK, REGION = "123456789012", "eu", "eu-central-1"
METHODS: dict[str, list[str]] = json.loads(
    (ROOT / "tests" / "fixtures" / "privilege_escalation_methods.json").read_text())["methods"]
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ai-companion-boundary-{STACK}"
IAM_ARN = f"arn:aws:iam::{ACCOUNT}"
# Principals and policies that are not the stack's: an administrator role, a role at another path,
# the CI roles, another stack's roles; a user, a group, a customer policy and the boundary itself.
OUTSIDE_ROLES = [f"{IAM_ARN}:role/Admin", f"{IAM_ARN}:role/ops/Admin", f"{IAM_ARN}:role/ai-companion-deploy-{STACK}",
                 f"{IAM_ARN}:role/ai-companion-preview-{STACK}", f"{IAM_ARN}:role/ai-companion/us/serving-nodes-abc"]
OUTSIDE = {
    "role": OUTSIDE_ROLES,
    "user": [f"{IAM_ARN}:user/alice"],
    "group": [f"{IAM_ARN}:group/admins"],
    "policy": [f"{IAM_ARN}:policy/AdminPolicy", BOUNDARY, "arn:aws:iam::aws:policy/AdministratorAccess"],
}
# What the caller chooses in the request (each key absent or one of these values).
CHOICES = {
    "iam:PermissionsBoundary": [BOUNDARY, "arn:aws:iam::aws:policy/AdministratorAccess"],
    "iam:PolicyARN": ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
    "iam:PassedToService": ["ec2.amazonaws.com", "eks.amazonaws.com", "lambda.amazonaws.com",
                            "cloudformation.amazonaws.com", "glue.amazonaws.com", "ecs-tasks.amazonaws.com"],
    # Resources outside the stack carry another stack's tag or none (never this stack's).
    "aws:ResourceTag/ai-companion:stack": ["us"],
}


def contexts(action: str) -> list[dict]:
    """Every combination of the choices that matter to the action (each key absent or a value)."""
    service, _, name = action.lower().partition(":")
    keys = (["iam:PassedToService"] if name == "passrole" else ["iam:PermissionsBoundary", "iam:PolicyARN"]
            if service == "iam" else ["aws:ResourceTag/ai-companion:stack"])
    return [{"aws:RequestedRegion": REGION, **{k: v for k, v in zip(keys, combo) if v is not None}}
            for combo in itertools.product(*[[None, *CHOICES[k]] for k in keys])]


def targets(action: str) -> list[str]:
    """Resources outside the stack's prefix that the action may be called on."""
    service, _, name = action.lower().partition(":")
    if service == "iam":
        for kind in ("user", "group", "policy"):
            if kind in name and not (kind == "policy" and "role" in name):
                return OUTSIDE[kind] if kind != "user" or "role" not in name else OUTSIDE["role"]
        if name in ("createaccesskey", "deleteaccesskey", "createloginprofile", "updateloginprofile"):
            return OUTSIDE["user"]
        return OUTSIDE["role"]
    if service == "sts":
        return OUTSIDE["role"]
    if service == "ec2":  # EC2 actions name the instance or template (RunInstances: `*` too)
        return [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0",
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-0123456789abcdef0", "*"][
            : 3 if name in ("runinstances", "requestspotinstances") else 2]
    return ["*", f"arn:aws:{service}:{REGION}:{ACCOUNT}:function:x"]


def first_allowed(policy: dict, action: str) -> tuple[str, dict] | None:
    for resource in targets(action):
        for context in contexts(action):
            if allowed(policy, action, resource, context):
                return resource, context
    return None


def usable_methods(policy: dict) -> dict[str, list]:
    """Method name -> how each of its actions is allowed, for the methods whose every action is."""
    ways = {a: first_allowed(policy, a) for a in {a for actions in METHODS.values() for a in actions}}
    return {method: [ways[a] for a in actions] for method, actions in METHODS.items()
            if all(ways[a] for a in actions)}


def role_policy(name: str) -> dict:
    return iam_policy(json.loads((ROOT / "docs" / "iam" / name).read_text()), STACK, ACCOUNT)


def test_the_list_is_the_published_one():
    assert len(METHODS) == 59
    assert METHODS["CreateNewPolicyVersion"] == ["iam:createpolicyversion"]
    assert METHODS["CreateEC2WithExistingIP"] == ["iam:passrole", "ec2:runinstances"]
    assert METHODS["PutRolePolicyThenUpdateAssumeRolePolicy"] == ["iam:putrolepolicy", "iam:updateassumerolepolicy"]


@pytest.mark.parametrize("name", ["deploy-permissions.json", "preview-permissions.json", "boundary-permissions.json"])
def test_no_published_escalation_method_works_outside_the_stacks_prefix(name):
    assert usable_methods(role_policy(name)) == {}


def test_the_check_finds_the_escalations_of_the_deploy_role_before_issue_24():
    """docs/iam/deploy-permissions.json as it was before #24 (tests/fixtures, verbatim from git):
    role management on `role/*`, no boundary, no allow-list, any instance's user data."""
    before = json.loads((ROOT / "tests" / "fixtures" / "deploy-permissions-before-issue-24.json").read_text())
    usable = usable_methods(iam_policy(before, STACK, ACCOUNT))
    assert sorted(usable) == [
        "AttachRolePolicy", "AttachRolePolicyThenUpdateAssumeRolePolicy", "CreateEC2WithExistingIP",
        "ModifyEC2InstanceUserDataThenRestart", "ModifyExistingEC2LaunchTemplate", "PassExistingRoleToNewEC2SpotInstance",
        "PutRolePolicy", "PutRolePolicyThenUpdateAssumeRolePolicy", "UpdateRolePolicyToAssumeIt"]
    assert usable["AttachRolePolicy"][0][0] == f"{IAM_ARN}:role/Admin"


def test_inside_the_prefix_the_deploy_role_does_what_it_needs_bounded():
    """Not vacuous: on the stack's own roles, with the boundary, the same actions are allowed."""
    policy = role_policy("deploy-permissions.json")
    own = f"{IAM_ARN}:role/ai-companion/{STACK}/serving-nodes-abc"
    bounded = {"aws:RequestedRegion": REGION, "iam:PermissionsBoundary": BOUNDARY}
    assert allowed(policy, "iam:PutRolePolicy", own, bounded)
    assert allowed(policy, "iam:PassRole", own, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert allowed(policy, "ec2:RunInstances", "*", bounded)
    # ... and the boundary caps what such a role may then do: no IAM writes, no other roles.
    boundary = role_policy("boundary-permissions.json")
    assert allowed(boundary, "ec2:DescribeInstances", "*", bounded)
    assert not allowed(boundary, "iam:PutRolePolicy", own, bounded)
    assert not allowed(boundary, "sts:AssumeRole", f"{IAM_ARN}:role/Admin")
    assert allowed(boundary, "iam:PassRole", own)
