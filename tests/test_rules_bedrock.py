"""Rule class 5: Bedrock / ZM+ (RSD-040..044), driven by the catalog."""

import pytest

from infra.program.catalog import load_catalog
from rules_kit import ACCOUNT, LOGGING, US_PROVIDER, ctx, fired, home_logging, policy, provider, res, run

EU = load_catalog().geography("EU")
SONNET = EU.zm_plus.models["claude-sonnet-4-5"]
EU_PROFILE_ARN = f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/eu.{SONNET.model_id}"
INVOKE = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def catalog_policy(geo=EU, model=SONNET):
    """The residency-facts §2.1 shape, built from the catalog: profile ARN + FM ARN per destination."""
    profile = f"arn:aws:bedrock:{geo.home_region}:{ACCOUNT}:inference-profile/{model.profile_id(geo.zm_plus.profile_prefix)}"
    fms = [f"arn:aws:bedrock:{r}::foundation-model/{model.model_id}" for r in model.destinations]
    return policy({"Effect": "Allow", "Action": INVOKE, "Resource": [profile]},
                  {"Effect": "Allow", "Action": INVOKE, "Resource": fms,
                   "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": profile}}})


def role_policy(doc, name="p"):
    return res("aws:iam/rolePolicy:RolePolicy", name, inputs={"policy": doc})


@pytest.mark.parametrize("geo", ["EU", "US"])
def test_catalog_built_policy_is_quiet_in_its_geography(geo):
    g = load_catalog().geography(geo)
    prov_region = g.home_region
    from rules_kit import provider

    p = provider(prov_region, stack=g.stack)
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": catalog_policy(g, next(iter(g.zm_plus.models.values())))},
             prov=p, stack=g.stack)
    report = run([p, rp, home_logging(geo)], ctx(geo))
    assert report.findings == []


def test_bedrock_permission_in_a_stack_without_zm_plus_fires():
    report = run([role_policy(catalog_policy())], ctx("EU", options=("zmo", "federated")))
    assert fired(report, "RSD-040")


@pytest.mark.parametrize("resource", [
    res("aws:bedrock/guardrail:Guardrail", "g", inputs={"name": "g"}),
    res("aws:ec2/vpcEndpoint:VpcEndpoint", "e", inputs={"serviceName": "com.amazonaws.eu-central-1.bedrock-runtime"}),
    res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a",
        inputs={"policyArn": "arn:aws:iam::aws:policy/AmazonBedrockFullAccess"}),
    res("kubernetes:apps/v1:Deployment", "d", prov=None,
        inputs={"spec": {"env": [{"name": "MODEL", "value": f"eu.{SONNET.model_id}"}]}}),
])
def test_any_bedrock_use_in_a_zmo_stack_fires(resource):
    assert fired(run([resource], ctx("SG")), "RSD-040")


def test_bedrock_in_a_zm_plus_stack_does_not_trip_the_option_rule():
    assert not fired(run([res("aws:bedrock/guardrail:Guardrail", "g")]), "RSD-040")


@pytest.mark.parametrize("resource_value", ["*", "arn:aws:bedrock:*::foundation-model/x",
                                            f"arn:aws:bedrock:eu-*:{ACCOUNT}:inference-profile/eu.x"])
def test_invoke_on_star_or_wildcard_region_fires(resource_value):
    doc = policy({"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": resource_value})
    assert fired(run([role_policy(doc)]), "RSD-041")


