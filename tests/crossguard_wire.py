"""Play the Pulumi engine's part for the CrossGuard pack, over its analyzer gRPC protocol.

What the CLI does with `pulumi preview --policy-pack policy --policy-pack-config FILE`
(pulumi/pulumi `sdk/go/common/resource/plugin/analyzer_plugin.go`, `pkg/resource/analyzer/config.go`):

1. start `<venv>/bin/python -u -m pulumi.policy <engine address> .` in the pack directory (the venv
   named by PulumiPolicy.yaml), with PULUMI_CONFIG (the stack's config map, JSON), PULUMI_PROJECT,
   PULUMI_STACK, PULUMI_ORGANIZATION and PULUMI_DRY_RUN; read the analyzer's port from stdout;
2. Handshake (UNIMPLEMENTED is accepted, as the CLI does), GetAnalyzerInfo;
3. parse the config file, reconcile it with the policies' defaults and initial config, and validate
   each policy's config against its JSON schema (+ the injected `enforcementLevel` property); a
   validation error refuses the pack before anything is analysed (`PackRefused`);
4. Configure with the reconciled config;
5. Remediate then Analyze every resource (its inputs, with its provider);
6. AnalyzeStack with every resource (outputs, parent, dependencies, provider).

Resources come from the offline plan (infra/harness/synth.py); `first_preview` turns a plan into what a
first `pulumi preview` of a new stack sends: every id, ARN and provider-computed name unknown.
The engine's own gRPC service runs on 127.0.0.1 so the pack can log to it.

`run_engine` and `policy_analyze` start a pack process for one deployment, as the CLI does.
`Analyzers` keeps a started, configured pack per analyzer environment and pack config, so that
tests of several deployments under the same stack, mode and config share one process (each sends
all of its own calls; `Analyzer` says why the pack's answers cannot depend on earlier calls).
Those shared packs are forks of the suite's warm interpreter (`forked_pack`: 0.1 s to start
instead of 0.9 s); the tests of start-up, config and refusal, and the console-script CI job
(RESIDENCY_TEST_EXEC=1), exec the pack's interpreter.

`policy_analyze` plays `pulumi policy analyze --file EXPORT --policy-pack DIR --policy-pack-config
FILE` instead (pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8:
`pkg/cmd/pulumi/policy/policy_analyze.go`, `pkg/resource/deploy/analyze_snapshot.go`,
`pkg/engine/update.go` LoadLocalPolicyPackAnalyzers, `pkg/resource/plugin/analyzer_plugin.go`
constructEnv): no program runs and no stack is selected, so the pack is started with no analyzer
options: no PULUMI_CONFIG, PULUMI_STACK, PULUMI_PROJECT, PULUMI_ORGANIZATION or PULUMI_DRY_RUN.
The config file is reconciled and validated, then Configure; for every resource of the export not
marked `delete` (the Stack and providers included), Remediate (reported, never applied) and Analyze
with its *inputs*; then one AnalyzeStack with every resource's *outputs*, parent, dependencies
and propertyDependencies. A stack-level diagnostic whose URN is not in the export is attributed to
the root Stack. Any mandatory diagnostic makes the command exit non-zero.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import jsonschema
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from infra.program.config import PROJECT, config_string

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown-value sentinel
REPO = Path(__file__).resolve().parent.parent
PACK_DIR = REPO / "policy"
LEVELS = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
          "remediate": analyzer_pb2.REMEDIATE, "disabled": analyzer_pb2.DISABLED}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
START_TIMEOUT_S = 120  # a guard against hangs, not a speed target


class PackRefused(Exception):
    """The CLI would refuse the pack (bad --policy-pack-config or schema): the validation errors."""


@dataclass
class Diagnostic:
    policy: str
    urn: str
    level: str
    message: str
    pack: str
    version: str


@dataclass
class Run:
    diagnostics: list[Diagnostic]
    analyze_seconds: list[float] = field(default_factory=list)
    analyze_stack_seconds: float = 0.0
    info: object = None
    engine_logs: list[str] = field(default_factory=list)

    def mandatory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == "mandatory"]

    def latency(self) -> dict:
        a = sorted(self.analyze_seconds)
        return {"resources": len(a), "analyze_mean_ms": 1000 * statistics.mean(a),
                "analyze_p95_ms": 1000 * a[int(0.95 * (len(a) - 1))], "analyze_stack_ms": 1000 * self.analyze_stack_seconds}


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.logs: list[str] = []

    def Log(self, request, context):
        self.logs.append(request.message)
        return empty_pb2.Empty()


# --- the CLI's policy-pack config handling (pkg/resource/analyzer/config.go) ---------------------

def parse_pack_config(text: str) -> dict[str, tuple[str, dict | None]]:
    """parsePolicyPackConfig: name -> (enforcement level or "", properties or None)."""
    if not text.strip():
        return {}
    result = {}
    for name, value in json.loads(text).items():
        if isinstance(value, str):
            level, props = value, None
            if value not in LEVELS:
                raise PackRefused([f"parsing enforcement level for {name!r}: {value!r} is not a valid enforcement level"])
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", "")
            if level and level not in LEVELS:
                raise PackRefused([f"parsing enforcement level for {name!r}: {level!r} is not a valid enforcement level"])
            props = props or None
        else:
            raise PackRefused([f"parsing {name!r}: {value!r} is not a valid value; must be a string or object"])
        if level or props:
            result[name] = (level, props)
    return result


def policy_schemas(info) -> dict[str, dict | None]:
    """GetAnalyzerInfo's schemas as the CLI keeps them: `enforcementLevel` injected when supportsConfig."""
    schemas = {}
    for p in info.policies:
        schema = None
        if info.supportsConfig:
            props = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
            schema = {"properties": {**props, "enforcementLevel": {
                "type": "string", "enum": ["advisory", "mandatory", "remediate", "disabled"]}},
                "required": list(p.configSchema.required) if p.HasField("configSchema") else []}
        schemas[p.name] = schema
    return schemas


