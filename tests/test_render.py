"""Content of the markdown PR summary and the Mermaid data-path map (infra/commands/render.py)."""

from __future__ import annotations

import random
import re
from collections import Counter
from types import SimpleNamespace

import pytest

from infra.commands import render
from infra.engine.model import Finding, Resource, Snapshot
from infra.program.stackfiles import load_stack_config
from infra.harness.synth import Plan

EU_REGIONS = ["eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1", "eu-south-2"]
PROVIDER = "urn:pulumi:eu::ai-companion::pulumi:providers:aws::aws-main"
OPENAI = {"connector": "openai", "provider": "openai", "host": "eu.api.openai.com", "processing": "in_geography"}
ELEVEN = {"connector": "elevenlabs", "provider": "elevenlabs", "host": "api.eu.residency.elevenlabs.io",
          "processing": "in_geography"}


def res(type_: str, name: str, custom: bool = True, **inputs) -> Resource:
    return Resource(urn=f"urn:pulumi:t::ai-companion::{type_}::{name}", type=type_, name=name, custom=custom,
                    inputs=inputs, provider=f"{PROVIDER}::pid" if custom else None)


def snapshot(region: str, *resources: Resource) -> Snapshot:
    provider = Resource(urn=PROVIDER, type="pulumi:providers:aws", name="aws-main", id="pid",
                        inputs={"region": region})
    return Snapshot([provider, *resources], source="plan", stack="t", default_region=region)


def full_eu_resources() -> list[Resource]:
    return [
        res("ai-companion:zmo:ServingCluster", "serving", custom=False),
        res("aws:eks/cluster:Cluster", "serving-eks"),
        res("aws:ec2/subnet:Subnet", "private-a"),
        res("aws:ec2/subnet:Subnet", "private-b"),
        res("ai-companion:zm_plus:BedrockAccess", "bedrock", custom=False),
        res("aws:ec2/vpcEndpoint:VpcEndpoint", "bedrock-runtime",
            serviceName="com.amazonaws.eu-central-1.bedrock-runtime"),
        res("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", serviceName="com.amazonaws.eu-central-1.s3"),
        res("ai-companion:federated:EgressConnectors", "egress", custom=False),
        res("aws:networkfirewall/firewall:Firewall", "egress-fw"),
    ]


def plan(stack: str, snap: Snapshot) -> Plan:
    return Plan(stack, load_stack_config(stack), {"version": 3, "deployment": {}}, snap)


def report(paths=(), findings=()):
    """The fields of infra.engine.rules.Report that the renderers read."""
    return SimpleNamespace(findings=list(findings), unplaced=[], declared_paths=[dict(p) for p in paths])


