"""Helpers for the rule tests: hand-built resources, snapshots and contexts (not fixtures)."""

from __future__ import annotations

import json

from infra.program.catalog import load_catalog
from infra.engine.model import Resource, Snapshot
from infra.engine.rules import Context, evaluate

PROJECT = "ai-companion"
ACCOUNT = "123456789012"


def provider(region: str | None = "eu-central-1", name: str | None = None, stack: str = "eu") -> Resource:
    name = name or f"aws-{region}"
    inputs = {"region": region} if region else {}
    return Resource(urn=f"urn:pulumi:{stack}::{PROJECT}::pulumi:providers:aws::{name}", type="pulumi:providers:aws",
                    name=name, id=f"id-{name}", inputs=inputs)


def ref(p: Resource) -> str:
    return f"{p.urn}::{p.id}"


EU_PROVIDER = provider("eu-central-1")
US_PROVIDER = provider("us-east-1", stack="us")


def res(type_: str, name: str = "r", inputs: dict | None = None, outputs: dict | None = None,
        prov: Resource | None = EU_PROVIDER, parent: Resource | None = None, stack: str = "eu",
        custom: bool = True) -> Resource:
    chain = f"{parent.type}${type_}" if parent is not None else type_
    return Resource(urn=f"urn:pulumi:{stack}::{PROJECT}::{chain}::{name}", type=type_, name=name, custom=custom,
                    id=f"{name}-id" if custom else None, inputs=inputs or {}, outputs=outputs or {},
                    parent=parent.urn if parent is not None else None, provider=ref(prov) if prov else None)


def component(type_: str, name: str = "c", stack: str = "eu") -> Resource:
    return res(type_, name, prov=None, custom=False, stack=stack)


def ctx(geo: str = "EU", options: tuple[str, ...] | None = None, connectors: tuple[str, ...] | None = None,
        allow_global: bool = False) -> Context:
    g = load_catalog().geography(geo)
    options = g.options if options is None else options
    fed = g.federated.connectors if g.federated else {}
    chosen = tuple(fed[k] for k in (fed if connectors is None else connectors)) if "federated" in options else ()
    models = tuple(g.zm_plus.models.values()) if g.zm_plus and "zm_plus" in options else ()
    return Context(geography=g, options=tuple(options), allow_global_processing=allow_global,
                   connectors=chosen, bedrock_models=models, stack=g.stack)


def run(resources, context: Context | None = None, source: str = "plan", default_region: str | None = None,
        providers=(EU_PROVIDER, US_PROVIDER), complete: bool = True, stack_outputs: dict | None = None):
    present = {r.urn for r in resources}
    used = {r.provider for r in resources}
    extra = [p for p in providers if p.urn not in present and ref(p) in used]
    snapshot = Snapshot(extra + list(resources), source, "eu",
                        default_region, stack_outputs or {})
    return evaluate(snapshot, context or ctx(), complete=complete)


def fired(report, rule_id: str, urn: str | None = None) -> list:
    return [f for f in report.findings if f.rule == rule_id and (urn is None or f.urn == urn)]


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


LOGGING = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"


def home_logging(geo: str = "EU") -> Resource:
    """What RSD-045 requires of every zm_plus stack: invocation logging in the home region (here to
    a CloudWatch log group, which is always in the configuration's own region)."""
    g = load_catalog().geography(geo)
    return res(LOGGING, "logging", inputs={"loggingConfig": {"cloudwatchConfig": {"logGroupName": "/prompts"}}},
               prov=provider(g.home_region, stack=g.stack), stack=g.stack)


def plan_with(stack: str, program):
    """The real program planned for a stack with `program` in its place, and its rule report."""
    import pulumi

    from infra.harness.synth import synthesize

    try:
        plan = synthesize(stack, program=program)
    finally:
        pulumi.runtime.reset_options()
    return plan, evaluate(plan.snapshot, Context.from_config(plan.config))


def finding_names(report, rule: str) -> set[str]:
    """The resource names `rule` reported."""
    return {f.urn.rsplit("::", 1)[-1] for f in report.findings if f.rule == rule}
