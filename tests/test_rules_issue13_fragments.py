"""Rule classes 7-9 (issue #13) on hand-written fragments: what each rule accepts and refuses,
where the program cannot build the case (other services, Kubernetes metadata, preview unknowns)."""

import json

import pytest
from pulumi_policy.proxy import UnknownValueError

from infra.program.catalog import CatalogError, load_catalog, parse_catalog
from infra.engine.model import Snapshot
from infra.engine.rules import RULES_BY_ID, evaluate
from rules_kit import ACCOUNT, ctx, fired, policy, res, run

# --- RSD-055 delivery to hosts outside AWS -------------------------------------------------------

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def deployment(image, env=(), annotations=None):
    return res(DEPLOYMENT, "vllm", inputs={
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"labels": {"app.kubernetes.io/name": "vllm", "karpenter.sh/nodepool": "gpu"},
                     "annotations": annotations or {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/x"}},
        "spec": {"template": {"spec": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "vllm", "image": image, "env": list(env),
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}}}]}}}},
        prov=None)


def test_kubernetes_label_keys_api_groups_and_in_geography_ecr_image_are_quiet():
    report = run([deployment(f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/ai-companion/eu/vllm:v0.11.0",
                             env=[{"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.eu-central-1.amazonaws.com"},
                                  {"name": "PEER", "value": "http://model-vllm.model-ns.svc.cluster.local:8000"}])])
    assert not fired(report, "RSD-055"), report.findings


@pytest.mark.parametrize("image,host", [
    ("vllm/vllm-openai:v0.11.0", "registry-1.docker.io"),
    ("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", "nvcr.io"),
    ("public.ecr.aws/eks/aws-load-balancer-controller:v2.8", "public.ecr.aws"),
])
def test_images_from_registries_outside_the_geography_fire(image, host):
    [f] = fired(run([deployment(image)]), "RSD-055")
    assert host in f.message and "image" in f.message


