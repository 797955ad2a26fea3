"""Data replication: Logs subscription filters, ECR replication, Secrets Manager replicas, DynamoDB."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages, tags_dict


def scan_logs(unit: Unit) -> None:
    logs = unit.client()
    groups: list[dict] = []
    with unit.step("DescribeLogGroups"):
        groups = [g for page in pages(logs, "describe_log_groups") for g in page["logGroups"]]
    for g in groups:
        name = g["logGroupName"]
        with unit.step(f"log group {name}"):
            for page in pages(logs, "describe_subscription_filters", logGroupName=name):
                for f in page["subscriptionFilters"]:
                    fid = f"{name}:{f['filterName']}"
                    unit.add("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter", fid, {
                        "name": f["filterName"], "logGroup": name, "destinationArn": f.get("destinationArn"),
                        "filterPattern": f.get("filterPattern"), "roleArn": f.get("roleArn"),
                        "distribution": f.get("distribution"),
                        "applyOnTransformedLogs": f.get("applyOnTransformedLogs"),
                    }, name=fid)


def scan_ecr(unit: Unit) -> None:
    with unit.step("DescribeRegistry"):
        reg = unit.client().describe_registry()
        rules = (reg.get("replicationConfiguration") or {}).get("rules") or []
        if rules:
            unit.add("aws:ecr/replicationConfiguration:ReplicationConfiguration", reg["registryId"], {
                "replicationConfiguration": {"rules": [{
                    "destinations": [{"region": d.get("region"), "registryId": d.get("registryId")}
                                     for d in r.get("destinations") or []],
                    "repositoryFilters": [{"filter": f.get("filter"), "filterType": f.get("filterType")}
                                          for f in r.get("repositoryFilters") or []],
                } for r in rules]},
            }, name=f"ecr-replication-{reg['registryId']}")


def scan_secrets(unit: Unit) -> None:
    sm = unit.client()
    secrets: list[dict] = []
    with unit.step("ListSecrets"):
        secrets = [s for page in pages(sm, "list_secrets") for s in page["SecretList"]]
    for s in secrets:
        with unit.step(f"secret {s['ARN']}"):
            d = sm.describe_secret(SecretId=s["ARN"])
            primary = d.get("PrimaryRegion") or unit.region
            replicas = [{"region": r.get("Region"), "kmsKeyId": r.get("KmsKeyId"), "status": r.get("Status")}
                        for r in d.get("ReplicationStatus") or []]
            arn = d.get("ARN") or s["ARN"]
            if primary != unit.region:
                # This is a replica: the secret's primary lives in `primary`; record that secret there
                # (placing it outside the geography if it is) with this region among its replicas.
                arn = arn.replace(f":{unit.region}:", f":{primary}:", 1)
                replicas = [{"region": unit.region}]
            unit.add("aws:secretsmanager/secret:Secret", d.get("Name") or s["Name"], {
                "name": d.get("Name"), "description": d.get("Description"), "kmsKeyId": d.get("KmsKeyId"),
                "replicas": replicas, "tags": tags_dict(d.get("Tags")),
            }, arn=arn, region=primary, name=d.get("Name"))


def scan_dynamodb(unit: Unit) -> None:
    ddb = unit.client()
    tables: list[str] = []
    with unit.step("ListTables"):
        tables = [t for page in pages(ddb, "list_tables") for t in page["TableNames"]]
    for name in tables:
        with unit.step(f"table {name}"):
            t = ddb.describe_table(TableName=name)["Table"]
            if t.get("GlobalTableVersion") == "2017.11.29":
                # Legacy global tables list their replicas only through DescribeGlobalTable.
                g = ddb.describe_global_table(GlobalTableName=name)["GlobalTableDescription"]
                unit.add("aws:dynamodb/globalTable:GlobalTable", name, {
                    "name": name,
                    "replicas": [{"regionName": r["RegionName"]} for r in g.get("ReplicationGroup") or []],
                }, arn=g.get("GlobalTableArn"))
                continue
            unit.add("aws:dynamodb/table:Table", name, {
                "name": name,
                "replicas": [{"regionName": r["RegionName"], "kmsKeyArn": r.get("KMSMasterKeyId")}
                             for r in t.get("Replicas") or [] if r.get("RegionName") != unit.region],
            }, arn=t.get("TableArn"))
