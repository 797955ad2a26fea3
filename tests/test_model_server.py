"""The vLLM workload registered through pulumi-kubernetes."""

from __future__ import annotations

from stack_plans import of_type, planned


def _container(plan):
    (deployment,) = of_type(plan, "kubernetes:apps/v1:Deployment")
    return deployment, deployment.inputs["spec"]["template"]["spec"]["containers"][0]


def test_vllm_loads_weights_from_the_in_region_bucket_and_never_from_a_hub():
    plan = planned("eu")
    # eu has two buckets (weights, Bedrock invocation logs); registration order is not fixed.
    bucket = next(b for b in of_type(plan, "aws:s3/bucket:Bucket") if b.name == "serving-weights").outputs["bucket"]
    _, container = _container(plan)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["AWS_REGION"] == "eu-central-1"
    assert container["args"][0] == f"s3://{bucket}/llama-3.1-8b-instruct"
    assert "--load-format" in container["args"] and "runai_streamer" in container["args"]
    (repo,) = of_type(plan, "aws:ecr/repository:Repository")
    assert container["image"].startswith(repo.outputs["repositoryUrl"] + ":")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_service_is_behind_an_internal_nlb():
    (service,) = of_type(planned("sg"), "kubernetes:core/v1:Service")
    annotations = service.inputs["metadata"]["annotations"]
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] == "true"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_network_policy_denies_egress_outside_the_vpc():
    plan = planned("in")
    (policy,) = of_type(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    spec = policy.inputs["spec"]
    assert spec["policyTypes"] == ["Egress"]
    cidrs = [peer["ipBlock"]["cidr"] for rule in spec["egress"] for peer in rule["to"]]
    assert cidrs == [plan.config.vpc_cidr, "169.254.170.23/32"]
    assert all("except" not in peer["ipBlock"] for rule in spec["egress"] for peer in rule["to"])


def test_autoscaler_targets_the_deployment_within_gpu_capacity():
    plan = planned("us")
    (hpa,) = of_type(plan, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert hpa.inputs["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"}
    assert hpa.inputs["spec"]["maxReplicas"] == plan.config.gpu.max_size


def test_kubernetes_resources_use_the_cluster_provider_not_a_default_one():
    plan = planned("ca")
    (k8s_provider,) = of_type(plan, "pulumi:providers:kubernetes")
    ref = f"{k8s_provider.urn}::{k8s_provider.id}"
    workloads = [r for r in plan.snapshot.custom_resources() if r.type.startswith("kubernetes:")]
    assert len(workloads) == 6 and all(r.provider == ref for r in workloads)
    assert "--region ca-central-1" in " ".join(__import__("json").loads(k8s_provider.inputs["kubeconfig"])["users"][0]["user"]["exec"]["args"]).replace("--region ", "--region ")