def _apply(result: dict, given: dict) -> dict:
    all_level = given.get("all", ("", None))[0]
    if all_level:
        result = {k: (all_level, props) for k, (_, props) in result.items()}
    for name, (level, props) in given.items():
        old_level, old_props = result.get(name, ("", None))
        merged = dict(old_props or {}) if (props or old_props is not None) else None
        if props:
            merged = {**(merged or {}), **props}
        result[name] = (level or old_level, merged)
    return result


def reconcile(info, config: dict) -> dict[str, tuple[str, dict | None]]:
    """ReconcilePolicyPackConfig: defaults, then initial config, then the given config; validated."""
    schemas = policy_schemas(info)
    result = {}
    for p in info.policies:
        defaults = {k: v["default"] for k, v in ((schemas[p.name] or {}).get("properties") or {}).items()
                    if isinstance(v, dict) and "default" in v}
        result[p.name] = (LEVEL_NAMES[p.enforcementLevel], defaults or None)
    initial = {k: (LEVEL_NAMES[v.enforcementLevel], json_format.MessageToDict(v.properties) or None)
               for k, v in info.initialConfig.items()}
    if initial:
        result = _apply(result, initial)
    if config:
        result = _apply(result, config)
    errors = []
    for name, schema in sorted(schemas.items()):
        if schema is None:
            continue
        doc = {"type": "object", **({"properties": schema["properties"]} if schema["properties"] else {}),
               **({"required": schema["required"]} if schema["required"] else {})}
        props = result.get(name, ("", None))[1] or {}
        errors += [f"{name}: {e.message}" for e in jsonschema.Draft7Validator(doc).iter_errors(props)]
    if errors:
        raise PackRefused(errors)
    return result


# --- marshalling ------------------------------------------------------------------------------------

def _struct(value: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(json.loads(json.dumps(value or {}, default=lambda o: None)))
    return s


def _provider_message(resource: dict, by_urn: dict) -> analyzer_pb2.AnalyzerProviderResource | None:
    ref = resource.get("provider")
    if not ref:
        return None
    urn = ref.rsplit("::", 1)[0]
    provider = by_urn.get(urn, {})
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.get("type", urn.split("::")[-2]), urn=urn, name=urn.rsplit("::", 1)[-1],
        properties=_struct(provider.get("inputs")))


def _options(resource: dict) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")), parent=resource.get("parent") or "",
        ignoreChanges=resource.get("ignoreChanges") or [],
        additionalSecretOutputs=resource.get("additionalSecretOutputs") or [],
        customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(**(resource.get("customTimeouts") or {})))


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _diagnostics(response) -> list[Diagnostic]:
    return [Diagnostic(d.policyName, d.urn, LEVEL_NAMES[d.enforcementLevel], d.message, d.policyPackName,
                       d.policyPackVersion) for d in response.diagnostics]


# --- plans as the engine sees them ------------------------------------------------------------------

