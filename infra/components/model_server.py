"""`ModelServer`: vLLM on the serving cluster, through pulumi-kubernetes.

Weights are streamed from the in-region bucket (`runai_streamer`), never from a model hub
(`HF_HUB_OFFLINE=1`). The Service sits behind an *internal* NLB; a default-deny egress
NetworkPolicy lets the pods talk only to addresses inside the VPC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT

# Mirror vllm/vllm-openai:<tag> into the stack's ECR repository; nodes cannot reach Docker Hub.
VLLM_IMAGE_TAG = "v0.11.0"
# EKS Pod Identity agent: a node-local link-local address, the only non-VPC destination allowed.
POD_IDENTITY_AGENT = "169.254.170.23/32"


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` against the regional STS."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_name,
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
            "env": [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]}}}],
    })


@dataclass(frozen=True)
class ModelServerArgs:
    region: str
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    repository_url: pulumi.Input[str]
    weights_bucket: pulumi.Input[str]
    served_model: str
    vpc_cidr: str
    max_replicas: int
    depends_on: list[pulumi.Resource]


class ModelServer(pulumi.ComponentResource):
    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-companion:zmo:ModelServer", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.all(args.cluster_name, args.cluster_endpoint, args.cluster_ca).apply(
                lambda a: kubeconfig(a[0], a[1], a[2], args.region)),
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        k = pulumi.ResourceOptions(parent=self, provider=self.provider)
        labels = {"app": "vllm"}
        meta = {"namespace": SERVING_NAMESPACE, "labels": labels}

        self.namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": SERVING_NAMESPACE}, opts=k)
        ns = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.namespace])
        k8s.core.v1.ServiceAccount(f"{name}-sa", metadata={"name": SERVING_SERVICE_ACCOUNT, **meta}, opts=ns)

        model_uri = pulumi.Output.from_input(args.weights_bucket).apply(lambda b: f"s3://{b}/{args.served_model}")
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-vllm",
            metadata={"name": "vllm", **meta},
            spec={
                "replicas": 1,
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "service_account_name": SERVING_SERVICE_ACCOUNT,
                        "node_selector": {"ai-companion/pool": "gpu"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{
                            "name": "vllm",
                            "image": pulumi.Output.from_input(args.repository_url).apply(lambda u: f"{u}:{VLLM_IMAGE_TAG}"),
                            "args": [model_uri, "--load-format", "runai_streamer",
                                     "--served-model-name", args.served_model, "--port", "8000"],
                            "env": [
                                {"name": "HF_HUB_OFFLINE", "value": "1"},
                                {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
                                {"name": "AWS_REGION", "value": args.region},
                                {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                            ],
                            "ports": [{"name": "http", "container_port": 8000}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "2", "memory": "16Gi"}},
                            "readiness_probe": {"http_get": {"path": "/health", "port": "http"}, "period_seconds": 10},
                        }],
                    },
                },
            },
            opts=ns)

        self.service = k8s.core.v1.Service(
            f"{name}-vllm",
            metadata={"name": "vllm", **meta, "annotations": {
                # Internal NLB only: the in-tree controller and the AWS LB Controller both honour these.
                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
            }},
            spec={"type": "LoadBalancer", "selector": labels, "ports": [{"name": "http", "port": 80, "target_port": "http"}]},
            opts=ns)

        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-egress",
            metadata={"name": "vllm-in-vpc-only", **meta},
            spec={
                "pod_selector": {"match_labels": labels},
                "policy_types": ["Egress"],
                # Default deny: only these destinations; nothing outside the VPC.
                "egress": [
                    {"to": [{"ip_block": {"cidr": args.vpc_cidr}}]},
                    {"to": [{"ip_block": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                ],
            },
            opts=ns)

        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-vllm",
            metadata={"name": "vllm", **meta},
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": "vllm"},
                "min_replicas": 1,
                "max_replicas": max(1, args.max_replicas),
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "average_utilization": 70}}}],
            },
            opts=ns)
        self.register_outputs({"serviceName": self.service.metadata["name"]})
