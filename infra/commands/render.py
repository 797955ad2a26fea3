"""Reviewer views of an offline plan: a markdown PR summary and a Mermaid data-path map.

The parts on the map come from what the plan actually contains (the snapshot's resources and the
rules report's declared paths and findings), not from the config, so a component that fails to
register its firewall shows up as a missing node. The one config-derived node is the Bedrock
routing note (the catalog destinations of the configured models), drawn only when a Bedrock
endpoint exists. Output is sorted everywhere so rendered docs compare byte for byte
(tests/test_docs_fresh.py).

    markdown(plans, reports=None) -> str   # `residency plan --format markdown`
    mermaid(plan, report=None) -> str      # `residency plan --stack S --format mermaid`
    data_path_doc(plan, report=None) -> str, write_docs()  # docs/data-paths-<stack>.md
    iam_policy(template, stack, account_id, repo) -> dict   # docs/iam/*.json for one geography

`python -m infra.commands.render --write-docs` (`make docs`) rewrites the committed maps;
`python -m infra.commands.render iam FILE --stack S --account-id N --repo OWNER/REPO` prints one IAM policy
template from docs/iam/ rendered for a geography.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from infra.engine.model import COUNTED_RESOURCES, STACK_TYPE, Resource, is_provider_type

ROOT = Path(__file__).resolve().parents[2]
DOCS_DIR = ROOT / "docs"
DOC_STACKS = ("us", "eu")  # the maps kept in docs/ (issue #7)

CLUSTER_COMPONENT = "ai-companion:zmo:ServingCluster"
BEDROCK_COMPONENT = "ai-companion:zm_plus:BedrockAccess"
EGRESS_COMPONENT = "ai-companion:federated:EgressConnectors"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
FIREWALL = "aws:networkfirewall/firewall:Firewall"
PATH_KIND = {"in_geography": "Processing inside the geography (reviewed)",
             "global": "Global processing: data may leave the geography (reviewed opt-in)"}


# --- shared helpers -------------------------------------------------------------------------------

def _report_for(plan) -> Any:
    """Evaluate the one rule set (infra/engine/rules) when the caller has no report at hand."""
    from infra.engine.rules import Context, evaluate

    return evaluate(plan.snapshot, Context.from_config(plan.config))


def _field(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def declared_paths(report) -> list[dict]:
    """The report's declared data paths as plain dicts, sorted (connector, host)."""
    paths = [
        {k: str(_field(p, k) or "") for k in ("connector", "provider", "host", "processing")}
        for p in (_field(report, "declared_paths") or [])
    ]
    return sorted(paths, key=lambda p: (p["connector"], p["host"], p["processing"]))


def _findings(report) -> list:
    return list(_field(report, "findings") or [])  # evaluate() already sorts them