# Outputs that exist only once the resource does: ids, ARNs, provider-made names and endpoints.
_COMPUTED_KEY = re.compile(r"^(id|arn|name|bucket|endpoint)$|(Arn|Id|Name|Url|Endpoint)$")


def _computed(resource: dict) -> dict:
    """Computed outputs (not given as inputs): unknown until the resource exists."""
    inputs = resource.get("inputs") or {}
    out = {k: v for k, v in (resource.get("outputs") or {}).items()
           if _COMPUTED_KEY.search(k) and (k not in inputs or inputs[k] != v)}
    if resource.get("id"):
        out["id"] = resource["id"]
    return out


def first_preview(resources: list[dict]) -> list[dict]:
    """A first preview: nothing exists, so every computed output (ids, ARNs, autonames, endpoints)
    is unknown, and so is every input that carries one of a resource it depends on (the whole
    string: an apply over an unknown is unknown)."""
    computed = {r["urn"]: [v for v in _computed(r).values() if isinstance(v, str) and len(v) >= 6] for r in resources}

    def blank(value, known_from):
        if isinstance(value, dict):
            return {k: blank(v, known_from) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v, known_from) for v in value]
        if isinstance(value, str) and any(c == value or (len(c) >= 12 and c in value) for c in known_from):
            return UNKNOWN
        return value

    preview = []
    for r in resources:
        deps = {*(r.get("dependencies") or ()), *(u for us in (r.get("propertyDependencies") or {}).values() for u in us or ())}
        inputs = blank(r.get("inputs") or {}, [v for d in deps for v in computed.get(d, ())])
        outputs = {**{k: UNKNOWN for k in _computed(r)}, **inputs} if r.get("custom") else r.get("outputs") or {}
        preview.append({**r, "inputs": inputs, "outputs": outputs, "id": UNKNOWN if r.get("custom") else ""})
    return preview


def stack_config_env(values: dict) -> str:
    """PULUMI_CONFIG as the CLI sets it: the stack's config map, every value a string."""
    return json.dumps({k: config_string(v) for k, v in values.items()})


# --- the pack process ------------------------------------------------------------------------------

def pack_python(pack_dir: Path = PACK_DIR) -> str:
    project = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())
    venv = (project.get("runtime") or {}).get("options", {}).get("virtualenv")
    python = (pack_dir / venv / "bin" / "python") if venv else None
    return str(python) if python and python.exists() else sys.executable


def deployment_env(stack: str, config_values: dict, dry_run: bool) -> dict[str, str]:
    """What a preview or update hands every analyzer (constructEnv with the deployment's options)."""
    return {"PULUMI_CONFIG": stack_config_env(config_values), "PULUMI_PROJECT": PROJECT, "PULUMI_STACK": stack,
            "PULUMI_ORGANIZATION": "organization", "PULUMI_DRY_RUN": "true" if dry_run else "false"}


@contextlib.contextmanager
def running_pack(cli_env: dict[str, str], pack_dir: Path = PACK_DIR, extra_env=None, warm: bool = False):
    """The pack started as the CLI starts it, with the PULUMI_* variables the CLI sets (`cli_env`);
    yields (analyzer stub, engine servicer, engine address). `warm`: a fork of the suite's warm
    interpreter (tests/cli_zygote.py) runs `python -u -m pulumi.policy` where an exec would change
    nothing but the start-up cost (see `forked_pack`)."""
    engine = _Engine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    engine_address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update({**cli_env, **(extra_env or {})})
    start = forked_pack if warm and pack_forkable(env, pack_dir) else executed_pack
    channel = None
    try:
        with start(env, pack_dir, engine_address) as port:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
            yield analyzer_pb2_grpc.AnalyzerStub(channel), engine, engine_address
    finally:
        if channel is not None:
            channel.close()
        server.stop(0)


def pack_forkable(env: dict[str, str], pack_dir: Path) -> bool:
    from cli_run import forkable  # the suite's (tests/ on sys.path); benchmarks/ exec the pack

    return forkable(env) and os.path.samefile(pack_python(pack_dir), sys.executable)


def _port(stdout, stderr) -> str:
    """The first line the pack prints: the analyzer's port."""
    with selectors.DefaultSelector() as sel:
        sel.register(stdout, selectors.EVENT_READ)
        if not sel.select(timeout=START_TIMEOUT_S):
            raise TimeoutError("the policy pack printed no port")
    line = stdout.readline().decode().strip()
    if not line.isdigit():
        stderr.seek(0)
        raise RuntimeError(f"policy pack did not start: {line!r} {stderr.read().decode()[-2000:]}")
    return line


