"""CrossGuard policies: a thin adapter over the one residency rule set (infra/engine/rules).

- One `ResourceValidationPolicy` per rule (named like the rule, dashes for underscores), run on
  each resource as the engine registers it: the resource plus its provider are turned into a
  model snapshot and judged by that rule alone.
- One `StackValidationPolicy` (`residency-stack-graph`) for the rules that need the whole stack
  (RSD-030 S3 replication destinations, RSD-045 Bedrock invocation logging and its buckets,
  RSD-054 DNS Firewall rule targets).

All policies are MANDATORY. Each needs the stack's residency config, passed as pack config:

    pulumi preview --policy-pack policy --policy-pack-config policy/config.<stack>.json

`config.<stack>.json` gives every policy `{"stack": ..., "config": {...}}`, the stack's config
map as in `Pulumi.<stack>.yaml` (generated: `python policy/policies.py --write-config`; a test
keeps the files in step with the stack files). It is validated by infra/program/config.parse_config, the
same validation the program runs. Both keys are optional in the schema, so the CLI accepts the
pack without `--policy-pack-config`: a policy without config then reads the stack config that the
CLI hands every analyzer (`PULUMI_CONFIG`, with `PULUMI_STACK`); when neither exists, every
resource a rule judges (every custom resource, and the AWS and Kubernetes providers) is reported,
and so is the stack (fail closed). tests/test_crossguard_wire.py drives both paths over gRPC.

The pack's version has one source, PulumiPolicy.yaml (`PACK_VERSION`): the CLI reports it, and
__main__.py hands it to the analyzer so its own messages name the same version.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the CLI runs the pack from policy/; the rules live in infra/
    sys.path.insert(0, str(ROOT))

from pulumi.runtime.config import get_config_env  # noqa: E402
from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy,  # noqa: E402
                           Severity, StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError  # noqa: E402

from infra.program.config import ConfigError, config_string, parse_config  # noqa: E402
from infra.engine.loaders import snapshot_from_policy_resources  # noqa: E402
from infra.engine.model import UNKNOWN  # noqa: E402
from infra.engine.rules import RULES, RULES_BY_ID, Context, Rule, evaluate  # noqa: E402

PACK_NAME = "ai-companion-residency"
STACK_POLICY_NAME = "residency-stack-graph"
PACK_VERSION = str(yaml.safe_load((Path(__file__).resolve().parent / "PulumiPolicy.yaml").read_text())["version"])
# Both optional: the CLI validates the reconciled config against this schema before Configure, so a
# `required` key would make the CLI refuse the pack when no --policy-pack-config is given.
CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "stack": {"type": "string", "description": "stack name (Pulumi.<stack>.yaml)"},
        "config": {"type": "object", "description": "the stack's config map, as in Pulumi.<stack>.yaml"},
    },
)


class PackConfigError(ValueError):
    pass


def policy_name(rule: Rule) -> str:
    return rule.name.replace("_", "-")


@functools.lru_cache(maxsize=16)
def _context(config_json: str) -> tuple[Context, str]:
    config = json.loads(config_json)
    stack = config.get("stack")
    values = config.get("config")
    if not isinstance(stack, str) or not isinstance(values, dict):
        raise PackConfigError("policy config needs 'stack' (string) and 'config' (the stack's config map)")
    try:
        cfg = parse_config({k: config_string(v) for k, v in values.items()}, stack)
    except ConfigError as exc:
        raise PackConfigError(str(exc)) from exc
    return Context.from_config(cfg), cfg.region


def context_for(config) -> tuple[Context, str]:
    """(Context, aws:region) from a policy's config, else from the stack config the CLI passes."""
    if config:
        ctx, region = _context(json.dumps(dict(config), sort_keys=True, default=str))
        running = os.environ.get("PULUMI_STACK")
        if running and ctx.stack and running.rsplit("/", 1)[-1] != ctx.stack:
            raise PackConfigError(f"policy config is for stack '{ctx.stack}' but the engine runs stack '{running}'; "
                                  f"pass --policy-pack-config policy/config.{running.rsplit('/', 1)[-1]}.json")
        return ctx, region
    running = os.environ.get("PULUMI_STACK")
    values = get_config_env()  # PULUMI_CONFIG: the running stack's config map, set by the CLI
    if not running or not values:
        raise PackConfigError("no residency config: pass --policy-pack-config policy/config.<stack>.json")
    return _context(json.dumps({"stack": running.rsplit("/", 1)[-1], "config": values}, sort_keys=True))


