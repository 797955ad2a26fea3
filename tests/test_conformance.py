"""Every object the program sends to a managed service conforms to that service's documented
rules beyond its schema (docs/conformance.md: one row per object kind, with the rule, its source
and the test here or elsewhere that holds the program to it).

No engine on these machines runs EKS Auto Mode, an EKS add-on, the vLLM image or the Systems
Manager agent, so each rule is checked on the offline plan against the service's documentation.
Where an engine does run offline it is used instead: Karpenter's published NodePool CRD schema
with its CEL rules (tests/test_karpenter_crd.py), the Kubernetes OpenAPI schemas
(tests/test_kubernetes_schema.py), the pulumi-aws schema (tests/test_provider_schema.py).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from cli_run import project_copy, residency, stack_config
from infra.program.catalog import gpus_per_instance, load_catalog
from infra.program.components.api_tunnel import SSM_ENDPOINTS
from infra.program.components.egress import aws_dns_names, dns_firewall_admits
from infra.program.config import ConfigError, parse_config
from stack_plans import STACKS, of_type, planned, values_with

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "docs" / "conformance.md"

def dependencies(plan, resource) -> list[str]:
    """The URNs a resource waits for, as the plan's export records them."""
    return next(r.get("dependencies", []) for r in plan.export["deployment"]["resources"] if r["urn"] == resource.urn)


# --- finding 1: the GPU NodePool's node lifetime -------------------------------------------------

# EKS Auto Mode: nodes live at most 21 days; a NodePool whose expireAfter plus
# terminationGracePeriod (24h when unset) exceeds that is refused (docs/conformance.md, NodePool).
AUTO_MODE_MAX_NODE_LIFETIME_HOURS = 21 * 24
DEFAULT_TERMINATION_GRACE_HOURS = 24
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def hours(duration: str) -> float:
    """A Go duration as Karpenter writes it (`336h`, `24h0m0s`, `90m`) in hours."""
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) / {"h": 1, "m": 60, "s": 3600}[u] for n, u in parts)


def node_lifetime_hours(nodepool_spec: dict) -> float | None:
    """expireAfter + terminationGracePeriod of a NodePool spec; None when nodes never expire."""
    template = nodepool_spec["template"]["spec"]
    expire = template.get("expireAfter", "720h")  # Karpenter's own default
    if expire == "Never":
        return None
    grace = template.get("terminationGracePeriod")
    return hours(expire) + (hours(grace) if grace else DEFAULT_TERMINATION_GRACE_HOURS)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_pool_node_lifetime_fits_auto_modes_21_days(stack):
    (pool,) = of_type(planned(stack), "kubernetes:karpenter.sh/v1:NodePool")
    lifetime = node_lifetime_hours(pool.inputs["spec"])
    # Auto Mode replaces every node by day 21 anyway; `Never` would be refused too.
    assert lifetime is not None and lifetime <= AUTO_MODE_MAX_NODE_LIFETIME_HOURS


def test_node_lifetime_rule_fires_on_the_old_720h_pool():
    spec = {"template": {"spec": {"expireAfter": "720h"}}}
    assert node_lifetime_hours(spec) == 744 > AUTO_MODE_MAX_NODE_LIFETIME_HOURS
    spec["template"]["spec"].update(expireAfter="480h", terminationGracePeriod="24h0m0s")
    assert node_lifetime_hours(spec) == AUTO_MODE_MAX_NODE_LIFETIME_HOURS  # exactly 21 days is allowed


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_pool_uses_auto_modes_built_in_node_class_which_exists(stack):
    plan = planned(stack)
    (pool,) = of_type(plan, "kubernetes:karpenter.sh/v1:NodePool")
    ref = pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]
    assert ref == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
    # The `default` NodeClass is Auto Mode's, used by its built-in pools; one of them is on.
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    assert cluster.inputs["computeConfig"]["enabled"] and "system" in cluster.inputs["computeConfig"]["nodePools"]


# --- finding 2: the model server's entrypoint and flags ------------------------------------------

