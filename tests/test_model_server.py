"""The cluster layer (vLLM, its GPU pool, network policy) as pulumi-kubernetes registers it, on
every stack once seeded, and its absence before the image digest is set."""

from __future__ import annotations

import json

import pytest

from infra.program.components.model_server import POD_IDENTITY_AGENT, STARTUP_PROBE_FAILURES
from stack_plans import SEEDED_DIGEST, STACKS, of_type, planned, planned_unseeded, values_with
from infra.harness.synth import synthesize


def _export(plan, type_: str, name: str) -> dict:
    return next(r for r in plan.export["deployment"]["resources"]
                if r["type"] == type_ and r["urn"].endswith(f"::{name}"))


def _container(plan):
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    return deployment, deployment.inputs["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("stack", STACKS)
def test_image_is_pulled_by_digest_from_the_stacks_ecr_repository(stack):
    plan = planned(stack)
    (repo,) = of_type(plan, "aws:ecr/repository:Repository")
    _, container = _container(plan)
    assert container["image"] == f"{repo.outputs['repositoryUrl']}@{SEEDED_DIGEST}"
    assert container["image"].startswith(f"123456789012.dkr.ecr.{plan.config.region}.amazonaws.com/")


@pytest.mark.parametrize("stack", STACKS)
def test_probes_on_vllm_health_and_an_await_sized_for_a_cold_gpu_start(stack):
    plan = planned(stack)
    _, container = _container(plan)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"name": "http", "containerPort": 8000} in container["ports"]
    startup = container["startupProbe"]
    startup_budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert startup_budget >= 20 * 60  # node launch + image pull + weights: well past the 10-min default
    deployment = _export(plan, "kubernetes:apps/v1:Deployment", "model-vllm")
    timeouts = deployment["customTimeouts"]
    # The await outlasts the probe's own budget, so the pod, not Pulumi, decides failure.
    assert timeouts["create"] > startup_budget and timeouts["update"] > startup_budget
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("stack", STACKS)
def test_deployment_waits_for_its_pod_identity_association_and_gpu_pool(stack):
    plan = planned(stack)
    deployment = _export(plan, "kubernetes:apps/v1:Deployment", "model-vllm")
    association = _export(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "serving-vllm")
    assert association["urn"] in deployment["dependencies"]
    assert association["inputs"]["serviceAccount"] == deployment["inputs"]["spec"]["template"]["spec"]["serviceAccountName"]
    assert association["inputs"]["namespace"] == deployment["inputs"]["metadata"]["namespace"]
    pool = _export(plan, "kubernetes:karpenter.sh/v1:NodePool", "model-gpu-pool")
    assert pool["urn"] in deployment["dependencies"]


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_pool_starts_from_zero_and_the_pod_lands_on_it(stack):
    plan = planned(stack)
    (pool,) = of_type(plan, "kubernetes:karpenter.sh/v1:NodePool")
    template = pool.inputs["spec"]["template"]
    requirements = {r["key"]: r["values"] for r in template["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == [plan.config.gpu.instance_type]
    assert requirements["topology.kubernetes.io/zone"] == list(plan.config.geography.availability_zones)
    # Auto Mode's built-in node class: its AMI carries the NVIDIA driver and device plugin.
    assert template["spec"]["nodeClassRef"] == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
    assert pool.inputs["spec"]["limits"] == {"nvidia.com/gpu": str(plan.config.gpu.max_size)}
    assert "replicas" not in pool.inputs["spec"]
    pod = of_type(plan, "kubernetes:apps/v1:Deployment")[0].inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"].items() <= template["metadata"]["labels"].items()
    (taint,) = template["spec"]["taints"]
    assert {"key": taint["key"], "operator": "Exists", "effect": taint["effect"]} in pod["tolerations"]


def test_gpu_pool_follows_config():
    plan = synthesize("ca", values_with("ca", gpuInstanceType="g5.12xlarge", gpuMaxSize="4",
                                        modelImageDigest=SEEDED_DIGEST))
    (pool,) = of_type(plan, "kubernetes:karpenter.sh/v1:NodePool")
    requirements = {r["key"]: r["values"] for r in pool.inputs["spec"]["template"]["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ["g5.12xlarge"]
    assert pool.inputs["spec"]["limits"] == {"nvidia.com/gpu": "4"}
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    assert deployment.inputs["spec"]["strategy"]["type"] == "RollingUpdate"
    single = synthesize("ca", values_with("ca", gpuMaxSize="1", modelImageDigest=SEEDED_DIGEST))
    (deployment,) = of_type(single, "kubernetes:apps/v1:Deployment")
    assert deployment.inputs["spec"]["strategy"] == {"type": "Recreate"}  # no spare GPU to surge onto


@pytest.mark.parametrize("stack", STACKS)
def test_no_autoscaler_fights_the_replicas(stack):
    plan = planned(stack)
    assert of_type(plan, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    assert deployment.inputs["spec"]["replicas"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_network_policy_is_enforced_and_admits_dns_the_vpc_and_the_pod_identity_agent_only(stack):
    plan = planned(stack)
    (switch,) = of_type(plan, "kubernetes:core/v1:ConfigMapPatch")
    assert switch.inputs["metadata"]["name"] == "amazon-vpc-cni" and switch.inputs["metadata"]["namespace"] == "kube-system"
    assert switch.inputs["data"] == {"enable-network-policy-controller": "true"}
    (policy,) = [p for p in of_type(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if p.inputs["spec"]["policyTypes"] == ["Egress"]]
    spec = policy.inputs["spec"]
    assert spec["policyTypes"] == ["Egress"] and spec["podSelector"]["matchLabels"] == {"app": "vllm"}
    dns, vpc, agent = spec["egress"]
    # DNS to any in-cluster resolver, not only kube-dns pods (Auto Mode may answer DNS otherwise:
    # aws/containers-roadmap#2546, #2552): the VPC, the service CIDR and link-local, no selector;
    # nothing public (DNS Firewall governs the names; a resolver outside would bypass it).
    assert dns["to"] == [{"ipBlock": {"cidr": c}} for c in (plan.config.vpc_cidr, "172.20.0.0/16", "169.254.0.0/16")]
    assert sorted(p["protocol"] for p in dns["ports"]) == ["TCP", "UDP"] and {p["port"] for p in dns["ports"]} == {53}
    assert not any("podSelector" in peer or "namespaceSelector" in peer for rule in spec["egress"] for peer in rule["to"])
    (cluster,) = of_type(plan, "aws:eks/cluster:Cluster")
    assert cluster.inputs["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "172.20.0.0/16"
    assert vpc == {"to": [{"ipBlock": {"cidr": plan.config.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]}
    assert agent == {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]}


def test_vllm_loads_weights_from_the_in_region_bucket_and_never_from_a_hub():
    plan = planned("eu")
    bucket = next(b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights").outputs["bucket"]
    _, container = _container(plan)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["AWS_REGION"] == "eu-central-1"
    assert container["args"][:2] == ["--model", f"s3://{bucket}/llama-3.1-8b-instruct"]
    assert "--load-format" in container["args"] and "runai_streamer" in container["args"]


def test_service_is_behind_an_internal_nlb_of_auto_mode():
    (service,) = of_type(planned("sg"), "kubernetes:core/v1:Service")
    annotations = service.inputs["metadata"]["annotations"]
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert service.inputs["spec"]["loadBalancerClass"] == "eks.amazonaws.com/nlb"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    # Auto Mode does not support the legacy `...-internal` annotation (auto-configure-nlb.adoc).
    assert "service.beta.kubernetes.io/aws-load-balancer-internal" not in annotations


@pytest.mark.parametrize("stack", ["sg", "us"])
def test_service_await_is_as_long_as_the_deployments(stack):
    """pulumi-kubernetes awaits a LoadBalancer Service until it has LB ingress AND non-empty
    Endpoints (a ready vLLM pod): the same cold GPU start as the Deployment, so the same budget
    (the provider's default is 10 minutes)."""
    plan = planned(stack)
    deployment = _export(plan, "kubernetes:apps/v1:Deployment", "model-vllm")
    service = _export(plan, "kubernetes:core/v1:Service", "model-vllm")
    assert service.get("customTimeouts") == deployment["customTimeouts"]
    assert deployment["customTimeouts"]["create"] >= 60 * 60


def test_vllm_sends_no_usage_stats():
    _, container = _container(planned("eu"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    # vLLM's usage reporter is off by either variable (vLLM docs, "Usage Stats Collection").
    assert env["VLLM_NO_USAGE_STATS"] == "1" and env["DO_NOT_TRACK"] == "1"


def test_kubernetes_resources_use_the_tunnelled_cluster_provider():
    plan = planned("ca")
    (k8s_provider,) = of_type(plan, "pulumi:providers:kubernetes")
    ref = f"{k8s_provider.urn}::{k8s_provider.id}"
    workloads = [r for r in plan.snapshot.custom_resources() if r.type.startswith("kubernetes:")]
    assert len(workloads) == 8 and all(r.provider == ref for r in workloads)
    config = json.loads(k8s_provider.inputs["kubeconfig"])
    cluster = config["clusters"][0]["cluster"]
    (eks,) = of_type(plan, "aws:eks/cluster:Cluster")
    # Dials the SSM port-forward, but verifies the certificate against the private endpoint's name.
    assert cluster["server"] == "https://127.0.0.1:8443"
    assert cluster["tls-server-name"] == eks.outputs["endpoint"].removeprefix("https://")
    assert config["users"][0]["user"]["exec"]["args"][-2:] == ["--region", "ca-central-1"]


@pytest.mark.parametrize("stack", STACKS)
def test_without_a_digest_the_stack_builds_the_aws_layer_only(stack):
    plan = planned_unseeded(stack)
    assert plan.config.model_image_digest is None
    assert not [r.type for r in plan.snapshot.resources if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))]
    outputs = plan.export["deployment"]["resources"][0]["outputs"]
    assert outputs["workloadLayer"] is False
    # What `residency seed` reads from `pulumi stack output --json` (the seed interface).
    assert {"weightsBucket", "modelRepositoryUrl", "region", "apiTunnelInstanceId", "clusterEndpoint"} <= set(outputs)
    assert outputs["region"] == plan.config.region


def test_startup_probe_allows_half_an_hour():
    assert STARTUP_PROBE_FAILURES * 10 == 30 * 60
