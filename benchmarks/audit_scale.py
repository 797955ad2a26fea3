"""Audit-scale benchmark: `residency audit --export` on synthetic exports of 1k, 10k, 100k resources.

For each mix and size it writes a v3 export to a temp dir and prints the audit's time (load,
normalise, evaluate every rule, render the JSON report) next to plain `json.load` of the same
file, and the peak RSS of each in a fresh process. Two mixes: `current` (a fifth small policies)
and `iam` (a quarter distinct Bedrock+S3 identity policies, the case the current mix hides).
Targets (issues #5, #13): audit <= 3x json.load at 100k; peak RSS <= 2x json.load's;
100k <= 12x the 10k audit time.

    .venv/bin/python benchmarks/audit_scale.py [--sizes 1000,10000,100000] [--repeat 3] [--mix both|current|iam]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.engine import report as report_mod  # noqa: E402
from infra.commands.audit import audit_export  # noqa: E402
from infra.engine.rules import Context  # noqa: E402
from infra.program.stackfiles import load_stack_config  # noqa: E402

STACK, REGION, ACCOUNT = "eu", "eu-central-1", "123456789012"
PROVIDER_URN = f"urn:pulumi:{STACK}::ai-companion::pulumi:providers:aws::aws-{REGION}"
PROVIDER_ID = "3f1c2a9e-0d1b-4c55-9a57-0b8f4f3e2d11"
TAGS = {"ai-companion:geography": "EU", "ai-companion:stack": STACK, "Name": "x"}
META = json.dumps({"e2bfb730-ecaa-11e6-8f88-34363bc7c4c0": {"create": 600000000000}, "schema_version": "1"})


def _resource(i: int, kind: int | None = None) -> dict:
    """One of a few realistic shapes; every 997th resource carries a foreign ARN (a finding)."""
    kind = i % 5 if kind is None else kind
    name = f"r{i}"
    chain = "ai-companion:zmo:Network$"
    if kind == 0:
        t, inputs, outputs = "aws:ec2/subnet:Subnet", {
            "vpcId": "vpc-0abc", "cidrBlock": f"10.40.{i % 256}.0/24", "availabilityZone": f"{REGION}a",
            "mapPublicIpOnLaunch": False, "tags": TAGS}, {"arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-{i:x}"}
    elif kind == 1:
        t, inputs, outputs = "aws:ec2/securityGroup:SecurityGroup", {
            "vpcId": "vpc-0abc", "description": "endpoints", "tags": TAGS,
            "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.40.0.0/16"]}],
            "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.40.0.0/16"]}]}, {
            "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-{i:x}", "ownerId": ACCOUNT}
    elif kind == 2:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                  "Resource": [f"arn:aws:s3:::weights-{i}/*"]},
                  {"Effect": "Allow", "Action": "kms:Decrypt",
                   "Resource": f"arn:aws:kms:{'us-east-1' if i % 997 == 2 else REGION}:{ACCOUNT}:key/k{i}"}]}
        t, inputs, outputs = "aws:iam/rolePolicy:RolePolicy", {
            "role": f"role-{i}", "policy": json.dumps(policy)}, {"id": f"role-{i}:p"}
    elif kind == 3:
        t, inputs, outputs = "aws:cloudwatch/logGroup:LogGroup", {
            "name": f"/aws/eks/{name}", "retentionInDays": 30, "kmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k",
            "tags": TAGS}, {"arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/eks/{name}"}
    else:
        t, inputs, outputs = "aws:ec2/vpcEndpoint:VpcEndpoint", {
            "vpcId": "vpc-0abc", "serviceName": f"com.amazonaws.{REGION}.ecr.dkr", "vpcEndpointType": "Interface",
            "privateDnsEnabled": True, "subnetIds": ["subnet-1", "subnet-2"], "tags": TAGS}, {
            "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-endpoint/vpce-{i:x}",
            "dnsEntries": [{"dnsName": f"vpce-{i:x}.ecr.dkr.{REGION}.vpce.amazonaws.com", "hostedZoneId": "Z1"}]}
    inputs = {**inputs, "__defaults": ["tagsAll"]}
    outputs = {**inputs, **outputs, "id": f"id-{i}", "region": REGION, "tagsAll": TAGS, "__meta": META}
    return {"urn": f"urn:pulumi:{STACK}::ai-companion::{chain}{t}::{name}", "custom": True, "type": t,
            "id": f"id-{i}", "inputs": inputs, "outputs": outputs,
            "parent": f"urn:pulumi:{STACK}::ai-companion::ai-companion:zmo:Network::net",
            "provider": f"{PROVIDER_URN}::{PROVIDER_ID}", "dependencies": [], "propertyDependencies": {}}


EU_REGIONS = ("eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-3")
MODELS = ("anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0")


def _iam_policy(i: int) -> dict:
    """A distinct identity policy like BedrockAccess's: profile + per-destination foundation-model
    statements, a Deny on other geographies, and S3 reads of a per-tenant bucket and prefix."""
    model = MODELS[i % 2]
    profile = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.{model}"
    # every 997th policy routes through a global profile (a planted finding)
    if i % 997 == 3:
        profile = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/global.{model}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": f"Invoke{i}", "Effect": "Allow",
         "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], "Resource": [profile]},
        {"Sid": f"Route{i}", "Effect": "Allow",
         "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
         "Resource": [f"arn:aws:bedrock:{r}::foundation-model/{model}" for r in EU_REGIONS],
         "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": profile}}},
        {"Sid": "DenyOtherGeographies", "Effect": "Deny", "Action": "bedrock:*", "Resource": "*",
         "Condition": {"ArnNotLike": {"bedrock:InferenceProfileArn": "arn:aws:bedrock:*:*:inference-profile/eu.*"}}},
        {"Sid": f"Weights{i}", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::tenant-{i}-weights", f"arn:aws:s3:::tenant-{i}-weights/models/{i}/*"]},
        {"Sid": "Decrypt", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k{i}",
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}}]}


def _iam_heavy(i: int) -> dict:
    """The IAM-heavy mix: a quarter of the resources are role policies, every one different."""
    if i % 4:
        return _resource(i, (0, 1, 3, 4)[i % 4 - 1])  # the current mix's other shapes
    t = "aws:iam/rolePolicy:RolePolicy"
    inputs = {"role": f"tenant-{i}", "policy": json.dumps(_iam_policy(i)), "__defaults": ["name"]}
    outputs = {**inputs, "id": f"tenant-{i}:bedrock", "name": "bedrock", "__meta": META}
    return {"urn": f"urn:pulumi:{STACK}::ai-companion::ai-companion:zm_plus:BedrockAccess${t}::p{i}",
            "custom": True, "type": t, "id": f"tenant-{i}:bedrock", "inputs": inputs, "outputs": outputs,
            "parent": f"urn:pulumi:{STACK}::ai-companion::ai-companion:zmo:Network::net",
            "provider": f"{PROVIDER_URN}::{PROVIDER_ID}", "dependencies": [], "propertyDependencies": {}}


MIXES = {"current": _resource, "iam": _iam_heavy}


def synthetic_export(n: int, mix: str = "current") -> dict:
    head = [
        {"urn": f"urn:pulumi:{STACK}::ai-companion::pulumi:pulumi:Stack::ai-companion-{STACK}", "custom": False,
         "type": "pulumi:pulumi:Stack", "outputs": {}},
        {"urn": PROVIDER_URN, "custom": True, "id": PROVIDER_ID, "type": "pulumi:providers:aws",
         "inputs": {"region": REGION, "version": "7.51.1"}, "outputs": {"region": REGION, "version": "7.51.1"}},
        {"urn": f"urn:pulumi:{STACK}::ai-companion::ai-companion:zmo:Network::net", "custom": False,
         "type": "ai-companion:zmo:Network", "parent": head_stack_urn()},
    ]
    make = MIXES[mix]
    resources = head + [make(i) for i in range(n - len(head))]
    return {"version": 3, "deployment": {"manifest": {"time": "2026-11-28T00:00:00Z", "magic": "", "version": "v3.272.0"},
                                         "resources": resources}}


def head_stack_urn() -> str:
    return f"urn:pulumi:{STACK}::ai-companion::pulumi:pulumi:Stack::ai-companion-{STACK}"


def audit(path: Path, ctx: Context) -> tuple[float, int]:
    start, cpu = time.perf_counter(), time.process_time()
    rep = audit_export(path, STACK, ctx)  # what `residency audit --export` runs, minus process start
    report_mod.render(rep, "json")
    CPU["audit"].append(time.process_time() - cpu)
    return time.perf_counter() - start, len(rep.findings)


# CPU seconds of each timed run: on a shared machine wall time also counts other processes' turns,
# so the CPU-time ratio is printed next to the wall-time one (the targets are on wall time).
CPU: dict[str, list[float]] = {"load": [], "audit": []}


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(fn())
    return min(times)


def peak_rss_mb(what: str, path: Path) -> float:
    """Peak RSS (MB) of a fresh interpreter that imports the audit and then runs only `what`
    (`load`: json.load of the file; `audit`: the audit): the same baseline for both."""
    out = subprocess.run([sys.executable, __file__, "--peak", what, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip())


def _peak_child(what: str, path: str) -> None:
    if what == "load":
        with open(path, "rb") as fh:
            json.load(fh)
    else:
        audit(Path(path), Context.from_config(load_stack_config(STACK)))
    # VmHWM is this process's own high-water mark (ru_maxrss would carry the parent's over exec).
    with open("/proc/self/status") as fh:
        hwm = next(line for line in fh if line.startswith("VmHWM:"))
    print(int(hwm.split()[1]) / 1024)


def bench_mix(mix: str, sizes: list[int], repeat: int, ctx: Context, tmp: Path) -> None:
    results = {}
    print(f"mix '{mix}': {MIX_HELP[mix]}")
    for n in sizes:
        path = tmp / f"export-{mix}-{n}.json"
        path.write_text(json.dumps(synthetic_export(n, mix)))
        size_mb = path.stat().st_size / 1e6

        def load():
            t, cpu = time.perf_counter(), time.process_time()
            with open(path, "rb") as fh:
                json.load(fh)
            CPU["load"].append(time.process_time() - cpu)
            return time.perf_counter() - t

        CPU["load"].clear()
        t_load = best(load, repeat)
        cpu_load = min(CPU["load"])

        def load_nogc():
            gc.disable()
            try:
                return load()
            finally:
                gc.enable()

        t_load_nogc = best(load_nogc, repeat)
        findings = 0

        def run():
            nonlocal findings
            t, findings = audit(path, ctx)
            return t

        CPU["audit"].clear()
        t_audit = best(run, repeat)
        cpu_audit = min(CPU["audit"])
        results[n] = t_audit
        rss_load, rss_audit = peak_rss_mb("load", path), peak_rss_mb("audit", path)
        print(f"  {n:>7} resources {size_mb:6.1f} MB  json.load {t_load:6.3f} s  audit {t_audit:6.3f} s  "
              f"ratio {t_audit / t_load:4.2f}x (target <= 3x; {t_audit / t_load_nogc:4.2f}x vs json.load with GC off)  peak RSS json.load {rss_load:6.0f} MB, "
              f"audit {rss_audit:6.0f} MB = {rss_audit / rss_load:4.2f}x (target <= 2x)  findings {findings}  "
              f"CPU time json.load {cpu_load:6.3f} s, audit {cpu_audit:6.3f} s = {cpu_audit / cpu_load:4.2f}x")
    if 10000 in results and 100000 in results:
        print(f"  scaling 100k/10k: {results[100000] / results[10000]:.2f}x (target <= 12x)")


MIX_HELP = {
    "current": "subnets, security groups, small role policies, log groups, VPC endpoints (a fifth each)",
    "iam": "a quarter distinct Bedrock+S3 role policies (like BedrockAccess), the rest as 'current'",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mix", choices=("both",) + tuple(MIXES), default="both")
    ap.add_argument("--peak", nargs=2, metavar=("WHAT", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peak:
        _peak_child(*args.peak)
        return 0
    ctx = Context.from_config(load_stack_config(STACK))
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for mix in (MIXES if args.mix == "both" else (args.mix,)):
            bench_mix(mix, sizes, args.repeat, ctx, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
