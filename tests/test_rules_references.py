"""Rule class 2: regional references anywhere in the properties (RSD-010..014)."""

import json

import pytest

from infra.engine.model import Secret
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


# --- regional hostnames with a service label after the region --------------------------------------

HOST_FORMS = ["x.{r}.eks.amazonaws.com", "abc.vpce.{r}.vpce.amazonaws.com", "oidc.eks.{r}.amazonaws.com",
              "bedrock-runtime.{r}.amazonaws.com", "*.{r}.api.aws", "s3.dualstack.{r}.amazonaws.com",
              "x.execute-api.{r}.amazonaws.com", "https://ABC123.gr7.{r}.eks.amazonaws.com/",
              "internal-lb-1.{r}.elb.amazonaws.com"]


def deployment(host, name="d"):
    return res("kubernetes:apps/v1:Deployment", name, prov=None, inputs={"endpoint": host})


@pytest.mark.parametrize("form", HOST_FORMS)
def test_every_regional_hostname_form_outside_the_geography_fires(form):
    [f] = fired(run([deployment(form.format(r="us-west-2"))]), "RSD-013")
    assert "us-west-2" in f.message


@pytest.mark.parametrize("form", HOST_FORMS)
@pytest.mark.parametrize("region", ["eu-central-1", "eu-west-1"])
def test_every_regional_hostname_form_inside_the_geography_is_quiet(form, region):
    assert not fired(run([deployment(form.format(r=region))]), "RSD-013")


def test_two_labels_after_the_region_are_not_a_regional_hostname():
    assert not fired(run([deployment("x.us-west-2.a.b.amazonaws.com")]), "RSD-013")


# --- Deny statements restrict: they are not references ----------------------------------------------

FOREIGN_FM = "arn:aws:bedrock:us-east-1::foundation-model/x"


@pytest.mark.parametrize("type_,extra", [
    ("aws:iam/rolePolicy:RolePolicy", {}),
    ("aws:iam/policy:Policy", {}),
    ("aws:s3/bucketPolicy:BucketPolicy", {}),
    ("aws:ec2/vpcEndpoint:VpcEndpoint", {"serviceName": "com.amazonaws.eu-central-1.bedrock-runtime"}),
    ("aws:organizations/policy:Policy", {}),
])
def test_deny_naming_a_foreign_region_is_quiet_and_the_same_allow_fires(type_, extra):
    deny = {"Effect": "Deny", "Action": "bedrock:InvokeModel", "Resource": FOREIGN_FM}
    quiet = res(type_, "deny", inputs={**extra, "policy": policy(deny)})
    loud = res(type_, "allow", inputs={**extra, "policy": policy({**deny, "Effect": "Allow"})})
    report = run([quiet, loud])
    assert [f.urn for f in report.findings if f.rule.startswith("RSD-01")] == [loud.urn]
    assert "us-east-1" in fired(report, "RSD-010")[0].message


def test_deny_is_skipped_statement_by_statement_with_indexes_kept():
    doc = policy({"Effect": "Deny", "Action": "*", "Resource": "*",
                  "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
                 {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/k"})
    single = json.dumps({"Statement": {"Effect": "Deny", "Action": "*", "Resource": FOREIGN_FM}})
    report = run([res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": doc}),
                  res("aws:iam/rolePolicy:RolePolicy", "one", inputs={"policy": single})])
    assert [f.message.split(":")[0] for f in report.findings if f.rule.startswith("RSD-01")] == [
        "policy.Statement[1].Resource"]


def test_raw_prescreen_agrees_on_hostnames_and_denies(tmp_path):
    """The whole-document fast path (read_export's raw index) gives the per-resource verdict."""
    from infra.engine.loaders import read_export
    from infra.engine.rules import Context, evaluate
    from infra.program.stackfiles import load_stack_config

    cases = [(f"h{i}-{r}", {"endpoint": form.format(r=r)}) for i, form in enumerate(HOST_FORMS)
             for r in ("us-west-2", "eu-central-1")]
    deny = {"Effect": "Deny", "Action": "bedrock:InvokeModel", "Resource": FOREIGN_FM}
    cases += [("deny", {"policy": policy(deny)}), ("allow", {"policy": policy({**deny, "Effect": "Allow"})})]
    doc = {"version": 3, "deployment": {"resources": [
        {"urn": f"urn:pulumi:eu::p::kubernetes:core/v1:ConfigMap::{name}", "custom": True, "id": name,
         "type": "kubernetes:core/v1:ConfigMap", "inputs": inputs} for name, inputs in cases]}}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    ctx = Context.from_config(load_stack_config("eu"))
    snapshot, raw = read_export(path, stack="eu")
    assert raw is not None

    def named(report):
        return sorted((f.rule, f.urn.rsplit("::", 1)[-1]) for f in report.findings if f.rule.startswith("RSD-01"))

    fast = named(evaluate(snapshot, ctx, raw=raw))
    assert fast == named(evaluate(snapshot, ctx))
    assert fast == sorted([("RSD-013", f"h{i}-us-west-2") for i in range(len(HOST_FORMS))] + [("RSD-010", "allow")])


@pytest.mark.parametrize("foreign", [None, "ap-southeast-1", "us-gov-west-1", "eu-west-2", "eusc-de-east-1",
                                     "eu-central-2a", "arn:aws:s3:us-east-1:1:x", "il-central-1"])
def test_raw_foreign_gate_never_says_no_to_a_foreign_token(tmp_path, foreign):
    """The whole-document foreign gate (region counts, then masked searches) lets through every
    resource whose own text holds a region token outside the geography, and nothing on a clean
    document (in-geography regions, AZs and look-alikes only)."""
    from infra.engine.loaders import read_export
    from infra.engine.rules import Context
    from infra.engine.rules.engine import Scope
    from infra.program.stackfiles import load_stack_config

    clean = ["eu-west-1", "eu-west-1a", "eu-central-1", "eu-south-2", "arn:aws:kms:eu-north-1:1:key/k",
             "s3.eu-west-3.amazonaws.com", "north-star", "central-park"]
    values = clean + ([foreign] if foreign else [])
    doc = {"version": 3, "deployment": {"resources": [
        {"urn": f"urn:pulumi:eu::p::aws:s3/bucket:Bucket::b{i}", "custom": True, "id": f"b{i}",
         "type": "aws:s3/bucket:Bucket", "inputs": {"note": v, "policy": policy({"Resource": v})}}
        for i, v in enumerate(values)]}}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    ctx = Context.from_config(load_stack_config("eu"))
    snapshot, raw = read_export(path, stack="eu")
    assert raw is not None
    hits = Scope(snapshot, ctx, raw=raw).raw_hits("foreign")
    plain = Scope(snapshot, ctx)
    foreign_at = {i for i, r in enumerate(snapshot.resources) if plain.facts(r).foreign_tokens}
    assert foreign_at <= hits
    assert foreign_at == ({len(clean)} if foreign else set())  # eu-central-2 (Zurich) is not in the EU geography
    if not foreign:
        assert hits == set()  # a clean document is searched for nothing
