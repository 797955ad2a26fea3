"""RDS/Aurora (instances, clusters, read replicas, global clusters, replicated automated
backups), OpenSearch (domains and cross-cluster connections), Redshift and AWS Backup plans."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages, tags_dict


def scan_rds(unit: Unit) -> None:
    rds = unit.client()
    with unit.step("DescribeDBInstances"):
        for page in pages(rds, "describe_db_instances"):
            for d in page["DBInstances"]:
                _instance(unit, d)
    with unit.step("DescribeDBClusters"):
        for page in pages(rds, "describe_db_clusters"):
            for c in page["DBClusters"]:
                unit.add("aws:rds/cluster:Cluster", c["DBClusterIdentifier"], {
                    "clusterIdentifier": c["DBClusterIdentifier"], "engine": c.get("Engine"),
                    "replicationSourceIdentifier": c.get("ReplicationSourceIdentifier"),
                    "storageEncrypted": c.get("StorageEncrypted"), "kmsKeyId": c.get("KmsKeyId"),
                    "availabilityZones": c.get("AvailabilityZones"),
                    "tags": tags_dict(c.get("TagList")),
                }, outputs={"readReplicaIdentifiers": c.get("ReadReplicaIdentifiers"),
                            "publiclyAccessible": c.get("PubliclyAccessible")},
                    arn=c.get("DBClusterArn"))
    with unit.step("DescribeGlobalClusters"):
        for page in pages(rds, "describe_global_clusters"):
            for g in page["GlobalClusters"]:
                members = g.get("GlobalClusterMembers") or []
                if not any(f":{unit.region}:" in (m.get("DBClusterArn") or "") for m in members) and members:
                    continue  # recorded from the region of one of its members
                unit.add("aws:rds/globalCluster:GlobalCluster", g["GlobalClusterIdentifier"], {
                    "globalClusterIdentifier": g["GlobalClusterIdentifier"], "engine": g.get("Engine"),
                    "storageEncrypted": g.get("StorageEncrypted"),
                }, outputs={"globalClusterMembers": [{"dbClusterArn": m.get("DBClusterArn"),
                                                      "isWriter": m.get("IsWriter")} for m in members]},
                    arn=g.get("GlobalClusterArn"))


def _instance(unit: Unit, d: dict) -> None:
    # A cluster member is what pulumi-aws models as rds.ClusterInstance.
    member = bool(d.get("DBClusterIdentifier"))
    type_ = "aws:rds/clusterInstance:ClusterInstance" if member else "aws:rds/instance:Instance"
    inputs = {
        "identifier": d["DBInstanceIdentifier"], "engine": d.get("Engine"), "instanceClass": d.get("DBInstanceClass"),
        "publiclyAccessible": d.get("PubliclyAccessible"), "availabilityZone": d.get("AvailabilityZone"),
        "dbSubnetGroupName": (d.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
        "tags": tags_dict(d.get("TagList")),
    }
    if member:
        inputs["clusterIdentifier"] = d["DBClusterIdentifier"]
    else:
        inputs.update({"replicateSourceDb": d.get("ReadReplicaSourceDBInstanceIdentifier"),
                       "storageEncrypted": d.get("StorageEncrypted"), "kmsKeyId": d.get("KmsKeyId")})
    unit.add(type_, d["DBInstanceIdentifier"], inputs, outputs={
        # Cross-region replicas and backup replications are named by ARN: the region is in it.
        "replicas": d.get("ReadReplicaDBInstanceIdentifiers"),
        "automatedBackupsReplications": [r.get("DBInstanceAutomatedBackupsArn")
                                         for r in d.get("DBInstanceAutomatedBackupsReplications") or []],
        "endpoint": (d.get("Endpoint") or {}).get("Address"),
    }, arn=d.get("DBInstanceArn"))


def scan_opensearch(unit: Unit) -> None:
    os_client = unit.client()
    names: list[str] = []
    with unit.step("ListDomainNames"):
        names = [d["DomainName"] for d in os_client.list_domain_names()["DomainNames"]]
    for start in range(0, len(names), 5):  # DescribeDomains takes at most 5 names
        with unit.step(f"domains {', '.join(names[start:start + 5])}"):
            for d in os_client.describe_domains(DomainNames=names[start:start + 5])["DomainStatusList"]:
                vpc = d.get("VPCOptions") or {}
                unit.add("aws:opensearch/domain:Domain", d["DomainName"], {
                    "domainName": d["DomainName"], "engineVersion": d.get("EngineVersion"),
                    "accessPolicies": d.get("AccessPolicies"),
                    "vpcOptions": {"subnetIds": vpc.get("SubnetIds"), "securityGroupIds": vpc.get("SecurityGroupIds")}
                    if vpc else None,
                    "encryptAtRest": {"enabled": (d.get("EncryptionAtRestOptions") or {}).get("Enabled"),
                                      "kmsKeyId": (d.get("EncryptionAtRestOptions") or {}).get("KmsKeyId")},
                }, outputs={"endpoint": d.get("Endpoint"), "endpoints": d.get("Endpoints")}, arn=d.get("ARN"))
    with unit.step("DescribeOutboundConnections"):
        for page in pages(os_client, "describe_outbound_connections"):
            for c in page["Connections"]:
                if (c.get("ConnectionStatus") or {}).get("StatusCode") in ("DELETED", "REJECTED", "DELETING"):
                    continue
                local = (c.get("LocalDomainInfo") or {}).get("AWSDomainInformation") or {}
                remote = (c.get("RemoteDomainInfo") or {}).get("AWSDomainInformation") or {}
                unit.add("aws:opensearch/outboundConnection:OutboundConnection", c["ConnectionId"], {
                    "connectionAlias": c.get("ConnectionAlias"), "connectionMode": c.get("ConnectionMode"),
                    "localDomainInfo": {"domainName": local.get("DomainName"), "ownerId": local.get("OwnerId"),
                                        "region": local.get("Region")},
                    "remoteDomainInfo": {"domainName": remote.get("DomainName"), "ownerId": remote.get("OwnerId"),
                                         "region": remote.get("Region")},
                }, name=c.get("ConnectionAlias"))


def scan_redshift(unit: Unit) -> None:
    with unit.step("DescribeClusters"):
        for page in pages(unit.client(), "describe_clusters"):
            for c in page["Clusters"]:
                snapshot_copy = c.get("ClusterSnapshotCopyStatus") or {}
                unit.add("aws:redshift/cluster:Cluster", c["ClusterIdentifier"], {
                    "clusterIdentifier": c["ClusterIdentifier"], "nodeType": c.get("NodeType"),
                    "publiclyAccessible": c.get("PubliclyAccessible"), "encrypted": c.get("Encrypted"),
                    "kmsKeyId": c.get("KmsKeyId"), "availabilityZone": c.get("AvailabilityZone"),
                    "tags": tags_dict(c.get("Tags")),
                }, outputs={"snapshotCopy": {"destinationRegion": snapshot_copy.get("DestinationRegion")}
                            if snapshot_copy else None})


def scan_backup(unit: Unit) -> None:
    backup = unit.client()
    plans: list[dict] = []
    with unit.step("ListBackupPlans"):
        plans = [p for page in pages(backup, "list_backup_plans") for p in page["BackupPlansList"]]
    for p in plans:
        with unit.step(f"backup plan {p.get('BackupPlanName')}"):
            plan = backup.get_backup_plan(BackupPlanId=p["BackupPlanId"])["BackupPlan"]
            unit.add("aws:backup/plan:Plan", p["BackupPlanId"], {
                "name": plan.get("BackupPlanName"),
                "rules": [{
                    "ruleName": r.get("RuleName"), "targetVaultName": r.get("TargetBackupVaultName"),
                    "schedule": r.get("ScheduleExpression"),
                    "copyActions": [{"destinationVaultArn": c.get("DestinationBackupVaultArn")}
                                    for c in r.get("CopyActions") or []],
                } for r in plan.get("Rules") or []],
            }, arn=p.get("BackupPlanArn"), name=plan.get("BackupPlanName"))


def scan_dms(unit: Unit) -> None:
    with unit.step("DescribeReplicationInstances"):
        for page in pages(unit.client(), "describe_replication_instances"):
            for r in page["ReplicationInstances"]:
                unit.add("aws:dms/replicationInstance:ReplicationInstance", r["ReplicationInstanceIdentifier"], {
                    "replicationInstanceId": r["ReplicationInstanceIdentifier"],
                    "replicationInstanceClass": r.get("ReplicationInstanceClass"),
                    "publiclyAccessible": r.get("PubliclyAccessible"), "kmsKeyArn": r.get("KmsKeyId"),
                    "availabilityZone": r.get("AvailabilityZone"),
                }, arn=r.get("ReplicationInstanceArn"))