@contextlib.contextmanager
def executed_pack(env: dict[str, str], pack_dir: Path, engine_address: str):
    """`<venv>/bin/python -u -m pulumi.policy <engine address> .` in the pack directory; yields its port."""
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([pack_python(pack_dir), "-u", "-m", "pulumi.policy", engine_address, "."],
                                cwd=pack_dir, env=env, stdout=subprocess.PIPE, stderr=stderr)
        try:
            yield _port(proc.stdout, stderr)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()


@contextlib.contextmanager
def forked_pack(env: dict[str, str], pack_dir: Path, engine_address: str):
    """The same command line in a fork of the warm interpreter: pulumi, grpc and the repository's
    modules already imported (about 0.6 s of CPU per pack), the pack's own files (policy/) loaded by
    the child as the CLI's process loads them. Its environment, working directory, argv and
    unbuffered output are the exec's (cli_zygote.as_module)."""
    from cli_run import Zygote

    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as stderr, os.fdopen(read_end, "rb") as stdout:
        try:
            conn, pid = Zygote.shared().start([engine_address, "."], env, pack_dir, write_end, stderr.fileno(),
                                              module="pulumi.policy")
        finally:
            os.close(write_end)
        with conn:
            try:
                yield _port(stdout, stderr)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(AssertionError):  # past the wait it was killed
                    Zygote.status(conn, pid, timeout=10)  # the connection closes when the child is gone


def _analyze_each(stub, run: Run, resources: list[dict]) -> None:
    """Remediate then Analyze every resource, with its inputs."""
    by_urn = {r["urn"]: r for r in resources}
    for r in resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=r["type"], urn=r["urn"], name=_name(r["urn"]), properties=_struct(r.get("inputs")),
            options=_options(r), provider=_provider_message(r, by_urn))
        stub.Remediate(request)
        start = time.perf_counter()
        run.diagnostics += _diagnostics(stub.Analyze(request))
        run.analyze_seconds.append(time.perf_counter() - start)


def _analyze_stack(stub, run: Run, resources: list[dict]) -> None:
    """One AnalyzeStack with every resource's outputs exactly as given, parent and dependencies."""
    by_urn = {r["urn"]: r for r in resources}
    stack_request = analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r["type"], urn=r["urn"], name=_name(r["urn"]), properties=_struct(r.get("outputs")),
            options=_options(r), provider=_provider_message(r, by_urn), parent=r.get("parent") or "",
            dependencies=r.get("dependencies") or [],
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                                  for k, v in (r.get("propertyDependencies") or {}).items() if v})
        for r in resources])
    start = time.perf_counter()
    run.diagnostics += _diagnostics(stub.AnalyzeStack(stack_request))
    run.analyze_stack_seconds = time.perf_counter() - start


