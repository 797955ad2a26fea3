"""The checks of `residency preflight`, in the order they run. Adding the next check is one
function here: `@check(id, title, {botocore service: (operations,)})`."""

from __future__ import annotations

import math

from botocore.exceptions import ClientError

from infra.engine.live.core import ABANDON_KINDS, ReadOnlyViolation, fault, fault_kind, pages
from infra.engine.preflight.needs import Needs
from infra.engine.preflight.registry import Outcome, Probe, check, failed, not_checked, passed
from infra.program.scp_policy import build_scp, statement_digests

# Regions whose SSM endpoint answers /aws/service/global-infrastructure queries (Systems Manager
# user guide, parameter-store-public-parameters-global-infrastructure); any region's data can be
# read from any of them. The home region is asked first (it may serve them though this list, from
# the user guide, predates it), then the geography's regions in this list, else us-east-1 (which an
# SCP or the deploy role may deny outside the geography: the check is then not checked).
GLOBAL_INFRASTRUCTURE_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-east-1", "ap-south-1", "ap-northeast-2",
    "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ca-central-1", "eu-central-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1")
# On-Demand vCPU quota (Service Quotas, service code ec2) per instance family prefix: its code and
# the words its name must contain. The codes are not in botocore's models; they are the ones the
# quota console and CLI show (L-DB2E81BA "Running On-Demand G and VT instances", L-417A185B
# "Running On-Demand P instances"), taken from public scripts, not from an AWS page. So the check
# also compares the name AWS answers with, and says "not checked" when it differs.
VCPU_QUOTA_OF_FAMILY = {"g": ("L-DB2E81BA", "G and VT"), "vt": ("L-DB2E81BA", "G and VT"),
                        "p": ("L-417A185B", "P instances")}
ACCOUNT_API_REGION = "us-east-1"  # Organizations and Account Management are global APIs served there
PUBLIC_PARAMETERS = "/aws/service/"  # AWS's public SSM parameters: the only ones preflight reads


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


@check("region-enabled", "the home region is enabled for the account",
       {"account": ("GetRegionOptStatus",), "ec2": ("DescribeRegions",)})
def region_enabled(probe: Probe) -> Outcome:
    region = probe.needs.region
    fix = f"enable it: `aws account enable-region --region-name {region}` (takes minutes to hours), then rerun"
    try:
        status = probe.client("account", ACCOUNT_API_REGION).get_region_opt_status(RegionName=region)["RegionOptStatus"]
        if status in ("ENABLED", "ENABLED_BY_DEFAULT"):
            return passed(f"{region}: {status} (account:GetRegionOptStatus)")
        return failed(f"{region}: {status} (account:GetRegionOptStatus)", fix)
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 -- denied (the deploy role is bound to the geography): ask EC2
        first = fault(exc)
    try:
        found = probe.client("ec2").describe_regions(AllRegions=True, RegionNames=[region])["Regions"]
    except ClientError as exc:
        if fault_kind(exc) != "region not enabled or credentials not valid there" or region == ACCOUNT_API_REGION:
            raise
        # A disabled region refuses every credential; so do bad credentials everywhere. us-east-1 (never
        # opt-in) tells the two apart, where the caller may ask it.
        refused = fault(exc)
        try:
            found = probe.client("ec2", ACCOUNT_API_REGION).describe_regions(AllRegions=True,
                                                                              RegionNames=[region])["Regions"]
        except ClientError as other:
            return not_checked(f"{region} refuses these credentials ({refused}): most likely not enabled, but "
                               f"{ACCOUNT_API_REGION} could not confirm it ({fault(other)})", fix)
    status = next((r.get("OptInStatus") for r in found if r.get("RegionName") == region), None)
    if status in ("opt-in-not-required", "opted-in"):
        return passed(f"{region}: {status} (ec2:DescribeRegions; account:GetRegionOptStatus: {first})")
    if status is None:
        return failed(f"{region} is not a region this account's EC2 lists", "check the stack's aws:region")
    return failed(f"{region}: {status} (ec2:DescribeRegions)", fix)


