"""docs/iam/*.json: valid policies, read-only where promised, region-bound where promised."""

from __future__ import annotations

import json
import re

import pytest

from infra.program.catalog import load_catalog
from infra.commands.render import iam_policy, main as render_main
from infra.engine.iam_eval import DENY, allowed, evaluate
from infra.program.stackfiles import ROOT, list_stacks

IAM = ROOT / "docs" / "iam"
ROLES = ("preview", "deploy", "audit")
# Actions a read-only role may hold that policy_sentry's IAM database does not class as Read or
# List, each with the reason it is reviewed as harmless for that role.
REVIEWED_NON_READS = {
    "kms:Decrypt": "the state key only: Pulumi decrypts the stack's data key to load the state, "
                   "and the state holds no secret (test_the_state_holds_no_secret_value)",
    "ssm:StartSession": "only the API tunnel instance, only with the stack's own document pinned to the "
                        "EKS API endpoint, and never without a document (is_tunnel_statement)",
    "ssm:TerminateSession": "only the caller's own sessions (is_tunnel_statement)",
    "resource-explorer-2:ListResources": "the audit's cheap inventory outside the geography: it lists what an "
                                         "aggregator index holds and changes nothing (Resource Explorer API "
                                         "reference, ListResources); policy_sentry 0.15.2 has no access level for it",
}
TUNNEL_ACTIONS = {"ssm:StartSession", "ssm:TerminateSession"}
GITHUB = "token.actions.githubusercontent.com"
EKS_API_DOCUMENT = "arn:aws:ssm:<HOME_REGION>:<ACCOUNT_ID>:document/ai-companion-<STACK>-eks-api"


def load(name: str) -> dict:
    return json.loads((IAM / name).read_text())


def statements(policy: dict) -> list[dict]:
    s = policy["Statement"]
    return s if isinstance(s, list) else [s]


def actions(statement: dict) -> list[str]:
    a = statement.get("Action", [])
    return [a] if isinstance(a, str) else a


