"""Outside the geography: every enabled region is swept for resources that hold or process data.

The geography's own regions get the full scan (every service, every setting). Every other region
the account has enabled gets a cheap inventory instead, because there nothing data-bearing may
exist at all: each resource found is recorded in its region, and RSD-001 (the one placement rule)
reports it, exactly as it reports a stack resource placed outside the geography.

The inventory, cheapest first:
1. Resource Explorer's aggregator index, when the account has one: one paged ListResources in the
   aggregator's region covers every indexed region (`ListIndexes` finds it). It may lag behind
   changes by minutes and indexes only the types Resource Explorer supports.
2. Else, per region: the declared list calls below (they see untagged resources too), plus the
   Resource Groups Tagging API for the data-bearing types without a listing here (it sees only
   resources that carry or once carried tags).
S3 buckets are listed account-wide by `s3.scan` (ListBuckets gives each bucket's region).

Each listing is declared once (`Listing`): the operation allow-list (core.ALLOWED_OPERATIONS) and
the audit role's policy are derived from it, so adding a data-bearing service is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jmespath
from botocore import xform_name

from infra.engine.live.core import Unit, pages, register_reads

SERVICE = "inventory"  # the "not checked" label of a swept region
INDEX_SERVICE = "resource-explorer-2"


@dataclass(frozen=True)
class Listing:
    service: str  # botocore service name
    operation: str  # a paged List/Describe call
    items: str  # JMESPath from one page to its items
    type: str  # pulumi-aws type token
    arn_type: str  # "<arn service>:<arn resource type>", how ARNs of this type read (arn_type())
    id: str = "@"  # JMESPath from an item to its id ("@": the item is the id)
    arn: str | None = None  # JMESPath from an item to its ARN, when the listing gives one
    params: dict = field(default_factory=dict)


DATA_LISTINGS = (
    Listing("dynamodb", "ListTables", "TableNames[]", "aws:dynamodb/table:Table", "dynamodb:table"),
    Listing("rds", "DescribeDBInstances", "DBInstances[]", "aws:rds/instance:Instance", "rds:db",
            "DBInstanceIdentifier", "DBInstanceArn"),
    Listing("rds", "DescribeDBClusters", "DBClusters[]", "aws:rds/cluster:Cluster", "rds:cluster",
            "DBClusterIdentifier", "DBClusterArn"),
    Listing("secretsmanager", "ListSecrets", "SecretList[]", "aws:secretsmanager/secret:Secret",
            "secretsmanager:secret", "Name", "ARN"),
    Listing("efs", "DescribeFileSystems", "FileSystems[]", "aws:efs/fileSystem:FileSystem",
            "elasticfilesystem:file-system", "FileSystemId", "FileSystemArn"),
    Listing("kinesis", "ListStreams", "StreamNames[]", "aws:kinesis/stream:Stream", "kinesis:stream"),
    Listing("firehose", "ListDeliveryStreams", "DeliveryStreamNames[]",
            "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "firehose:deliverystream",
            params={"Limit": 10000}),
    Listing("sqs", "ListQueues", "QueueUrls[]", "aws:sqs/queue:Queue", "sqs:"),
    Listing("sns", "ListTopics", "Topics[].TopicArn", "aws:sns/topic:Topic", "sns:", "@", "@"),
    Listing("lambda", "ListFunctions", "Functions[]", "aws:lambda/function:Function", "lambda:function",
            "FunctionName", "FunctionArn"),
    Listing("eks", "ListClusters", "clusters[]", "aws:eks/cluster:Cluster", "eks:cluster"),
    Listing("opensearch", "ListDomainNames", "DomainNames[].DomainName", "aws:opensearch/domain:Domain", "es:domain"),
    Listing("redshift", "DescribeClusters", "Clusters[]", "aws:redshift/cluster:Cluster", "redshift:cluster",
            "ClusterIdentifier"),
    Listing("ec2", "DescribeInstances", "Reservations[].Instances[]", "aws:ec2/instance:Instance", "ec2:instance",
            "InstanceId"),
    Listing("ec2", "DescribeVolumes", "Volumes[]", "aws:ebs/volume:Volume", "ec2:volume", "VolumeId"),
    Listing("ecr", "DescribeRepositories", "repositories[]", "aws:ecr/repository:Repository", "ecr:repository",
            "repositoryName", "repositoryArn"),
    Listing("elasticache", "DescribeCacheClusters", "CacheClusters[]", "aws:elasticache/cluster:Cluster",
            "elasticache:cluster", "CacheClusterId", "ARN"),
    Listing("sagemaker", "ListEndpoints", "Endpoints[]", "aws:sagemaker/endpoint:Endpoint", "sagemaker:endpoint",
            "EndpointName", "EndpointArn"),
    Listing("sagemaker", "ListNotebookInstances", "NotebookInstances[]",
            "aws:sagemaker/notebookInstance:NotebookInstance", "sagemaker:notebook-instance",
            "NotebookInstanceName", "NotebookInstanceArn"),
    Listing("logs", "DescribeLogGroups", "logGroups[]", "aws:cloudwatch/logGroup:LogGroup", "logs:log-group",
            "logGroupName", "arn"),
)
# Data-bearing types with no listing here: found through the tagging API (tagged ones only) or
# the aggregator index.
TAGGED_TYPES = {
    "elasticmapreduce:cluster": "aws:emr/cluster:Cluster",
    "glue:database": "aws:glue/catalogDatabase:CatalogDatabase",
    "memorydb:cluster": "aws:memorydb/cluster:Cluster",
    "timestream:database": "aws:timestreamwrite/database:Database",
    "kafka:cluster": "aws:msk/cluster:Cluster",
    "elasticache:replicationgroup": "aws:elasticache/replicationGroup:ReplicationGroup",
    "backup:backup-vault": "aws:backup/vault:Vault",
    "glacier:vaults": "aws:glacier/vault:Vault",
    "fsx:file-system": "aws:fsx/lustreFileSystem:LustreFileSystem",
    "dax:cache": "aws:dax/cluster:Cluster",
}
ARN_TYPES = {**{listing.arn_type: listing.type for listing in DATA_LISTINGS}, **TAGGED_TYPES}
TAGGING_TYPE_FILTERS = sorted({t.split(":", 1)[0] if t.endswith(":") else t for t in TAGGED_TYPES})

for _listing in DATA_LISTINGS:
    register_reads(_listing.service, _listing.operation)
register_reads("resourcegroupstaggingapi", "GetResources")
register_reads(INDEX_SERVICE, "ListIndexes", "ListResources")


def arn_type(arn: str) -> str:
    """`dynamodb:table` for arn:aws:dynamodb:r:a:table/x; `sqs:` for a queue (no type part)."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return ""
    resource = parts[5]
    kind = resource.replace("/", ":").split(":", 1)[0] if ("/" in resource or ":" in resource) else ""
    return f"{parts[2]}:{kind}"