def report_findings(report, snapshot, violations) -> None:
    """Report findings; defer those on resources with values unknown during preview.

    Rules marked `fails_closed` report a value they cannot read (a replication or log bucket whose
    name is not known yet). During `pulumi preview` that would block every new stack, so, as
    pulumi_policy does for a policy that touches an unknown value, such a finding on a resource with
    unknown values becomes an advisory "can't run during preview"; the engine analyzes the resource
    again during the update, with the values known. Other findings are reported as usual.
    """
    deferred = []
    for f in report.findings:
        if f.urn in snapshot.unknown and RULES_BY_ID[f.rule].fails_closed:
            deferred.append(f)
        else:
            violations(f"[{f.rule}] {f.title}: {f.message}", f.urn)
    if deferred:
        first = deferred[0]
        raise UnknownValueError(UNKNOWN, [f"{first.urn}:{snapshot.unknown[first.urn][0]} ({first.rule})"])


def _resource_validator(rule: Rule):
    def validate(args, report_violation) -> None:
        # A rule judges only its own resource types: for any other, there is nothing to check and
        # nothing to report, config or not (the engine calls every policy on every resource).
        if not rule.matches(args.resource_type):
            return
        try:
            ctx, region = context_for(args.get_config())
        except PackConfigError as exc:
            report_violation(f"[{rule.id}] residency policy config: {exc}", args.urn)
            return
        snapshot = snapshot_from_policy_resources([args], default_region=region, stack=ctx.stack)
        report = evaluate(snapshot, ctx, rules=[rule], targets={args.urn}, complete=False)
        report_findings(report, snapshot, report_violation)

    return validate


def _stack_validator(rules: list[Rule]):
    def validate(args, report_violation) -> None:
        try:
            ctx, region = context_for(args.get_config())
        except PackConfigError as exc:
            report_violation(f"residency policy config: {exc}", None)
            return
        snapshot = snapshot_from_policy_resources(list(args.resources), default_region=region, stack=ctx.stack)
        report = evaluate(snapshot, ctx, rules=rules, complete=True)
        urns = {r.urn for r in snapshot.resources}

        def violation(message, urn):  # a stack-level finding without a Stack resource names none
            report_violation(message, urn if urn in urns else None)

        report_findings(report, snapshot, violation)

    return validate


def _severity(rule: Rule) -> Severity:
    return getattr(Severity, rule.severity)


RESOURCE_POLICIES = [
    ResourceValidationPolicy(
        name=policy_name(rule),
        display_name=f"{rule.id} {rule.title}",
        description=f"{rule.id}: {rule.title}. {rule.rationale}",
        validate=_resource_validator(rule),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=CONFIG_SCHEMA,
        severity=_severity(rule),
        remediation_steps=rule.remediation,
        tags=["residency", rule.category],
    )
    for rule in RULES if not rule.graph
]
GRAPH_RULES = [rule for rule in RULES if rule.graph]
STACK_POLICY = StackValidationPolicy(
    name=STACK_POLICY_NAME,
    display_name="Residency rules that need the whole stack",
    description="Runs " + ", ".join(f"{r.id} {r.name}" for r in GRAPH_RULES)
                + " over every resource of the stack (destinations resolved across resources).",
    validate=_stack_validator(GRAPH_RULES),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=CONFIG_SCHEMA,
    severity=Severity.CRITICAL,
    tags=["residency"],
)
POLICIES = RESOURCE_POLICIES + [STACK_POLICY]
POLICY_NAMES = [p.name for p in POLICIES]


def pack_config(stack: str) -> dict:
    """The `--policy-pack-config` document for a stack, from its stack files."""
    from infra.program.stackfiles import ROOT as REPO, read_yaml

    raw = read_yaml(REPO / f"Pulumi.{stack}.yaml").get("config") or {}
    values = {(k if ":" in k else f"ai-companion:{k}"): v for k, v in raw.items()}
    block = {"stack": stack, "config": values}
    return {"all": {"enforcementLevel": "mandatory"}, **{name: block for name in POLICY_NAMES}}


def config_path(stack: str) -> Path:
    return Path(__file__).resolve().parent / f"config.{stack}.json"


def render_pack_config(stack: str) -> str:
    return json.dumps(pack_config(stack), indent=2, sort_keys=False) + "\n"


def write_configs() -> list[Path]:
    from infra.program.stackfiles import list_stacks

    written = []
    for stack in list_stacks():
        path = config_path(stack)
        path.write_text(render_pack_config(stack))
        written.append(path)
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-config"]:
        for p in write_configs():
            print(p)
    else:
        print("usage: python policy/policies.py --write-config", file=sys.stderr)
        sys.exit(2)
