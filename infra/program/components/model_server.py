"""`ModelServer`: the cluster layer. vLLM and its GPU capacity on the serving cluster, through
pulumi-kubernetes, reached through the API tunnel (`ApiTunnel`).

- GPU capacity: an EKS Auto Mode (Karpenter) NodePool of the configured GPU instance type, from
  zero; a pending model pod brings up a node, whose Auto Mode AMI carries the NVIDIA driver and
  device plugin. Its GPU limit caps the spend; no desired size exists for `up` to reset.
- The image is pulled from the stack's ECR repository *by digest* (`residency seed` prints it).
- Weights are streamed from the in-region bucket (`runai_streamer`), never from a model hub
  (`HF_HUB_OFFLINE=1`); the SDK settings make every S3 name regional (`workload_sdk_env`).
- Readiness: startup, readiness and liveness probes on vLLM's `/health`; the await is sized for a
  cold GPU start; the Deployment waits for its Pod Identity association.
- Replicas are fixed by the program (no HPA): a CPU autoscaler means nothing for a GPU server,
  and one that fought `replicas` would flap under server-side apply.
- Network policy is enforced (Auto Mode's network policy controller is switched on) and the pods'
  egress admits DNS (port 53) to any in-cluster resolver, HTTPS inside the VPC and the Pod Identity agent, nothing else;
  their ingress admits vLLM's port only from the serving subnets (`serving_cidrs`: the nodes and the
  internal NLB), and the NLB itself only those sources (`loadBalancerSourceRanges`), so the
  Federated connector subnets, which have internet egress, cannot reach the model.
- Requests are authenticated: vLLM reads its API key from `VLLM_API_KEY` (vllm/envs.py, "API key
  for VLLM API server"), set from the Kubernetes Secret `vllm-api-key`, which the deploy job
  creates through the tunnel when absent, after a targeted `up` of the Namespace and before the
  full `up` (deploy.yml; docs/operations.md section 6), so the key never enters the Pulumi state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from infra.program.components.api_tunnel import API_TUNNEL_PORT
from infra.program.components.cluster import SERVING_NAMESPACE, SERVING_SERVICE_ACCOUNT
from infra.program.components.network import private_subnet_cidrs
from infra.program.config import SERVICE_CIDR, GpuNodeGroup

# EKS Pod Identity agent: a node-local link-local address, the only non-VPC destination allowed.
POD_IDENTITY_AGENT = "169.254.170.23/32"
LINK_LOCAL = "169.254.0.0/16"  # node-local DNS caches answer on link-local addresses
GPU_POOL_LABEL = {"ai-companion/pool": "gpu"}
MODEL_REPLICAS = 1
VLLM_PORT = 8000
# Cold start: GPU node launch (~5 min) + multi-GB image pull + weights streaming + CUDA graph
# capture. The startup probe allows 30 min; the Pulumi await a little more than twice that.
STARTUP_PROBE_PERIOD_SECONDS = 10
STARTUP_PROBE_FAILURES = 180
DEPLOYMENT_TIMEOUT = "60m"
# Node lifetime of the GPU pool. EKS Auto Mode refuses a NodePool whose expireAfter plus
# terminationGracePeriod (24h when unset) exceeds 21 days (docs/conformance.md, "NodePool"); both
# are set explicitly so the sum is visible: 14 days (Auto Mode's own built-in pools) + 1 day.
GPU_NODE_EXPIRE_AFTER = "336h"
GPU_NODE_TERMINATION_GRACE = "24h"
# The model server's API key: a Kubernetes Secret the deploy job makes (never in the Pulumi state).
API_KEY_SECRET = {"name": "vllm-api-key", "key": "api-key"}


def serving_cidrs(vpc_cidr: str, availability_zones: tuple[str, ...]) -> list[str]:
    """The serving (private) subnets: the only sources the model server admits."""
    return private_subnet_cidrs(vpc_cidr, len(availability_zones))


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str, port: int = API_TUNNEL_PORT) -> str:
    """A kubeconfig that dials the API tunnel on 127.0.0.1 and verifies the API server's
    certificate against the cluster's private endpoint name; it authenticates with
    `aws eks get-token` against the regional STS."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_name,
        "clusters": [{"name": cluster_name, "cluster": {
            "server": f"https://127.0.0.1:{port}", "tls-server-name": urlparse(endpoint).netloc,
            "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
            "env": [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]}}}],
    })


