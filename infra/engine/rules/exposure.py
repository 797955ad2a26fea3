"""Rule class 9: public exposure (issue #13).

Control Tower counts these as data-residency controls: data anyone can read can be read from
anywhere. Resource policies granting `*`, public ACLs, world-shared snapshots, images and
documents, public-IP launch settings (RSD-022), SageMaker notebooks with direct internet access,
and OpenSearch domains and EMR clusters outside a VPC.

Policy documents come from `engine.Facts.policy_docs`: each is parsed once per resource and
shared with the Bedrock/IAM rules.

A `Principal: *` statement is not public when a condition really narrows who can use it. Accepted
(`NARROWING_KEYS`), with a positive operator (StringEquals/Like, ArnEquals/Like, their
IgnoreCase and ForAnyValue forms; not `...IfExists`, which holds when the key is absent, and not
negated operators) and a value that is not only wildcards:
- network origin: `aws:SourceVpce`, `aws:SourceVpc` (only requests through the stack's VPC or
  endpoint, which the network rules keep inside the region);
- caller identity: `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:PrincipalAccount`,
  `aws:PrincipalArn`, `kms:CallerAccount` (only principals of named accounts/organizations);
- service-on-behalf-of: `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOrgID`,
  `aws:SourceOrgPaths`, `aws:SourceOwner` (a service acting for a named account/resource).
Not accepted: `aws:SourceIp` (an address range is not an identity, and a public range is the
internet), `aws:SecureTransport`, `aws:Referer` (set by the client), `kms:ViaService` alone (any
account's principal can call through the service).
"""

from __future__ import annotations

from typing import Any

from infra.engine.model import Resource
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, get_path, rule, truthy
from infra.engine.rules.patterns import as_list

NARROWING_KEYS = frozenset(k.lower() for k in (
    "aws:SourceVpce", "aws:SourceVpc", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:PrincipalAccount",
    "aws:PrincipalArn", "kms:CallerAccount", "aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID",
    "aws:SourceOrgPaths", "aws:SourceOwner"))
_POSITIVE_OPERATORS = ("stringequals", "stringlike", "stringequalsignorecase", "arnequals", "arnlike")

# Resource types whose policy document governs access from outside the account. VPC endpoint
# policies are not here: `Principal: *` there is the norm and reachable only from the VPC.
RESOURCE_POLICY_TYPES = (
    "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2",
    "aws:s3/accessPoint:AccessPoint", "aws:s3control/accessPointPolicy:AccessPointPolicy",
    "aws:sqs/queuePolicy:QueuePolicy", "aws:sqs/queue:Queue", "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topic:Topic",
    "aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy",
    "aws:secretsmanager/secretPolicy:SecretPolicy", "aws:secretsmanager/secret:Secret",
    "aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:ecr/registryPolicy:RegistryPolicy",
    "aws:opensearch/domainPolicy:DomainPolicy", "aws:opensearch/domain:Domain",
    "aws:elasticsearch/domainPolicy:DomainPolicy", "aws:elasticsearch/domain:Domain",
    "aws:efs/fileSystemPolicy:FileSystemPolicy", "aws:backup/vaultPolicy:VaultPolicy", "aws:glacier/vault:Vault",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
    "aws:apigateway/restApiPolicy:RestApiPolicy", "aws:apigateway/restApi:RestApi",
)


def _wildcard_only(value: Any) -> bool:
    return not isinstance(value, str) or value.strip("*?") == ""


def narrowing_conditions(condition: Any) -> list[str]:
    """The accepted narrowing condition keys of a statement (empty: nothing narrows it)."""
    found = []
    for operator, keys in (condition.items() if isinstance(condition, dict) else ()):
        op = str(operator).lower()
        if op.startswith("foranyvalue:"):
            op = op.split(":", 1)[1]
        if op not in _POSITIVE_OPERATORS or not isinstance(keys, dict):
            continue  # IfExists, negated, ForAllValues (true on an empty set), numeric, IP ...
        for key, value in keys.items():
            values = as_list(value)
            if str(key).lower() in NARROWING_KEYS and values and not any(_wildcard_only(v) for v in values):
                found.append(str(key))
    return found


def _principal_public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(isinstance(p, str) and (p == "*" or p.startswith("arn:") and ":*:" in p or p.endswith("::*:root"))
                   for p in as_list(principal.get("AWS")))
    return False


def public_statements(doc: dict) -> list[str]:
    """Why each Allow statement of a policy document is open to anyone (empty: none is)."""
    out = []
    for i, st in enumerate(P.statements(doc)):
        if st.get("Effect", "Allow") != "Allow":
            continue
        sid = f"Statement[{i}]" + (f" (Sid {st['Sid']})" if st.get("Sid") else "")
        if "NotPrincipal" in st:
            out.append(f"{sid} allows everyone except NotPrincipal")
        elif _principal_public(st.get("Principal")) and not narrowing_conditions(st.get("Condition")):
            out.append(f"{sid} allows Principal '*' without a narrowing condition")
    return out


