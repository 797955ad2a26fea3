"""EKS clusters (public API endpoint and its CIDRs) and Lambda (functions and their environment,
function URLs, resource policies)."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from infra.engine.live.core import Unit, pages

FUNCTION = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
PERMISSION = "aws:lambda/permission:Permission"


def scan_eks(unit: Unit) -> None:
    eks = unit.client()
    names: list[str] = []
    with unit.step("ListClusters"):
        names = [n for page in pages(eks, "list_clusters") for n in page["clusters"]]
    for name in names:
        with unit.step(f"cluster {name}"):
            c = eks.describe_cluster(name=name)["cluster"]
            vpc = c.get("resourcesVpcConfig") or {}
            unit.add("aws:eks/cluster:Cluster", name, {
                "name": name, "roleArn": c.get("roleArn"), "version": c.get("version"),
                "vpcConfig": {
                    "endpointPublicAccess": vpc.get("endpointPublicAccess"),
                    "endpointPrivateAccess": vpc.get("endpointPrivateAccess"),
                    "publicAccessCidrs": vpc.get("publicAccessCidrs"),
                    "subnetIds": vpc.get("subnetIds"), "securityGroupIds": vpc.get("securityGroupIds"),
                },
                "encryptionConfig": (c.get("encryptionConfig") or [None])[0],
                "tags": c.get("tags"),
            }, outputs={"endpoint": c.get("endpoint")}, arn=c.get("arn"))


def scan_lambda(unit: Unit) -> None:
    fn_client = unit.client()
    functions: list[dict] = []
    with unit.step("ListFunctions"):
        functions = [f for page in pages(fn_client, "list_functions") for f in page["Functions"]]
    for f in functions:
        name, arn = f["FunctionName"], f["FunctionArn"]
        # Environment values are read because they configure where the code sends data
        # (AWS_REGION overrides, endpoints, queue/bucket ARNs); they are judged like any property.
        unit.add(FUNCTION, name, {
            "name": name, "role": f.get("Role"), "runtime": f.get("Runtime"), "handler": f.get("Handler"),
            "kmsKeyArn": f.get("KMSKeyArn"),
            "environment": {"variables": (f.get("Environment") or {}).get("Variables") or {}},
            "vpcConfig": {"subnetIds": (f.get("VpcConfig") or {}).get("SubnetIds"),
                          "securityGroupIds": (f.get("VpcConfig") or {}).get("SecurityGroupIds")},
            "deadLetterConfig": {"targetArn": (f.get("DeadLetterConfig") or {}).get("TargetArn")},
        }, arn=arn)
        with unit.step(f"function {name} URLs"):
            for page in pages(fn_client, "list_function_url_configs", FunctionName=name):
                for u in page["FunctionUrlConfigs"]:
                    unit.add(FUNCTION_URL, u["FunctionArn"], {
                        "functionName": name, "authorizationType": u.get("AuthType"),
                        "invokeMode": u.get("InvokeMode"),
                    }, outputs={"functionUrl": u.get("FunctionUrl")}, name=f"{name}-url")
        with unit.step(f"function {name} policy"):
            for statement in _policy_statements(fn_client, name):
                unit.add(PERMISSION, f"{name}:{statement.get('Sid')}", _permission(name, statement),
                         name=f"{name}:{statement.get('Sid')}")


def _policy_statements(client, name: str) -> list[dict]:
    try:
        policy = client.get_policy(FunctionName=name)["Policy"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []  # no resource policy at all
        raise
    statements = json.loads(policy).get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _permission(function: str, s: dict) -> dict:
    """A resource-policy statement in the shape of pulumi-aws lambda.Permission."""
    principal = s.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("Service") or principal.get("AWS") or principal
    if isinstance(principal, list) and len(principal) == 1:
        principal = principal[0]
    condition = s.get("Condition") or {}
    # Condition keys are case-insensitive (AWS writes `AWS:SourceArn` but `aws:PrincipalOrgID`).
    flat = {k.lower(): v for block in condition.values() if isinstance(block, dict) for k, v in block.items()}
    return {
        "function": function, "statementId": s.get("Sid"), "action": s.get("Action"), "principal": principal,
        "sourceArn": flat.get("aws:sourcearn"), "sourceAccount": flat.get("aws:sourceaccount"),
        "principalOrgId": flat.get("aws:principalorgid"),
        "functionUrlAuthType": flat.get("lambda:functionurlauthtype"),
    }
