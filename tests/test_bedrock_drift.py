"""`residency models`: live drift check of the Bedrock catalog.

moto 5.2.5 does not implement ListFoundationModels, ListInferenceProfiles or GetInferenceProfile
(its bedrock backend covers customization jobs, custom models, logging config and tags only), so
the answers come from botocore's Stubber on a real client. The failure paths use a real client
against 127.0.0.1: a closed port (unreachable) and an empty credential chain (no credentials).
"""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.stub import Stubber

from infra import cli
from infra.commands import bedrock_drift
from infra.program.catalog import load_catalog
from infra.program.stackfiles import PROJECT_DIR_ENV
from cli_run import residency

EU = load_catalog().by_stack("eu")
US = load_catalog().by_stack("us")
ACCOUNT = "123456789012"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(autouse=True)
def repo_stack_files(monkeypatch):
    # These tests read the repo's own stack files, whatever an earlier test left in the environment.
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)


def fake_client(region):
    return boto3.client("bedrock", region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing", endpoint_url="http://127.0.0.1:9")


def profile(geo, model_id, destinations):
    pid = f"{geo.zm_plus.profile_prefix}.{model_id}"
    return {
        "inferenceProfileName": pid, "inferenceProfileId": pid, "status": "ACTIVE", "type": "SYSTEM_DEFINED",
        "inferenceProfileArn": f"arn:aws:bedrock:{geo.home_region}:{ACCOUNT}:inference-profile/{pid}",
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{model_id}"} for r in destinations],
    }


def fm(model_id, region, types=("ON_DEMAND",)):
    return {"modelId": model_id, "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
            "inferenceTypesSupported": list(types)}


def eu_destinations():
    return list(EU.zm_plus.models["claude-sonnet-4-5"].destinations)


def stub_eu(stubber, sonnet_destinations=None, list_pages=2):
    """EU stack: sonnet + haiku profiles; profiles listed over `list_pages` pages."""
    sonnet = profile(EU, SONNET, sonnet_destinations or eu_destinations())
    haiku = profile(EU, HAIKU, eu_destinations())
    other = profile(EU, "anthropic.claude-3-haiku-20240307-v1:0", ["eu-central-1"])
    if list_pages == 2:
        stubber.add_response("list_inference_profiles", {"inferenceProfileSummaries": [other, sonnet], "nextToken": "p2"},
                             {"typeEquals": "SYSTEM_DEFINED"})
        stubber.add_response("list_inference_profiles", {"inferenceProfileSummaries": [haiku]},
                             {"typeEquals": "SYSTEM_DEFINED", "nextToken": "p2"})
    else:
        stubber.add_response("list_inference_profiles", {"inferenceProfileSummaries": [other, sonnet, haiku]},
                             {"typeEquals": "SYSTEM_DEFINED"})
    stubber.add_response("get_inference_profile", sonnet, {"inferenceProfileIdentifier": sonnet["inferenceProfileId"]})
    stubber.add_response("get_inference_profile", haiku, {"inferenceProfileIdentifier": haiku["inferenceProfileId"]})


@pytest.fixture
def run_models(monkeypatch, capsys):
    """Run `residency models ...` through the CLI with a stubbed client; returns (rc, out, err)."""
    monkeypatch.setattr(cli, "COMMANDS", {"models": "infra.commands.bedrock_drift"})

    def run(argv, setup=None, region="eu-central-1"):
        client = fake_client(region)
        stubber = Stubber(client)
        if setup:
            setup(stubber)
        stubber.activate()
        monkeypatch.setattr(bedrock_drift, "make_client", lambda *a, **k: client)
        rc = cli.main(["models", *argv])
        out, err = capsys.readouterr()
        if rc in (0, 1):
            stubber.assert_no_pending_responses()
        return rc, out, err

    return run


def test_clean_eu_stack_exits_0(run_models):
    rc, out, err = run_models(["--stack", "eu"], stub_eu)
    assert rc == 0, out + err
    assert "match the catalog" in out and "DRIFT" not in out


def test_clean_us_stack_checks_profile_and_in_region_model(run_models):
    def setup(s):
        sonnet = profile(US, SONNET, ["us-east-1", "us-east-2", "us-west-2"])
        s.add_response("list_inference_profiles", {"inferenceProfileSummaries": [sonnet]}, {"typeEquals": "SYSTEM_DEFINED"})
        s.add_response("get_inference_profile", sonnet, {"inferenceProfileIdentifier": sonnet["inferenceProfileId"]})
        s.add_response("list_foundation_models", {"modelSummaries": [fm(HAIKU, "us-east-1"), fm(SONNET, "us-east-1", ["INFERENCE_PROFILE"])]}, {})

    rc, out, err = run_models(["--stack", "us"], setup, region="us-east-1")
    assert rc == 0, out + err


def test_destination_outside_the_geography_is_drift(run_models):
    rc, out, _ = run_models(["--stack", "eu"], lambda s: stub_eu(s, eu_destinations() + ["eu-west-2"], list_pages=1))
    assert rc == 1
    assert f"profile eu.{SONNET} routes to eu-west-2, outside EU" in out


def test_changed_in_geography_destinations_are_drift(run_models):
    rc, out, _ = run_models(["--stack", "eu"], lambda s: stub_eu(s, ["eu-central-1", "eu-west-1"]))
    assert rc == 1
    assert "destinations changed" in out and "gone: eu-north-1, eu-south-1, eu-south-2, eu-west-3" in out


def test_profile_no_longer_offered_is_drift(run_models):
    def setup(s):
        haiku = profile(EU, HAIKU, eu_destinations())
        s.add_response("list_inference_profiles", {"inferenceProfileSummaries": [haiku]}, {"typeEquals": "SYSTEM_DEFINED"})
        s.add_response("get_inference_profile", haiku, {"inferenceProfileIdentifier": haiku["inferenceProfileId"]})

    rc, out, _ = run_models(["--stack", "eu"], setup)
    assert rc == 1 and f"profile eu.{SONNET} is no longer offered in eu-central-1" in out


@pytest.mark.parametrize("listed, message", [
    ([], f"{HAIKU} is no longer offered in us-east-1"),
    ([fm(HAIKU, "us-east-1", ["INFERENCE_PROFILE"])], "only through an inference profile, not in-region"),
])
def test_in_region_model_no_longer_offered_is_drift(run_models, listed, message):
    def setup(s):
        sonnet = profile(US, SONNET, ["us-east-1", "us-east-2", "us-west-2"])
        s.add_response("list_inference_profiles", {"inferenceProfileSummaries": [sonnet]}, {"typeEquals": "SYSTEM_DEFINED"})
        s.add_response("get_inference_profile", sonnet, {"inferenceProfileIdentifier": sonnet["inferenceProfileId"]})
        s.add_response("list_foundation_models", {"modelSummaries": listed}, {})

    rc, out, _ = run_models(["--stack", "us"], setup, region="us-east-1")
    assert rc == 1 and message in out


@pytest.mark.parametrize("code, status, says", [
    ("AccessDeniedException", 403, "access denied calling ListInferenceProfiles"),
    ("ThrottlingException", 429, "ListInferenceProfiles failed: ThrottlingException"),
])
def test_a_fault_reading_the_catalog_is_not_checked_exit_3(run_models, code, status, says):
    """A fault while reading is "not checked" (3), never drift (1) nor bad input (2)."""
    def setup(s):
        s.add_client_error("list_inference_profiles", service_error_code=code, service_message="no",
                           http_status_code=status)

    rc, out, err = run_models(["--stack", "eu"], setup)
    assert rc == 3, out + err
    assert says in err and "INCOMPLETE, not checked: stack eu in eu-central-1" in err
    assert "Traceback" not in err + out and out == ""


def test_stack_without_zm_plus_exits_0_nothing_to_check(run_models):
    # A loop over every stack must not stop at a ZMO-only one.
    rc, out, _ = run_models(["--stack", "sg"])
    assert rc == 0 and "sg: no zm_plus" in out and "nothing to check" in out


def test_unknown_stack_exits_2(run_models):
    rc, _, err = run_models(["--stack", "atlantis"])
    assert rc == 2 and "unknown stack 'atlantis'" in err


# --- real clients against loopback: what the stub cannot show ---------------------------------

@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the fixture returns: nothing listens


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe the instance metadata service
    monkeypatch.setattr(cli, "COMMANDS", {"models": "infra.commands.bedrock_drift"})


def test_no_credentials_exits_2(no_aws_env, closed_port, capsys):
    rc = cli.main(["models", "--stack", "eu", "--endpoint-url", f"http://127.0.0.1:{closed_port}"])
    err = capsys.readouterr().err
    assert rc == 2 and "no AWS credentials found" in err and "Traceback" not in err


def test_unreachable_endpoint_exits_3_through_the_console_script(no_aws_env, closed_port):
    """As a user runs it: AWS cannot be reached, so nothing was checked (3), not bad input (2)."""
    result = residency("models", "--stack", "eu", "--endpoint-url", f"http://127.0.0.1:{closed_port}",
                       project=None, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    assert result.rc == 3, result.out + result.err
    assert "INCOMPLETE, not checked: stack eu in eu-central-1" in result.err
    assert f"127.0.0.1:{closed_port}" in result.err and "Traceback" not in result.err and result.out == ""


KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.mark.parametrize("argv, env, says", [
    (("--profile", "nope"), {}, "--profile: The config profile (nope) could not be found"),
    (("--endpoint-url", "http://"), KEYS, "--endpoint-url: Invalid endpoint: http://"),
    ((), {}, "no AWS credentials found"),
])
def test_bad_input_exits_2_through_the_console_script(no_aws_env, argv, env, says):
    result = residency("models", "--stack", "eu", *argv, project=None, **env)
    assert result.rc == 2, result.out + result.err
    assert says in result.err and "Traceback" not in result.err


def test_unknown_named_profile_exits_2(no_aws_env, capsys):
    rc = cli.main(["models", "--stack", "eu", "--profile", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    finally:
        server.stop()


def test_endpoint_without_the_api_exits_3(no_aws_env, moto_server, monkeypatch, capsys):
    # moto answers these calls with a 500 (NotImplementedError): a server that cannot answer is
    # "not checked", never "clean".
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    rc = cli.main(["models", "--stack", "eu", "--endpoint-url", moto_server])
    err = capsys.readouterr().err
    assert rc == 3 and "not checked: stack eu" in err and "Traceback" not in err