@rule("RSD-057", "no_public_resource_policy", "Resource policy open to anyone", "CRITICAL",
      rationale="""A resource policy (S3 bucket or access point, SQS, SNS, KMS, Secrets Manager,
      ECR, OpenSearch, EFS, Backup, Glacier, CloudWatch Logs, EventBridge, API Gateway) with an
      Allow for `Principal: *` (or `AWS: *`, or NotPrincipal) lets any AWS account, from any
      Region, read or write the data. A condition on the source VPC/endpoint, the caller's
      organization or account, or the source account/ARN of a service really narrows it and is
      accepted (infra/engine/rules/exposure.py lists which and why); `aws:SourceIp`, `IfExists` and
      negated operators do not narrow.""",
      remediation="""Grant named principals, or add aws:SourceVpce / aws:PrincipalOrgID /
      aws:SourceAccount conditions with StringEquals.""",
      category="exposure", types=RESOURCE_POLICY_TYPES, gates=("policy",),
      controls=("Prowler:s3_bucket_public_access (partly)",))
def no_public_resource_policy(res: Resource, scope: Scope):
    for field, doc in scope.facts(res).policy_docs:
        for why in public_statements(doc):
            yield f"{field}: {why}"


@rule("RSD-058", "no_public_lambda_permission", "Lambda permission or layer shared with everyone", "CRITICAL",
      rationale="""A Lambda permission for principal `*` (without a source account, source ARN or
      organization) lets anyone invoke the function; a layer permission for `*` without an
      organization shares its code with every account.""",
      remediation="Name the invoking service and set source_account/source_arn, or share layers with an organization only.",
      category="exposure",
      types=("aws:lambda/permission:Permission", "aws:lambda/layerVersionPermission:LayerVersionPermission"),
      controls=("CT:LAMBDA_FUNCTION_PUBLIC_ACCESS_PROHIBITED",
                "Prowler:awslambda_function_not_publicly_accessible"))
def no_public_lambda_permission(res: Resource, scope: Scope):
    p = res.props
    principal = p.get("principal")
    if not (isinstance(principal, str) and "*" in principal):
        return
    narrowing = ("organizationId",) if res.type.endswith("LayerVersionPermission") else (
        "sourceAccount", "sourceArn", "principalOrgId")
    if not any(isinstance(p.get(k), str) and not _wildcard_only(p.get(k)) for k in narrowing):
        yield f"principal '{principal}' without {' / '.join(narrowing)}"


_PUBLIC_CANNED = ("public-read", "public-read-write", "authenticated-read")
_PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                  "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


@rule("RSD-059", "no_public_s3_acl", "S3 bucket or object ACL grants public access", "CRITICAL",
      rationale="""Canned ACLs public-read, public-read-write and authenticated-read, and grants
      to the AllUsers or AuthenticatedUsers groups, let anyone (any AWS account) read or write the
      objects from anywhere.""",
      remediation="Use private ACLs (better: BucketOwnerEnforced ownership, no ACLs) and all four public access blocks.",
      category="exposure",
      types=("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:s3/bucketAcl:BucketAcl",
             "aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketObject:BucketObject",
             "aws:s3/bucketObjectv2:BucketObjectv2"),
      controls=("Prowler:s3_bucket_public_access (partly)",))
def no_public_s3_acl(res: Resource, scope: Scope):
    p = res.props
    if str(p.get("acl") or "").lower() in _PUBLIC_CANNED:
        yield f"acl is {p['acl']}"
    grants = as_list(p.get("grants")) + as_list(get_path(p, "accessControlPolicy", "grants"))
    for i, g in enumerate(grants):
        if not isinstance(g, dict):
            continue
        uri = g.get("uri") or get_path(g, "grantee", "uri")
        if uri in _PUBLIC_GROUPS:
            yield f"grants[{i}] to {uri.rsplit('/', 1)[-1]} ({g.get('permission') or g.get('permissions')})"


_BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@rule("RSD-060", "s3_public_access_blocked", "S3 public access block not fully on", "HIGH",
      rationale="""The four S3 Block Public Access settings (account and bucket) are what keeps a
      future ACL or bucket policy from making data public. Each defaults to false in the provider:
      one not explicitly true leaves that door open.""",
      remediation="Set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets to true.",
      category="exposure",
      types=("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
             "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
      controls=("CT:S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC",
                "Prowler:s3_account_level_public_access_blocks"))
def s3_public_access_blocked(res: Resource, scope: Scope):
    off = [b for b in _BLOCKS if not truthy(res.props.get(b))]
    if off:
        yield f"{', '.join(off)} not true"


def _shared_with_all(res: Resource) -> str | None:
    p, t = res.props, res.type
    if t == "aws:ec2/amiLaunchPermission:AmiLaunchPermission" and str(p.get("group") or "").lower() == "all":
        return "AMI launch permission for group 'all' makes the image public"
    if t in ("aws:ebs/snapshotBlockPublicAccess:SnapshotBlockPublicAccess",
             "aws:ec2/imageBlockPublicAccess:ImageBlockPublicAccess") and str(p.get("state") or "").lower() == "unblocked":
        return "block public access is 'unblocked': snapshots/images may be shared publicly"
    if t in ("aws:rds/snapshot:Snapshot", "aws:rds/clusterSnapshot:ClusterSnapshot"):
        if any(str(a).lower() == "all" for a in as_list(p.get("sharedAccounts"))):
            return "sharedAccounts includes 'all': the snapshot is public"
    if t == "aws:ssm/document:Document":
        perms = p.get("permissions") if isinstance(p.get("permissions"), dict) else {}
        if any(str(a).strip().lower() == "all" for a in str(perms.get("accountIds") or "").split(",")):
            return "permissions share the document with All accounts"
    return None


@rule("RSD-061", "no_public_snapshot_or_image", "Public snapshot, AMI or SSM document", "CRITICAL",
      rationale="""A snapshot or image shared with 'all' can be copied into any account and any
      Region; an account setting 'unblocked' allows that; a public SSM document exposes its
      content to every account.""",
      remediation="Share with named accounts only; set EBS snapshot and AMI block public access to block-all-sharing.",
      category="exposure",
      types=("aws:ec2/amiLaunchPermission:AmiLaunchPermission", "aws:ebs/snapshotBlockPublicAccess:SnapshotBlockPublicAccess",
             "aws:ec2/imageBlockPublicAccess:ImageBlockPublicAccess", "aws:rds/snapshot:Snapshot",
             "aws:rds/clusterSnapshot:ClusterSnapshot", "aws:ssm/document:Document"),
      controls=("CT:EBS_SNAPSHOT_PUBLIC_RESTORABLE_CHECK (partly)", "CT:SSM_DOCUMENT_NOT_PUBLIC",
                "Prowler:ec2_ebs_public_snapshot",
                "Prowler:ec2_ami_public", "Prowler:ec2_ebs_snapshot_account_block_public_access"))
def no_public_snapshot_or_image(res: Resource, scope: Scope):
    why = _shared_with_all(res)
    if why:
        yield why


@rule("RSD-062", "sagemaker_no_direct_internet", "SageMaker notebook or domain with direct internet access", "HIGH",
      rationale="""A notebook instance's direct internet access (the default, `Enabled`) and a
      Studio domain's `PublicInternetOnly` network mode (the default) give the notebook a path to
      the internet that bypasses the VPC and its firewall.""",
      remediation="Set direct_internet_access='Disabled' (with a subnet) and app_network_access_type='VpcOnly'.",
      category="exposure", types=("aws:sagemaker/notebookInstance:NotebookInstance", "aws:sagemaker/domain:Domain"),
      controls=("CT:SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET_ACCESS",))
def sagemaker_no_direct_internet(res: Resource, scope: Scope):
    p = res.props
    if res.type.endswith("NotebookInstance"):
        if str(p.get("directInternetAccess") or "Enabled") != "Disabled":
            yield f"directInternetAccess is {p.get('directInternetAccess') or 'Enabled (the default)'}"
    elif str(p.get("appNetworkAccessType") or "PublicInternetOnly") != "VpcOnly":
        yield f"appNetworkAccessType is {p.get('appNetworkAccessType') or 'PublicInternetOnly (the default)'}"


def _outside_vpc(res: Resource) -> str | None:
    p, t = res.props, res.type
    if t in ("aws:opensearch/domain:Domain", "aws:elasticsearch/domain:Domain"):
        if not as_list(get_path(p, "vpcOptions", "subnetIds")):
            return "domain has no vpcOptions.subnetIds: its endpoint is public"
    elif t == "aws:emr/cluster:Cluster":
        ec2 = p.get("ec2Attributes") if isinstance(p.get("ec2Attributes"), dict) else {}
        if not ec2.get("subnetId") and not as_list(ec2.get("subnetIds")):
            return "cluster has no ec2Attributes.subnetId: it launches in the default VPC's public subnets"
    elif t == "aws:emr/blockPublicAccessConfiguration:BlockPublicAccessConfiguration":
        if not truthy(p.get("blockPublicSecurityGroupRules")):
            return "blockPublicSecurityGroupRules is not true: clusters may open ports to the internet"
    return None


@rule("RSD-063", "managed_cluster_in_vpc", "OpenSearch domain or EMR cluster outside a VPC", "HIGH",
      rationale="""An OpenSearch/Elasticsearch domain without VPC options has a public endpoint;
      an EMR cluster without a subnet runs in the default VPC, whose subnets assign public IPs;
      EMR block public access off lets clusters open ports to the internet.""",
      remediation="Place domains and clusters in the stack's private subnets; keep EMR block public access on.",
      category="exposure",
      types=("aws:opensearch/domain:Domain", "aws:elasticsearch/domain:Domain", "aws:emr/cluster:Cluster",
             "aws:emr/blockPublicAccessConfiguration:BlockPublicAccessConfiguration"),
      controls=("CT:ELASTICSEARCH_IN_VPC_ONLY", "CT:EMR_MASTER_NO_PUBLIC_IP (partly)",
                "Prowler:opensearch_service_domains_not_publicly_accessible"))
def managed_cluster_in_vpc(res: Resource, scope: Scope):
    why = _outside_vpc(res)
    if why:
        yield why