def workload_sdk_env(region: str) -> list[dict[str, str]]:
    """The AWS SDK settings of the serving pods: regional names for every service they call, so
    the names stay inside `*.<region>.amazonaws.com` (in us-east-1 botocore would otherwise
    address S3 as `<bucket>.s3.amazonaws.com`, which DNS Firewall blocks).

    Two S3 clients read the weights: botocore (vLLM's config and tokenizer files) honours
    `AWS_ENDPOINT_URL_S3`; the Run:ai streamer's client is documented with `AWS_ENDPOINT_URL`
    only (vLLM docs, "Loading models with Run:ai Model Streamer"), so both name regional S3. The
    pods call no other AWS service, so the generic variable redirects nothing else. Credentials
    come from Pod Identity (the agent injects AWS_CONTAINER_CREDENTIALS_FULL_URI); instance
    metadata is switched off, so no SDK falls back to a probe that Auto Mode's hop limit of 1
    would leave hanging (docs/conformance.md, "weights loader")."""
    s3 = f"https://s3.{region}.amazonaws.com"
    return [
        {"name": "AWS_REGION", "value": region},
        {"name": "AWS_DEFAULT_REGION", "value": region},
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        {"name": "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "value": "regional"},
        {"name": "AWS_ENDPOINT_URL_S3", "value": s3},
        {"name": "AWS_ENDPOINT_URL", "value": s3},
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
    ]


@dataclass(frozen=True)
class ModelServerArgs:
    region: str
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    repository_url: pulumi.Input[str]
    image_digest: str
    weights_bucket: pulumi.Input[str]
    served_model: str
    vpc_cidr: str
    gpu: GpuNodeGroup
    availability_zones: tuple[str, ...]
    workload_identity: pulumi.Resource  # the Pod Identity association of the vLLM service account
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
        self.labels = {"app": "vllm"}
        self.meta = {"namespace": SERVING_NAMESPACE, "labels": self.labels}
        self._cluster_settings(name, args)
        self.namespace = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": SERVING_NAMESPACE}, opts=self._k8s())
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": SERVING_SERVICE_ACCOUNT, **self.meta}, opts=self._k8s(self.namespace))
        self._network_policy(name, args)
        self._ingress_policy(name, args)
        self._deployment(name, args)
        self._service(name, args)
        self.register_outputs({"serviceName": self.service.metadata["name"]})

    def _k8s(self, *depends_on: pulumi.Resource, **extra) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=list(depends_on), **extra)

    def _cluster_settings(self, name: str, args: ModelServerArgs) -> None:
        """Cluster-wide objects the workload needs: network policy enforcement and the GPU pool."""
        # Auto Mode's network policy controller is off until this ConfigMap switches it on
        # (EKS user guide, "auto-net-pol"). Where the vpc-cni add-on runs (Federated stacks) the
        # add-on has already created `kube-system/amazon-vpc-cni`, and pulumi-kubernetes >= 4.29
        # creates objects client-side, so a ConfigMap would fail with AlreadyExists. A Patch is a
        # server-side apply of this one key: it merges into the add-on's object, and creates the
        # object where none exists (pure Auto Mode). docs/conformance.md, "ConfigMapPatch".
        # The vpc-cni add-on (`enableNetworkPolicy`) owns the same key with the same value, which
        # server-side apply shares; should it ever hold another value, enforcement wins (patchForce).
        self.network_policy_switch = k8s.core.v1.ConfigMapPatch(
            f"{name}-network-policy", metadata={
                "name": "amazon-vpc-cni", "namespace": "kube-system",
                "annotations": {"pulumi.com/patchForce": "true"}},
            data={"enable-network-policy-controller": "true"},
            # Shared with the vpc-cni add-on where one exists: a destroy must not delete its config.
            opts=self._k8s(retain_on_delete=True))
        self.gpu_pool = k8s.apiextensions.CustomResource(
            f"{name}-gpu-pool", api_version="karpenter.sh/v1", kind="NodePool",
            metadata={"name": "gpu"},
            spec={
                "template": {
                    "metadata": {"labels": GPU_POOL_LABEL},
                    "spec": {
                        # Auto Mode's built-in node class: its AMI carries the NVIDIA driver and
                        # device plugin, so `nvidia.com/gpu` is allocatable on arrival.
                        "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"},
                        "requirements": [
                            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [args.gpu.instance_type]},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": list(args.availability_zones)},
                        ],
                        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                        "expireAfter": GPU_NODE_EXPIRE_AFTER,
                        "terminationGracePeriod": GPU_NODE_TERMINATION_GRACE,
                    },
                },
                # The only cap on GPU capacity; Karpenter starts from zero and returns to zero.
                "limits": {"nvidia.com/gpu": str(args.gpu.max_size)},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "15m"},
            },
            opts=self._k8s())

    def _network_policy(self, name: str, args: ModelServerArgs) -> None:
        dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-egress",
            metadata={"name": "vllm-in-vpc-only", **self.meta},
            spec={
                "pod_selector": {"match_labels": self.labels},
                "policy_types": ["Egress"],
                # Default deny: only these destinations; nothing outside the VPC.
                "egress": [
                    # DNS to every resolver a pod can be pointed at inside the cluster, not only
                    # kube-dns pods: on Auto Mode DNS may be served otherwise (node-local, a service
                    # IP without CoreDNS pods: aws/containers-roadmap#2546, #2552). The VPC (its .2
                    # resolver, node addresses), the service CIDR and link-local (node-local caches)
                    # are all private; DNS Firewall governs the names. Not 0.0.0.0/0: a resolver
                    # outside would bypass DNS Firewall wherever a route exists (RSD-024).
                    {"to": [{"ip_block": {"cidr": c}} for c in (args.vpc_cidr, SERVICE_CIDR, LINK_LOCAL)],
                     "ports": dns_ports},
                    {"to": [{"ip_block": {"cidr": args.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]},
                    {"to": [{"ip_block": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                ],
            },
            opts=self._k8s(self.namespace, self.network_policy_switch))

    def _ingress_policy(self, name: str, args: ModelServerArgs) -> None:
        self.ingress_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata={"name": "vllm-from-serving-subnets-only", **self.meta},
            spec={
                "pod_selector": {"match_labels": self.labels},
                "policy_types": ["Ingress"],
                "ingress": [{"from": [{"ip_block": {"cidr": c}} for c in serving_cidrs(args.vpc_cidr, args.availability_zones)],
                             "ports": [{"protocol": "TCP", "port": VLLM_PORT}]}],
            },
            opts=self._k8s(self.namespace, self.network_policy_switch))

    def _deployment(self, name: str, args: ModelServerArgs) -> None:
        model_uri = pulumi.Output.from_input(args.weights_bucket).apply(lambda b: f"s3://{b}/{args.served_model}")
        health = {"http_get": {"path": "/health", "port": "http"}, "timeout_seconds": 5}
        container = {
            "name": "vllm",
            "image": pulumi.Output.from_input(args.repository_url).apply(lambda u: f"{u}@{args.image_digest}"),
            # The image's entrypoint is vLLM's OpenAI server (`python3 -m
            # vllm.entrypoints.openai.api_server`; newer images `vllm serve`): both take `--model`;
            # the first has no positional model (docs/conformance.md, "model-server image").
            "args": ["--model", model_uri, "--load-format", "runai_streamer",
                     "--served-model-name", args.served_model, "--port", str(VLLM_PORT)],
            # No usage reports (vLLM docs, "Usage Stats Collection"): they could never leave the
            # VPC, and their DNS lookups would only fill the DNS Firewall's block log.
            "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
                    {"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"},
                    *workload_sdk_env(args.region),
                    {"name": "VLLM_API_KEY", "value_from": {"secret_key_ref": {**API_KEY_SECRET, "optional": False}}}],
            "ports": [{"name": "http", "container_port": VLLM_PORT}],
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "2", "memory": "16Gi"}},
            "startup_probe": {**health, "period_seconds": STARTUP_PROBE_PERIOD_SECONDS,
                              "failure_threshold": STARTUP_PROBE_FAILURES},
            "readiness_probe": {**health, "period_seconds": 10, "failure_threshold": 3},
            "liveness_probe": {**health, "period_seconds": 30, "failure_threshold": 5},
            "volume_mounts": [{"name": "shm", "mount_path": "/dev/shm"}],
        }
        # A rolling update needs one spare GPU; with a single GPU allowed, replace in place.
        strategy = ({"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}}
                    if args.gpu.max_size > MODEL_REPLICAS else {"type": "Recreate"})
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-vllm",
            metadata={"name": "vllm", **self.meta},
            spec={
                "replicas": MODEL_REPLICAS,
                "strategy": strategy,
                "selector": {"match_labels": self.labels},
                "template": {
                    "metadata": {"labels": self.labels},
                    "spec": {
                        "service_account_name": SERVING_SERVICE_ACCOUNT,
                        "node_selector": GPU_POOL_LABEL,
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [container],
                        "volumes": [{"name": "shm", "empty_dir": {"medium": "Memory", "size_limit": "8Gi"}}],
                    },
                },
            },
            opts=self._k8s(self.service_account, self.network_policy, self.ingress_policy, self.gpu_pool,
                           args.workload_identity,
                           custom_timeouts=pulumi.CustomTimeouts(create=DEPLOYMENT_TIMEOUT, update=DEPLOYMENT_TIMEOUT)))

    def _service(self, name: str, args: ModelServerArgs) -> None:
        self.service = k8s.core.v1.Service(
            f"{name}-vllm",
            metadata={"name": "vllm", **self.meta, "annotations": {
                # Internal NLB only, provisioned by Auto Mode's load balancer capability (which
                # does not support the legacy `aws-load-balancer-internal` annotation).
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
            }},
            spec={"type": "LoadBalancer", "load_balancer_class": "eks.amazonaws.com/nlb",
                  "load_balancer_source_ranges": serving_cidrs(args.vpc_cidr, args.availability_zones),
                  "selector": self.labels, "ports": [{"name": "http", "port": 80, "target_port": "http"}]},
            # Awaited until it has LB ingress and non-empty Endpoints, i.e. a ready vLLM pod
            # (pulumi-kubernetes provider/pkg/await/service.go): the Deployment's cold GPU start.
            opts=self._k8s(self.namespace, custom_timeouts=pulumi.CustomTimeouts(
                create=DEPLOYMENT_TIMEOUT, update=DEPLOYMENT_TIMEOUT)))