@pytest.mark.parametrize("doc", [
    policy({"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}),
    policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    policy({"Effect": "Allow", "Action": "bedrock:Invoke*", "NotResource": "arn:aws:bedrock:eu-central-1::x"}),
])
def test_broad_grants_that_include_invoke_fire(doc):
    assert fired(run([role_policy(doc)]), "RSD-041")


@pytest.mark.parametrize("doc", [
    policy({"Effect": "Deny", "Action": "bedrock:*", "Resource": "*"}),
    policy({"Effect": "Allow", "Action": "bedrock:ListFoundationModels", "Resource": "*"}),
    policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
])
def test_deny_or_non_invoke_grants_are_quiet(doc):
    assert not fired(run([role_policy(doc)]), "RSD-041")


def test_managed_bedrock_policy_is_an_unscoped_grant():
    att = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a",
              inputs={"policyArn": "arn:aws:iam::aws:policy/AmazonBedrockFullAccess"})
    assert fired(run([att]), "RSD-041")


@pytest.mark.parametrize("value,needle", [
    (f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/us.{SONNET.model_id}", "US geography"),
    (f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/global.{SONNET.model_id}", "global."),
    (f"arn:aws:bedrock:::foundation-model/{SONNET.model_id}", "region-less"),
    (f"apac.{SONNET.model_id}", "apac"),
])
def test_foreign_and_global_profiles_fire(value, needle):
    doc = policy({"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": value})
    [f, *_] = fired(run([role_policy(doc)]), "RSD-042")
    assert needle in f.message


def test_own_profile_is_quiet_and_us_profile_is_fine_in_us():
    assert not fired(run([role_policy(catalog_policy())]), "RSD-042")
    us = load_catalog().geography("US")
    from rules_kit import provider

    p = provider("us-east-1", stack="us")
    rp = res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": catalog_policy(us, us.zm_plus.models["claude-sonnet-4-5"])},
             prov=p, stack="us")
    assert not fired(run([p, rp], ctx("US")), "RSD-042")


@pytest.mark.parametrize("source,count", [
    (EU_PROFILE_ARN, 0),
    (f"arn:aws:bedrock:eu-central-1::foundation-model/{SONNET.model_id}", 0),
    (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET.model_id}", 2),
    (f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/global.{SONNET.model_id}", 1),
    (None, 1),
])
def test_application_inference_profile_source(source, count):
    ip = res("aws:bedrock/inferenceProfile:InferenceProfile", "ip", inputs={"modelSource": {"copyFrom": source}})
    assert len(fired(run([ip]), "RSD-043")) == count


def test_guardrail_cross_region_config():
    on = res("aws:bedrock/guardrail:Guardrail", "g1", inputs={"crossRegionConfig": {"guardrailProfileIdentifier": "eu.guardrail.v1:0"}})
    off = res("aws:bedrock/guardrail:Guardrail", "g2", inputs={"name": "g"})
    report = run([on, off])
    assert [f.urn for f in fired(report, "RSD-044")] == [on.urn]


def test_default_full_access_policy_of_a_non_bedrock_endpoint_is_not_a_grant():
    default = policy({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
    s3 = res("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", inputs={"serviceName": "com.amazonaws.eu-central-1.s3",
                                                             "policy": default})
    bucket_policy = res("aws:s3/bucketPolicy:BucketPolicy", "bp", inputs={"policy": default})
    report = run([s3, bucket_policy])
    assert not fired(report, "RSD-041")


def test_default_full_access_policy_of_a_bedrock_endpoint_is_a_grant():
    default = policy({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
    ep = res("aws:ec2/vpcEndpoint:VpcEndpoint", "br", inputs={
        "serviceName": "com.amazonaws.eu-central-1.bedrock-runtime", "policy": default})
    assert fired(run([ep]), "RSD-041")


@pytest.mark.parametrize("regions,count", [(list(SONNET.destinations), 0), (["eu-central-1", "us-east-1"], 1)])
def test_application_profile_without_copy_from_is_judged_by_its_models(regions, count):
    models = [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{SONNET.model_id}"} for r in regions]
    ip = res("aws:bedrock/inferenceProfile:InferenceProfile", "app", outputs={"type": "APPLICATION", "models": models})
    assert len(fired(run([ip], source="live"), "RSD-043")) == count



# --- RSD-042: explicit Denies name global profiles and region-less ARNs to forbid them ---------------

def test_deny_on_global_profiles_and_region_less_model_arns_is_quiet_and_the_allow_fires():
    global_profile = f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/global.{SONNET.model_id}"
    deny = {"Effect": "Deny", "Action": INVOKE, "Resource": ["arn:aws:bedrock:::foundation-model/*", global_profile]}
    assert not fired(run([role_policy(policy(deny))]), "RSD-042")
    assert len(fired(run([role_policy(policy({**deny, "Effect": "Allow"}))]), "RSD-042")) == 2


def test_profile_ids_outside_policy_documents_are_still_read():
    d = res("kubernetes:apps/v1:Deployment", "d", prov=None,
            inputs={"spec": {"env": [{"name": "MODEL", "value": f"global.{SONNET.model_id}"}], "Effect": "Deny"}})
    assert fired(run([d]), "RSD-042")


# --- RSD-045: model invocation logging -----------------------------------------------------------------


def logging(config, region_prov=None, name="logging"):
    kwargs = {"prov": region_prov} if region_prov is not None else {}
    return res(LOGGING, name, inputs={"loggingConfig": config}, **kwargs)


def bucket(name, prov=None):
    kwargs = {"prov": prov} if prov is not None else {}
    return res("aws:s3/bucket:Bucket", name, outputs={"bucket": name, "arn": f"arn:aws:s3:::{name}"}, **kwargs)


BOTH = {"s3Config": {"bucketName": "logs", "keyPrefix": "invocations"},
        "cloudwatchConfig": {"logGroupName": "/prompts", "largeDataDeliveryS3Config": {"bucketName": "logs"}}}


def test_logging_to_in_region_destinations_is_quiet():
    assert not fired(run([bucket("logs"), logging(BOTH)]), "RSD-045")
    assert not fired(run([home_logging()]), "RSD-045")  # a log group is in the configuration's region


def test_logging_to_a_bucket_outside_the_geography_fires_for_each_destination():
    report = run([bucket("logs", US_PROVIDER), logging(BOTH)])
    assert sorted(f.message.split(":")[0] for f in fired(report, "RSD-045")) == [
        "loggingConfig.cloudwatchConfig.largeDataDeliveryS3Config.bucketName", "loggingConfig.s3Config.bucketName"]
    assert all("us-east-1 is outside EU" in f.message for f in fired(report, "RSD-045"))


@pytest.mark.parametrize("name,needle", [("elsewhere", "cannot be proven"), (None, "not known")])
def test_logging_to_an_unresolvable_bucket_fails_closed(name, needle):
    [f] = fired(run([bucket("logs"), logging({"s3Config": {"bucketName": name}})]), "RSD-045")
    assert needle in f.message


def test_secret_logging_destination_is_unverifiable():
    from infra.engine.model import Secret

    [f] = fired(run([logging({"s3Config": {"bucketName": Secret()}})], source="export"), "RSD-045")
    assert "secret" in f.message


@pytest.mark.parametrize("config", [None, {}, {"textDataDeliveryEnabled": True}])
def test_logging_off_in_the_home_region_of_a_zm_plus_stack_fires(config):
    cfg = logging(config)
    [f] = fired(run([cfg]), "RSD-045")
    assert f.urn == cfg.urn and "off in eu-central-1" in f.message


def test_logging_off_elsewhere_or_without_zm_plus_is_not_required():
    ireland = logging(None, provider("eu-west-1"), name="ireland")
    assert not fired(run([ireland, home_logging()]), "RSD-045")
    assert not fired(run([logging(None)], ctx("EU", options=("zmo", "federated"))), "RSD-045")


def test_no_logging_configuration_in_a_zm_plus_stack_fires_on_the_stack():
    [f] = fired(run([logging(BOTH, provider("eu-west-1")), bucket("logs")]), "RSD-045")
    assert f.urn == "stack:eu" and f.type == LOGGING and "no model invocation logging configuration in eu-central-1" in f.message
    assert fired(run([]), "RSD-045")  # nothing at all: still required
    assert not fired(run([], ctx("SG")), "RSD-045")


def test_absence_is_left_to_the_live_scanner_and_fragments():
    assert not fired(run([], source="live"), "RSD-045")  # the scanner records absence as a resource
    assert not fired(run([], complete=False), "RSD-045")  # a CrossGuard per-resource fragment proves nothing
