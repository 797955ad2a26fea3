"""Audit-scale benchmark: `residency audit --export` on synthetic exports of 1k, 10k, 100k resources.

For each size it writes a v3 export to a temp dir and prints the audit's time (load, normalise,
evaluate every rule, render the JSON report) next to plain `json.load` of the same file.
Targets (issue #5): audit <= 3x json.load at 100k; 100k <= 12x the 10k audit time.

    .venv/bin/python benchmarks/audit_scale.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import report as report_mod  # noqa: E402
from infra.audit import audit_export  # noqa: E402
from infra.rules import Context  # noqa: E402
from infra.stackfiles import load_stack_config  # noqa: E402

STACK, REGION, ACCOUNT = "eu", "eu-central-1", "123456789012"
PROVIDER_URN = f"urn:pulumi:{STACK}::ai-companion::pulumi:providers:aws::aws-{REGION}"
PROVIDER_ID = "3f1c2a9e-0d1b-4c55-9a57-0b8f4f3e2d11"
TAGS = {"ai-companion:geography": "EU", "ai-companion:stack": STACK, "Name": "x"}
META = json.dumps({"e2bfb730-ecaa-11e6-8f88-34363bc7c4c0": {"create": 600000000000}, "schema_version": "1"})


def _resource(i: int) -> dict:
    """One of a few realistic shapes; every 997th resource carries a foreign ARN (a finding)."""
    kind = i % 5
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


def synthetic_export(n: int) -> dict:
    head = [
        {"urn": f"urn:pulumi:{STACK}::ai-companion::pulumi:pulumi:Stack::ai-companion-{STACK}", "custom": False,
         "type": "pulumi:pulumi:Stack", "outputs": {}},
        {"urn": PROVIDER_URN, "custom": True, "id": PROVIDER_ID, "type": "pulumi:providers:aws",
         "inputs": {"region": REGION, "version": "7.51.1"}, "outputs": {"region": REGION, "version": "7.51.1"}},
        {"urn": f"urn:pulumi:{STACK}::ai-companion::ai-companion:zmo:Network::net", "custom": False,
         "type": "ai-companion:zmo:Network", "parent": head_stack_urn()},
    ]
    resources = head + [_resource(i) for i in range(n - len(head))]
    return {"version": 3, "deployment": {"manifest": {"time": "2026-11-28T00:00:00Z", "magic": "", "version": "v3.272.0"},
                                         "resources": resources}}


def head_stack_urn() -> str:
    return f"urn:pulumi:{STACK}::ai-companion::pulumi:pulumi:Stack::ai-companion-{STACK}"


def audit(path: Path, ctx: Context) -> tuple[float, int]:
    start = time.perf_counter()
    rep = audit_export(path, STACK, ctx)  # what `residency audit --export` runs, minus process start
    report_mod.render(rep, "json")
    return time.perf_counter() - start, len(rep.findings)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(fn())
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    ctx = Context.from_config(load_stack_config(STACK))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"export-{n}.json"
            path.write_text(json.dumps(synthetic_export(n)))
            size_mb = path.stat().st_size / 1e6

            def load():
                t = time.perf_counter()
                with open(path, "rb") as fh:
                    json.load(fh)
                return time.perf_counter() - t

            t_load = best(load, args.repeat)

            def load_nogc():
                gc.disable()
                try:
                    return load()
                finally:
                    gc.enable()

            t_load_nogc = best(load_nogc, args.repeat)
            findings = 0

            def run():
                nonlocal findings
                t, findings = audit(path, ctx)
                return t

            t_audit = best(run, args.repeat)
            results[n] = t_audit
            print(f"{n:>7} resources {size_mb:6.1f} MB  json.load {t_load:6.3f} s (GC off {t_load_nogc:6.3f} s)  "
                  f"audit {t_audit:6.3f} s  ratio {t_audit / t_load:4.2f}x ({t_audit / t_load_nogc:4.2f}x vs GC off)  "
                  f"findings {findings}")
    sizes = sorted(results)
    if 10000 in results and 100000 in results:
        print(f"scaling 100k/10k: {results[100000] / results[10000]:.2f}x (target <= 12x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