class Analyzer:
    """A started and configured pack, as one `pulumi preview`/`up` or `pulumi policy analyze` holds it:
    LoadLocalPolicyPackAnalyzers (pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8:
    pkg/engine/update.go lines 280-330) starts the pack once, asks
    GetAnalyzerInfo, reconciles and validates the config file and calls Configure once; every
    Remediate/Analyze of the deployment and its AnalyzeStack then go to that one process.

    pulumi_policy's analyzer keeps no state between those calls: only Configure (the policy config)
    and ConfigureStack (stack tags) set any (`_PolicyAnalyzerServicer` in pulumi_policy 1.21.0's
    policy.py); Analyze, Remediate and AnalyzeStack read them and build each answer from the request
    alone. The pack's policies keep none either (policy/policies.py: `_context` caches a function of
    the config). So one analyzer can serve several deployments under the same analyzer environment
    and config (`Analyzers`), each deployment still sending all of its own calls."""

    def __init__(self, stub, engine: _Engine, address: str, pack_dir: Path, pack_config: str | None):
        self.stub, self.engine = stub, engine
        self.info = self._configure(address, pack_dir, pack_config)
        self._logged = 0  # engine log lines already handed to a Run

    def _configure(self, address: str, pack_dir: Path, pack_config: str | None):
        """Handshake, GetAnalyzerInfo, the CLI's config reconcile and validation, Configure."""
        try:
            self.stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address=address, root_directory=str(pack_dir), program_directory=str(pack_dir)))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        config = reconcile(info, parse_pack_config(pack_config or ""))
        self.stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
            name: analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(props))
            for name, (level, props) in config.items()}))
        return info

    def _new_logs(self) -> list[str]:
        logs = self.engine.logs[self._logged:]
        self._logged += len(logs)
        return logs

    def deployment(self, resources: list[dict]) -> Run:
        """Remediate then Analyze every resource with its inputs; one AnalyzeStack with their outputs."""
        run = Run([], info=self.info)
        _analyze_each(self.stub, run, resources)
        _analyze_stack(self.stub, run, resources)
        run.engine_logs = self._new_logs()
        return run

    def stack_analysis(self, resources: list[dict]) -> Run:
        """The deployment's last call alone, AnalyzeStack, for tests of the stack policy: its
        answer does not depend on the Analyze calls before it (see the class docstring)."""
        run = Run([], info=self.info)
        _analyze_stack(self.stub, run, resources)
        run.engine_logs = self._new_logs()
        return run

    def analyze_export(self, export_path: Path) -> Run:
        """What `pulumi policy analyze --file EXPORT` sends: the export's resources not marked
        `delete`. Stack-level diagnostics on a URN outside the export name the root Stack, as the
        CLI shows them."""
        resources = [r for r in json.loads(Path(export_path).read_text())["deployment"].get("resources") or []
                     if not r.get("delete")]
        run = Run([], info=self.info)
        _analyze_each(self.stub, run, resources)
        per_resource = len(run.diagnostics)
        _analyze_stack(self.stub, run, resources)
        run.engine_logs = self._new_logs()
        urns = {r["urn"] for r in resources}
        root = next((r["urn"] for r in resources if r["type"] == "pulumi:pulumi:Stack" and not r.get("parent")), "")
        for d in run.diagnostics[per_resource:]:
            d.urn = d.urn if d.urn in urns else root
        return run


@contextlib.contextmanager
def started(cli_env: dict[str, str], pack_config: str | None, pack_dir: Path = PACK_DIR, extra_env=None,
            warm: bool = False):
    """The pack started with the analyzer environment `cli_env` and configured with `pack_config`."""
    with running_pack(cli_env, pack_dir, extra_env, warm) as (stub, engine, address):
        yield Analyzer(stub, engine, address, pack_dir, pack_config)


class Analyzers:
    """Started and configured analyzers kept for several deployments: one per analyzer environment
    (PULUMI_CONFIG, PULUMI_STACK, PULUMI_DRY_RUN ...) and pack config, as two `pulumi preview` runs
    of the same stack with the same --policy-pack-config would start them. A test of start-up,
    config handling or refusal starts its own (`started`, `run_engine`, `policy_analyze`)."""

    def __init__(self):
        self._exit = contextlib.ExitStack()
        self._started: dict[tuple, Analyzer] = {}

    def _get(self, cli_env: dict[str, str], pack_config: str | None) -> Analyzer:
        key = (json.dumps(cli_env, sort_keys=True), pack_config)
        if key not in self._started:
            self._started[key] = self._exit.enter_context(started(cli_env, pack_config, warm=True))
        return self._started[key]

    def of_stack(self, stack: str, config_values: dict, pack_config: str, dry_run: bool) -> Analyzer:
        """The analyzer a `pulumi preview` (dry_run) or `pulumi up` of `stack` runs."""
        return self._get(deployment_env(stack, config_values, dry_run), pack_config)

    def of_policy_analyze(self, pack_config: str) -> Analyzer:
        """The analyzer `pulumi policy analyze --file` runs: no analyzer options."""
        return self._get({}, pack_config)

    def close(self) -> None:
        self._exit.close()
        self._started.clear()


def run_engine(stack: str, config_values: dict, resources: list[dict], pack_config: str | None,
               dry_run: bool, pack_dir: Path = PACK_DIR, extra_env=None) -> Run:
    """One `pulumi preview/up --policy-pack` as the engine drives the analyzer, in its own process."""
    with started(deployment_env(stack, config_values, dry_run), pack_config, pack_dir, extra_env) as analyzer:
        return analyzer.deployment(resources)


def policy_analyze(export_path: Path, pack_config: str | None, pack_dir: Path = PACK_DIR, extra_env=None) -> Run:
    """`pulumi policy analyze --file EXPORT`: the export's resources, no stack, no analyzer options."""
    with started({}, pack_config, pack_dir, extra_env) as analyzer:
        return analyzer.analyze_export(export_path)
