"""Managed delivery and forwarding: Kinesis Data Firehose delivery streams (every destination
configuration) and Route 53 Resolver forwarding rules (where DNS queries are sent).

A delivery stream pushes data to its destination with no VPC route or firewall in between: its
destination URLs and hosts are judged by RSD-055, its ARNs by RSD-010, and an S3 destination's
bucket is recorded with its region (placed outside the geography, RSD-001 reports it). A
forwarding rule sends every query for its domain to its target IPs: RSD-064 judges them.
"""

from __future__ import annotations

from typing import Any

from infra.engine.live.core import Unit, camel, pages, register_reads

register_reads("firehose", "ListDeliveryStreams", "DescribeDeliveryStream")
register_reads("route53resolver", "ListResolverRules")
STREAM = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
RESOLVER_RULE = "aws:route53/resolverRule:ResolverRule"
# DescribeDeliveryStream's destination descriptions -> pulumi-aws FirehoseDeliveryStream inputs
# (sdk/python/pulumi_aws/kinesis/firehose_delivery_stream.py).
DESTINATIONS = {
    "ExtendedS3DestinationDescription": ("extended_s3", "extendedS3Configuration"),
    "S3DestinationDescription": ("s3", "extendedS3Configuration"),
    "HttpEndpointDestinationDescription": ("http_endpoint", "httpEndpointConfiguration"),
    "AmazonopensearchserviceDestinationDescription": ("opensearch", "opensearchConfiguration"),
    "AmazonOpenSearchServerlessDestinationDescription": ("opensearchserverless", "opensearchserverlessConfiguration"),
    "ElasticsearchDestinationDescription": ("elasticsearch", "elasticsearchConfiguration"),
    "RedshiftDestinationDescription": ("redshift", "redshiftConfiguration"),
    "SplunkDestinationDescription": ("splunk", "splunkConfiguration"),
    "SnowflakeDestinationDescription": ("snowflake", "snowflakeConfiguration"),
    "IcebergDestinationDescription": ("iceberg", "icebergConfiguration"),
}
PAGE = 10000  # ListDeliveryStreams' largest page


def pulumi_names(value: Any) -> Any:
    """camel(), and `...ARN` members as pulumi-aws spells them (`BucketARN` -> `bucketArn`)."""
    value = camel(value)
    if isinstance(value, dict):
        return {(k[:-3] + "Arn" if k.endswith("ARN") else k): pulumi_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pulumi_names(v) for v in value]
    return value


def _stream_names(firehose) -> list[str]:
    """ListDeliveryStreams has no paginator: it pages by the last name seen."""
    names: list[str] = []
    params: dict = {"Limit": PAGE}
    while True:
        page = firehose.list_delivery_streams(**params)
        names += page.get("DeliveryStreamNames") or []
        if not page.get("HasMoreDeliveryStreams") or not names:
            return names
        params = {"Limit": PAGE, "ExclusiveStartDeliveryStreamName": names[-1]}


def scan_firehose(unit: Unit) -> None:
    firehose = unit.client()
    names: list[str] = []
    with unit.step("ListDeliveryStreams"):
        names = _stream_names(firehose)
    for name in names:
        with unit.step(f"delivery stream {name}"):
            d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
            inputs: dict = {"name": name}
            source = (d.get("Source") or {}).get("KinesisStreamSourceDescription")
            if source:
                inputs["kinesisSourceConfiguration"] = pulumi_names(source)
            for dest in d.get("Destinations") or []:
                for key, (kind, field) in DESTINATIONS.items():
                    if key in dest and not (key == "S3DestinationDescription" and "ExtendedS3DestinationDescription" in dest):
                        inputs["destination"] = kind
                        inputs[field] = pulumi_names(dest[key])
                        bucket = inputs[field].get("bucketArn") if kind in ("extended_s3", "s3") else None
                        if bucket:
                            unit.add_bucket(bucket.split(":::", 1)[-1])
            unit.add(STREAM, name, inputs, arn=d.get("DeliveryStreamARN"), name=name)


def scan_resolver_rules(unit: Unit) -> None:
    """Forwarding rules (the autodefined recursive rules resolve inside AWS: not recorded)."""
    with unit.step("ListResolverRules"):
        for page in pages(unit.client("route53resolver"), "list_resolver_rules"):
            for r in page.get("ResolverRules") or []:
                if r.get("RuleType") != "FORWARD":
                    continue
                unit.add(RESOLVER_RULE, r["Id"], {
                    "name": r.get("Name"), "domainName": r.get("DomainName"), "ruleType": r.get("RuleType"),
                    "resolverEndpointId": r.get("ResolverEndpointId"),
                    "targetIps": [{"ip": t.get("Ip"), "ipv6": t.get("Ipv6"), "port": t.get("Port"),
                                   "protocol": t.get("Protocol")} for t in r.get("TargetIps") or []],
                }, arn=r.get("Arn"), name=r.get("Name") or r["Id"])
