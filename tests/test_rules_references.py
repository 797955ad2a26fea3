"""Rule class 2: regional references anywhere in the properties (RSD-010..014)."""

import json

import pytest

from infra.model import Secret
from rules_kit import ACCOUNT, fired, policy, res, run


def test_foreign_arn_deep_in_a_json_policy_string_fires():
    doc = policy({"Effect": "Allow", "Action": "kms:Decrypt",
                  "Resource": [f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/a", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/b"]})
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": doc})
    [f] = fired(run([rp]), "RSD-010")
    assert "us-east-1" in f.message and "Statement[0].Resource[1]" in f.message


def test_json_document_inside_a_json_string_inside_a_list_is_walked():
    inner = json.dumps({"target": f"arn:aws:sqs:ap-south-1:{ACCOUNT}:q"})
    r = res("aws:cloudwatch/eventRule:EventRule", "e", inputs={"targets": [{"input": inner}]})
    assert fired(run([r]), "RSD-010")


@pytest.mark.parametrize("arn", [
    f"arn:aws-cn:s3:cn-north-1:{ACCOUNT}:accesspoint/x",
    f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/x",
    f"arn:aws-eusc:kms:eusc-de-east-1:{ACCOUNT}:key/x",
])
def test_arns_of_every_partition_are_read(arn):
    assert fired(run([res("aws:lambda/function:Function", "f", inputs={"kmsKeyArn": arn})]), "RSD-010")


@pytest.mark.parametrize("arn", ["arn:aws:s3:::bucket/*", f"arn:aws:iam::{ACCOUNT}:role/x",
                                 "arn:aws:cloudfront::123:distribution/X", f"arn:aws:kms:eu-west-3:{ACCOUNT}:key/k",
                                 f"arn:aws:logs:*:{ACCOUNT}:*"])
def test_region_less_wildcard_and_in_geography_arns_are_quiet(arn):
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": policy({"Effect": "Allow", "Action": "*", "Resource": arn})})
    assert not fired(run([rp]), "RSD-010")


def test_foreign_endpoint_service_name_fires_and_home_is_quiet():
    bad = res("aws:ec2/vpcEndpoint:VpcEndpoint", "bad", inputs={"serviceName": "com.amazonaws.us-east-1.s3"})
    vpce = res("aws:ec2/vpcEndpoint:VpcEndpoint", "svc", inputs={"serviceName": "com.amazonaws.vpce.us-west-2.vpce-svc-0123"})
    good = res("aws:ec2/vpcEndpoint:VpcEndpoint", "good", inputs={"serviceName": "com.amazonaws.eu-central-1.s3"})
    report = run([bad, vpce, good])
    assert {f.urn for f in fired(report, "RSD-011")} == {bad.urn, vpce.urn}


@pytest.mark.parametrize("inputs", [
    {"serviceRegion": "us-east-1"},
    {"config": {"rules": [{"destinationRegion": "us-west-2"}]}},
    {"regions": ["eu-west-1", "ap-southeast-1"]},
    {"availabilityZone": "us-east-1a"},
    {"spec": {"template": {"spec": {"containers": [{"env": [{"name": "AWS_REGION", "value": "us-west-2"}]}]}}}},
])
def test_foreign_region_fields_fire(inputs):
    assert fired(run([res("aws:ec2/vpcEndpoint:VpcEndpoint", "x", inputs=inputs)]), "RSD-012")


@pytest.mark.parametrize("inputs", [
    {"serviceRegion": "eu-west-1"}, {"regions": ["eu-north-1"]}, {"bucket": "logs-us-east-1"},
    {"description": "moved from us-east-1 last year"},
])
def test_in_geography_region_fields_and_names_are_quiet(inputs):
    report = run([res("aws:s3/bucket:Bucket", "x", inputs=inputs)])
    assert not [f for f in report.findings if f.rule.startswith("RSD-01")]


@pytest.mark.parametrize("host", ["https://bedrock-runtime.us-east-1.amazonaws.com/model",
                                  "s3-us-west-2.amazonaws.com", "bedrock-mantle.eu-west-2.api.aws",
                                  "abc.lambda-url.ap-south-1.on.aws", "x.eusc-de-east-1.amazonaws.eu"])
def test_foreign_regional_hostnames_fire(host):
    assert fired(run([res("kubernetes:apps/v1:Deployment", "d", prov=None, inputs={"endpoint": host})]), "RSD-013")


@pytest.mark.parametrize("host", ["https://sts.eu-central-1.amazonaws.com", "api.us-east-1.example.com",
                                  "s3.amazonaws.com"])
def test_home_or_non_aws_hostnames_are_quiet(host):
    assert not fired(run([res("kubernetes:apps/v1:Deployment", "d", prov=None, inputs={"endpoint": host})]), "RSD-013")


def test_secret_where_a_rule_must_look_is_unverifiable():
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": Secret()})
    [f] = fired(run([rp], source="export"), "RSD-014")
    assert "policy" in f.message


def test_secret_in_a_field_no_rule_reads_is_quiet():
    db = res("aws:rds/instance:Instance", "db", inputs={"password": Secret(), "region": "eu-central-1"})
    assert not fired(run([db], source="export"), "RSD-014")


def test_plaintext_input_wins_over_encrypted_output():
    # Marking an output secret does not make the input secret (stack-export-format.md §5).
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": policy({"Effect": "Allow", "Action": "s3:*",
                                                                             "Resource": "*"})},
             outputs={"policy": Secret()})
    assert not fired(run([rp], source="export"), "RSD-014")


def test_provider_endpoint_overrides_are_references():
    from rules_kit import provider

    p = provider("eu-central-1", name="custom")
    p.inputs["endpoints"] = [{"s3": "https://s3.us-east-1.amazonaws.com"}]
    assert fired(run([p]), "RSD-013", p.urn)