@check("services-offered", "every service the stack uses is offered in the home region",
       {"ssm": ("GetParameters",)})
def services_offered(probe: Probe) -> Outcome:
    needs = probe.needs
    if needs.unmapped_types:
        return not_checked(f"no service code known for {', '.join(needs.unmapped_types)}",
                           "add the type's module to SERVICE_OF_TYPE in infra/engine/preflight/needs.py")
    geo = needs.cfg.geography
    region = f"/aws/service/global-infrastructure/regions/{needs.region}"
    names = [region] + [f"{region}/services/{s}" for s in needs.services]
    found, tried = None, []
    for asked in _parameter_regions(needs):
        try:
            found = _parameters(probe.client("ssm", asked), names)
        except ReadOnlyViolation:
            raise
        except Exception as exc:  # noqa: BLE001 -- not served there, or denied outside the geography: the next
            if fault_kind(exc) in ABANDON_KINDS:
                raise
            tried.append(f"{asked}: {fault(exc)}")
            continue
        if region in found:
            break
        tried.append(f"{asked}: {needs.region} not listed")
    if found is None or region not in found:
        return not_checked(f"AWS's public SSM parameters list no service in {needs.region} ({'; '.join(tried)})",
                           "check the services in the AWS Regional Services List, or rerun with credentials that "
                           "may read SSM in us-east-1; the endpoints-offered check asks EC2 in the region itself")
    missing = [s for s in needs.services if f"{region}/services/{s}" not in found]
    if missing:
        return failed(f"not offered in {needs.region}: {', '.join(missing)} (of {len(needs.services)} the plan uses)",
                      f"deploy this stack to a region of {geo.code} that offers them (aws:region), or drop the "
                      f"option that needs them")
    return passed(f"all {len(needs.services)} offered in {needs.region}: {', '.join(needs.services)}")


def _parameters(ssm, names: list[str]) -> dict[str, str]:
    """The names among `names` that exist (GetParameters takes ten at a time; unknown names come back
    in InvalidParameters, not as an error). Only AWS's public parameters are ever asked for: the
    account's own may hold secrets (the live scan never reads them at all)."""
    private = [n for n in names if not n.startswith(PUBLIC_PARAMETERS)]
    if private:
        raise ReadOnlyViolation(f"refusing ssm:GetParameters of {', '.join(private)}: preflight reads only "
                                f"{PUBLIC_PARAMETERS}*")
    found: dict[str, str] = {}
    for i in range(0, len(names), 10):
        found.update({p["Name"]: p.get("Value", "") for p in ssm.get_parameters(Names=names[i:i + 10])
                      .get("Parameters", [])})
    return found


@check("endpoints-offered", "every VPC endpoint service the stack creates is offered in the home region",
       {"ec2": ("DescribeVpcEndpointServices",)})
def endpoints_offered(probe: Probe) -> Outcome:
    wanted = list(probe.needs.endpoint_services)
    if not wanted:
        return passed("the plan creates no VPC endpoint")
    def offered(names: list[str]) -> set[str]:
        return {n for page in pages(probe.client("ec2"), "describe_vpc_endpoint_services", ServiceNames=names)
                for n in page.get("ServiceNames", [])}

    try:
        found = offered(wanted)
    except ClientError as exc:  # one unknown name refuses the whole call: ask name by name
        if _code(exc) != "InvalidServiceName":
            raise
        found = set()
        for name in wanted:
            try:
                found |= offered([name])
            except ClientError as one:
                if _code(one) != "InvalidServiceName":
                    raise
    missing = [s for s in wanted if s not in found]
    if missing:
        return failed(f"not offered in {probe.needs.region}: {', '.join(missing)}",
                      "the stack cannot reach these services privately there: choose another home region")
    return passed(f"all {len(wanted)} offered")


@check("kubernetes-version", "the cluster's Kubernetes version is offered by EKS",
       {"eks": ("DescribeClusterVersions",)}, applies=lambda n: n.kubernetes_version is not None)
