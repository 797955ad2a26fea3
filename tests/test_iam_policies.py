"""docs/iam/*.json: valid policies, read-only where promised, region-bound where promised."""

from __future__ import annotations

import json
import re

import pytest

from infra.program.catalog import load_catalog
from infra.commands.render import iam_policy, main as render_main
from infra.program.stackfiles import ROOT, list_stacks

IAM = ROOT / "docs" / "iam"
ROLES = ("preview", "deploy", "audit")
READ_VERB = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)[A-Za-z0-9*]*$|^apigateway:GET$")  # API Gateway: HTTP verbs
READ_ONLY_EXCEPTIONS = {"kms:Decrypt"}  # secrets in the state are encrypted with the state key
# A port-forward to the API tunnel changes nothing in AWS; what it reaches is the Kubernetes API,
# where the role's access entry decides. Scoped below to the tunnel and the port-forward document.
TUNNEL_ACTIONS = {"ssm:StartSession", "ssm:TerminateSession"}
GITHUB = "token.actions.githubusercontent.com"


def load(name: str) -> dict:
    return json.loads((IAM / name).read_text())


def statements(policy: dict) -> list[dict]:
    s = policy["Statement"]
    return s if isinstance(s, list) else [s]


def actions(statement: dict) -> list[str]:
    a = statement.get("Action", [])
    return [a] if isinstance(a, str) else a


def is_tunnel_statement(s: dict) -> bool:
    """A statement that lets a role open only the API tunnel's port-forward, nothing wider."""
    resource = s.get("Resource")
    if actions(s) == ["ssm:StartSession"]:
        if resource == "arn:aws:ssm:<HOME_REGION>::document/AWS-StartPortForwardingSessionToRemoteHost":
            return True
        return (resource == "arn:aws:ec2:<HOME_REGION>:<ACCOUNT_ID>:instance/*"
                and s.get("Condition") == {"StringEquals": {"ssm:resourceTag/ai-companion:role": "api-tunnel"}})
    return actions(s) == ["ssm:TerminateSession"] and resource == "arn:aws:ssm:<HOME_REGION>:<ACCOUNT_ID>:session/${aws:userid}-*"


def write_actions(policy: dict) -> list[str]:
    """Allowed actions that are not plainly reads (plus anything using NotAction or a bare `*`)."""
    bad = []
    for s in statements(policy):
        if s["Effect"] != "Allow":
            continue
        if "NotAction" in s:
            bad.append(f"NotAction in {s.get('Sid')}")
        allowed = READ_ONLY_EXCEPTIONS | (TUNNEL_ACTIONS if is_tunnel_statement(s) else set())
        bad += [a for a in actions(s) if a not in allowed and not READ_VERB.match(a)]
    return bad


def test_the_role_files_exist_and_are_valid_policies():
    names = sorted(p.name for p in IAM.glob("*.json"))
    assert names == sorted(f"{r}-{kind}.json" for r in ROLES for kind in ("trust", "permissions"))
    for name in names:
        policy = load(name)  # raises on invalid JSON
        assert policy["Version"] == "2012-10-17", name
        for s in statements(policy):
            assert s["Effect"] in ("Allow", "Deny"), name
            assert ("Action" in s) != ("NotAction" in s), name


@pytest.mark.parametrize("role", ["preview", "audit"])
def test_read_only_roles_have_no_write_actions(role):
    assert write_actions(load(f"{role}-permissions.json")) == []


