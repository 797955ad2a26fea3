"""Rule class 4: data replicated or delivered out of the region.

Fail closed: a destination whose region cannot be proven inside the geography (unknown, secret,
region-less ARN that resolves to nothing in the stack) is a finding.
"""

from __future__ import annotations

import json

from infra.engine.model import Resource
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import STANCE_NOTE, Scope, arn_region_verdict, region_verdict, rule, truthy
from infra.engine.rules.patterns import as_list

_FIX = "Keep every replica and copy inside the geography's regions, or remove the replication."


def _s3_destinations(res: Resource):
    p = res.props
    if res.type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
        rules = as_list(p.get("rules"))
        prefix = "rules"
    else:  # inline (deprecated) replication configuration on a bucket
        conf = p.get("replicationConfiguration") or p.get("replicationConfigurations")
        conf = conf[0] if isinstance(conf, list) and conf else conf
        rules = as_list(conf.get("rules")) if isinstance(conf, dict) else []
        prefix = "replicationConfiguration.rules"
    for i, r in enumerate(rules):
        if isinstance(r, dict):
            dest = r.get("destination")
            dest = dest[0] if isinstance(dest, list) and dest else dest
            yield f"{prefix}[{i}].destination.bucket", dest.get("bucket") if isinstance(dest, dict) else None


def bucket_region(arn: str, scope: Scope) -> tuple[bool, str | None]:
    """(found, region) of the bucket an `arn:aws:s3:::name` (or a bare name) points at, looked up
    in the stack."""
    name = arn.rsplit(":", 1)[-1].split("/", 1)[0]
    for r in scope.snapshot.resources:
        if r.type.startswith("aws:s3/bucket") and r.type.split(":")[-1] in ("Bucket", "BucketV2"):
            if arn in (r.outputs.get("arn"), r.inputs.get("arn")) or name in (
                    r.outputs.get("bucket"), r.inputs.get("bucket"), r.id):
                return True, r.region
    return False, None


@rule("RSD-030", "s3_replication_in_geography", "S3 replication to a bucket outside the geography", "CRITICAL",
      rationale="""S3 replication copies every object to the destination bucket. Bucket ARNs carry
      no region, so the destination is resolved through the bucket resource in the same stack;
      a destination that cannot be resolved cannot be proven inside.""",
      remediation=_FIX, category="replication", graph=True,
      types=("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "aws:s3/bucket:Bucket",
             "aws:s3/bucketV2:BucketV2"), fails_closed=True,
      controls=("CT:AWS-GR_RESTRICT_S3_CROSS_REGION_REPLICATION",))
def s3_replication_in_geography(res: Resource, scope: Scope):
    for where, dest in _s3_destinations(res):
        arn = P.parse_arn(dest)
        if arn and arn[2]:
            verdict = region_verdict(arn[2], scope)
        elif arn:
            found, region = bucket_region(dest, scope)
            if not found and not scope.complete:
                continue  # a fragment proves nothing either way; the stack-wide check decides
            verdict = (f"destination bucket {dest} is not in this stack: its region cannot be proven"
                       if not found else region_verdict(region, scope))
        else:
            verdict = arn_region_verdict(dest, scope, "destination")
        if verdict:
            yield f"{where}: {verdict}"


@rule("RSD-031", "dynamodb_replica_in_geography", "DynamoDB global-table replica outside the geography",
      "CRITICAL",
      rationale="Global-table replicas copy the table to each replica region.",
      remediation=_FIX, category="replication",
      types=("aws:dynamodb/table:Table", "aws:dynamodb/globalTable:GlobalTable",
             "aws:dynamodb/tableReplica:TableReplica"), fails_closed=True)
def dynamodb_replica_in_geography(res: Resource, scope: Scope):
    if res.type == "aws:dynamodb/tableReplica:TableReplica":
        verdict = region_verdict(res.region, scope)
        if verdict:
            yield f"table replica region {verdict}"
        return
    for i, rep in enumerate(as_list(res.props.get("replicas"))):
        verdict = region_verdict(rep.get("regionName") if isinstance(rep, dict) else rep, scope)
        if verdict:
            yield f"replicas[{i}].regionName {verdict}"


@rule("RSD-032", "secret_replica_in_geography", "Secrets Manager replica outside the geography", "CRITICAL",
      rationale="A replicated secret is stored in each replica region.",
      remediation=_FIX, category="replication", types=("aws:secretsmanager/secret:Secret",), fails_closed=True)
def secret_replica_in_geography(res: Resource, scope: Scope):
    for i, rep in enumerate(as_list(res.props.get("replicas"))):
        verdict = region_verdict(rep.get("region") if isinstance(rep, dict) else rep, scope)
        if verdict:
            yield f"replicas[{i}].region {verdict}"