def _md(text: Any) -> str:
    """One markdown table cell: no pipes or newlines break the row."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def type_counts(snapshot) -> list[tuple[str, int]]:
    """The counted resources (model.COUNTED_RESOURCES) by type."""
    return sorted(Counter(r.type for r in snapshot.counted_resources()).items())


# --- markdown -------------------------------------------------------------------------------------

def _stack_markdown(plan, report) -> list[str]:
    cfg, snap = plan.config, plan.snapshot
    geo = cfg.geography
    paths, findings = declared_paths(report), _findings(report)
    counts = type_counts(snap)
    unplaced = _field(report, "unplaced") or []
    lines = [
        f"## Stack `{cfg.stack}`: {geo.code} ({geo.name})",
        "",
        f"Home region `{cfg.region}`; geography regions {', '.join(f'`{r}`' for r in geo.regions)}; "
        f"options {', '.join(f'`{o}`' for o in cfg.options)}.",
        "",
        "### Resources by type",
        "",
        # Collapsed: dozens of rows per stack would bury the paths and findings below.
        f"<details><summary>{sum(n for _, n in counts)} resources of {len(counts)} types</summary>",
        "",
        f"Resources {COUNTED_RESOURCES}.",
        "",
        "| Type | Count |",
        "|---|---:|",
        *(f"| `{t}` | {n} |" for t, n in counts),
        f"| **Total** | **{sum(n for _, n in counts)}** |",
        "",
        "</details>",
        "",
        "### Declared data paths",
        "",
    ]
    for processing in sorted({p["processing"] for p in paths}, key=lambda p: p != "in_geography"):
        lines += [f"{PATH_KIND.get(processing, processing + ' processing')}:", "",
                  "| Connector | Provider | Host | Processing |", "|---|---|---|---|"]
        lines += [f"| {_md(p['connector'])} | {_md(p['provider'])} | `{_md(p['host'])}` | {_md(p['processing'])} |"
                  for p in paths if p["processing"] == processing]
        lines.append("")
    if not paths:
        lines.append("none: no data path leaves the geography.")
    lines += ["", "### Findings", ""]
    if findings:
        lines += ["| Severity | Rule | Resource | Message |", "|---|---|---|---|"]
        lines += [f"| {_md(f.severity)} | {_md(f.rule)} | `{_md(f.urn.rsplit('::', 1)[-1])}` ({_md(f.type)}) | "
                  f"{_md(f.message)} |" for f in findings]
    else:
        lines.append("none")
    if unplaced:
        lines += ["", f"Unplaced resources (no provable region): {len(unplaced)}."]
    return lines + [""]


def markdown(plans: Sequence, reports: Sequence | None = None) -> str:
    """The PR summary for one or more stacks. `plans` holds `(plan, report)` pairs (what
    `residency plan` has at hand) or plans, with `reports[i]` the rules Report of `plans[i]`; a plan
    without a report is evaluated here."""
    items = list(plans)
    if reports is not None:
        if len(reports) != len(items):
            raise ValueError(f"markdown: {len(items)} plans but {len(reports)} reports")
        items = list(zip(items, reports))
    pairs = [item if isinstance(item, tuple) else (item, _report_for(item)) for item in items]
    pairs.sort(key=lambda pr: pr[0].config.stack)
    lines = [
        "# Residency plan",
        "",
        "| Stack | Geography | Home region | Options | Resources | Declared paths | Findings |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    legend = f"Resources {COUNTED_RESOURCES}."
    for plan, report in pairs:
        cfg = plan.config
        lines.append(
            f"| `{cfg.stack}` | {cfg.geography.code} | `{cfg.region}` | {', '.join(cfg.options)} | "
            f"{len(plan.snapshot.counted_resources())} | {len(declared_paths(report))} | {len(_findings(report))} |"
        )
    lines += ["", legend, ""]
    assumed = sorted({f"- `{plan.config.stack}`: {a}" for plan, _ in pairs for a in getattr(plan, "assumptions", ())})
    if assumed:
        lines += ["Assumed:", "", *assumed, ""]
    for plan, report in pairs:
        lines += _stack_markdown(plan, report)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- mermaid --------------------------------------------------------------------------------------

def _node_id(prefix: str, text: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', text)}"


def _label(*lines: str) -> str:
    return '"' + "<br/>".join(str(x).replace('"', "#quot;") for x in lines if x) + '"'


def _sorted(resources: Iterable[Resource]) -> list[Resource]:
    return sorted(resources, key=lambda r: (r.type, r.name, r.urn))


def _parts(snapshot) -> dict[str, list[tuple[Resource, str]]]:
    """In-region parts found in the snapshot: kind -> [(resource, label)]."""
    by_type: dict[str, list[Resource]] = {}
    for r in snapshot.resources:
        if r.type != STACK_TYPE and not is_provider_type(r.type):
            by_type.setdefault(r.type, []).append(r)
    bedrock_endpoints = [r for r in by_type.get(VPC_ENDPOINT, [])
                         if str(r.props.get("serviceName", "")).endswith(".bedrock-runtime")]
    parts = {
        "cluster": [(r, "EKS cluster") for r in _sorted(by_type.get(EKS_CLUSTER, []))],
        "bedrock": [(r, "Bedrock runtime endpoint") for r in _sorted(bedrock_endpoints)],
        "firewall": [(r, "Egress firewall") for r in _sorted(by_type.get(FIREWALL, []))],
    }
    # A component whose resources are missing still shows, so a gap is visible on the map.
    for kind, component, label in (("cluster", CLUSTER_COMPONENT, "Serving cluster (component, no EKS cluster)"),
                                   ("bedrock", BEDROCK_COMPONENT, "Bedrock access (component, no endpoint)"),
                                   ("firewall", EGRESS_COMPONENT, "Egress connectors (component, no firewall)")):
        if not parts[kind]:
            parts[kind] = [(r, label) for r in _sorted(by_type.get(component, []))]
    return parts


@dataclass(frozen=True)
class MapNode:
    id: str
    lines: tuple[str, ...]
    style: str = ""  # "global_processing": a host that may process anywhere


@dataclass
class DataPathMap:
    """The data-path map as data: what `mermaid()` writes and `residency report` draws as SVG."""
    boundary: MapNode  # the geography; `inside` is drawn within it
    inside: list[MapNode]
    outside: list[MapNode]
    edges: list[tuple[str, str, str]]  # (from, to, label or "")


def _node(nid: str, *lines: str, style: str = "") -> MapNode:
    return MapNode(nid, tuple(str(x) for x in lines if x), style)


def data_path_map(plan, report=None) -> DataPathMap:
    """The geography boundary with its in-region parts, and every declared path that crosses it
    as an edge to an external host labelled with its processing geography."""
    report = report if report is not None else _report_for(plan)
    cfg, geo = plan.config, plan.config.geography
    boundary = _node(_node_id("geo", geo.code), geo.code + " boundary: " + ", ".join(geo.regions))
    inside: list[MapNode] = []
    outside: list[MapNode] = []
    edges: list[tuple[str, str, str]] = []
    ids: dict[str, list[str]] = {}
    for kind, found in _parts(plan.snapshot).items():
        for r, what in found:
            nid = _node_id(kind, r.name)
            ids.setdefault(kind, []).append(nid)
            where = r.region or "no region"
            if r.custom and not geo.contains(r.region or ""):
                outside.append(_node(nid, what, r.name, where + ": OUTSIDE " + geo.code))
            else:
                detail = r.props.get("serviceName") if kind == "bedrock" else None
                inside.append(_node(nid, what, r.name, detail or (r.region if r.custom else "")))
    if cfg.bedrock_models and ids.get("bedrock"):
        # Geographic inference profiles route inside the geography only (catalog-checked).
        dests = sorted({d for m in cfg.bedrock_models for d in m.destinations} | {cfg.region})
        inside.append(_node("bedrock_routing", "Bedrock inference in " + geo.code, ", ".join(dests)))
        edges += [(nid, "bedrock_routing", "") for nid in ids["bedrock"]]
    for cluster in ids.get("cluster", []):
        edges += [(cluster, nid, "") for nid in ids.get("bedrock", []) + ids.get("firewall", [])]

    # Paths leave through the egress firewall; without one, they leave straight from the cluster.
    sources = ids.get("firewall") or ids.get("cluster") or [boundary.id]
    for p in declared_paths(report):
        ext = _node_id("ext", p["host"])
        processing = p["processing"] + (f" ({geo.code})" if p["processing"] == "in_geography" else "")
        # Hosts that may process anywhere are drawn apart, so a reviewer spots them first.
        node = _node(ext, p["host"], p["provider"], style="global_processing" if p["processing"] == "global" else "")
        if node not in outside:
            outside.append(node)
        edges += [(src, ext, f"{p['connector']}: {p['host']}, processing {processing}") for src in sources]
    return DataPathMap(boundary, inside, outside, sorted(set(edges)))


def mermaid(plan, report=None) -> str:
    """A `flowchart LR` of data_path_map()."""
    graph = data_path_map(plan, report)

    def node(n: MapNode, indent: str) -> str:
        return f"{indent}{n.id}[{_label(*n.lines)}]" + (f":::{n.style}" if n.style else "")

    edges = [f'  {a} -->|"{label}"| {b}' if label else f"  {a} --> {b}" for a, b, label in graph.edges]
    lines = [
        "flowchart LR",
        f"  subgraph {graph.boundary.id}[{_label(*graph.boundary.lines)}]",
        "    direction LR",
        *sorted(node(n, "    ") for n in graph.inside),
        "  end",
        *sorted(node(n, "  ") for n in graph.outside),
        *sorted(set(edges)),
    ]
    if any(n.style == "global_processing" for n in graph.outside):
        lines.append("  classDef global_processing stroke:#c00,stroke-width:2px,stroke-dasharray:4 2")
    return "\n".join(lines) + "\n"


def mermaid_title(plan) -> str:
    cfg = plan.config
    return f"stack {cfg.stack}: {cfg.geography.code} data paths, home region {cfg.region}"


def mermaid_document(results: Sequence) -> str:
    """`plan --format mermaid`. One stack: one diagram, titled in its front matter (a valid .mmd
    file). Several: a Markdown document with one titled, fenced diagram per stack, because one
    Mermaid text holds exactly one diagram."""
    diagrams = [(plan, f"---\ntitle: {json.dumps(mermaid_title(plan))}\n---\n{mermaid(plan, report)}")
                for plan, report in results]
    if len(diagrams) == 1:
        return diagrams[0][1]
    parts = ["# Residency data paths", ""]
    for plan, diagram in diagrams:
        parts += [f"## Stack `{plan.config.stack}`", "", "```mermaid", diagram.rstrip("\n"), "```", ""]
    return "\n".join(parts)


# --- docs/data-paths-<stack>.md -------------------------------------------------------------------

def doc_path(stack: str) -> Path:
    return DOCS_DIR / f"data-paths-{stack}.md"


def data_path_doc(plan, report=None) -> str:
    cfg = plan.config
    return (
        f"# Data paths: stack `{cfg.stack}` ({cfg.geography.code})\n\n"
        "Generated from the offline plan by `make docs` (`python -m infra.commands.render --write-docs`); do not edit.\n"
        "tests/test_docs_fresh.py fails when this file is stale.\n\n"
        f"```mermaid\n{mermaid(plan, report)}```\n"
    )


def write_docs(stacks: Sequence[str] = DOC_STACKS) -> list[Path]:
    from infra.harness.synth import synthesize

    written = []
    for stack in stacks:
        path = doc_path(stack)
        path.write_text(data_path_doc(synthesize(stack)))
        written.append(path)
    return written


# --- docs/iam/*.json ------------------------------------------------------------------------------

def iam_policy(template: Any, stack: str, account_id: str = "111111111111",
               repo: str = "example-org/ai-companion") -> Any:
    """Fill an IAM template for one geography: `<STACK>`, `<HOME_REGION>`, `<ACCOUNT_ID>`, `<REPO>`
    inside strings; a list element `"<REGIONS>"` becomes the geography's catalog regions. The
    geography and home region are the stack file's (several stacks may share a geography)."""
    from infra.program.stackfiles import load_stack_config

    geo = load_stack_config(stack).geography
    subs = {"<STACK>": stack, "<HOME_REGION>": geo.home_region, "<ACCOUNT_ID>": account_id, "<REPO>": repo}

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            out = []
            for v in value:
                out.extend(geo.regions if v == "<REGIONS>" else [fill(v)])
            return out
        if isinstance(value, str):
            for key, sub in subs.items():
                value = value.replace(key, sub)
        return value

    return fill(template)