def test_a_foreign_region_ecr_image_is_left_to_rsd_013():
    report = run([deployment(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/vllm:v1")])
    assert not fired(report, "RSD-055") and fired(report, "RSD-013")


def test_a_webhook_in_an_environment_variable_fires_and_one_in_a_description_does_not():
    fn = res("aws:lambda/function:Function", "fn", inputs={
        "description": "see https://wiki.example.org/runbook",
        "environment": {"variables": {"HOOK": "https://hooks.slack.com/services/T000/B000/XXX"}}})
    [f] = fired(run([fn]), "RSD-055")
    assert "environment.variables.HOOK" in f.message and "hooks.slack.com" in f.message


@pytest.mark.parametrize("value,verdict", [
    ("https://10.0.3.7:8443/ingest", None),
    ("https://169.254.169.254/latest/meta-data", None),
    ("https://203.0.113.9/ingest", "public IP"),
    ("https://${stageVariables.backend}/v1", "template"),
    ("https://sts.amazonaws.com/", "region-less"),
    ("https://bedrock-runtime.eu-west-1.amazonaws.com", None),
    ("https://bedrock-mantle.eu-central-1.api.aws/v1", None),
    ("https://abc.lambda-url.eu-central-1.on.aws/", None),
    ("https://x.execute-api.us-east-1.amazonaws.com/prod", None),  # RSD-013 names it
    ("http://www.w3.org/2001/XMLSchema", None),
    ("https://example.cloudfront.net/asset", "outside AWS"),
])
def test_url_verdicts(value, verdict):
    r = res("aws:apigateway/integration:Integration", "i", inputs={"uri": value})
    found = fired(run([r]), "RSD-055")
    if verdict is None:
        assert not found, found
    else:
        assert found and verdict in found[0].message


def test_bucket_hosts_resolve_through_the_stacks_buckets():
    bucket = res("aws:s3/bucket:Bucket", "weights", inputs={"bucket": "weights"},
                 outputs={"bucketDomainName": "weights.s3.amazonaws.com"})
    origin = res("aws:apigateway/integration:Integration", "i", inputs={"uri": "https://other.s3.amazonaws.com/x"})
    report = run([bucket, origin])
    assert [f.urn for f in fired(report, "RSD-055")] == [origin.urn]
    assert "not in this stack" in fired(report, "RSD-055")[0].message


def test_connector_hosts_are_declared_paths_only_in_a_federated_stack():
    sub = res("aws:sns/topicSubscription:TopicSubscription", "s",
              inputs={"protocol": "https", "endpoint": "https://eu.api.openai.com/v1/hook"})
    assert not fired(run([sub], ctx("EU")), "RSD-055")
    assert fired(run([sub], ctx("EU", options=("zmo", "zm_plus"))), "RSD-055")


def test_an_unknown_host_is_fail_closed_and_crossguard_defers_it_during_preview():
    from policy.policies import report_findings

    sub = res("aws:sns/topicSubscription:TopicSubscription", "s", inputs={"protocol": "https", "endpoint": None})
    snapshot = Snapshot([sub], "crossguard", "eu", "eu-central-1", unknown={sub.urn: ["endpoint"]})
    report = evaluate(snapshot, ctx("EU"), rules=[RULES_BY_ID["RSD-055"]], targets={sub.urn}, complete=False)
    assert fired(report, "RSD-055") and RULES_BY_ID["RSD-055"].fails_closed
    with pytest.raises(UnknownValueError):
        report_findings(report, snapshot, lambda *a: pytest.fail(f"mandatory finding during preview: {a}"))


def test_catalog_refuses_a_non_destination_without_a_reason():
    raw = json.loads(json.dumps(_raw_catalog()))
    raw["destinations"]["non_destinations"][0]["reason"] = " "
    with pytest.raises(CatalogError, match="needs a reason"):
        parse_catalog(raw)


# --- RSD-056 global and multi-Region constructs ----------------------------------------------------

def _raw_catalog():
    import yaml

    return yaml.safe_load(load_catalog().path.read_text())


@pytest.mark.parametrize("type_,inputs", [
    ("aws:memorydb/multiRegionCluster:MultiRegionCluster", {"clusterNameSuffix": "x"}),
    ("aws:docdb/globalCluster:GlobalCluster", {"globalClusterIdentifier": "g"}),
    ("aws:route53recoverycontrol/cluster:Cluster", {"name": "arc"}),
    ("aws:memorydb/cluster:Cluster", {"multiRegionClusterName": "mr"}),
    ("aws:wafv2/webAcl:WebAcl", {"scope": "CLOUDFRONT"}),
    ("aws:apigateway/domainName:DomainName", {"endpointConfiguration": {"types": ["EDGE"]}}),
    ("aws:dlm/lifecyclePolicy:LifecyclePolicy",
     {"policyDetails": {"schedules": [{"crossRegionCopyRules": [{"target": "us-east-1"}]}]}}),
])
def test_global_constructs_fire(type_, inputs):
    assert fired(run([res(type_, "g", inputs=inputs)]), "RSD-056")


@pytest.mark.parametrize("type_,inputs", [
    ("aws:memorydb/cluster:Cluster", {"name": "regional"}),
    ("aws:wafv2/webAcl:WebAcl", {"scope": "REGIONAL"}),
    ("aws:apigateway/domainName:DomainName", {"endpointConfiguration": {"types": ["REGIONAL"]}}),
    ("aws:rds/cluster:Cluster", {"engine": "aurora-postgresql"}),
])
def test_regional_forms_are_quiet(type_, inputs):
    assert not fired(run([res(type_, "r", inputs=inputs)]), "RSD-056")


def test_an_unknown_switch_fails_closed():
    c = res("aws:rds/cluster:Cluster", "c", inputs={"engine": "aurora-postgresql", "globalClusterIdentifier": None})
    snapshot = Snapshot([c], "crossguard", "eu", "eu-central-1", unknown={c.urn: ["globalClusterIdentifier"]})
    report = evaluate(snapshot, ctx("EU"), rules=[RULES_BY_ID["RSD-056"]], targets={c.urn}, complete=False)
    assert "not known yet" in fired(report, "RSD-056")[0].message


def test_every_catalogued_global_type_exists_in_pulumi_aws():
    from pathlib import Path

    import pulumi_aws

    sdk = Path(pulumi_aws.__file__).parent
    gc = load_catalog().global_constructs
    tokens = set(gc.types) | {p.type for p in gc.properties}
    for token in tokens:
        module, name = token.split(":")[1].split("/")
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
        path = sdk / module / f"{snake}.py"
        assert path.is_file() and f'"{token}"' in path.read_text(), token


def test_catalog_refuses_a_bad_switch():
    raw = _raw_catalog()
    raw["global_constructs"]["properties"][0]["when"] = "sometimes"
    with pytest.raises(CatalogError, match="when"):
        parse_catalog(raw)


# --- RSD-057 resource policies ---------------------------------------------------------------------

PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"aws:SourceVpce": "vpce-0abc"}},
    {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
    {"ArnLike": {"aws:SourceArn": f"arn:aws:sns:eu-central-1:{ACCOUNT}:t"}},
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
])
def test_narrowing_conditions_make_principal_star_private(condition):
    q = res("aws:sqs/queuePolicy:QueuePolicy", "q", inputs={"policy": policy({**PUBLIC, "Condition": condition})})
    assert not fired(run([q]), "RSD-057")