@rule("RSD-033", "ecr_replication_in_geography", "ECR replication outside the geography", "CRITICAL",
      rationale="Registry replication copies every image (including model-serving images) to each destination.",
      remediation=_FIX, category="replication",
      types=("aws:ecr/replicationConfiguration:ReplicationConfiguration",), fails_closed=True)
def ecr_replication_in_geography(res: Resource, scope: Scope):
    conf = res.props.get("replicationConfiguration")
    for i, r in enumerate(as_list(conf.get("rules") if isinstance(conf, dict) else None)):
        for j, d in enumerate(as_list(r.get("destinations") if isinstance(r, dict) else None)):
            verdict = region_verdict(d.get("region") if isinstance(d, dict) else None, scope)
            if verdict:
                yield f"replicationConfiguration.rules[{i}].destinations[{j}].region {verdict}"


@rule("RSD-034", "backup_copy_in_geography", "Backup copy action to a vault outside the geography", "CRITICAL",
      rationale="A copy action stores recovery points in the destination vault's region.",
      remediation=_FIX, category="replication", types=("aws:backup/plan:Plan",), fails_closed=True)
def backup_copy_in_geography(res: Resource, scope: Scope):
    for i, r in enumerate(as_list(res.props.get("rules"))):
        for j, c in enumerate(as_list(r.get("copyActions") if isinstance(r, dict) else None)):
            dest = c.get("destinationVaultArn") if isinstance(c, dict) else None
            verdict = arn_region_verdict(dest, scope, "destinationVaultArn")
            if verdict:
                yield f"rules[{i}].copyActions[{j}]: {verdict}"


_SNS_ARN_PROTOCOLS = ("sqs", "lambda", "firehose", "application")


def _redrive_target(value):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value.get("deadLetterTargetArn") if isinstance(value, dict) else None


@rule("RSD-035", "delivery_destination_in_geography",
      "Log subscription, SNS, SQS or EventBridge destination outside the geography", "HIGH",
      rationale="""Log subscription filters, SNS subscriptions, SQS dead-letter queues and
      EventBridge targets deliver data to their destination; an HTTP(S), e-mail or SMS endpoint
      leaves AWS entirely.""",
      remediation="Deliver only to ARNs in the geography's regions; do not subscribe external endpoints.",
      category="replication",
      types=("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter", "aws:sns/topicSubscription:TopicSubscription",
             "aws:sqs/queue:Queue", "aws:sqs/redrivePolicy:RedrivePolicy", "aws:cloudwatch/eventTarget:EventTarget"), fails_closed=True)
def delivery_destination_in_geography(res: Resource, scope: Scope):
    p, t = res.props, res.type
    if t.endswith("LogSubscriptionFilter"):
        verdict = arn_region_verdict(p.get("destinationArn"), scope, "destinationArn")
    elif t.endswith("TopicSubscription"):
        protocol = str(p.get("protocol") or "").lower()
        if protocol in _SNS_ARN_PROTOCOLS:
            verdict = arn_region_verdict(p.get("endpoint"), scope, "endpoint")
        else:
            verdict = f"protocol '{protocol or 'unknown'}' delivers to an endpoint outside AWS"
    elif t.endswith("EventTarget"):
        verdict = arn_region_verdict(p.get("arn"), scope, "target arn")
    else:
        if p.get("redrivePolicy") in (None, ""):
            return
        verdict = arn_region_verdict(_redrive_target(p.get("redrivePolicy")), scope, "deadLetterTargetArn")
    if verdict:
        yield verdict


@rule("RSD-036", "kms_single_region", "Multi-Region KMS key or replica key", "HIGH",
      rationale="""A multi-Region key can be replicated to any region, where it decrypts data copied
      there; replica keys exist only for that purpose.""",
      remediation="Create single-Region keys (multi_region=False).",
      category="replication",
      types=("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey", "aws:kms/replicaExternalKey:ReplicaExternalKey",
             "aws:kms/externalKey:ExternalKey"),
      stance="""A multi-Region key is refused even when every replica is inside the geography: a
      replica can be added later, in any region, by anyone allowed kms:ReplicateKey, outside the
      stack. Replica keys in another region are also named by the placement rules.""")
def kms_single_region(res: Resource, scope: Scope):
    if "replica" in res.type.lower():
        yield f"replica of a multi-Region key: {STANCE_NOTE}"
    elif truthy(res.props.get("multiRegion")):
        yield f"multiRegion is true: {STANCE_NOTE}"