def main(argv: list[str] | None = None) -> int:
    from infra.program.catalog import CatalogError, load_catalog
    from infra.program.config import ConfigError
    from infra.program.errors import InputError

    parser = argparse.ArgumentParser(prog="python -m infra.commands.render", description=__doc__.split("\n")[0])
    parser.add_argument("--write-docs", action="store_true",
                        help=f"rewrite docs/data-paths-<stack>.md ({', '.join(DOC_STACKS)}) from the offline plans")
    sub = parser.add_subparsers(dest="command")
    iam = sub.add_parser("iam", help="print a docs/iam template rendered for one geography")
    iam.add_argument("template", type=Path)
    iam.add_argument("--stack", required=True)
    iam.add_argument("--account-id", required=True)
    iam.add_argument("--repo", required=True, help="OWNER/REPO of the GitHub repository")
    args = parser.parse_args(argv)
    if args.write_docs == (args.command is not None):
        parser.error("give either --write-docs or the iam command")
    if args.write_docs:
        try:
            for path in write_docs():
                print(f"wrote {path.relative_to(ROOT)}")
        except (ConfigError, InputError, CatalogError) as exc:
            print(f"python -m infra.commands.render: error: {exc}", file=sys.stderr)
            return 2
        return 0
    stacks = [g.stack for g in load_catalog().geographies.values()]
    if args.stack not in stacks:
        print(f"--stack: '{args.stack}' is unknown; allowed: {', '.join(stacks)}", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d{12}", args.account_id):
        print(f"--account-id: '{args.account_id}' is not a 12-digit AWS account id", file=sys.stderr)
        return 2
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
        print(f"--repo: '{args.repo}' is not OWNER/REPO", file=sys.stderr)
        return 2
    try:
        template = json.loads(args.template.read_text())
    except (OSError, ValueError) as exc:
        print(f"{args.template}: cannot read a JSON policy template: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(iam_policy(template, args.stack, args.account_id, args.repo), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