def is_tunnel_statement(s: dict) -> bool:
    """A statement that lets a role open only the API tunnel's pinned port-forward, nothing wider:
    the tunnel instance under `ssm:SessionDocumentAccessCheck` (AWS: without it, a session that
    names no document opens a shell), the stack's own document, or ending the caller's sessions."""
    resource = s.get("Resource")
    if actions(s) == ["ssm:StartSession"]:
        if resource == EKS_API_DOCUMENT:
            return "Condition" not in s
        return (resource == "arn:aws:ec2:<HOME_REGION>:<ACCOUNT_ID>:instance/*"
                and s.get("Condition") == {"StringEquals": {"ssm:resourceTag/ai-companion:role": "api-tunnel"},
                                           "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}})
    return actions(s) == ["ssm:TerminateSession"] and resource == "arn:aws:ssm:<HOME_REGION>:<ACCOUNT_ID>:session/${aws:userid}-*"


def access_levels(action: str) -> set[str]:
    """policy_sentry's access levels of every IAM action the (possibly wildcard) action names."""
    from policy_sentry.analysis.expand import expand
    from policy_sentry.querying.actions import get_action_data

    levels = set()
    for name in expand([action]):
        service, _, verb = name.partition(":")
        levels |= {d["access_level"] for d in (get_action_data(service, verb) or {}).get(service, [])}
    return levels or {"unknown"}


def write_actions(policy: dict) -> list[str]:
    """Allowed actions that are not reads (policy_sentry: Read/List only), unless reviewed; plus
    anything using NotAction."""
    bad = []
    for s in statements(policy):
        if s["Effect"] != "Allow":
            continue
        if "NotAction" in s:
            bad.append(f"NotAction in {s.get('Sid')}")
        tunnel = is_tunnel_statement(s)
        for a in actions(s):
            if a in TUNNEL_ACTIONS and not tunnel:
                bad.append(a)
            elif a not in REVIEWED_NON_READS and not access_levels(a) <= {"Read", "List"}:
                bad.append(a)
    return bad


def test_the_role_files_exist_and_are_valid_policies():
    names = sorted(p.name for p in IAM.glob("*.json"))
    expected = [f"{r}-{kind}.json" for r in ROLES for kind in ("trust", "permissions")] + ["boundary-permissions.json"]
    assert names == sorted(expected)
    for name in names:
        policy = load(name)  # raises on invalid JSON
        assert policy["Version"] == "2012-10-17", name
        for s in statements(policy):
            assert s["Effect"] in ("Allow", "Deny"), name
            assert ("Action" in s) != ("NotAction" in s), name


@pytest.mark.parametrize("name", sorted(p.name for p in IAM.glob("*.json")))
def test_every_action_and_condition_key_is_known_to_the_iam_database(name):
    """policy_sentry's database: `networkfirewall:` is not a service prefix, `network-firewall:` is."""
    from test_aws_models import document_problems

    # The OIDC provider's claims are condition keys of the identity provider (IAM User Guide,
    # "Available keys for AWS OIDC federation"), not of any service in the database.
    problems = [p for p in document_problems(load(name)) if f"'{GITHUB}:" not in p]
    assert problems == []


def test_the_database_check_catches_the_old_network_firewall_prefix():
    from test_aws_models import document_problems

    doc = {"Statement": [{"Effect": "Allow", "Action": ["networkfirewall:Describe*"], "Resource": "*"}]}
    assert document_problems(doc) == ["unknown service prefix 'networkfirewall'"]


@pytest.mark.parametrize("role", ["preview", "audit"])
def test_read_only_roles_have_no_write_actions(role):
    assert write_actions(load(f"{role}-permissions.json")) == []


def test_read_only_check_catches_a_write_action():
    policy = load("preview-permissions.json")
    policy["Statement"][0]["Action"].append("s3:PutObject")
    policy["Statement"].append({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    # A verb is no proof: athena:GetSessionEndpoint is a Write in the database (66 Get/List/Describe
    # actions are not reads), so a Get* over it is caught where a name pattern would pass it.
    policy["Statement"].append({"Effect": "Allow", "Action": ["ssm:Get*", "athena:Get*"], "Resource": "*"})
    policy["Statement"].append({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*", "Sid": "X"})
    assert write_actions(policy) == ["s3:PutObject", "ec2:*", "athena:Get*", "NotAction in X"]


@pytest.mark.parametrize("role", ["preview", "deploy"])
def test_ci_roles_may_open_only_the_api_tunnels_pinned_port_forward(role):
    tunnel = [s for s in statements(load(f"{role}-permissions.json")) if set(actions(s)) & TUNNEL_ACTIONS]
    assert len(tunnel) == 3 and all(is_tunnel_statement(s) for s in tunnel)
    # Without the document check, or with the AWS document that takes any host, it is no tunnel.
    instance = next(s for s in tunnel if "Condition" in s)
    unchecked = dict(instance, Condition={"StringEquals": instance["Condition"]["StringEquals"]})
    any_host = {"Effect": "Allow", "Action": "ssm:StartSession",
                "Resource": "arn:aws:ssm:<HOME_REGION>::document/AWS-StartPortForwardingSessionToRemoteHost"}
    assert not is_tunnel_statement(unchecked) and not is_tunnel_statement(any_host)
    assert write_actions({"Statement": [unchecked, any_host]}) == ["ssm:StartSession", "ssm:StartSession"]


@pytest.mark.parametrize("role", ["preview", "deploy"])
def test_a_session_without_the_stacks_document_is_refused(role):
    """Evaluated: `start-session` with no document (a shell: AWS checks SSM-SessionManagerRunShell
    under ssm:SessionDocumentAccessCheck) or with the any-host document is not allowed."""
    policy = iam_policy(load(f"{role}-permissions.json"), "eu", "123456789012")
    instance = "arn:aws:ec2:eu-central-1:123456789012:instance/i-0123456789abcdef0"
    here = {"aws:RequestedRegion": "eu-central-1", "ssm:SessionDocumentAccessCheck": "true"}
    tagged = {**here, "ssm:resourceTag/ai-companion:role": "api-tunnel"}
    assert allowed(policy, "ssm:StartSession", instance, tagged)
    assert allowed(policy, "ssm:StartSession", "arn:aws:ssm:eu-central-1:123456789012:document/ai-companion-eu-eks-api", here)
    for document in ("SSM-SessionManagerRunShell", "AWS-StartPortForwardingSessionToRemoteHost",
                     "AWS-StartInteractiveCommand", "ai-companion-us-eks-api"):
        for account in ("123456789012", ""):
            assert not allowed(policy, "ssm:StartSession", f"arn:aws:ssm:eu-central-1:{account}:document/{document}", here)
    assert not allowed(policy, "ssm:StartSession", instance, here)  # an instance that is not the tunnel


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


REPO = "example-org/ai-companion"
# What the job that assumes each role is, in GitHub's customized subject (repo, context,
# job_workflow_ref: docs/operations.md section 3): its context and its workflow file at its ref.
JOB_OF = {"preview": ("pull_request", "preview.yml", "refs/pull/7/merge"),
          "deploy": ("environment:eu", "deploy.yml", "refs/heads/main"),
          "audit": ("ref:refs/heads/main", "audit.yml", "refs/heads/main")}


def subject(context: str, workflow: str, ref: str, repo: str = REPO) -> str:
    return f"repo:{repo}:{context}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}"


def assumable(trust: dict, sub: str) -> bool:
    """Whether a GitHub token with this subject may assume the role (the Principal is the
    provider; iam_eval evaluates Action and Condition, so Resource is `*` here)."""
    claims = {f"{GITHUB}:aud": "sts.amazonaws.com", f"{GITHUB}:sub": sub}
    return allowed({"Statement": [{**s, "Resource": "*"} for s in statements(trust)]}, "sts:AssumeRoleWithWebIdentity", "*", claims)


def test_trust_policies_name_the_github_provider_and_audience():
    for role in ROLES:
        (s,) = statements(iam_policy(load(f"{role}-trust.json"), "eu", "123456789012"))
        assert s["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert s["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{GITHUB}"}
        assert s["Condition"]["StringEquals"][f"{GITHUB}:aud"] == "sts.amazonaws.com"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_assumable_only_from_its_own_workflow_and_context(role):
    trust = iam_policy(load(f"{role}-trust.json"), "eu", "123456789012", REPO)
    context, workflow, ref = JOB_OF[role]
    assert assumable(trust, subject(context, workflow, ref))
    others = [subject(context, "evil.yml", ref),                      # another workflow, same context
              subject(context, workflow, "refs/heads/feature"),         # the workflow from another branch
              subject("environment:us", workflow, ref),                 # another stack's environment
              subject(context, workflow, ref, repo="fork/ai-companion"),  # another repository
              f"repo:{REPO}:{context}"]                                 # the default subject: no workflow
    if role == "preview":
        others.remove(subject(context, workflow, "refs/heads/feature"))
        others.append(subject(context, workflow, "refs/heads/main"))  # the preview is for pull requests only
    if role == "deploy":
        # The case: a pull request whose job names the stack's environment.
        others.append(subject("environment:eu", "preview.yml", "refs/pull/7/merge"))
    assert [s for s in others if assumable(trust, s)] == []


def test_the_trust_check_fails_for_a_trust_that_pins_only_the_environment():
    old = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {
        f"{GITHUB}:aud": "sts.amazonaws.com", f"{GITHUB}:sub": f"repo:{REPO}:environment:eu"}}}]}
    assert assumable(old, f"repo:{REPO}:environment:eu")  # any job that names the environment


def test_the_trusted_workflows_are_the_ones_that_assume_the_roles():
    """The workflow file and trigger each trust names are where the role is really assumed."""
    import yaml

    for role, (context, workflow, _ref) in JOB_OF.items():
        doc = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
        jobs = [j for j in doc["jobs"].values()
                if any(f"matrix.{role}_role" in str(step.get("with", {}).get("role-to-assume", "")) for step in j["steps"])]
        assert len(jobs) == 1, workflow
        if role == "deploy":
            assert jobs[0]["environment"] == "${{ matrix.stack }}"
            assert doc[True] == {"push": {"branches": ["main"]}}  # YAML 1.1 reads the `on` key as True
        if role == "audit":
            assert set(doc[True]) == {"schedule", "workflow_dispatch"}
        if role == "preview":
            assert set(doc[True]) == {"pull_request"}


def test_the_deploy_roles_sessions_cover_the_deploy_job():
    import yaml

    job = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())["jobs"]["deploy"]
    (login,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials")]
    job_seconds = job["timeout-minutes"] * 60
    assert int(login["with"]["role-duration-seconds"]) >= job_seconds
    # The role allows that long a session (create-role in docs/operations.md); IAM's maximum is 12 h.
    ops = (ROOT / "docs" / "operations.md").read_text()
    (max_session,) = re.findall(r'DURATION=\$\(\[ "\$ROLE" = deploy \] && echo (\d+)', ops)
    assert job_seconds <= int(max_session) <= 43200
    assert '--max-session-duration "$DURATION"' in ops


def test_render_cli_prints_a_policy_and_refuses_bad_input(capsys):
    assert render_main(["iam", str(IAM / "deploy-trust.json"), "--stack", "ksa",
                        "--account-id", "222222222222", "--repo", "acme/infra"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB}:sub"] == subject("environment:ksa", "deploy.yml", "refs/heads/main", repo="acme/infra")
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


# --- The deploy role: only the stack's own roles, keys, buckets and state ---------------------------

ACCOUNT = "123456789012"
EU = {"aws:RequestedRegion": "eu-central-1"}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ai-companion-boundary-eu"


def deploy(stack: str = "eu") -> dict:
    return iam_policy(load("deploy-permissions.json"), stack, ACCOUNT)


@pytest.mark.parametrize("stack", list_stacks(ROOT))
def test_the_deploy_role_may_create_every_role_policy_and_bucket_of_the_plan(stack):
    """The program and the policy agree: each role of the offline plan, under its path and with its
    boundary, each managed-policy attachment and each bucket prefix is allowed, and is not when
    the boundary or the path is missing."""
    from stack_plans import planned

    policy = iam_policy(load("deploy-permissions.json"), stack, ACCOUNT)
    region = {"aws:RequestedRegion": load_catalog().by_stack(stack).home_region}
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/ai-companion-boundary-{stack}"
    resources = [r for r in planned(stack).export["deployment"]["resources"] if r["type"].startswith("aws:")]
    roles = [{**r["inputs"], "name": r["outputs"]["name"]} for r in resources if r["type"] == "aws:iam/role:Role"]
    assert len(roles) >= 4
    for role in roles:
        arn = f"arn:aws:iam::{ACCOUNT}:role{role['path']}{role['name']}"
        have = {"iam:PermissionsBoundary": role["permissionsBoundary"].replace("111111111111", ACCOUNT)}
        assert role["permissionsBoundary"].endswith(f":policy/ai-companion-boundary-{stack}")
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"):
            assert allowed(policy, action, arn, have), (action, arn)
            assert not allowed(policy, action, arn, {}), (action, arn, "without the boundary")
        assert not allowed(policy, "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/{role['name']}", have)
        assert allowed(policy, "iam:PassRole", arn, {"iam:PassedToService": "eks.amazonaws.com"})
    for attachment in [r["inputs"] for r in resources if r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"]:
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/ai-companion/{stack}/x"
        context = {"iam:PermissionsBoundary": boundary, "iam:PolicyARN": attachment["policyArn"]}
        assert allowed(policy, "iam:AttachRolePolicy", role_arn, context), attachment["policyArn"]
    for bucket in [r["inputs"] for r in resources if r["type"] == "aws:s3/bucket:Bucket"]:
        name = bucket.get("bucket") or bucket["bucketPrefix"] + "0123456789"
        assert allowed(policy, "s3:PutBucketPolicy", f"arn:aws:s3:::{name}", region), name


def test_the_deploy_role_attaches_only_allow_listed_policies():
    role = f"arn:aws:iam::{ACCOUNT}:role/ai-companion/eu/serving-nodes-abc"
    for policy_arn in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/IAMFullAccess",
                       f"arn:aws:iam::{ACCOUNT}:policy/anything"):
        assert not allowed(deploy(), "iam:AttachRolePolicy", role,
                           {"iam:PermissionsBoundary": BOUNDARY, "iam:PolicyARN": policy_arn}), policy_arn


def test_the_deploy_role_reads_no_secret():
    secret = f"arn:aws:secretsmanager:eu-central-1:{ACCOUNT}:secret:ai-companion-eu-openai-AbCdEf"
    assert evaluate(deploy(), "secretsmanager:GetSecretValue", secret, EU) == DENY
    assert evaluate(deploy(), "secretsmanager:BatchGetSecretValue", "*", EU) == DENY
    assert allowed(deploy(), "secretsmanager:CreateSecret", secret, EU)  # the secret's container is the stack's
    assert not allowed(deploy(), "ssm:GetParameter", f"arn:aws:ssm:eu-central-1:{ACCOUNT}:parameter/db/password", EU)
    assert allowed(deploy(), "ssm:GetParameter", "arn:aws:ssm:eu-central-1::parameter/aws/service/eks/x", EU)


def test_the_deploy_role_changes_key_and_bucket_policies_only_on_the_stacks_own():
    key = f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    own, other = {**EU, "aws:ResourceTag/ai-companion:stack": "eu"}, {**EU, "aws:ResourceTag/ai-companion:stack": "us"}
    for action in ("kms:PutKeyPolicy", "kms:CreateGrant", "kms:ScheduleKeyDeletion"):
        assert allowed(deploy(), action, key, own), action
        assert evaluate(deploy(), action, key, other) == DENY and evaluate(deploy(), action, key, EU) == DENY, action
    for action in ("s3:PutBucketPolicy", "s3:PutBucketAcl", "s3:DeleteBucket", "s3:PutBucketPublicAccessBlock"):
        assert allowed(deploy(), action, "arn:aws:s3:::ai-companion-eu-weights-0123", EU), action
        for bucket in ("someone-elses-bucket", "ai-companion-us-weights-0123", f"ai-companion-state-eu-{ACCOUNT}"):
            assert evaluate(deploy(), action, f"arn:aws:s3:::{bucket}", EU) == DENY, (action, bucket)
    instance = f"arn:aws:ec2:eu-central-1:{ACCOUNT}:instance/i-0123456789abcdef0"
    assert evaluate(deploy(), "ec2:ModifyInstanceAttribute", instance, EU) == DENY  # e.g. its user data
    assert allowed(deploy(), "ec2:ModifyInstanceAttribute", instance, own)


def test_the_state_backend_is_protected_from_the_deploy_role():
    bucket = f"arn:aws:s3:::ai-companion-state-eu-{ACCOUNT}"
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning",
                   "s3:PutLifecycleConfiguration", "s3:PutEncryptionConfiguration", "s3:PutBucketPublicAccessBlock",
                   "s3:PutBucketAcl", "s3:PutBucketOwnershipControls", "s3:PutReplicationConfiguration",
                   "s3:PutBucketObjectLockConfiguration"):
        assert evaluate(deploy(), action, bucket, EU) == DENY, action
    for action in ("s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:BypassGovernanceRetention"):
        assert evaluate(deploy(), action, f"{bucket}/.pulumi/stacks/ai-companion/eu.json", EU) == DENY, action
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):  # state and lock files
        assert allowed(deploy(), action, f"{bucket}/.pulumi/locks/x.json", EU), action
    state_key = {**EU, "kms:ResourceAliases": ["alias/ai-companion-state-eu"]}
    key = f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy",
                   "kms:CreateGrant"):
        assert evaluate(deploy(), action, key, state_key) == DENY, action
    assert allowed(deploy(), "kms:Decrypt", key, state_key)
    for action in ("kms:DeleteAlias", "kms:UpdateAlias", "kms:CreateAlias"):
        assert evaluate(deploy(), action, f"arn:aws:kms:eu-central-1:{ACCOUNT}:alias/ai-companion-state-eu", EU) == DENY
    boundary_changes = ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:SetDefaultPolicyVersion")
    assert all(evaluate(deploy(), a, BOUNDARY) == DENY for a in boundary_changes)
    assert evaluate(deploy(), "iam:DeleteRolePermissionsBoundary", f"arn:aws:iam::{ACCOUNT}:role/ai-companion/eu/x") == DENY


@pytest.mark.parametrize("stack", list_stacks(ROOT))
def test_every_role_policy_fits_the_iam_quotas(stack):
    """Inline role policies: 10,240 characters in all, whitespace not counted; a managed policy
    (the boundary): 6,144 (IAM User Guide, "IAM and AWS STS quotas")."""
    for role in ROLES:
        text = json.dumps(iam_policy(load(f"{role}-permissions.json"), stack, ACCOUNT), separators=(",", ":"))
        assert len(text) <= 10240, (role, len(text))
    boundary = json.dumps(iam_policy(load("boundary-permissions.json"), stack, ACCOUNT), separators=(",", ":"))
    assert len(boundary) <= 6144


# --- How the preview reads state: the state holds no secret -----------------------------------------

# Resource types whose state would hold a secret value (the preview role can decrypt the state).
SECRET_BEARING_TYPES = ("aws:secretsmanager/secretVersion:SecretVersion", "random:index/randomPassword:RandomPassword",
                        "tls:index/privateKey:PrivateKey", "aws:iam/accessKey:AccessKey",
                        "aws:ssm/parameter:Parameter", "kubernetes:core/v1:Secret")


def secret_problems(stack_text: str, resource_types: list[str]) -> list[str]:
    problems = [f"secure config value: {line.strip()}" for line in stack_text.splitlines() if "secure:" in line]
    return problems + [f"secret-bearing resource {t}" for t in resource_types if t in SECRET_BEARING_TYPES]


@pytest.mark.parametrize("stack", list_stacks(ROOT))
def test_the_state_holds_no_secret_value(stack):
    from stack_plans import planned

    types = [r["type"] for r in planned(stack).export["deployment"]["resources"]]
    assert secret_problems((ROOT / f"Pulumi.{stack}.yaml").read_text(), types) == []


def test_the_secret_check_catches_a_secure_value_and_a_secret_version():
    text = "config:\n  ai-companion:apiKey:\n    secure: AAABAH...\n"
    assert secret_problems(text, ["aws:secretsmanager/secretVersion:SecretVersion", "aws:s3/bucket:Bucket"]) == [
        "secure config value: secure: AAABAH...", "secret-bearing resource aws:secretsmanager/secretVersion:SecretVersion"]