def arn_id(arn: str) -> str:
    """The last name in an ARN (a table's name, a queue's name, a cluster's id)."""
    return arn.replace("/", ":").rsplit(":", 1)[-1]


def arn_region(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[3] if len(parts) > 3 else ""


@lru_cache(maxsize=None)
def _endpoint_resolver():
    """botocore's endpoint resolver, built once: each new session re-reads endpoints.json (~1 MB),
    which cost a full scan about 3 s of CPU when every region asked a session of its own."""
    import botocore.loaders
    import botocore.regions

    return botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))


@lru_cache(maxsize=None)
def partition_of(region: str) -> str:
    """The partition a region belongs to (DescribeRegions on an emulator lists several)."""
    return _endpoint_resolver().get_partition_for_region(region)


def _record(unit: Unit, type_: str, rid: str, arn: str | None, region: str) -> None:
    unit.add(type_, rid, {}, arn=arn, name=rid, region=region)


def scan_region(unit: Unit) -> None:
    """One region outside the geography: the declared listings, then the tagging API."""
    for listing in DATA_LISTINGS:
        with unit.step(f"{listing.service}:{listing.operation}"):
            client = unit.client(listing.service)
            for page in pages(client, xform_name(listing.operation), **listing.params):
                for item in jmespath.search(listing.items, page) or []:
                    rid = str(jmespath.search(listing.id, item))
                    arn = jmespath.search(listing.arn, item) if listing.arn else None
                    _record(unit, listing.type, rid, arn, unit.region)
    with unit.step("tagging:GetResources"):
        tagging = unit.client("resourcegroupstaggingapi")
        for page in pages(tagging, "get_resources", ResourceTypeFilters=TAGGING_TYPE_FILTERS):
            for mapping in page.get("ResourceTagMappingList") or []:
                arn = mapping["ResourceARN"]
                if arn_type(arn) in TAGGED_TYPES:
                    _record(unit, TAGGED_TYPES[arn_type(arn)], arn_id(arn), arn, unit.region)


def aggregator_region(clients, home: str) -> str | None:
    """The region of the account's Resource Explorer aggregator index, or None (no index, or not
    readable: the per-region sweep then runs, which is complete without it)."""
    try:
        indexes = [i for page in pages(clients(INDEX_SERVICE, home), "list_indexes", Type="AGGREGATOR")
                   for i in page.get("Indexes") or []]
    except Exception:  # noqa: BLE001 -- any failure: fall back to the per-region sweep
        return None
    return indexes[0].get("Region") if indexes else None


def scan_index(unit: Unit) -> None:
    """Every indexed resource of a data-bearing type in a swept region, from the aggregator index
    (one unit, in the aggregator's region). `unit.scan.sweep_regions` are the regions it judges."""
    wanted = set(unit.scan.sweep_regions)
    with unit.step("ListResources"):
        for page in pages(unit.client(INDEX_SERVICE), "list_resources"):
            for r in page.get("Resources") or []:
                arn = r.get("Arn") or ""
                region = r.get("Region") or arn_region(arn)
                if region in wanted and arn_type(arn) in ARN_TYPES:
                    _record(unit, ARN_TYPES[arn_type(arn)], arn_id(arn), arn, region)
