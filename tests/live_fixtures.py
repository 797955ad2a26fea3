"""A moto server on 127.0.0.1 for the live-scan tests, recording every request it receives.

One server per test process (started on first use, stopped at exit); each test gets a reset
account (`POST /moto-api/reset`) and hermetic AWS environment variables. The recorder is
independent of the scanner's own read-only guard: it sees what actually reached the "account".
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import re
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

ACCOUNT = "123456789012"  # moto's default account
HOME = "eu-central-1"  # the eu stack's home region
READ_PREFIXES = ("List", "Describe", "Get")

# APIs the scanner reads that moto 5.2.5 does not implement (it answers 500). The server answers
# them as an empty account so that whole-scan and CLI tests can be complete; their mapping and
# faults are tested with botocore's Stubber (tests/test_live_stubbed.py).
MISSING_IN_MOTO = {
    ("bedrock", "GET", "/inference-profiles"): {"inferenceProfileSummaries": []},
    ("bedrock", "GET", "/guardrails"): {"guardrails": []},
    ("network-firewall", "ListRuleGroups"): {"RuleGroups": []},
    ("route53resolver", "ListFirewallDomainLists"): {"FirewallDomainLists": []},
    ("route53resolver", "ListFirewallRuleGroups"): {"FirewallRuleGroups": []},
    ("globalaccelerator", "ListAccelerators"): {"Accelerators": []},
    ("directconnect", "DescribeVirtualInterfaces"): {"virtualInterfaces": []},
    ("es", "POST", "/2021-01-01/opensearch/cc/outboundConnection/search"): {"Connections": []},
    ("resource-explorer-2", "POST", "/ListIndexes"): {"Indexes": []},  # no aggregator index: the per-region sweep
    # EC2 speaks XML: an empty answer in its own protocol.
    ("ec2", "DescribeClientVpnEndpoints"): '<DescribeClientVpnEndpointsResponse xmlns="http://ec2.amazonaws.com/'
                                           'doc/2016-11-15/"><clientVpnEndpoint/></DescribeClientVpnEndpointsResponse>',
}
# REST reads sent as POST (a search or lookup with a body): OpenSearch DescribeOutboundConnections
# and DescribeDomains.
READS_BY_POST = {("es", "POST", "/2021-01-01/opensearch/cc/outboundConnection/search"),
                 ("resource-explorer-2", "POST", "/ListIndexes"), ("resource-explorer-2", "POST", "/ListResources"),
                 ("es", "POST", "/2021-01-01/opensearch/domain-info")}
# The same for REST calls whose path names a resource: (service, method, path pattern) -> answer.
MISSING_IN_MOTO_PATHS = [
    ("lambda", "GET", re.compile(r"/2021-10-31/functions/[^/]+/urls"), {"FunctionUrlConfigs": []}),
]
_CREDENTIAL_RE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    service: str
    region: str
    operation: str | None  # None for REST protocols (S3, Bedrock): the method says what it does

    @property
    def read_only(self) -> bool:
        if self.operation is None:
            return self.method in ("GET", "HEAD") or (self.service, self.method, self.path) in READS_BY_POST
        return self.operation.startswith(READ_PREFIXES)


class _Recorder:
    def __init__(self, app):
        self.app = app
        self.calls: list[Call] = []
        self.enabled = False

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        call = self._call(environ, path)
        if self.enabled:
            self.calls.append(call)
        canned = MISSING_IN_MOTO.get((call.service, call.operation) if call.operation else
                                     (call.service, call.method, path))
        if canned is None and not call.operation:
            canned = next((answer for service, method, pattern, answer in MISSING_IN_MOTO_PATHS
                           if (service, method) == (call.service, call.method) and pattern.fullmatch(path)), None)
        if canned is not None:
            xml = isinstance(canned, str)
            body = canned.encode() if xml else json.dumps(canned).encode()
            start_response("200 OK", [("Content-Type", "text/xml" if xml else "application/x-amz-json-1.1"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)

    @staticmethod
    def _call(environ, path) -> Call:
        body = b""
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = environ["wsgi.input"].read(int(length))
            environ["wsgi.input"] = io.BytesIO(body)
        operation = None
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            operation = target.rsplit(".", 1)[-1]
        else:
            params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
            operation = (params.get("Action") or [None])[0]
        m = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = (m.group(1), m.group(2)) if m else ("?", "?")
        return Call(environ["REQUEST_METHOD"], path, service, region, operation)


MOTO_ORIGINALS: dict = {}  # what moto_dispatch_memoized replaced, for the test that compares answers


def moto_dispatch_memoized() -> None:
    """Memoize two lookups that moto 5.2.5's server repeats on every request, whose answers are
    fixed for the life of the process: `backends.list_of_moto_modules()` lists moto's package
    directory and stats each of its ~180 entries (to ask whether a Host header names a service), and
    `responses.method_names_from_class(cls)` walks a response class with `inspect.getmembers` (to ask
    whether an action is one of its methods). Together about a third of moto's CPU per request.
    A third, on EKS: `moto.eks.utils.validate_role_arn` builds a new boto3 Session per CreateCluster
    (to list the partitions), which parses botocore's endpoint data again (about 0.1 s each). The
    answers are the same (test_live_moto.py compares them with the originals); only the repetition
    goes. moto is pinned (requirements-dev.txt), and that test checks any other version."""
    import functools

    from moto import backends
    from moto.core import responses
    from moto.eks import utils as eks_utils

    if MOTO_ORIGINALS:
        return
    MOTO_ORIGINALS.update(list_of_moto_modules=backends.list_of_moto_modules,
                          method_names_from_class=responses.method_names_from_class,
                          eks_session=eks_utils.Session)
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    eks_utils.Session = functools.cache(eks_utils.Session)  # called without arguments: one session


class MotoServer:
    def __init__(self):
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request log lines
        self._clients: dict = {}
        moto_dispatch_memoized()
        recorder = self.recorder = _Recorder(DomainDispatcherApplication(create_backend_app))

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:  # ThreadedMotoServer's, with the recorder in front
                self._server = make_server(self._ip_address, self._port, recorder, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self.server = _Server(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def post(self, path: str, payload: dict | bytes | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()  # a reset after a sweep of every region is slow

    def reset(self) -> None:
        self.post("/moto-api/reset")

    @contextmanager
    def iam_enforced(self):
        """moto's IAM enforcement: from here on, requests are authorized against IAM policies."""
        self.post("/moto-api/reset-auth", b"0")
        try:
            yield
        finally:
            self.post("/moto-api/reset-auth", b"inf")

    def stop(self) -> None:
        self.server.stop()

    @contextmanager
    def recording(self):
        self.recorder.calls.clear()
        self.recorder.enabled = True
        try:
            yield self.recorder.calls
        finally:
            self.recorder.enabled = False

    def client(self, service: str, region: str = "eu-central-1"):
        """A boto3 client of this server for planting and reading back, one per service and region:
        building one (ec2's has ~750 methods) cost more than the calls the tests make with it. Its
        credentials are boto3's default session's, resolved once per process either way. s3control's
        callers register a signing hook on theirs, so each gets a new one."""
        key = (service, region)
        if service == "s3control" or key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region, endpoint_url=self.url,
                                              config=Config(s3={"addressing_style": "path"}))
        return self._clients[key]


