"""The offline plan: run the real Pulumi program in-process under Pulumi's mocks.

No CLI, no credentials, no network. A `GraphMonitor` records every registration (type, name,
parent, provider, protect, dependencies, property dependencies, source position, inputs);
`RealisticMocks` answers each with outputs shaped like the real provider's (ids, ARNs carrying the
right region and account), so rules that read outputs see what a deployment would. The captured
graph is rewritten with engine-style URNs and written as a `pulumi stack export` (version 3)
document, which is then read back through the same loader the audit uses.

The export carries what the engine writes to state from the same registrations (pulumi/pulumi
`sdk/go/common/apitype/core.go` `ResourceV3`, `pkg/resource/deploy/source_eval.go`):
`dependencies` and `propertyDependencies` as the SDK sent them (an empty list is Go's nil slice,
written `null`), `sourcePosition` as a project-relative `project:///<path>#<line>` URI, and, for
Terraform-bridged providers (pulumi-aws), the `id` among the outputs as the bridge returns it.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse
from urllib.request import url2pathname

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from infra.program.config import DIGEST_KEY, PLACEHOLDER_DIGEST, PLACEHOLDER_NOTE, PROJECT, StackConfig, parse_config
from infra.program.stackfiles import ROOT as PROJECT_ROOT
from infra.engine.loaders import snapshot_from_document
from infra.engine.model import STACK_TYPE, Snapshot
from infra.program.stackfiles import load_stack_values

MOCK_ACCOUNT = "123456789012"
# Packages whose provider is built with pulumi-terraform-bridge: their state outputs hold `id`
# (the Terraform resource id) beside the other attributes, as in every pulumi-aws resource of
# the corpus (tests/fixtures/corpus). pulumi-kubernetes is a native provider and is not listed.
TERRAFORM_BRIDGED = ("aws",)


def _hex(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _uuid(*parts: str) -> str:
    h = _hex(*parts, n=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Per-type outputs, stelvio-style: placeholders {region} {account} {partition} {name} {id} {hex}
# {in[key]}. Types not listed get a generic id and, for regional services, a generic ARN.
OUTPUT_TEMPLATES: dict[str, dict[str, str]] = {
    "aws:kms/key:Key": {"id": "{uuid}", "keyId": "{uuid}", "arn": "arn:{partition}:kms:{region}:{account}:key/{uuid}"},
    "aws:kms/alias:Alias": {"arn": "arn:{partition}:kms:{region}:{account}:{in[name]}", "targetKeyArn": "arn:{partition}:kms:{region}:{account}:key/{uuid}"},
    "aws:ec2/vpc:Vpc": {"id": "vpc-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:vpc/{id}", "defaultSecurityGroupId": "sg-d{hex}"},
    "aws:ec2/subnet:Subnet": {"id": "subnet-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:subnet/{id}"},
    "aws:ec2/routeTable:RouteTable": {"id": "rtb-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:route-table/{id}"},
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {"id": "rtbassoc-{hex}"},
    "aws:ec2/securityGroup:SecurityGroup": {"id": "sg-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:security-group/{id}"},
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": {"id": "sg-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:security-group/{id}"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {"id": "vpce-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:vpc-endpoint/{id}"},
    "aws:ec2/flowLog:FlowLog": {"id": "fl-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:vpc-flow-log/{id}"},
    "aws:ec2/internetGateway:InternetGateway": {"id": "igw-{hex}", "arn": "arn:{partition}:ec2:{region}:{account}:internet-gateway/{id}"},
    "aws:ec2/natGateway:NatGateway": {"id": "nat-{hex}"},
    "aws:ec2/eip:Eip": {"id": "eipalloc-{hex}", "allocationId": "eipalloc-{hex}", "publicIp": "198.51.100.10"},
    "aws:ec2/route:Route": {"id": "r-{hex}"},
    "aws:cloudwatch/logGroup:LogGroup": {"id": "{in[name]}", "arn": "arn:{partition}:logs:{region}:{account}:log-group:{in[name]}"},
    "aws:iam/role:Role": {"id": "{name}", "name": "{name}", "arn": "arn:{partition}:iam::{account}:role/{name}", "uniqueId": "AROA{HEX}"},
    "aws:iam/policy:Policy": {"id": "arn:{partition}:iam::{account}:policy/{name}", "arn": "arn:{partition}:iam::{account}:policy/{name}"},
    "aws:eks/cluster:Cluster": {
        "id": "{in[name]}", "arn": "arn:{partition}:eks:{region}:{account}:cluster/{in[name]}",
        "endpoint": "https://{HEX}.gr7.{region}.eks.amazonaws.com", "status": "ACTIVE",
    },
    "aws:eks/nodeGroup:NodeGroup": {"arn": "arn:{partition}:eks:{region}:{account}:nodegroup/{in[clusterName]}/{name}/{uuid}"},
    "aws:eks/addon:Addon": {"arn": "arn:{partition}:eks:{region}:{account}:addon/{in[clusterName]}/{in[addonName]}/{uuid}"},
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": {
        "associationId": "a-{hex}", "associationArn": "arn:{partition}:eks:{region}:{account}:podidentityassociation/{in[clusterName]}/a-{hex}"},
    "aws:ecr/repository:Repository": {
        "id": "{in[name]}", "arn": "arn:{partition}:ecr:{region}:{account}:repository/{in[name]}",
        "repositoryUrl": "{account}.dkr.ecr.{region}.amazonaws.com/{in[name]}", "registryId": "{account}"},
    "aws:s3/bucket:Bucket": {
        "id": "{name}", "bucket": "{name}", "arn": "arn:{partition}:s3:::{name}", "region": "{region}",
        "bucketDomainName": "{name}.s3.amazonaws.com", "bucketRegionalDomainName": "{name}.s3.{region}.amazonaws.com"},
    "aws:secretsmanager/secret:Secret": {"id": "{arn}", "arn": "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-{HEX6}"},
    # ZM+ (issue #3). A guardrail's `version` is DRAFT until a GuardrailVersion publishes "1".
    "aws:bedrock/guardrail:Guardrail": {
        "id": "{hex}", "guardrailId": "{hex}", "guardrailArn": "arn:{partition}:bedrock:{region}:{account}:guardrail/{hex}",
        "version": "DRAFT", "status": "READY"},
    "aws:bedrock/guardrailVersion:GuardrailVersion": {"id": "{in[guardrailArn]},1", "version": "1"},
    "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration": {"id": "{region}"},
    # Federated egress (issue #4). `firewallStatuses` is added in RealisticMocks.new_resource.
    "aws:networkfirewall/firewall:Firewall": {
        "id": "{arn}", "arn": "arn:{partition}:network-firewall:{region}:{account}:firewall/{in[name]}", "updateToken": "{uuid}"},
    "aws:networkfirewall/firewallPolicy:FirewallPolicy": {
        "id": "{arn}", "arn": "arn:{partition}:network-firewall:{region}:{account}:firewall-policy/{in[name]}", "updateToken": "{uuid}"},
    "aws:networkfirewall/ruleGroup:RuleGroup": {
        "id": "{arn}", "arn": "arn:{partition}:network-firewall:{region}:{account}:stateful-rulegroup/{in[name]}", "updateToken": "{uuid}"},
    "aws:networkfirewall/loggingConfiguration:LoggingConfiguration": {"id": "{in[firewallArn]}"},
    "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList": {
        "id": "rslvr-fdl-{hex}", "arn": "arn:{partition}:route53resolver:{region}:{account}:firewall-domain-list/{id}"},
    "aws:route53/resolverFirewallRuleGroup:ResolverFirewallRuleGroup": {
        "id": "rslvr-frg-{hex}", "arn": "arn:{partition}:route53resolver:{region}:{account}:firewall-rule-group/{id}",
        "ownerId": "{account}", "shareStatus": "NOT_SHARED"},
    "aws:route53/resolverFirewallRule:ResolverFirewallRule": {"id": "{in[firewallRuleGroupId]}:{in[firewallDomainListId]}"},
    "aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation": {
        "id": "rslvr-frgassoc-{hex}", "arn": "arn:{partition}:route53resolver:{region}:{account}:firewall-rule-group-association/{id}"},
    "aws:route53/resolverFirewallConfig:ResolverFirewallConfig": {"id": "rslvr-fc-{hex}", "ownerId": "{account}"},
}
# Services whose ARNs carry no region (global services).
GLOBAL_SERVICES = {"iam", "route53", "cloudfront", "organizations"}
# Resources that autoname from their logical name when no explicit name is given.
NAME_KEYS = ("name", "bucket", "clusterName")


class _Fmt(dict):
    def __missing__(self, key):
        return ""


class RealisticMocks(pulumi.runtime.Mocks):
    """Return outputs shaped like the real provider's, in the resource's effective region."""

    def __init__(self, region: str, partition: str = "aws", account: str = MOCK_ACCOUNT):
        self.region, self.partition, self.account = region, partition, account
        self.provider_regions: dict[str, str] = {}  # "<urn>::<id>" -> region, filled by GraphMonitor
        self.subnet_azs: dict[str, str] = {}  # subnet id -> AZ, for Network Firewall sync states

    def region_for(self, args: pulumi.runtime.MockResourceArgs) -> str:
        return args.inputs.get("region") or self.provider_regions.get(args.provider) or self.region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ.startswith("pulumi:providers:"):
            return _uuid(args.typ, args.name), dict(args.inputs)
        region = self.region_for(args)
        hx = _hex(region, args.typ, args.name)
        autoname = f"{args.name}-{hx[:7]}"
        name = next((args.inputs[k] for k in NAME_KEYS if isinstance(args.inputs.get(k), str)), autoname)
        values = _Fmt(region=region, account=self.account, partition=self.partition, name=name,
                      hex=hx, HEX=hx.upper(), HEX6=hx[:6], uuid=_uuid(args.typ, args.name))
        values["in"] = _Fmt({k: v for k, v in args.inputs.items() if isinstance(v, (str, int))})
        template = OUTPUT_TEMPLATES.get(args.typ, {})
        values["id"] = template.get("id", f"{autoname}").format_map(values)
        if "arn" in template and "{arn}" in template.get("id", ""):
            values["arn"] = template["arn"].format_map(values)
            values["id"] = values["arn"]
        outputs = {**args.inputs, **{k: v.format_map(values) for k, v in template.items() if k != "id"}}
        if args.typ.startswith("aws:") and "arn" not in outputs and args.custom:
            service, _, resource = args.typ.split(":")[1].partition("/")
            where = "" if service in GLOBAL_SERVICES else region
            outputs["arn"] = f"arn:{self.partition}:{service}:{where}:{self.account}:{resource.lower()}/{values['id']}"
        if args.typ == "aws:eks/cluster:Cluster":
            outputs["certificateAuthority"] = {"data": base64.b64encode(b"mock-ca").decode()}
            outputs["vpcConfig"] = {**(args.inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-c{hx[:16]}"}
            outputs["identities"] = [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{hx.upper()}"}]}]
        if args.typ == "aws:ec2/subnet:Subnet":
            self.subnet_azs[values["id"]] = args.inputs.get("availabilityZone", "")
        if args.typ == "aws:networkfirewall/firewall:Firewall":
            # One sync state per subnet mapping, each with the firewall's endpoint in that AZ.
            states = []
            for mapping in args.inputs.get("subnetMappings") or []:
                subnet_id = mapping.get("subnetId", "")
                az = self.subnet_azs.get(subnet_id, "")
                states.append({"availabilityZone": az, "attachments": [
                    {"endpointId": f"vpce-{_hex(region, args.name, az)}", "subnetId": subnet_id, "status": "READY"}]})
            outputs["firewallStatuses"] = [{"status": "READY", "configurationSyncStateSummary": "IN_SYNC",
                                            "syncStates": states, "transitGatewayAttachmentSyncStates": []}]
        if args.typ.startswith("aws:") and args.custom and "region" not in outputs:
            outputs["region"] = region  # pulumi-aws v7 fills the effective region in state
        return values["id"], outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account, "arn": f"arn:{self.partition}:iam::{self.account}:user/mock", "userId": "AIDAMOCK", "id": self.account}
        if args.token == "aws:ssm/getParameter:getParameter":
            # Public AMI parameters (/aws/service/...): an image id of the region.
            return {"name": args.args.get("name"), "type": "String", "value": f"ami-{_hex(self.region, str(args.args.get('name')))}",
                    "arn": f"arn:{self.partition}:ssm:{self.region}::parameter{args.args.get('name')}", "id": args.args.get("name")}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        return {}


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    protect: bool
    dependencies: list[str]
    inputs: dict
    id: str = ""
    property_dependencies: dict[str, list[str]] | None = None
    source_position: str = ""  # project:///<path>#<line>, as the engine stores it
    custom_timeouts: dict[str, float] | None = None  # seconds, as the engine stores them in state


class GraphMonitor(MockMonitor):
    """A MockMonitor that keeps every registration request, in order."""

    def __init__(self, mocks: RealisticMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.stack_outputs: dict = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        inputs = rpc.deserialize_properties(request.object) if request.type != STACK_TYPE else {}
        reg = Registration(
            urn=response.urn, type=request.type, name=request.name, custom=bool(request.custom),
            parent=request.parent, provider=request.provider,
            protect=request.HasField("protect") and request.protect,
            dependencies=list(request.dependencies), inputs=inputs, id=response.id,
            custom_timeouts=_timeouts_seconds(request),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            source_position=_project_position(request))
        with self._lock:
            self.registrations.append(reg)
            if request.type == "pulumi:providers:aws":
                self.mocks.provider_regions[f"{response.urn}::{response.id}"] = inputs.get("region")
        return response


def _project_position(request) -> str:
    """The SDK's `sourcePosition` (a file URI and line) as the engine records it in state: a
    `project://` URI relative to the project root (source_eval.go `parseSourcePosition`)."""
    if not request.HasField("sourcePosition") or not request.sourcePosition.uri.startswith("file://"):
        return ""
    position = request.sourcePosition
    path = Path(url2pathname(urlparse(position.uri).path))
    # The SDK's own frames (the Stack, a provider class) name the installed SDK, which is not the
    # program and whose path depends on the machine: left out, so plans compare across machines.
    if path.is_relative_to(sys.prefix) or not path.is_relative_to(PROJECT_ROOT):
        return ""
    relative = path.relative_to(PROJECT_ROOT)
    column = f",{position.column}" if position.column else ""
    return f"project:///{relative.as_posix()}#{position.line}{column}"


def _duration_seconds(text: str) -> float:
    """A Go duration as Pulumi SDKs send it ("60m", "1h30m", "45s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"([0-9.]+)(h|m|s)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def _timeouts_seconds(request) -> dict[str, float] | None:
    if not request.HasField("customTimeouts"):
        return None
    timeouts = {k: _duration_seconds(getattr(request.customTimeouts, k))
                for k in ("create", "update", "delete") if getattr(request.customTimeouts, k)}
    return timeouts or None


@dataclass
class Plan:
    stack: str
    config: StackConfig
    export: dict
    snapshot: Snapshot
    assumptions: list[str] = field(default_factory=list)  # what the plan assumes beyond the stack file


def to_export(monitor: GraphMonitor, stack: str) -> dict:
    """Rewrite the mock graph with engine-style URNs and emit a v3 `pulumi stack export`."""
    states = monitor.get_registered_resources()
    chains: dict[str, str] = {}  # mock urn -> engine type chain
    urns: dict[str, str] = {}  # mock urn -> engine urn
    for reg in monitor.registrations:
        if reg.type == STACK_TYPE or not reg.parent or chains.get(reg.parent) is None:
            chain = reg.type
        else:
            chain = f"{chains[reg.parent]}${reg.type}"
        chains[reg.urn] = None if reg.type == STACK_TYPE else chain
        urns[reg.urn] = f"urn:pulumi:{stack}::{PROJECT}::{chain}::{reg.name}"

    def ref(provider: str) -> str | None:
        if not provider:
            return None
        urn, _, pid = provider.rpartition("::")
        return f"{urns.get(urn, urn)}::{pid}"

    resources = []
    for reg in monitor.registrations:
        state = states.get(reg.urn)
        entry = {"urn": urns[reg.urn], "custom": reg.custom, "type": reg.type}
        if reg.custom:
            entry["id"] = reg.id
        if reg.type == STACK_TYPE:
            entry["outputs"] = monitor.stack_outputs
        else:
            entry["inputs"] = reg.inputs
            entry["outputs"] = dict(state.state) if state else {}
            if reg.custom and reg.type.split(":")[0] in TERRAFORM_BRIDGED:
                entry["outputs"]["id"] = reg.id
        if reg.parent:
            entry["parent"] = urns.get(reg.parent, reg.parent)
        if ref(reg.provider):
            entry["provider"] = ref(reg.provider)
        if reg.protect:
            entry["protect"] = True
        # The SDK gathers dependencies in sets: sorted, the same set in a stable order.
        if reg.dependencies:
            entry["dependencies"] = sorted(urns.get(d, d) for d in reg.dependencies)
        if reg.property_dependencies:
            entry["propertyDependencies"] = {key: sorted(urns.get(d, d) for d in deps) or None
                                             for key, deps in reg.property_dependencies.items()}
        if reg.custom_timeouts:
            entry["customTimeouts"] = reg.custom_timeouts
        if reg.source_position:
            entry["sourcePosition"] = reg.source_position
        resources.append(entry)
    manifest = {"time": "1970-01-01T00:00:00Z", "magic": "", "version": "offline-plan"}
    return {"version": 3, "deployment": {"manifest": manifest, "resources": _stable_order(resources)}}


def _stable_order(resources: list[dict]) -> list[dict]:
    """Order resources as the engine does (parent, provider and dependencies first) but
    deterministically: registration order under mocks depends on thread scheduling."""
    by_urn = {r["urn"]: r for r in resources}
    waiting_on: dict[str, int] = {}
    dependents: dict[str, list[str]] = {u: [] for u in by_urn}
    for r in resources:
        before = {r.get("parent"), (r.get("provider") or "").rpartition("::")[0], *r.get("dependencies", ())}
        before = {u for u in before if u in by_urn and u != r["urn"]}
        waiting_on[r["urn"]] = len(before)
        for u in before:
            dependents[u].append(r["urn"])
    ready = sorted(u for u, n in waiting_on.items() if n == 0)
    ordered = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for other in dependents[urn]:
            waiting_on[other] -= 1
            if waiting_on[other] == 0:
                heapq.heappush(ready, other)
    return ordered


def _annotate_options(snapshot: Snapshot) -> None:
    """Record which option owns each resource: the nearest `ai-companion:<option>:*` ancestor."""
    by_urn = snapshot.by_urn
    for r in snapshot.resources:
        node = r
        while node is not None:
            parts = node.type.split(":")
            if parts[0] == PROJECT and len(parts) == 3:
                r.option = parts[1]
                break
            node = by_urn.get(node.parent) if node.parent else None


def synthesize(stack: str, values: dict[str, str] | None = None,
               program: Callable[[StackConfig], object] | None = None, *, as_committed: bool = False) -> Plan:
    """Run the program for `stack` under mocks. Config is validated before anything registers;
    `values` overrides the stack file (tests); `program` defaults to stacks.program.build.

    The plan always holds the cluster layer: config without an image digest is planned with
    PLACEHOLDER_DIGEST, and the plan says so in `assumptions`. `as_committed=True` plans exactly
    what `pulumi up` would build from the config as it is (no cluster layer before `seed`)."""
    from stacks.program import build

    secret_keys: list[str] = []
    if values is None:
        values, secret_keys = load_stack_values(stack)
    assumptions = []
    if not as_committed and not values.get(DIGEST_KEY):
        values, assumptions = {**values, DIGEST_KEY: PLACEHOLDER_DIGEST}, [PLACEHOLDER_NOTE]
    cfg = parse_config(values, stack)  # raises ConfigError: nothing is registered on bad config

    pulumi.runtime.reset_options()
    pulumi.runtime.set_all_config(dict(values), secret_keys)
    mocks = RealisticMocks(cfg.region, cfg.geography.partition)
    monitor = GraphMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    run = program or build

    def program_under_test():
        # Stack outputs are only registered by the engine's run loop, not under `test`, so
        # resolve what the program exported here.
        outputs = pulumi.Output.from_input(run(cfg) or {})
        return outputs.apply(monitor.stack_outputs.update)

    try:
        pulumi.runtime.test(program_under_test)()
    finally:
        pulumi.runtime.reset_options()
    export = to_export(monitor, stack)
    snapshot = snapshot_from_document(export, stack=stack, default_region=cfg.region, source="plan")
    _annotate_options(snapshot)
    return Plan(stack, cfg, export, snapshot, assumptions)
