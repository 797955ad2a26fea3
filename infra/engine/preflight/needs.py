"""What a stack's first `pulumi up` needs of the account, derived from its offline plan and config
(never a hand-written list): the services its resources and VPC endpoints use, the instance types
and the zones of their subnets, the Kubernetes version, the public AMI parameters it resolves."""

from __future__ import annotations

from dataclasses import dataclass

from infra.engine.model import Snapshot
from infra.program.config import StackConfig

# pulumi-aws type token prefix -> the service code of AWS's public SSM parameters
# (/aws/service/global-infrastructure/regions/<region>/services/<code>, one parameter per service
# offered there); the longest prefix wins.
# None: a global API that has no region (IAM, Route 53 zones). A type matching no prefix is
# reported as not checked, and tests/test_preflight.py fails until it is listed here.
SERVICE_OF_TYPE: dict[str, str | None] = {
    "aws:ec2/": "ec2", "aws:eks/": "eks", "aws:kms/": "kms", "aws:s3/": "s3", "aws:ecr/": "ecr",
    "aws:cloudwatch/logGroup": "logs", "aws:cloudwatch/": "cloudwatch",
    "aws:bedrock/": "bedrock", "aws:bedrockmodel/": "bedrock",
    "aws:networkfirewall/": "network-firewall", "aws:route53/resolver": "route53resolver",
    "aws:secretsmanager/": "secretsmanager", "aws:ssm/": "ssm",
    "aws:iam/": None, "aws:route53/": None, "aws:organizations/": None,
}
# VPC endpoint service (com.amazonaws.<region>.<name>) -> its SSM service code, where they differ.
SERVICE_OF_ENDPOINT = {"ecr.api": "ecr", "ecr.dkr": "ecr", "ec2messages": "ssm", "ssmmessages": "ssm",
                       "elasticloadbalancing": "elb"}

@dataclass(frozen=True)
class InstanceNeed:
    role: str  # what the stack runs on it
    instance_type: str
    zones: tuple[str, ...]  # the zones (names or ids) it may be placed in
    any_zone: bool  # True: one offered zone is enough (a node pool picks); False: every zone listed


@dataclass(frozen=True)
class Needs:
    """What the stack's first `pulumi up` needs of the account (from the plan and the config)."""

    cfg: StackConfig
    services: tuple[str, ...] = ()  # SSM service codes
    unmapped_types: tuple[str, ...] = ()  # pulumi-aws types with no SERVICE_OF_TYPE entry
    endpoint_services: tuple[str, ...] = ()  # com.amazonaws.<region>.<name>
    instances: tuple[InstanceNeed, ...] = ()
    zone_location: str = "availability-zone"  # or availability-zone-id, as the plan places subnets
    kubernetes_version: str | None = None
    ami_parameters: tuple[str, ...] = ()  # public SSM parameters the program resolves AMIs from
    zones: tuple[str, ...] = ()  # the zones (names or ids, as `zone_location`) of the stack's subnets

    @property
    def region(self) -> str:
        return self.cfg.region


def _service_of(type_: str) -> tuple[bool, str | None]:
    prefixes = [p for p in SERVICE_OF_TYPE if type_.startswith(p)]
    if not prefixes:
        return False, None
    return True, SERVICE_OF_TYPE[max(prefixes, key=len)]


def needs_from_plan(snapshot: Snapshot, cfg: StackConfig) -> Needs:
    """Derive the needs from the offline plan of the stack (infra/harness/synth.py)."""
    services, unmapped, endpoints, tunnels = set(), set(), set(), []
    subnets: dict[str, str] = {}  # subnet id -> zone
    zones: list[str] = []
    location = "availability-zone"
    version = None
    for r in snapshot.resources:
        if not r.type.startswith("aws:"):
            continue
        known, service = _service_of(r.type)
        if not known:
            unmapped.add(r.type)
        elif service:
            services.add(service)
        props = r.props
        if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint" and props.get("serviceName"):
            name = str(props["serviceName"])
            endpoints.add(name)
            short = name.split(f".{cfg.region}.", 1)[-1]
            services.add(SERVICE_OF_ENDPOINT.get(short, short))
        elif r.type == "aws:ec2/subnet:Subnet":
            zone = props.get("availabilityZoneId") or props.get("availabilityZone")
            if props.get("availabilityZoneId"):
                location = "availability-zone-id"
            if zone:
                subnets[str(r.id or props.get("id"))] = zone
                if zone not in zones:
                    zones.append(zone)
        elif r.type == "aws:ec2/instance:Instance" and props.get("instanceType"):
            tunnels.append((r.name, props["instanceType"], props.get("subnetId")))
        elif r.type == "aws:eks/cluster:Cluster":
            version = props.get("version") or version
    instances = [InstanceNeed(f"GPU node pool (gpuInstanceType, up to {cfg.gpu.max_size} GPU(s))",
                              cfg.gpu.instance_type, tuple(zones), any_zone=True)]
    for name, instance_type, subnet in tunnels:
        where = (subnets[subnet],) if subnet in subnets else tuple(zones)
        instances.append(InstanceNeed(f"instance {name}", instance_type, where, any_zone=False))
    # The tunnel's AMI is an invoke (aws.ssm.get_parameter), which a plan does not record as a resource.
    from infra.program.components.api_tunnel import TUNNEL_AMI_PARAMETER

    return Needs(cfg, tuple(sorted(services)), tuple(sorted(unmapped)), tuple(sorted(endpoints)),
                 tuple(instances), location, version, (TUNNEL_AMI_PARAMETER,) if tunnels else (), tuple(zones))