def kubernetes_version(probe: Probe) -> Outcome:
    version = probe.needs.kubernetes_version
    found = [v for page in pages(probe.client("eks"), "describe_cluster_versions", clusterVersions=[version],
                                 includeAll=True)
             for v in page.get("clusterVersions", []) if v.get("clusterVersion") == version]
    fix = f"set kubernetes.version in stacks/catalog.yaml to one EKS offers in {probe.needs.region} " \
          f"(`aws eks describe-cluster-versions --region {probe.needs.region}`)"
    if not found:
        return failed(f"EKS in {probe.needs.region} does not offer Kubernetes {version}", fix)
    status = str(found[0].get("versionStatus") or found[0].get("status") or "").upper().replace("-", "_")
    if status == "UNSUPPORTED":
        return failed(f"Kubernetes {version} is unsupported on EKS in {probe.needs.region}", fix)
    return passed(f"Kubernetes {version} offered in {probe.needs.region} ({status or 'status not given'})")


# Zone IDs in which EKS refuses cluster subnets (EKS user guide, networking/network-reqs.adoc:
# "The subnets can't reside in the following Availability Zones"). Zone names map to different
# IDs in each account, so only the account can say whether a stack's zone names land there.
EKS_REFUSED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")


@check("eks-zones", "EKS accepts cluster subnets in the stack's zones",
       {"ec2": ("DescribeAvailabilityZones",)}, applies=lambda n: bool(n.zones))
def eks_zones(probe: Probe) -> Outcome:
    needs = probe.needs
    by_id = needs.zone_location == "availability-zone-id"
    answer = probe.client("ec2").describe_availability_zones(
        **({"ZoneIds": list(needs.zones)} if by_id else {"ZoneNames": list(needs.zones)}))
    ids = {z["ZoneId" if by_id else "ZoneName"]: z["ZoneId"] for z in answer.get("AvailabilityZones", [])}
    unknown = [z for z in needs.zones if z not in ids]
    if unknown:
        return failed(f"not zones of {needs.region} for this account: {', '.join(unknown)}",
                      "set availability_zones of the region in stacks/catalog.yaml to zones the account has "
                      f"(`aws ec2 describe-availability-zones --region {needs.region}`)")
    refused = [f"{z} ({ids[z]})" if z != ids[z] else z for z in needs.zones if ids[z] in EKS_REFUSED_ZONE_IDS]
    if refused:
        return failed(f"EKS refuses cluster subnets in {', '.join(refused)}",
                      f"pick other zones of {needs.region} for availability_zones in stacks/catalog.yaml: in this "
                      f"account the zone ids {', '.join(EKS_REFUSED_ZONE_IDS)} are refused "
                      f"(`aws ec2 describe-availability-zones --region {needs.region}` maps names to ids)")
    return passed(", ".join(f"{z} = {ids[z]}" for z in needs.zones))


@check("instance-types-offered", "the GPU and tunnel instance types are offered in the stack's zones",
       {"ec2": ("DescribeInstanceTypeOfferings",)})
def instance_types_offered(probe: Probe) -> Outcome:
    needs = probe.needs
    types = sorted({i.instance_type for i in needs.instances})
    offered: set[tuple[str, str]] = set()
    for page in pages(probe.client("ec2"), "describe_instance_type_offerings", LocationType=needs.zone_location,
                      Filters=[{"Name": "instance-type", "Values": types}]):
        offered |= {(o["InstanceType"], o["Location"]) for o in page.get("InstanceTypeOfferings", [])}
    problems, notes = [], []
    for need in needs.instances:
        have = [z for z in need.zones if (need.instance_type, z) in offered]
        lacking = [z for z in need.zones if z not in have]
        if (need.any_zone and not have) or (not need.any_zone and lacking):
            problems.append(f"{need.instance_type} ({need.role}) not offered in {', '.join(lacking)}")
        elif lacking:
            notes.append(f"{need.instance_type} only in {', '.join(have)}")
    if problems:
        return failed("; ".join(problems), "choose a type offered there (ai-companion:gpuInstanceType; the tunnel's "
                      "instance_type), or a home region whose zones offer it: `aws ec2 "
                      "describe-instance-type-offerings --location-type availability-zone`")
    zones = dict.fromkeys(z for i in needs.instances for z in i.zones)
    return passed(f"{', '.join(types)} offered in {', '.join(zones)}" + (f" ({'; '.join(notes)})" if notes else ""))