def openai_api_server_parser() -> argparse.ArgumentParser:
    """The flags the program passes, as `python3 -m vllm.entrypoints.openai.api_server` (the
    vllm/vllm-openai image's ENTRYPOINT) declares them: options only, no positional argument.
    vLLM's own parser needs torch and a GPU stack to import (docs/conformance.md), so this
    stand-in carries just what the rule needs; `exit_on_error=False` turns a refusal into an
    exception instead of the silent fallback the issue describes."""
    parser = argparse.ArgumentParser(prog="api_server", exit_on_error=False, add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--load-format")
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--port", type=int)
    return parser


def parse_server_args(args: list[str]) -> argparse.Namespace:
    namespace, extra = openai_api_server_parser().parse_known_args(args)
    if extra:
        raise argparse.ArgumentError(None, f"unrecognized arguments: {' '.join(extra)}")
    return namespace


@pytest.mark.parametrize("stack", STACKS)
def test_vllm_gets_the_model_from_the_model_flag(stack):
    plan = planned(stack)
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert "command" not in container  # the image's entrypoint runs, with these args
    parsed = parse_server_args(container["args"])
    bucket = next(b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights").outputs["bucket"]
    assert parsed.model == f"s3://{bucket}/{plan.config.served_model}"
    assert parsed.served_model_name == [plan.config.served_model] and parsed.load_format == "runai_streamer"


def test_a_positional_model_is_refused_by_the_entrypoints_parser():
    with pytest.raises(argparse.ArgumentError):
        parse_server_args(["s3://bucket/model", "--port", "8000"])


# --- finding 3: objects that the add-ons and Auto Mode create themselves --------------------------

# (kind, namespace, name) -> who creates it in the cluster. The program may patch these, never
# create them: pulumi-kubernetes >= 4.29 creates client-side and fails with AlreadyExists.
SERVICE_CREATED = {
    ("ConfigMap", "kube-system", "amazon-vpc-cni"): "vpc-cni add-on",
    ("DaemonSet", "kube-system", "aws-node"): "vpc-cni add-on",
    ("Deployment", "kube-system", "coredns"): "coredns add-on",
    ("ConfigMap", "kube-system", "coredns"): "coredns add-on",
    ("Service", "kube-system", "kube-dns"): "coredns add-on",
    ("DaemonSet", "kube-system", "kube-proxy"): "kube-proxy add-on",
    ("DaemonSet", "kube-system", "eks-pod-identity-agent"): "eks-pod-identity-agent add-on",
    ("NodePool", None, "system"): "EKS Auto Mode (built-in pool)",
    ("NodePool", None, "general-purpose"): "EKS Auto Mode (built-in pool)",
    ("NodeClass", None, "default"): "EKS Auto Mode (built-in node class)",
    ("Namespace", None, "kube-system"): "Kubernetes",
    ("Namespace", None, "default"): "Kubernetes",
}


def created_service_objects(plan) -> list[str]:
    """Objects the plan would *create* that a service already created."""
    clashes = []
    for r in plan.snapshot.resources:
        if not (r.custom and r.type.startswith("kubernetes:")) or r.type.endswith("Patch"):
            continue
        kind = r.type.split(":")[2]
        meta = r.inputs.get("metadata") or {}
        owner = SERVICE_CREATED.get((kind, meta.get("namespace"), meta.get("name")))
        if owner:
            clashes.append(f"{kind} {meta.get('namespace')}/{meta.get('name')} (created by the {owner})")
    return clashes


@pytest.mark.parametrize("stack", STACKS)
def test_no_object_an_add_on_or_auto_mode_creates_is_created_again(stack):
    plan = planned(stack)
    assert created_service_objects(plan) == []
    (switch,) = of_type(plan, "kubernetes:core/v1:ConfigMapPatch")
    meta = switch.inputs["metadata"]
    assert (meta["namespace"], meta["name"]) == ("kube-system", "amazon-vpc-cni")
    assert meta["annotations"] == {"pulumi.com/patchForce": "true"}  # enforcement wins a field conflict
    assert switch.inputs["data"] == {"enable-network-policy-controller": "true"}
    addons = {a.inputs["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon")}
    if "vpc-cni" in addons:
        # The patch goes through a provider that waits for the add-on, so it merges into the
        # add-on's ConfigMap instead of racing it.
        (provider,) = of_type(plan, "pulumi:providers:kubernetes")
        assert addons["vpc-cni"].urn in dependencies(plan, provider)


def test_the_clash_check_fires_on_a_created_config_map():
    from types import SimpleNamespace

    plan = SimpleNamespace(snapshot=SimpleNamespace(resources=[SimpleNamespace(
        custom=True, type="kubernetes:core/v1:ConfigMap",
        inputs={"metadata": {"name": "amazon-vpc-cni", "namespace": "kube-system"}})]))
    assert created_service_objects(plan) == ["ConfigMap kube-system/amazon-vpc-cni (created by the vpc-cni add-on)"]


# --- finding 4: the risks ------------------------------------------------------------------------

@pytest.mark.parametrize("stack", [s for s in STACKS if s in ("us", "eu")])
def test_coredns_lands_on_the_system_pool_not_the_tainted_connector_nodes(stack):
    """The coredns add-on's pods tolerate CriticalAddonsOnly (the `system` pool's taint), not the
    connector nodes' taint: with the system pool on they get an Auto Mode node, so the add-on's
    Deployment becomes ready and the add-on ACTIVE, which pulumi-aws waits for."""
    plan = planned(stack)
    (coredns,) = [a for a in of_type(plan, "aws:eks/addon:Addon") if a.inputs["addonName"] == "coredns"]
    assert "tolerations" not in str(coredns.inputs.get("configurationValues", ""))  # the add-on's defaults
    (group,) = of_type(plan, "aws:eks/nodeGroup:NodeGroup")
    assert [t["key"] for t in group.inputs["taints"]] == ["ai-companion/pool"]
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    assert "system" in cluster.inputs["computeConfig"]["nodePools"]


@pytest.mark.parametrize("stack", STACKS)
def test_api_tunnel_waits_for_its_ssm_endpoints(stack):
    plan = planned(stack)
    (instance,) = of_type(plan, "aws:ec2/instance:Instance")
    endpoints = {e.inputs["serviceName"].rsplit(".", 1)[-1]: e for e in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.inputs.get("vpcEndpointType") == "Interface"}
    for service in SSM_ENDPOINTS:
        assert endpoints[service].urn in dependencies(plan, instance), service
        assert endpoints[service].inputs["privateDnsEnabled"] is True  # the agent dials the regional name


@pytest.mark.parametrize("stack", STACKS)
def test_weights_loader_credentials_and_endpoints(stack):
    plan = planned(stack)
    region = plan.config.region
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    env = {e["name"]: e.get("value") for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    # Both S3 clients (botocore; the Run:ai streamer) are pointed at the regional S3 name.
    assert env["AWS_ENDPOINT_URL_S3"] == env["AWS_ENDPOINT_URL"] == f"https://s3.{region}.amazonaws.com"
    # Credentials only from Pod Identity: no static keys, no IRSA, no instance metadata fallback.
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI"} & set(env)
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    (association,) = [a for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
                      if a.name == "serving-vllm"]
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        deployment.inputs["metadata"]["namespace"], pod["serviceAccountName"])
    # Pod Identity needs its agent: Auto Mode runs it; managed node groups get the add-on.
    if plan.config.has("federated"):
        assert "eks-pod-identity-agent" in {a.inputs["addonName"] for a in of_type(plan, "aws:eks/addon:Addon")}


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "me-west-1"])
def test_ecr_layer_names_are_admitted_by_the_dns_firewall(region):
    allowed = aws_dns_names(region, "aws")
    assert dns_firewall_admits(f"prod-{region}-starport-layer-bucket.s3.{region}.amazonaws.com", allowed)
    legacy = f"prod-{region}-starport-layer-bucket.s3.amazonaws.com"
    # The legacy global name is admitted in us-east-1 only, as one exact name.
    assert dns_firewall_admits(legacy, allowed) is (region == "us-east-1")
    assert not dns_firewall_admits("other-bucket.s3.amazonaws.com", allowed)


