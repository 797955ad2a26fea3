"""Rule class 4: replication and delivery out of the region (RSD-030..036), fail closed."""

import json

import pytest

from infra.engine.model import Secret
from rules_kit import ACCOUNT, US_PROVIDER, fired, res, run


def replication(dest_arn):
    return res("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "repl", inputs={
        "bucket": "src", "role": f"arn:aws:iam::{ACCOUNT}:role/r",
        "rules": [{"status": "Enabled", "destination": {"bucket": dest_arn}}]})


def bucket(name, prov=None, **kw):
    from rules_kit import EU_PROVIDER

    return res("aws:s3/bucket:Bucket", name, inputs={"bucket": name, **kw},
               outputs={"arn": f"arn:aws:s3:::{name}", "bucket": name}, prov=prov or EU_PROVIDER)


def test_s3_replication_to_a_bucket_in_the_geography_is_quiet():
    report = run([bucket("dest", region="eu-west-1"), replication("arn:aws:s3:::dest")])
    assert not fired(report, "RSD-030")


def test_s3_replication_to_a_bucket_outside_fires():
    report = run([bucket("dest", prov=US_PROVIDER), replication("arn:aws:s3:::dest")])
    assert "us-east-1" in fired(report, "RSD-030")[0].message


def test_s3_replication_to_an_unknown_bucket_fails_closed():
    assert "cannot be proven" in fired(run([replication("arn:aws:s3:::elsewhere")]), "RSD-030")[0].message


def test_s3_replication_in_a_fragment_defers_to_the_stack_wide_check():
    assert not fired(run([replication("arn:aws:s3:::elsewhere")], complete=False), "RSD-030")


def test_s3_replication_destination_unknown_or_secret_fails_closed():
    assert fired(run([replication(None)]), "RSD-030")
    assert fired(run([replication(Secret())]), "RSD-030")


@pytest.mark.parametrize("replicas,count", [
    ([{"regionName": "us-east-1"}], 1), ([{"regionName": None}], 1), ([{"regionName": "eu-west-1"}], 0), ([], 0)])
def test_dynamodb_replicas(replicas, count):
    t = res("aws:dynamodb/table:Table", "t", inputs={"replicas": replicas})
    assert len(fired(run([t]), "RSD-031")) == count


def test_dynamodb_table_replica_resource_outside_fires():
    assert fired(run([res("aws:dynamodb/tableReplica:TableReplica", "r", prov=US_PROVIDER)]), "RSD-031")
    assert not fired(run([res("aws:dynamodb/tableReplica:TableReplica", "r")]), "RSD-031")


@pytest.mark.parametrize("replicas,count", [([{"region": "us-west-2"}], 1), ([{}], 1), ([{"region": "eu-north-1"}], 0)])
def test_secrets_manager_replicas(replicas, count):
    s = res("aws:secretsmanager/secret:Secret", "s", inputs={"replicas": replicas})
    assert len(fired(run([s]), "RSD-032")) == count


@pytest.mark.parametrize("region,count", [("us-east-1", 1), ("eu-west-1", 0)])
def test_ecr_replication(region, count):
    rc = res("aws:ecr/replicationConfiguration:ReplicationConfiguration", "rc", inputs={"replicationConfiguration": {
        "rules": [{"destinations": [{"region": region, "registryId": ACCOUNT}]}]}})
    assert len(fired(run([rc]), "RSD-033")) == count


@pytest.mark.parametrize("vault,count", [
    (f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:v", 1), ("not-an-arn", 1),
    (f"arn:aws:backup:eu-central-1:{ACCOUNT}:backup-vault:v", 0)])
def test_backup_copy_actions(vault, count):
    plan = res("aws:backup/plan:Plan", "p", inputs={"rules": [{"copyActions": [{"destinationVaultArn": vault}]}]})
    assert len(fired(run([plan]), "RSD-034")) == count


@pytest.mark.parametrize("type_,inputs,count", [
    ("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter",
     {"destinationArn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"}, 1),
    ("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter",
     {"destinationArn": f"arn:aws:kinesis:eu-central-1:{ACCOUNT}:stream/s"}, 0),
    ("aws:sns/topicSubscription:TopicSubscription", {"protocol": "https", "endpoint": "https://hooks.example.com"}, 1),
    ("aws:sns/topicSubscription:TopicSubscription",
     {"protocol": "sqs", "endpoint": f"arn:aws:sqs:ap-southeast-1:{ACCOUNT}:q"}, 1),
    ("aws:sns/topicSubscription:TopicSubscription",
     {"protocol": "sqs", "endpoint": f"arn:aws:sqs:eu-central-1:{ACCOUNT}:q"}, 0),
    ("aws:sqs/queue:Queue", {"redrivePolicy": json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:us-east-2:{ACCOUNT}:dlq"})}, 1),
    ("aws:sqs/queue:Queue", {"name": "q"}, 0),
    ("aws:cloudwatch/eventTarget:EventTarget", {"arn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/b"}, 1),
])
def test_delivery_destinations(type_, inputs, count):
    assert len(fired(run([res(type_, "x", inputs=inputs)]), "RSD-035")) == count


@pytest.mark.parametrize("type_,inputs,count", [
    ("aws:kms/key:Key", {"multiRegion": True}, 1), ("aws:kms/key:Key", {"multiRegion": "true"}, 1),
    ("aws:kms/key:Key", {"multiRegion": False}, 0), ("aws:kms/key:Key", {}, 0),
    ("aws:kms/replicaKey:ReplicaKey", {"primaryKeyArn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/mrk-1"}, 1),
])
def test_multi_region_kms_keys(type_, inputs, count):
    assert len(fired(run([res(type_, "k", inputs=inputs)]), "RSD-036")) == count