_SERVER: MotoServer | None = None
_SESSION = None


def shared_session():
    """One boto3 session for the scans of this test process: its loader caches the service models,
    so each scan does not re-read them (scan_account's own session path is tested separately)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return _SESSION


_CLIENTS: dict = {}


def shared_clients(url: str):
    """The scan's guarded clients (live.core.Clients) for the moto server at `url`, made once per
    test process: building a botocore client (ec2's has ~750 methods) was half of each scan's CPU.
    Same session, guard and answer checks as a scan's own; only the construction is shared."""
    from infra.engine.live.core import Clients

    if url not in _CLIENTS:
        _CLIENTS[url] = Clients(shared_session(), url)
    return _CLIENTS[url]


def _server() -> MotoServer:
    global _SERVER
    if _SERVER is None:
        _SERVER = MotoServer()
        atexit.register(_SERVER.stop)
    return _SERVER


def shared_moto_server() -> MotoServer:
    """The process's moto server, for module-scoped fixtures and benchmarks (reset it yourself)."""
    return _server()


def hermetic_aws_env(monkeypatch, tmp_path) -> None:
    """Fake credentials; no shared config, profile or endpoint from the developer's machine."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    hermetic_aws_env(monkeypatch, tmp_path)


@pytest.fixture
def moto(aws_env):  # noqa: F811
    """The shared moto server with a fresh account."""
    server = _server()
    server.reset()
    return server


class StubSession:
    """A boto3 session whose clients are botocore-Stubber'd, for APIs moto does not implement.

    `stub(service, region)` returns the Stubber to queue responses on; any client asked for
    without stubbed responses fails the call (Stubber raises), which the scanner must record as
    not checked, never as a pass.
    """

    def __init__(self):
        self._session = shared_session()  # new clients each time; only the model cache is shared
        self.clients: dict[tuple[str, str], object] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}

    def stub(self, service: str, region: str = "eu-central-1") -> Stubber:
        key = (service, region)
        if key not in self.stubbers:
            client = self._session.client(service, region_name=region)
            self.clients[key] = client
            self.stubbers[key] = Stubber(client)
            self.stubbers[key].activate()
        return self.stubbers[key]

    def client(self, service: str, region_name: str | None = None, **_kwargs):
        self.stub(service, region_name or "eu-central-1")
        return self.clients[(service, region_name or "eu-central-1")]

    def get_credentials(self):
        return self._session.get_credentials()

    def assert_no_pending_responses(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


# --- account setups shared by the moto tests -------------------------------------------------------

def drop_default_vpc(server, region=HOME):
    """moto creates a default VPC (public subnets, open default SG) per region; a clean account has none."""
    ec2 = server.client("ec2", region)
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc["VpcId"])


def private_vpc(server, region=HOME, cidr="10.40.0.0/16"):
    """A VPC like the ZMO network: private subnet, SG egress only inside the VPC."""
    ec2 = server.client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": False})  # moto defaults to true
    sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"][0]["GroupId"]
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}])
    return ec2, vpc, subnet, sg


def scp_in_force(server, stack="eu"):
    """An organization whose root has the stack's geography SCP (`residency scp`) attached, as a
    well-kept account has (RSD-005)."""
    from infra.commands.scp import scp_for_stack

    org = server.client("organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    policy = org.create_policy(Name=f"residency-{stack}", Description="", Type="SERVICE_CONTROL_POLICY",
                               Content=json.dumps(scp_for_stack(stack)))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=policy, TargetId=root)
    return policy


def home_logging(server, region=HOME, bucket="prompt-logs"):
    """Bedrock model invocation logging to an in-region bucket: what RSD-045 asks of a ZM+ stack's
    home region, so a clean account stays clean (moto implements PutModelInvocationLoggingConfiguration)."""
    server.client("s3", region).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    server.client("bedrock", region).put_model_invocation_logging_configuration(loggingConfig={
        "s3Config": {"bucketName": bucket}, "textDataDeliveryEnabled": True})


def account_public_access_blocked(server, region=HOME, on=True):
    """The account-level S3 Block Public Access, all four settings `on` (RSD-060): a well-kept
    account has it; moto's (like a new AWS account's) has none configured."""
    from infra.engine.live.core import drop_account_label

    s3control = server.client("s3control", region)
    s3control.meta.events.register("before-sign", drop_account_label)  # moto routes by path only
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={
        "BlockPublicAcls": on, "IgnorePublicAcls": on, "BlockPublicPolicy": on, "RestrictPublicBuckets": on})


def no_ecr_policies(stub: StubSession, region: str = HOME) -> None:
    """What the ECR scan reads after the registry (item 2 of issue #23): no registry policy and
    no repositories, for Stubber tests of the registry alone."""
    ecr = stub.stub("ecr", region)
    ecr.add_client_error("get_registry_policy", "RegistryPolicyNotFoundException", http_status_code=404)
    ecr.add_response("describe_repositories", {"repositories": []})