@pytest.mark.parametrize("stack", STACKS)
def test_s3_gateway_endpoint_policy_admits_ecr_layer_reads(stack):
    # The data perimeter's endpoint policy admits the account's own buckets and reads of the
    # AWS-owned ones; ECR's layer bucket must be among them, or no node pulls an image.
    plan = planned(stack)
    (gateway,) = [e for e in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
                  if e.inputs.get("vpcEndpointType") == "Gateway"]
    layers = f"arn:aws:s3:::prod-{plan.config.region}-starport-layer-bucket/*"
    reads = [st for st in json.loads(gateway.inputs["policy"])["Statement"]
             if st["Effect"] == "Allow" and layers in st["Resource"] and "Condition" not in st]
    assert reads and "s3:GetObject" in reads[0]["Action"]


@pytest.mark.parametrize("stack", STACKS)
def test_internal_nlb_subnets_are_tagged(stack):
    subnets = of_type(planned(stack), "aws:ec2/subnet:Subnet")
    serving = [s for s in subnets if s.name.startswith("net-private-")]
    assert serving and all(s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1" for s in serving)


def test_gpu_limit_below_one_instance_is_refused_naming_both_values():
    assert gpus_per_instance()["g5.12xlarge"] == 4
    with pytest.raises(ConfigError) as refused:
        parse_config(values_with("ca", gpuInstanceType="g5.12xlarge", gpuMaxSize="2"), "ca")
    (problem,) = refused.value.problems
    assert "ai-companion:gpuMaxSize: 2" in problem and "4 GPUs of one g5.12xlarge" in problem
    assert parse_config(values_with("ca", gpuInstanceType="g5.12xlarge", gpuMaxSize="4"), "ca").gpu.max_size == 4


def test_gpu_limit_refusal_exits_2_through_the_console_script(tmp_path):
    config = {**stack_config("ca"), "ai-companion:gpuInstanceType": "g6e.12xlarge", "ai-companion:gpuMaxSize": 1}
    result = residency("plan", "--stack", "ca", project=project_copy(tmp_path, ca=config))
    assert result.rc == 2, result.err
    assert "gpuMaxSize: 1 is smaller than the 4 GPUs of one g6e.12xlarge" in result.err
    assert "Traceback" not in result.err and result.out == ""


# --- finding 5: the offline plan always holds the cluster layer ----------------------------------

def test_offline_plan_of_a_committed_stack_file_includes_the_cluster_layer_labelled(tmp_path):
    config = stack_config("eu")
    assert "ai-companion:modelImageDigest" not in config
    result = residency("plan", "--stack", "eu", project=project_copy(tmp_path, eu=config))
    assert result.rc == 0, result.err + result.out
    for kind in ("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"):
        assert kind in result.out
    assert "assumed: cluster layer planned with a placeholder image digest" in result.out


def test_a_served_model_outside_the_geography_fails_review_before_seed(tmp_path):
    config = {**stack_config("eu"), "ai-companion:servedModel": "weights.s3.us-west-2.amazonaws.com/llama"}
    result = residency("plan", "--stack", "eu", "--format", "json", project=project_copy(tmp_path, eu=config))
    assert result.rc == 1, result.err
    import json

    report = json.loads(result.out)
    assert any(f["rule"] == "RSD-013" and f["type"] == "kubernetes:apps/v1:Deployment" for f in report["findings"])
    assert any(n.startswith("assumed: cluster layer planned with a placeholder") for n in report["notes"])


# --- docs/conformance.md: a row for every kind the program registers -----------------------------

# Not objects a service receives: the engine's own stack and the program's components.
NOT_SENT = ("pulumi:pulumi:Stack", "ai-companion:")


def kinds_registered() -> set[str]:
    return {r.type for stack in STACKS for r in planned(stack).snapshot.resources
            if not r.type.startswith(NOT_SENT)}


def kinds_in(doc: str) -> set[str]:
    """Type tokens named in the first column of a table row of the document."""
    kinds = set()
    for line in doc.splitlines():
        if line.startswith("| `"):
            kinds |= set(re.findall(r"`([a-z0-9-]+:[^`\s]+:[A-Za-z]+)`", line.split("|")[1]))
    return kinds


def missing_rows(doc: str) -> set[str]:
    return kinds_registered() - kinds_in(doc)


def test_every_kind_the_program_registers_has_a_conformance_row():
    assert missing_rows(CONFORMANCE.read_text()) == set()


def test_a_missing_row_is_found():
    doc = CONFORMANCE.read_text()
    without = "\n".join(line for line in doc.splitlines() if "`kubernetes:karpenter.sh/v1:NodePool`" not in line)
    assert missing_rows(without) == {"kubernetes:karpenter.sh/v1:NodePool"}


def test_every_test_a_row_names_exists():
    doc = CONFORMANCE.read_text()
    named = set(re.findall(r"(tests/test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)", doc))
    assert len(named) >= 20
    for path, name in sorted(named):
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{path}::{name}"


@pytest.mark.parametrize("geo, fires", [("US", False), ("EU", True)])
def test_the_legacy_ecr_layer_name_is_in_region_for_us_east_1_only(geo, fires):
    """RSD-051 admits the exact legacy name where its bucket is in the geography, nowhere else."""
    from rules_kit import ctx, fired, provider, res, run

    g = load_catalog().geography(geo)
    p = provider(g.home_region, stack=g.stack)
    domain_list = res("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", "dl", prov=p, stack=g.stack,
                      inputs={"domains": ["prod-us-east-1-starport-layer-bucket.s3.amazonaws.com"],
                              "tags": {"ai-companion:path": "federated-egress"}})
    assert bool(fired(run([p, domain_list], ctx(geo, allow_global=geo == "US")), "RSD-051")) is fires


@pytest.mark.parametrize("stack", ["eu", "sg"])
def test_tunnel_document_is_a_port_forward_pinned_to_the_api_endpoint(stack):
    from infra.program.components.api_tunnel import eks_api_document

    (document,) = of_type(planned(stack), "aws:ssm/document:Document")
    assert document.inputs["documentType"] == "Session" and document.inputs["documentFormat"] == "JSON"
    content = json.loads(eks_api_document("https://ABC.gr7.eu-central-1.eks.amazonaws.com"))
    assert content["sessionType"] == "Port" and list(content["parameters"]) == ["localPortNumber"]
    assert content["properties"]["host"] == "ABC.gr7.eu-central-1.eks.amazonaws.com"
    assert content["properties"]["portNumber"] == "443"


def test_readme_and_runbook_seed_the_same_vllm_image():
    """The image a reader seeds is the one the conformance rows were checked against: one tag."""
    from infra.program.stackfiles import ROOT

    tags = {path: set(re.findall(r"vllm/vllm-openai:(v[0-9][0-9.]*)", (ROOT / path).read_text()))
            for path in ("README.md", "docs/operations.md")}
    assert tags["README.md"] == tags["docs/operations.md"] and len(tags["README.md"]) == 1, tags
