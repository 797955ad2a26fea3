"""The names the serving pods and nodes really resolve are admitted by the DNS Firewall allow-list.

For every home region, botocore (the installed version, its own endpoint rules) is asked which URL
it would send each call to, with the SDK settings the pods run with (the env the Deployment
registers). Nothing is sent: a `before-send` hook records the URL and stops the call. The names
are checked against the allow-list the Federated stacks register (`aws_dns_names`), with the
wildcard semantics of Route 53 Resolver DNS Firewall.
"""

from __future__ import annotations

import botocore.session
import pytest

from infra.program.catalog import load_catalog
from infra.program.components.egress import aws_dns_names, dns_firewall_admits
from stack_plans import STACKS, of_type, planned


class _Sent(Exception):
    pass


def sent_host(session, service: str, region: str, operation: str, **params) -> str:
    """The host botocore addresses for one call, under the current environment."""
    client = session.create_client(service, region_name=region)
    seen = []

    def stop(request, **_):
        seen.append(request.url)
        raise _Sent

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Sent):
        getattr(client, operation)(**params)
    return seen[0].split("/")[2].split(":")[0]


@pytest.fixture
def hermetic_sdk(monkeypatch, tmp_path):
    """No profile, no metadata service, fake keys (signing happens before `before-send`)."""
    import os
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    return monkeypatch


def pod_env(plan) -> dict[str, str]:
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}  # secret refs carry no value


def names_called(plan) -> dict[str, str]:
    """What the serving path calls, per caller, in the stack's region."""
    region = plan.config.region
    session = botocore.session.get_session()
    bucket = next(b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights").outputs["bucket"]
    (repo,) = of_type(plan, "aws:ecr/repository:Repository")
    cluster = of_type(plan, "aws:eks/cluster:Cluster")[0]
    return {
        # vLLM pods: the weights.
        "pod s3 GetObject": sent_host(session, "s3", region, "get_object", Bucket=bucket, Key=f"{plan.config.served_model}/config.json"),
        "pod s3 ListObjectsV2": sent_host(session, "s3", region, "list_objects_v2", Bucket=bucket, Prefix=plan.config.served_model),
        "pod sts": sent_host(session, "sts", region, "get_caller_identity"),
        # Nodes: image pulls, bootstrap, Pod Identity, load balancers, logs; the tunnel's SSM agent.
        "node ecr api": sent_host(session, "ecr", region, "get_authorization_token"),
        "node ecr registry": repo.outputs["repositoryUrl"].split("/")[0],
        "node ecr layers (s3)": sent_host(session, "s3", region, "get_object", Bucket=f"prod-{region}-starport-layer-bucket", Key="x"),
        "node ec2": sent_host(session, "ec2", region, "describe_instances"),
        "node eks": sent_host(session, "eks", region, "describe_cluster", name="serving"),
        "node eks api server": cluster.outputs["endpoint"].removeprefix("https://"),
        "pod identity agent eks-auth": sent_host(session, "eks-auth", region, "assume_role_for_pod_identity",
                                                 clusterName="serving", token="t"),
        "lb controller elbv2": sent_host(session, "elbv2", region, "describe_load_balancers"),
        "node logs": sent_host(session, "logs", region, "describe_log_groups"),
        "s3 kms": sent_host(session, "kms", region, "list_keys"),
        "tunnel ssm": sent_host(session, "ssm", region, "describe_instance_information"),
        # No botocore model: the agent's channels, named like their interface endpoints.
        "tunnel ssmmessages": f"ssmmessages.{region}.amazonaws.com",
        "tunnel ec2messages": f"ec2messages.{region}.amazonaws.com",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_name_the_serving_path_resolves_is_allowed(stack, hermetic_sdk):
    plan = planned(stack)
    for name, value in pod_env(plan).items():
        if name.startswith("AWS_"):
            hermetic_sdk.setenv(name, value)
    region, partition = plan.config.region, plan.config.geography.partition
    allowed = aws_dns_names(region, partition)
    called = names_called(plan)
    if region == "us-east-1":
        host = called["pod s3 GetObject"]  # the regional name, never `<bucket>.s3.amazonaws.com`
        assert host == "s3.us-east-1.amazonaws.com" or host.endswith(".s3.us-east-1.amazonaws.com")
    blocked = {caller: host for caller, host in called.items() if not dns_firewall_admits(host, allowed)}
    assert blocked == {}
    assert all(region in host for host in called.values())
    if plan.config.has("federated"):
        # The list the Federated stack really registers is the one checked above.
        (domains,) = [d for d in of_type(plan, "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList")
                      if d.name == "egress-dns-aws"]
        assert domains.inputs["domains"] == allowed


def test_us_east_1_s3_without_the_pod_settings_is_the_global_name_and_blocked(hermetic_sdk):
    """The known failure the pod env fixes: legacy botocore addressing in us-east-1."""
    hermetic_sdk.setenv("AWS_REGION", "us-east-1")
    host = sent_host(botocore.session.get_session(), "s3", "us-east-1", "get_object", Bucket="serving-weights-abc", Key="m/config.json")
    assert host == "serving-weights-abc.s3.amazonaws.com"
    assert not dns_firewall_admits(host, aws_dns_names("us-east-1", "aws"))


def test_every_home_region_is_covered():
    homes = {g.home_region for g in load_catalog().geographies.values()}
    assert homes == {planned(s).config.region for s in STACKS}


@pytest.mark.parametrize("name, domains, admitted", [
    ("bucket.s3.us-east-1.amazonaws.com", ["*.us-east-1.amazonaws.com"], True),
    ("us-east-1.amazonaws.com", ["*.us-east-1.amazonaws.com"], False),
    ("s3.amazonaws.com", ["*.us-east-1.amazonaws.com"], False),
    ("evil-us-east-1.amazonaws.com", ["*.us-east-1.amazonaws.com"], False),
    ("API.OpenAI.com.", ["api.openai.com"], True),
    ("anything.example", ["*"], True),
])
def test_dns_firewall_wildcard_semantics(name, domains, admitted):
    assert dns_firewall_admits(name, domains) is admitted