def _parameter_regions(needs: Needs) -> list[str]:
    """Where to read the global-infrastructure parameters: the home region itself (it may serve them
    although the list below predates it), the geography's regions that serve them, else us-east-1."""
    listed = [r for r in needs.cfg.geography.regions if r in GLOBAL_INFRASTRUCTURE_REGIONS]
    return list(dict.fromkeys([needs.region, *(listed or [ACCOUNT_API_REGION])]))


@check("ami-published", "the AMIs the program looks up are published in the home region",
       {"ssm": ("GetParameters",)}, applies=lambda n: bool(n.ami_parameters))
def ami_published(probe: Probe) -> Outcome:
    names = list(probe.needs.ami_parameters)
    found = _parameters(probe.client("ssm"), names)
    missing = [n for n in names if not found.get(n, "").startswith("ami-")]
    if missing:
        return failed(f"not published in {probe.needs.region}: {', '.join(missing)}",
                      "the tunnel instance cannot resolve its AMI there: set TUNNEL_AMI_PARAMETER "
                      "(infra/program/components/api_tunnel.py) to one published in the region")
    return passed(", ".join(f"{n} = {found[n]}" for n in names))


def _quota(probe: Probe, code: str) -> dict:
    """The applied quota, or AWS's default when none was ever applied to the account."""
    quotas = probe.client("service-quotas")
    try:
        return quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    except ClientError as exc:
        if _code(exc) != "NoSuchResourceException":
            raise
        return quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]


@check("gpu-vcpu-quota", "the On-Demand vCPU quota covers the GPU pool at gpuMaxSize",
       {"ec2": ("DescribeInstanceTypes",), "service-quotas": ("GetServiceQuota", "GetAWSDefaultServiceQuota")})
def gpu_vcpu_quota(probe: Probe) -> Outcome:
    gpu = probe.needs.cfg.gpu
    family = gpu.instance_type.split(".")[0]
    known = next((c for prefix, c in sorted(VCPU_QUOTA_OF_FAMILY.items(), key=lambda kv: -len(kv[0]))
                  if family.startswith(prefix)), None)
    if known is None:
        return not_checked(f"no vCPU quota code known for family {family}", "add it to VCPU_QUOTA_OF_FAMILY")
    code, words = known
    (info,) = probe.client("ec2").describe_instance_types(InstanceTypes=[gpu.instance_type])["InstanceTypes"]
    vcpus = int(info["VCpuInfo"]["DefaultVCpus"])
    gpus = sum(int(g.get("Count", 0)) for g in (info.get("GpuInfo") or {}).get("Gpus", [])) or 1
    needed = math.ceil(gpu.max_size / gpus) * vcpus
    quota = _quota(probe, code)
    name = quota.get("QuotaName") or ""
    if name and words not in name:
        return not_checked(f"quota {code} is '{name}', not the '{words}' vCPU quota",
                           "correct VCPU_QUOTA_OF_FAMILY in infra/engine/preflight/checks.py")
    value = float(quota["Value"])
    detail = (f"{code} is {value:g} vCPUs in {probe.needs.region}; gpuMaxSize {gpu.max_size} GPU(s) on "
              f"{gpu.instance_type} ({gpus} GPU, {vcpus} vCPUs each) needs {needed}")
    if value < needed:
        return failed(detail, f"request {needed} or more: `aws service-quotas request-service-quota-increase "
                              f"--region {probe.needs.region} --service-code ec2 --quota-code {code} "
                              f"--desired-value {needed}`, or lower ai-companion:gpuMaxSize")
    return passed(detail)