def test_read_only_check_catches_a_write_action():
    policy = load("preview-permissions.json")
    policy["Statement"][0]["Action"].append("s3:PutObject")
    policy["Statement"].append({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    policy["Statement"].append({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*", "Sid": "X"})
    assert write_actions(policy) == ["s3:PutObject", "ec2:*", "NotAction in X"]


@pytest.mark.parametrize("role", ["preview", "deploy"])
def test_ci_roles_may_open_only_the_api_tunnels_port_forward(role):
    tunnel = [s for s in statements(load(f"{role}-permissions.json")) if set(actions(s)) & TUNNEL_ACTIONS]
    assert len(tunnel) == 3 and all(is_tunnel_statement(s) for s in tunnel)
    # Any instance, or any document (a shell session), is not a tunnel statement.
    widened = dict(tunnel[0], Condition={})
    assert not is_tunnel_statement(widened) and write_actions({"Statement": [widened]}) == ["ssm:StartSession"]


def test_preview_reads_only_its_own_state_bucket_and_decrypts_only_with_its_state_key():
    policy = iam_policy(load("preview-permissions.json"), "eu", "123456789012")
    objects = [s for s in statements(policy) if "s3:GetObject" in actions(s)]
    assert [s["Resource"] for s in objects] == [[
        "arn:aws:s3:::ai-companion-state-eu-123456789012", "arn:aws:s3:::ai-companion-state-eu-123456789012/*"]]
    (decrypt,) = [s for s in statements(policy) if "kms:Decrypt" in actions(s)]
    assert decrypt["Resource"] == "arn:aws:kms:eu-central-1:123456789012:key/*"
    assert decrypt["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/ai-companion-state-eu"}}


@pytest.mark.parametrize("stack", list_stacks(ROOT))
def test_deploy_role_is_bound_to_the_geography_regions(stack):
    regions = list(load_catalog().by_stack(stack).regions)
    policy = iam_policy(load("deploy-permissions.json"), stack)
    for s in statements(policy):
        wildcard_services = [a for a in actions(s) if a.endswith(":*") and not a.startswith(("iam:", "sts:"))]
        if s["Effect"] == "Allow" and wildcard_services:
            assert s["Condition"] == {"StringEquals": {"aws:RequestedRegion": regions}}, s["Sid"]
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny" and "NotAction" in s]
    assert deny["NotAction"] == ["iam:*", "sts:*"]
    assert deny["Condition"] == {"StringNotEquals": {"aws:RequestedRegion": regions}}
    assert "<" not in json.dumps(policy), "a placeholder was left unrendered"


@pytest.mark.parametrize("role,subject", [
    ("preview", "repo:example-org/ai-companion:pull_request"),
    ("deploy", "repo:example-org/ai-companion:environment:eu"),
    ("audit", "repo:example-org/ai-companion:ref:refs/heads/main"),
])
def test_trust_policies_pin_github_oidc_audience_repository_and_context(role, subject):
    policy = iam_policy(load(f"{role}-trust.json"), "eu", "123456789012")
    (s,) = statements(policy)
    assert s["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert s["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{GITHUB}"}
    assert s["Condition"] == {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com", f"{GITHUB}:sub": subject}}


def test_render_cli_prints_a_policy_and_refuses_bad_input(capsys):
    assert render_main(["iam", str(IAM / "deploy-trust.json"), "--stack", "ksa",
                        "--account-id", "222222222222", "--repo", "acme/infra"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB}:sub"] == "repo:acme/infra:environment:ksa"
    assert render_main(["iam", str(IAM / "deploy-trust.json"), "--stack", "nz",
                        "--account-id", "222222222222", "--repo", "acme/infra"]) == 2
    assert "'nz' is unknown; allowed: us, eu" in capsys.readouterr().err
    assert render_main(["iam", str(IAM / "deploy-trust.json"), "--stack", "eu",
                        "--account-id", "12", "--repo", "acme/infra"]) == 2
    assert "'12' is not a 12-digit AWS account id" in capsys.readouterr().err


def granted(policy: dict, action: str) -> bool:
    from fnmatch import fnmatchcase

    return any(s["Effect"] == "Allow" and any(fnmatchcase(action.lower(), a.lower()) for a in actions(s))
               for s in statements(policy))


def test_audit_role_grants_every_operation_the_live_scanner_may_send():
    from infra.engine.live import ALLOWED_OPERATIONS
    from infra.engine.live.permissions import iam_action, render

    # Generated from the allow-list (python -m infra.engine.live.permissions --write): fresh.
    assert (IAM / "audit-permissions.json").read_text() == render()
    policy = load("audit-permissions.json")
    needed = [iam_action(svc, op) for svc, ops in ALLOWED_OPERATIONS.items() for op in sorted(ops)
              if svc not in ("apigateway", "apigatewayv2")]  # apigateway:GET on the API lists
    assert "apigateway:GET" in [a for s in statements(policy) for a in actions(s)]
    assert [a for a in needed if not granted(policy, a)] == []
    assert not granted(policy, "secretsmanager:GetSecretValue")