def boundary(text: str) -> tuple[list[str], list[str]]:
    """(lines inside the geography subgraph, lines after it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("subgraph "))
    end = lines.index("  end")
    return lines[start:end], lines[end + 1:]


# --- mermaid --------------------------------------------------------------------------------------

def test_eu_map_boundary_parts_and_crossing_edges():
    text = render.mermaid(plan("eu", snapshot("eu-central-1", *full_eu_resources())), report([OPENAI, ELEVEN]))
    assert text.startswith("flowchart LR\n")
    inside, outside = boundary(text)
    assert inside[0] == f'  subgraph geo_EU["EU boundary: {", ".join(EU_REGIONS)}"]'
    assert any(line.startswith("    cluster_serving_eks[") and "EKS cluster" in line for line in inside)
    assert any("bedrock_bedrock_runtime[" in line and "com.amazonaws.eu-central-1.bedrock-runtime" in line
               for line in inside)
    assert any(line.startswith("    firewall_egress_fw[") and "Egress firewall" in line for line in inside)
    assert not any("_s3[" in line for line in text.splitlines()), "only the bedrock-runtime endpoint is a part"
    # Bedrock's geographic profiles route inside EU only.
    (routing,) = [line for line in inside if "bedrock_routing[" in line]
    assert all(r in routing for r in EU_REGIONS)
    # Both crossing paths leave through the firewall, labelled with host and processing geography.
    assert '  ext_eu_api_openai_com["eu.api.openai.com<br/>openai"]' in outside
    assert ('  firewall_egress_fw -->|"openai: eu.api.openai.com, processing in_geography (EU)"| '
            "ext_eu_api_openai_com") in outside
    assert any(line.startswith("  firewall_egress_fw -->|\"elevenlabs: api.eu.residency.elevenlabs.io")
               for line in outside)
    assert "  cluster_serving_eks --> firewall_egress_fw" in outside
    assert "  cluster_serving_eks --> bedrock_bedrock_runtime" in outside
    assert len([line for line in outside if "-->|" in line]) == 2


def test_zmo_only_stack_has_no_crossing_edge():
    snap = snapshot("ap-southeast-1", res("ai-companion:zmo:ServingCluster", "serving", custom=False),
                    res("aws:eks/cluster:Cluster", "serving-eks"))
    text = render.mermaid(plan("sg", snap), report())
    inside, outside = boundary(text)
    assert inside[0] == '  subgraph geo_SG["SG boundary: ap-southeast-1"]'
    assert any("cluster_serving_eks[" in line for line in inside)
    assert outside == []
    assert "ext_" not in text and "-->" not in text


def test_a_part_outside_the_geography_is_drawn_outside_the_boundary():
    resources = full_eu_resources()
    resources[1] = res("aws:eks/cluster:Cluster", "serving-eks", region="us-east-1")
    text = render.mermaid(plan("eu", snapshot("eu-central-1", *resources)), report())
    inside, outside = boundary(text)
    assert not any("cluster_serving_eks[" in line for line in inside)
    (node,) = [line for line in outside if line.startswith("  cluster_serving_eks[")]
    assert "us-east-1: OUTSIDE EU" in node


def test_paths_without_a_firewall_leave_from_the_cluster_and_missing_parts_show_their_component():
    resources = [r for r in full_eu_resources() if r.type != "aws:networkfirewall/firewall:Firewall"]
    text = render.mermaid(plan("eu", snapshot("eu-central-1", *resources)), report([OPENAI]))
    inside, outside = boundary(text)
    assert any("Egress connectors (component, no firewall)" in line for line in inside)
    assert any(line.startswith("  firewall_egress -->|\"openai: eu.api.openai.com") for line in outside)
    no_egress = [r for r in resources if r.type != "ai-companion:federated:EgressConnectors"]
    text = render.mermaid(plan("eu", snapshot("eu-central-1", *no_egress)), report([OPENAI]))
    assert '  cluster_serving_eks -->|"openai: eu.api.openai.com, processing in_geography (EU)"|' in text


def test_global_processing_is_labelled_without_a_geography():
    path = {"connector": "perplexity", "provider": "perplexity", "host": "api.perplexity.ai", "processing": "global"}
    text = render.mermaid(plan("us", snapshot("us-east-1", *full_eu_resources())), report([path]))
    assert '-->|"perplexity: api.perplexity.ai, processing global"| ext_api_perplexity_ai' in text
    assert '  ext_api_perplexity_ai["api.perplexity.ai<br/>perplexity"]:::global_processing' in text
    assert text.rstrip().endswith("classDef global_processing stroke:#c00,stroke-width:2px,stroke-dasharray:4 2")
    in_geo = render.mermaid(plan("eu", snapshot("eu-central-1", *full_eu_resources())), report([OPENAI]))
    assert "global_processing" not in in_geo


def test_mermaid_is_deterministic():
    resources = full_eu_resources()
    expected = render.mermaid(plan("eu", snapshot("eu-central-1", *resources)), report([OPENAI, ELEVEN]))
    for seed in range(3):
        shuffled = resources[:]
        random.Random(seed).shuffle(shuffled)
        again = render.mermaid(plan("eu", snapshot("eu-central-1", *shuffled)), report([ELEVEN, OPENAI]))
        assert again == expected


# --- markdown -------------------------------------------------------------------------------------

def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_counts_paths_and_findings():
    snap = snapshot("eu-central-1", *full_eu_resources())
    finding = Finding("RES001", "HIGH", "urn:pulumi:t::ai-companion::aws:ec2/subnet:Subnet::private-a",
                      "aws:ec2/subnet:Subnet", "region us-east-1 | outside EU\nsecond line", "title")
    text = render.markdown([(plan("eu", snap), report([OPENAI, ELEVEN], [finding]))])
    section = text[text.index("## Stack `eu`"):]
    counts = _table(section, "| Type | Count |")
    counted = snap.counted_resources()
    assert {row[0].strip("`"): int(row[1]) for row in counts[:-1]} == Counter(r.type for r in counted)
    assert counts[-1] == ["**Total**", f"**{len(counted)}**"]
    assert len(counted) < len(snap.resources)  # the component is not counted
    assert _table(section, "| Connector | Provider | Host | Processing |") == [
        ["elevenlabs", "elevenlabs", "`api.eu.residency.elevenlabs.io`", "in_geography"],
        ["openai", "openai", "`eu.api.openai.com`", "in_geography"],
    ]
    (row,) = _table(section, "| Severity | Rule | Resource | Message |")
    assert row == ["HIGH", "RES001", "`private-a` (aws:ec2/subnet:Subnet)", r"region us-east-1 \| outside EU second line"]
    summary = _table(text, "| Stack | Geography | Home region | Options | Resources | Declared paths | Findings |")
    assert summary == [["`eu`", "EU", "`eu-central-1`", "zmo, zm_plus, federated", str(len(counted)), "2", "1"]]


def test_markdown_says_none_and_sorts_stacks():
    eu = plan("eu", snapshot("eu-central-1", *full_eu_resources()))
    sg = plan("sg", snapshot("ap-southeast-1", res("aws:eks/cluster:Cluster", "serving-eks")))
    text = render.markdown([sg, eu], [report(), report([OPENAI])])
    assert text.index("## Stack `eu`") < text.index("## Stack `sg`")
    sg_section = text[text.index("## Stack `sg`"):]
    assert "### Declared data paths\n\nnone: no data path leaves the geography." in sg_section
    assert sg_section.rstrip().endswith("### Findings\n\nnone")
    assert text == render.markdown([(eu, report([OPENAI])), (sg, report())])
    with pytest.raises(ValueError, match="2 plans but 1 reports"):
        render.markdown([sg, eu], [report()])


# --- the real plans --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_plans():
    from infra.commands.plan import plan_stack

    return {stack: plan_stack(stack) for stack in ("eu", "sg")}


def test_real_eu_plan_map_shows_every_configured_connector_host(real_plans):
    p, r = real_plans["eu"]
    text = render.mermaid(p, r)
    for connector in p.config.connectors:
        for host in connector.hosts:
            assert re.search(rf'-->\|"{connector.key}: {re.escape(host)}, processing {connector.processing}', text)
    assert "eu.api.openai.com" in text and "api.openai.com\"" not in text.replace("eu.api.openai.com", "")


def test_real_sg_plan_map_has_a_cluster_and_nothing_crossing(real_plans):
    p, r = real_plans["sg"]
    text = render.mermaid(p, r)
    inside, outside = boundary(text)
    assert any("EKS cluster" in line for line in inside)
    assert "-->|" not in text and not any(line.lstrip().startswith("ext_") for line in outside)
    md = render.markdown([(p, r)])
    total = _table(md, "| Type | Count |")[-1]
    assert total == ["**Total**", f"**{r.resources_checked}**"]
