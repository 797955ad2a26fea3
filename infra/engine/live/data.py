"""Data replication: Logs subscription filters, ECR replication, Secrets Manager replicas, DynamoDB;
and the resource policies of these services (Logs resource policies, ECR registry and repository
policies, secret policies), which the exposure rule RSD-057 judges."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.engine.live.core import Unit, pages, register_reads, tags_dict

register_reads("logs", "DescribeResourcePolicies")
register_reads("ecr", "GetRegistryPolicy", "DescribeRepositories", "GetRepositoryPolicy")
register_reads("secretsmanager", "GetResourcePolicy")
NO_ECR_POLICY = {"RegistryPolicyNotFoundException", "RepositoryPolicyNotFoundException"}


def _policy_or_none(call, **params):
    """A policy read whose "none set" answer is an error code (ECR): None then."""
    try:
        return call(**params).get("policyText")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in NO_ECR_POLICY:
            return None
        raise


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
    scan_log_resource_policies(unit)


def scan_log_resource_policies(unit: Unit) -> None:
    with unit.step("DescribeResourcePolicies"):
        for page in pages(unit.client(), "describe_resource_policies"):
            for p in page.get("resourcePolicies") or []:
                unit.add("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", p["policyName"], {
                    "policyName": p["policyName"], "policyDocument": p.get("policyDocument")})


def scan_ecr_policies(unit: Unit) -> None:
    ecr = unit.client()
    with unit.step("GetRegistryPolicy"):
        policy = _policy_or_none(ecr.get_registry_policy)
        if policy:
            unit.add("aws:ecr/registryPolicy:RegistryPolicy", f"registry-policy-{unit.region}", {"policy": policy})
    repos: list[dict] = []
    with unit.step("DescribeRepositories"):
        repos = [r for page in pages(ecr, "describe_repositories") for r in page["repositories"]]
    for r in repos:
        with unit.step(f"repository {r['repositoryName']}"):
            policy = _policy_or_none(ecr.get_repository_policy, repositoryName=r["repositoryName"])
            if policy:
                unit.add("aws:ecr/repositoryPolicy:RepositoryPolicy", r["repositoryName"], {
                    "repository": r["repositoryName"], "policy": policy})


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
    scan_ecr_policies(unit)


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
            # A replica's policy is its primary's, read in the primary's region (AWS refuses it here).
            policy = sm.get_resource_policy(SecretId=s["ARN"]).get("ResourcePolicy") if primary == unit.region else None
            if policy:
                unit.add("aws:secretsmanager/secretPolicy:SecretPolicy", d.get("Name") or s["Name"], {
                    "secretArn": s["ARN"], "policy": policy}, name=d.get("Name"))


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