@pytest.mark.parametrize("statement", [
    PUBLIC,
    {**PUBLIC, "Principal": {"AWS": "*"}},
    {**PUBLIC, "Principal": {"AWS": ["arn:aws:iam::*:root"]}},
    {**PUBLIC, "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
    {**PUBLIC, "Condition": {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-0abc"}}},
    {**PUBLIC, "Condition": {"StringLike": {"aws:PrincipalOrgID": "*"}}},
    {**PUBLIC, "Condition": {"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}},
    {"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sqs:*", "Resource": "*"},
])
def test_public_statements_fire(statement):
    q = res("aws:sqs/queue:Queue", "q", inputs={"policy": policy(statement)})
    assert fired(run([q]), "RSD-057")


def test_service_principals_deny_statements_and_vpc_endpoint_policies_are_quiet():
    service = {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "s3:PutObject",
               "Resource": "arn:aws:s3:::logs/*"}
    deny = {**PUBLIC, "Effect": "Deny"}
    bucket = res("aws:s3/bucketPolicy:BucketPolicy", "b", inputs={"policy": policy(service, deny)})
    endpoint = res("aws:ec2/vpcEndpoint:VpcEndpoint", "e", inputs={
        "serviceName": "com.amazonaws.eu-central-1.s3", "policy": policy(PUBLIC)})
    assert not fired(run([bucket, endpoint]), "RSD-057")


def test_each_policy_document_is_parsed_once_per_resource(monkeypatch):
    from infra.engine.rules import patterns

    calls = []
    real = patterns.parse_document
    monkeypatch.setattr(patterns, "parse_document", lambda v: calls.append(v) or real(v))
    key = res("aws:kms/key:Key", "k", inputs={"policy": policy(PUBLIC), "description": "k"})
    report = run([key])
    assert fired(report, "RSD-057") and len(calls) == 1


# --- RSD-058 .. RSD-063 --------------------------------------------------------------------------

@pytest.mark.parametrize("rule,type_,bad,good", [
    ("RSD-058", "aws:lambda/permission:Permission", {"principal": "*", "action": "lambda:InvokeFunction"},
     {"principal": "*", "action": "lambda:InvokeFunction", "principalOrgId": "o-abc"}),
    ("RSD-058", "aws:lambda/layerVersionPermission:LayerVersionPermission", {"principal": "*"},
     {"principal": "*", "organizationId": "o-abc"}),
    ("RSD-059", "aws:s3/bucketAcl:BucketAcl",
     {"accessControlPolicy": {"grants": [{"grantee": {"uri": "http://acs.amazonaws.com/groups/global/AllUsers",
                                                       "type": "Group"}, "permission": "READ"}]}},
     {"acl": "private"}),
    ("RSD-060", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {"blockPublicAcls": True},
     {k: True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")}),
    ("RSD-061", "aws:rds/snapshot:Snapshot", {"sharedAccounts": ["all"]}, {"sharedAccounts": [ACCOUNT]}),
    ("RSD-061", "aws:ebs/snapshotBlockPublicAccess:SnapshotBlockPublicAccess", {"state": "unblocked"},
     {"state": "block-all-sharing"}),
    ("RSD-061", "aws:ssm/document:Document", {"permissions": {"type": "Share", "accountIds": "All"}},
     {"permissions": {"type": "Share", "accountIds": ACCOUNT}}),
    ("RSD-062", "aws:sagemaker/notebookInstance:NotebookInstance", {"instanceType": "ml.t3.medium"},
     {"directInternetAccess": "Disabled", "subnetId": "subnet-1"}),
    ("RSD-062", "aws:sagemaker/domain:Domain", {"authMode": "IAM"}, {"appNetworkAccessType": "VpcOnly"}),
    ("RSD-063", "aws:elasticsearch/domain:Domain", {"domainName": "d"},
     {"domainName": "d", "vpcOptions": {"subnetIds": ["subnet-1"]}}),
    ("RSD-063", "aws:emr/cluster:Cluster", {"releaseLabel": "emr-7.0.0"},
     {"releaseLabel": "emr-7.0.0", "ec2Attributes": {"subnetId": "subnet-1"}}),
    ("RSD-063", "aws:emr/blockPublicAccessConfiguration:BlockPublicAccessConfiguration",
     {"blockPublicSecurityGroupRules": False}, {"blockPublicSecurityGroupRules": True}),
])
def test_exposure_rule_fires_and_is_quiet(rule, type_, bad, good):
    assert fired(run([res(type_, "bad", inputs=bad)]), rule)
    assert not fired(run([res(type_, "good", inputs=good)]), rule)


def test_helm_release_chart_repository_is_quiet_and_its_image_repository_is_read():
    release = res("kubernetes:helm.sh/v3:Release", "device-plugin", prov=None, inputs={
        "chart": "nvidia-device-plugin", "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
        "values": {"image": {"repository": "nvcr.io/nvidia/k8s-device-plugin", "tag": "v0.17.0"},
                   "nodeSelector": {"kubernetes.io/hostname": "ip-10-0-1-5.eu-central-1.compute.internal"}}})
    [f] = fired(run([release]), "RSD-055")
    assert "values.image.repository: nvcr.io" in f.message
    mirrored = res("kubernetes:helm.sh/v3:Release", "device-plugin", prov=None, inputs={
        "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
        "values": {"image": {"repository": f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/k8s-device-plugin"}}})
    assert not fired(run([mirrored]), "RSD-055")
