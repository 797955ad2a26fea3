"""`residency cost` (issue #21): unknown is never $0, one total per geography recomputed by hand
from the rows of stacks/prices.yaml, the GPU type moves the total (or the output says why not),
Bedrock tokens as usage items, and the `--fail-above-*` guardrails both ways through the console
script."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from infra.commands.pricing import load_prices, load_rules, parse_prices, price_snapshot
from infra.program.stackfiles import ROOT, list_stacks
from stack_plans import SEEDED_DIGEST, planned, values_with
from cli_run import run_script

H = 730
PRICE_ROWS = yaml.safe_load((ROOT / "stacks" / "prices.yaml").read_text())["regions"]
RULES_DATA = yaml.safe_load((ROOT / "stacks" / "cost_rules.yaml").read_text())
USAGE = {k: float(v["default"]) for k, v in RULES_DATA["usage"].items()}
GPUS_PER = RULES_DATA["pool_units"]["nvidia.com/gpu"]["per_instance"]
EXTENDED = {"1.28", "1.29", "1.30", "1.31", "1.32", "1.33"}


def residency(*args, env=None):
    return run_script(args, {**os.environ, **(env or {})}, ROOT, 240)


# --- one total per geography, by hand ---------------------------------------------------------------

class Missing(Exception):
    pass


def by_hand(plan, region: str) -> tuple[float, set[str], float, set[tuple[str, str]]]:
    """The stack's monthly cost from the price rows, written out per resource kind without the
    pricing module: (priced sum, names of resource-driven items a row is missing for, usage items
    priced, (resource, part) of the usage parts left open). Follows the documented model (730 h,
    volumes of the usage profile spread evenly over the resources of a kind, Auto Mode fee = share x
    instance price; a part sized by a usage-profile volume whose row is missing is a usage item open,
    counted as nothing beside the resource's other parts; a missing row of any other part leaves the
    whole resource unpriced), not the code under test."""
    rows = PRICE_ROWS.get(region, {}).get("prices", {})

    def row(key, item=None):
        value = rows.get(key)
        if isinstance(value, dict):
            value = value.get(item)
        if value is None:
            raise Missing(key)
        return float(value)

    opened: list[str] = []  # the usage parts of the resource being priced whose row is missing

    def usage_row(part, key, item=None):
        try:
            return row(key, item)
        except Missing:
            opened.append(part)
            return 0.0

    resources = plan.snapshot.custom_resources()
    kinds = {}
    for r in resources:
        kinds.setdefault(r.type, []).append(r)
    count = {t: len(rs) for t, rs in kinds.items()}
    interface = [r for r in kinds.get("aws:ec2/vpcEndpoint:VpcEndpoint", []) if r.props["vpcEndpointType"] == "Interface"]
    has_firewall = "aws:networkfirewall/firewall:Firewall" in kinds
    balancers = [r for r in kinds.get("kubernetes:core/v1:Service", []) if r.props["spec"].get("type") == "LoadBalancer"]
    deployments = kinds.get("kubernetes:apps/v1:Deployment", [])

    def gpu_nodes(pool):
        reqs = {q["key"]: q for q in pool.props["spec"]["template"]["spec"]["requirements"]}
        itype = reqs["node.kubernetes.io/instance-type"]["values"][0]
        labels = pool.props["spec"]["template"]["metadata"]["labels"]
        wanted = 0
        for d in deployments:
            pod = d.props["spec"]["template"]["spec"]
            if pod.get("nodeSelector") and all(labels.get(k) == v for k, v in pod["nodeSelector"].items()):
                wanted += d.props["spec"].get("replicas", 1) * sum(
                    float(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in pod["containers"])
        most = math.floor(float(pool.props["spec"]["limits"]["nvidia.com/gpu"]) / GPUS_PER[itype])
        return itype, min(math.ceil(wanted / GPUS_PER[itype]), most)

    def cost_of(r) -> float:
        t, p = r.type, r.props
        if t == "aws:eks/cluster:Cluster":
            total = H * row("eks_cluster_extended_hour" if p["version"] in EXTENDED else "eks_cluster_hour")
            if (p.get("computeConfig") or {}).get("nodePools") == ["system"]:
                m6i = usage_row("system pool nodes", "ec2_instance_hour", "m6i.large")
                total += USAGE["system_pool_nodes"] * H * m6i
                # The fee is share x the instance price: open when either row is missing.
                try:
                    total += USAGE["system_pool_nodes"] * H * row("eks_auto_mode_fee_share") * row(
                        "ec2_instance_hour", "m6i.large")
                except Missing:
                    opened.append("Auto Mode fee (system pool)")
            return total
        if t == "kubernetes:karpenter.sh/v1:NodePool":
            itype, nodes = gpu_nodes(r)
            return nodes * H * row("ec2_instance_hour", itype) * (1 + row("eks_auto_mode_fee_share"))
        if t == "aws:eks/nodeGroup:NodeGroup":
            return p["scalingConfig"]["desiredSize"] * H * row("ec2_instance_hour", p["instanceTypes"][0])
        if t == "aws:ec2/instance:Instance":
            return H * row("ec2_instance_hour", p["instanceType"])
        if t == "aws:ec2/vpcEndpoint:VpcEndpoint":
            if p["vpcEndpointType"] == "Gateway":
                return 0.0
            return (H * len(p["subnetIds"]) * row("interface_endpoint_az_hour")
                    + USAGE["endpoint_gb"] / len(interface) * usage_row("data processed", "interface_endpoint_gb"))
        if t == "aws:ec2/natGateway:NatGateway":
            if has_firewall:
                return 0.0  # waived 1:1 behind Network Firewall
            return (H * row("nat_gateway_hour")
                    + USAGE["egress_gb"] / count[t] * usage_row("data processed", "nat_gateway_gb"))
        if t == "aws:ec2/eip:Eip":
            return H * row("public_ipv4_hour")
        if t == "aws:networkfirewall/firewall:Firewall":
            return (H * len(p["subnetMappings"]) * row("network_firewall_endpoint_hour")
                    + USAGE["egress_gb"] / count[t] * usage_row("traffic processed", "network_firewall_gb"))
        if t == "aws:kms/key:Key":
            return row("kms_key_month") + USAGE["kms_requests"] / count[t] * usage_row("requests", "kms_request")
        if t == "aws:secretsmanager/secret:Secret":
            return row("secret_month")
        if t == "aws:cloudwatch/logGroup:LogGroup":
            days = p.get("retentionInDays")
            months = min(days / (365 / 12), 12) if days else 12
            gb = USAGE["log_ingest_gb"] / count[t]
            return (gb * usage_row("ingestion", "logs_ingest_gb")
                    + gb * months * usage_row("storage", "logs_storage_gb_month"))
        if t == "aws:s3/bucket:Bucket":
            return USAGE["s3_storage_gb"] / count[t] * usage_row("storage (Standard)", "s3_standard_gb_month")
        if t == "aws:ecr/repository:Repository":
            return USAGE["ecr_storage_gb"] / count[t] * usage_row("image storage", "ecr_storage_gb_month")
        if t == "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList":
            return len(p["domains"]) * row("dns_firewall_domain_month")
        if t == "aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation":
            return USAGE["dns_queries_million"] / count[t] * usage_row("queries inspected",
                                                                       "dns_firewall_million_queries")
        if t == "kubernetes:core/v1:Service":
            if p["spec"].get("type") != "LoadBalancer":
                return 0.0
            return H * row("nlb_hour") + H * USAGE["nlb_lcu"] / len(balancers) * usage_row("capacity units",
                                                                                            "nlb_lcu_hour")
        raise AssertionError(f"no hand formula for {t}: add one (or list the type as free in cost_rules.yaml)")

    free = set(RULES_DATA["free"]) | set(RULES_DATA["not_priced"])
    priced, missing, usage_open = 0.0, set(), set()
    for r in resources:
        if r.type in free:
            continue
        opened.clear()
        try:
            priced += cost_of(r)
        except Missing:
            missing.add(r.name)  # the whole resource: its usage parts are not listed apart
            continue
        usage_open |= {(r.name, part) for part in opened}
    models = [m.key for m in plan.config.bedrock_models]
    tokens = 0.0
    for model in models:
        try:
            tokens += (USAGE["bedrock_input_mtok"] / len(models) * row("bedrock_input_mtok", model)
                       + USAGE["bedrock_output_mtok"] / len(models) * row("bedrock_output_mtok", model))
        except Missing:
            pass
    return priced + tokens, missing, tokens, usage_open


@pytest.mark.parametrize("stack", list_stacks())
def test_one_total_per_geography_recomputed_by_hand_from_the_price_rows(stack):
    plan = planned(stack)
    region = plan.config.region
    rules = load_rules()
    models = tuple(m.key for m in plan.config.bedrock_models)
    cost = price_snapshot(plan.snapshot, region, rules.usage, rules, load_prices(), stack, models)
    hand, missing, tokens, usage_open = by_hand(plan, region)
    assert cost.monthly == pytest.approx(hand, abs=1e-6)
    assert {u.name for u in cost.open_resources} == missing
    assert {(u.name, u.part) for u in cost.open_usage if u.part} == usage_open
    assert sum(r.monthly for r in cost.priced if r.usage) == pytest.approx(tokens, abs=1e-6)
    # The total is known exactly when no row is missing; otherwise it is null, never the partial sum.
    assert cost.total == (pytest.approx(hand) if not missing else None)
    assert (cost.total is None) == bool(cost.unknown_reason)


def test_the_us_total_written_out_figure_by_figure():
    """The us stack, its arithmetic written out with the figures of stacks/prices.yaml
    (us-east-1) and the default usage profile, so that changing any price, rule or priced resource
    of the us stack fails here and must be re-done by hand. 730 h a month."""
    plan = planned("us")
    rules = load_rules()
    models = tuple(m.key for m in plan.config.bedrock_models)
    cost = price_snapshot(plan.snapshot, "us-east-1", rules.usage, rules, load_prices(), "us", models)
    gpu_pool = 730 * 1 * 1.861 * (1 + 0.12)          # 1 g6e.xlarge node + Auto Mode fee (12%)
    firewall = 730 * 3 * 0.395 + 100 * 0.065          # 3 endpoints + egress_gb 100
    cluster = 730 * 0.1 + 730 * 1 * 0.096 * (1 + 0.12)  # control plane + 1 system-pool m6i.large + fee
    egress_nodes = 730 * 1 * 0.096                     # desired 1 m6i.large
    haiku = 50 / 2 * 1.1 + 10 / 2 * 5.5               # half the token profile each, two models
    sonnet = 50 / 2 * 3.3 + 10 / 2 * 16.5
    endpoints = 14 * (730 * 3 * 0.01) + 200 * 0.01    # 14 interface endpoints x 3 AZs + endpoint_gb 200
    nlb = 730 * 0.0225 + 730 * 1 * 0.006              # NLB hour + nlb_lcu 1
    kms = 1.0 + 2_000_000 * 3e-06
    public_ips = 3 * 730 * 0.005                       # the NAT gateways' addresses (NAT itself waived)
    logs = 20 * 0.5 + 20 * 12 * 0.03                  # 5 groups share 20 GB, kept 12 months
    tunnel = 730 * 0.0042                              # t4g.nano
    dns = 5 * 0.6 + (4 + 3 + 1) * 0.0005              # 5M queries + 8 listed domains
    storage = 15 * 0.1 + 60 * 0.023                   # ECR + two S3 buckets sharing 60 GB
    secrets = 3 * 0.4
    total = (gpu_pool + firewall + cluster + egress_nodes + haiku + sonnet + endpoints + nlb + kms
             + public_ips + logs + tunnel + dns + storage + secrets)
    assert cost.complete and [u.name for u in cost.open_usage] == ["bedrock-guardrail"]
    assert cost.total == pytest.approx(total, abs=1e-6)
    assert round(total, 2) == 3209.38
    # At max: the GPU pool at 2 nodes and the egress node group at its max of 2.
    assert cost.total_at_max == pytest.approx(total + gpu_pool + egress_nodes, abs=1e-6)
    assert round(total + gpu_pool + egress_nodes, 2) == 4801.01


COMPLETE_OFFLINE = {"au", "ca", "sg", "us"}  # every resource-driven price found offline (stacks/prices.yaml)


def test_which_totals_are_known_and_every_other_geography_says_what_is_missing():
    """A record of the committed price data: the stacks of COMPLETE_OFFLINE have every
    resource-driven price (some usage parts may stay open); the others list their unpriced items
    instead of showing a total (stacks/prices.yaml says why)."""
    rules = load_rules()
    for stack in list_stacks():
        plan = planned(stack)
        cost = price_snapshot(plan.snapshot, plan.config.region, rules.usage, rules, load_prices(), stack)
        assert cost.complete == (stack in COMPLETE_OFFLINE), (stack, cost.unknown_reason)


# --- unknown is never $0 ------------------------------------------------------------------------------

ONLY_EKS = {"schema_version": 1, "regions": {"ap-southeast-1": {
    "checked": "2026-01-02", "source": "test", "prices": {"eks_cluster_hour": 0.10}}}}


def test_cli_total_of_a_partly_priced_stack_is_null_in_json_and_a_lower_bound_in_text(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump(ONLY_EKS))
    js = residency("cost", "--stack", "sg", "--prices", str(prices), "--format", "json")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["monthly"] is None and doc["monthly_at_max"] is None
    unpriced = [u for u in doc["not_priced"] if not u["usage_item"]]
    assert doc["monthly_reason"].startswith(f"{len(unpriced)} resource-driven item(s) not priced: ")
    assert "no interface_endpoint_az_hour price for ap-southeast-1" in doc["monthly_reason"]
    text = residency("cost", "--stack", "sg", "--prices", str(prices)).stdout
    assert f"total: unknown, ≥ ${doc['monthly_priced']:,.2f} ({len(unpriced)} items unpriced) per month" in text
    assert "total: $" not in text


def test_cli_region_without_any_price_is_unknown_not_zero(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"schema_version": 1, "regions": {}}))
    result = residency("cost", "--stack", "ksa", "--prices", str(prices), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ksa |"))
    assert "| ≥ $0.00 (" in row and "items unpriced)" in row and "| $0.00 |" not in row


def test_usage_items_left_open_keep_the_resource_total_known():
    """Bedrock tokens priced per model from the profile; a model without a price is a usage item
    open, which leaves the total known (unlike a resource without a price)."""
    plan = planned("us")
    rules = load_rules()
    book = load_prices()
    models = ("claude-opus-4-5", "claude-haiku-4-5")  # Opus 4.5 has no price row
    cost = price_snapshot(plan.snapshot, "us-east-1", rules.usage, rules, book, "us", models)
    (haiku,) = [r for r in cost.priced if r.usage]
    rows = PRICE_ROWS["us-east-1"]["prices"]
    assert haiku.name == "claude-haiku-4-5"
    assert haiku.monthly == pytest.approx(50 / 2 * rows["bedrock_input_mtok"]["claude-haiku-4-5"]
                                          + 10 / 2 * rows["bedrock_output_mtok"]["claude-haiku-4-5"])
    assert [u.name for u in cost.open_usage] == ["bedrock-guardrail", "claude-opus-4-5"]
    assert cost.complete and cost.total == pytest.approx(cost.monthly)
    more = price_snapshot(plan.snapshot, "us-east-1", {**rules.usage, "bedrock_input_mtok": 150.0}, rules, book,
                          "us", models)
    assert more.total - cost.total == pytest.approx(100 / 2 * rows["bedrock_input_mtok"]["claude-haiku-4-5"])


# --- the GPU type moves the total, or the output says why not ----------------------------------------

GPU_BOOK = {"schema_version": 1, "regions": {"us-east-1": {"checked": "2026-01-02", "source": "test", "prices": {
    **PRICE_ROWS["us-east-1"]["prices"],
    "ec2_instance_hour": {**PRICE_ROWS["us-east-1"]["prices"]["ec2_instance_hour"]}}}}}
del GPU_BOOK["regions"]["us-east-1"]["prices"]["ec2_instance_hour"]["g6.xlarge"]  # a type without a price


def gpu_cost(synth, instance_type: str, max_gpus: int = 2):
    plan = synth("us", values_with("us", modelImageDigest=SEEDED_DIGEST, gpuInstanceType=instance_type,
                                   gpuMaxSize=str(max_gpus)))
    rules = load_rules()
    return price_snapshot(plan.snapshot, "us-east-1", rules.usage, rules, parse_prices(GPU_BOOK), "us")


def test_changing_the_gpu_type_changes_the_total_by_the_instance_and_fee(synth):
    g6e, g5 = gpu_cost(synth, "g6e.xlarge"), gpu_cost(synth, "g5.xlarge")
    hourly = PRICE_ROWS["us-east-1"]["prices"]["ec2_instance_hour"]
    share = PRICE_ROWS["us-east-1"]["prices"]["eks_auto_mode_fee_share"]
    assert g6e.complete and g5.complete
    # One vLLM replica on one GPU: one node of either type.
    assert g6e.total - g5.total == pytest.approx(H * (hourly["g6e.xlarge"] - hourly["g5.xlarge"]) * (1 + share))


def test_a_gpu_type_without_a_price_makes_the_total_unknown_and_says_why(synth):
    cost = gpu_cost(synth, "g6.xlarge")
    assert cost.total is None
    assert "model-gpu-pool" in cost.unknown_reason
    assert "no ec2_instance_hour price for g6.xlarge in us-east-1" in cost.unknown_reason


def test_a_gpu_type_larger_than_the_pool_limit_is_priced_at_zero_with_a_warning(synth):
    """g6e.12xlarge has 4 GPUs; a limit of 2 GPUs cannot start one: the total does not move, and the
    output says why. The stack config refuses that pair (gpuMaxSize below one instance), so the
    plan is made with a limit of 4 and the NodePool edited to 2, as in an exported or hand-edited
    state that cost also reads."""
    plan = synth("us", values_with("us", modelImageDigest=SEEDED_DIGEST, gpuInstanceType="g6e.12xlarge",
                                   gpuMaxSize="4"))
    (pool_resource,) = [r for r in plan.snapshot.resources if r.type == "kubernetes:karpenter.sh/v1:NodePool"]
    pool_resource.inputs["spec"]["limits"]["nvidia.com/gpu"] = 2
    rules = load_rules()
    cost = price_snapshot(plan.snapshot, "us-east-1", rules.usage, rules, parse_prices(GPU_BOOK), "us")
    (pool,) = cost.gpu_pools
    assert pool.nodes == (0, 0, 0) and pool.monthly == 0.0
    assert cost.complete
    assert cost.warnings == ["model-gpu-pool: its nvidia.com/gpu limit (2) is less than one g6e.12xlarge "
                             "(4 per instance): no node can start, so the pool costs $0 and its workloads stay pending"]
    assert gpu_cost(synth, "g6e.12xlarge", max_gpus=4).gpu_pools[0].nodes == (0, 1, 1)


# --- guardrails on pull requests ----------------------------------------------------------------------

def project_without_federated(root: Path) -> Path:
    """The test stacks, with the us stack planned without its Federated option (no firewall, no
    egress node group, no connector secrets)."""
    from conftest import TEST_STACKS

    project = root / "project"
    project.mkdir()
    for path in TEST_STACKS.glob("Pulumi*.yaml"):
        (project / path.name).write_text(path.read_text())
    doc = yaml.safe_load((project / "Pulumi.us.yaml").read_text())
    doc["config"]["ai-companion:options"] = ["zmo", "zm_plus"]
    del doc["config"]["ai-companion:federated"]
    (project / "Pulumi.us.yaml").write_text(yaml.safe_dump(doc))
    return project


@pytest.fixture(scope="module")
def base_plans(tmp_path_factory):
    """The base branch of a pull request that turns on Federated for us: its plan export, written
    through the console script as preview.yml does."""
    root = tmp_path_factory.mktemp("base")
    plans = root / "plans"
    done = residency("--project-dir", str(project_without_federated(root)), "cost", "--stack", "us",
                     "--plan-out", str(plans))
    assert done.returncode == 0, done.stderr
    return plans


def test_cli_guardrail_fails_above_the_usd_threshold_naming_the_biggest_movers(base_plans):
    args = ("cost", "--stack", "us", "--base", str(base_plans))
    over = residency(*args, "--fail-above-usd", "100", "--format", "json")
    assert over.returncode == 1, over.stderr
    doc = json.loads(over.stdout)
    change = doc["change"]["monthly"]
    assert change > 100 and doc["change"]["exact"]
    (message,) = doc["guardrail"]
    assert message.startswith(f"cost guardrail: stack us +${change:,.2f} per month (+")
    assert ("is above --fail-above-usd 100; biggest movers: egress-firewall (networkfirewall/firewall:Firewall) "
            "+$") in message
    text = residency(*args, "--fail-above-usd", "100")
    assert text.returncode == 1 and message in text.stdout
    under = residency(*args, "--fail-above-usd", str(math.ceil(change) + 1), "--format", "json")
    assert under.returncode == 0, under.stderr
    assert json.loads(under.stdout)["guardrail"] == []


def test_cli_guardrail_fails_above_the_percent_threshold_and_passes_below(base_plans):
    args = ("cost", "--stack", "us", "--base", str(base_plans), "--format", "json")
    doc = json.loads(residency(*args).stdout)
    percent = doc["change"]["monthly"] / doc["change"]["base_monthly"] * 100
    assert percent > 0
    over = residency(*args, "--fail-above-percent", f"{percent / 2:.3f}")
    assert over.returncode == 1, over.stderr
    (message,) = json.loads(over.stdout)["guardrail"]
    assert f"(+{percent:.1f}%) is above --fail-above-percent" in message
    under = residency(*args, "--fail-above-percent", f"{percent + 1:.3f}")
    assert under.returncode == 0 and json.loads(under.stdout)["guardrail"] == []


def test_cli_guardrail_on_an_unknown_total_is_not_checked_exit_3(tmp_path, base_plans):
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"schema_version": 1, "regions": {"us-east-1": {
        "checked": "2026-01-02", "prices": {"eks_cluster_hour": 0.1}}}}))
    result = residency("cost", "--stack", "us", "--base", str(base_plans), "--prices", str(prices),
                       "--fail-above-usd", "1")
    assert result.returncode == 3, result.stderr
    assert ("cost guardrail: stack us not checked: items not priced differ between head and base, so the "
            "change is unknown (newly not priced: ") in result.stdout


def test_guardrail_judges_the_exact_change_when_the_same_items_are_unpriced_on_both_sides():
    """sg without its load balancer's hourly price has an unpriced item; a change elsewhere is still
    exact (the unpriced items are the same resources with the same inputs on both sides), and
    judged; the percentage is of the priced part. A new unpriced item makes the change unknown:
    not checked."""
    from infra.commands.cost import guardrail
    from infra.commands.pricing import compare

    rows = {**PRICE_ROWS["ap-southeast-1"]["prices"]}
    del rows["nlb_hour"]  # the load balancer's hours: a resource-driven item not priced on both sides
    book = parse_prices({"schema_version": 1, "regions": {"ap-southeast-1": {"checked": "2026-01-02", "prices": rows}}})
    plan, rules = planned("sg"), load_rules()
    base = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, book, "sg")
    head = price_snapshot(plan.snapshot, "ap-southeast-1", {**rules.usage, "kms_requests": 3_000_000.0}, rules,
                          book, "sg")
    assert not head.complete and not base.complete
    delta = compare(head, base)
    assert delta.exact and delta.monthly == pytest.approx(1_000_000 * 0.000003)
    (breach,) = guardrail([(head, delta)], usd=1.0, percent=None)
    assert breach.change == pytest.approx(3.0) and breach.of_priced
    assert "+$3.00 per month (+" in breach.text() and "% of the priced part) is above --fail-above-usd 1" in breach.text()
    assert guardrail([(head, delta)], usd=5.0, percent=None) == []
    base.not_priced = [u for u in base.not_priced if u.usage]  # the head has one item more not priced
    (unknown,) = guardrail([(head, compare(head, base))], usd=5.0, percent=None)
    assert unknown.change is None and "items not priced differ between head and base" in unknown.text()


@pytest.mark.parametrize("args, message", [
    (["--fail-above-usd", "5"], "--fail-above-usd and --fail-above-percent compare against the base: give --base DIR"),
    (["--fail-above-percent", "-1"], "argument --fail-above-percent: '-1' is not a number >= 0"),
    (["--fail-above-usd", "lots"], "argument --fail-above-usd: 'lots' is not a number >= 0"),
])
def test_cli_guardrail_bad_input_exits_2(args, message):
    result = residency("cost", "--stack", "us", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


def test_markdown_report_starts_with_the_marker_preview_updates_in_place_and_says_when_nothing_changed(
        tmp_path, base_plans):
    from infra.commands.cost import MARKER

    same = residency("--project-dir", str(project_without_federated(tmp_path)), "cost", "--stack", "us",
                     "--base", str(base_plans), "--format", "markdown")
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith(MARKER + "\n## Cost")
    assert "No cost change against the base branch." in same.stdout
    changed = residency("cost", "--stack", "us", "--base", str(base_plans), "--format", "markdown")
    assert changed.stdout.startswith(MARKER) and "No cost change" not in changed.stdout


def test_preview_updates_one_cost_comment_in_place_and_fails_the_guardrail_after_posting():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    job = doc["jobs"]["cost"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    names = [s.get("name", "") for s in job["steps"]]
    report = next(s for s in job["steps"] if s.get("id") == "report")
    update = next(s for s in job["steps"] if s.get("name") == "Update the cost comment in place")
    guard = next(s for s in job["steps"] if s.get("name", "").startswith("Cost guardrail"))
    assert names.index(report["name"]) < names.index(update["name"]) < names.index(guard["name"])
    assert "--fail-above-usd 1000 --fail-above-percent 25 >> cost.md || rc=$?" in report["run"]
    assert 'echo "rc=$rc" >> "$GITHUB_OUTPUT"' in report["run"]
    # Found by the report's first line (the marker), then edited; a new comment only when none exists.
    assert "marker=$(head -n 1 cost.md)" in update["run"] and "startswith" in update["run"]
    assert 'gh api --method PATCH "repos/$REPO/issues/comments/$id"' in update["run"]
    assert update["if"].startswith("always()")
    assert guard["if"] == "steps.report.outputs.rc != '0'" and 'exit "$RC"' in guard["run"]


def test_a_price_aws_has_not_published_says_so_per_item():
    from infra.commands.pricing import Unpriceable, price_of

    book = load_prices()
    with pytest.raises(Unpriceable, match=r"^ec2_instance_hour\[p5e.48xlarge\]: not published for us-east-1 \(absent"):
        price_of(book, "us-east-1", "ec2_instance_hour", "p5e.48xlarge", keyed=True)
    with pytest.raises(Unpriceable, match=r"^interface_endpoint_az_hour: not published for me-west-1 \(new region"):
        price_of(book, "me-west-1", "interface_endpoint_az_hour")
    with pytest.raises(Unpriceable, match=r"^no nlb_lcu_hour price for ap-southeast-2 \(none found offline\)$"):
        price_of(book, "ap-southeast-2", "nlb_lcu_hour")  # not found offline: not claimed unpublished
    assert price_of(book, "us-east-1", "ec2_instance_hour", "p5.48xlarge", keyed=True) == 55.04