@check("bedrock-models", "each ZM+ model or inference profile is accessible",
       {"bedrock": ("GetFoundationModel", "GetInferenceProfile", "GetFoundationModelAvailability")},
       applies=lambda n: bool(n.cfg.bedrock_models))
def bedrock_models(probe: Probe) -> Outcome:
    cfg = probe.needs.cfg
    bedrock = probe.client("bedrock")
    problems, seen = [], []
    for model in cfg.bedrock_models:
        profile = model.profile_id(cfg.geography.zm_plus.profile_prefix)
        try:
            if profile:
                status = bedrock.get_inference_profile(inferenceProfileIdentifier=profile).get("status")
                if status != "ACTIVE":
                    problems.append(f"{profile}: profile status {status}")
                    continue
            else:
                details = bedrock.get_foundation_model(modelIdentifier=model.model_id)["modelDetails"]
                lifecycle = (details.get("modelLifecycle") or {}).get("status")
                if lifecycle != "ACTIVE":
                    problems.append(f"{model.model_id}: lifecycle {lifecycle}")
                    continue
        except ClientError as exc:
            if _code(exc) not in ("ResourceNotFoundException", "ValidationException"):
                raise
            problems.append(f"{profile or model.model_id}: not offered in {cfg.region} ({_code(exc)})")
            continue
        access = bedrock.get_foundation_model_availability(modelId=model.model_id)
        refused = [f"{k} {v}" for k, v in (("authorization", access.get("authorizationStatus")),
                                            ("entitlement", access.get("entitlementAvailability")),
                                            ("agreement", (access.get("agreementAvailability") or {}).get("status")))
                   if v not in ("AUTHORIZED", "AVAILABLE")]
        if not profile and access.get("regionAvailability") != "AVAILABLE":
            refused.append(f"region {access.get('regionAvailability')}")
        if refused:
            problems.append(f"{model.model_id}: {', '.join(refused)}")
        else:
            seen.append(profile or model.model_id)
    if problems:
        return failed("; ".join(problems), f"in the Bedrock console of {cfg.region}, Model access: request access to "
                      "these Anthropic models (use-case form, Marketplace agreement), or drop them from "
                      "ai-companion:zmPlus.models")
    return passed(f"accessible from {cfg.region}: {', '.join(seen)}")


@check("scp-attached", "the geography's SCP (`residency scp`) is attached to the account",
       {"sts": ("GetCallerIdentity",),
        "organizations": ("DescribeOrganization", "ListParents", "ListPoliciesForTarget", "DescribePolicy")})
def scp_attached(probe: Probe) -> Outcome:
    cfg = probe.needs.cfg
    wanted = statement_digests(build_scp(cfg.geography, cfg.has("zm_plus")))
    fix = f"attach the output of `residency scp --stack {cfg.stack}` to the account or its OU in AWS Organizations"
    account = probe.client("sts", ACCOUNT_API_REGION).get_caller_identity()["Account"]
    org = probe.client("organizations", ACCOUNT_API_REGION)
    try:
        org.describe_organization()
    except ClientError as exc:
        if _code(exc) != "AWSOrganizationsNotInUseException":
            raise
        return failed(f"account {account} is in no AWS Organization, so no SCP can hold it", fix)
    have: set[str] = set()
    target = account
    for _ in range(6):  # account -> OUs (at most five levels) -> root
        for page in pages(org, "list_policies_for_target", TargetId=target, Filter="SERVICE_CONTROL_POLICY"):
            for p in page.get("Policies", []):
                have |= statement_digests(org.describe_policy(PolicyId=p["Id"])["Policy"].get("Content") or "")
        parents = [p for page in pages(org, "list_parents", ChildId=target) for p in page.get("Parents", [])]
        if not parents:
            break
        target = parents[0]["Id"]
    missing = wanted - have
    if missing:
        return failed(f"{len(missing)} of {len(wanted)} statement(s) of the {cfg.geography.code} SCP are in no SCP "
                      f"attached to account {account}, its OUs or the root", fix)
    return passed(f"every statement of the {cfg.geography.code} SCP is in force on account {account}")
