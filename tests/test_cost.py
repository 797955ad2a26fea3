"""`residency cost`: pricing rules on a small synthetic stack (totals computed by hand), the PR
delta of a GPU max-size change, not-priced resources, usage profiles, and every CLI path through
the console script."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from infra.program.errors import InputError
from infra.commands.pricing import (PriceDataError, compare, load_prices, load_rules, parse_prices, parse_rules,
                           parse_usage, price_snapshot)
from infra.program.stackfiles import ROOT, list_stacks
from stack_plans import values_with
from cli_run import run_script

H = 730  # hours per month in stacks/cost_rules.yaml

# Test-owned prices (not the repo's), so the hand computation below never goes stale.
TEST_PRICES = {
    "schema_version": 1, "currency": "USD",
    "regions": {"ap-southeast-1": {"checked": "2026-01-02", "source": "test", "prices": {
        "eks_cluster_hour": 0.10, "eks_cluster_extended_hour": 0.60,
        "ec2_instance_hour": {"g6e.xlarge": 2.0, "m6i.large": 0.1},
        "interface_endpoint_az_hour": 0.01, "interface_endpoint_gb": 0.01,
        "nat_gateway_hour": 0.045, "nat_gateway_gb": 0.045,
        "kms_key_month": 1.0, "kms_request": 0.000003,
        "logs_ingest_gb": 0.5, "logs_storage_gb_month": 0.03,
    }}},
}


def small_stack(cfg):
    """A stack of one of each priced shape, plus a free type, an unknown type and an unplaced one."""
    provider = aws.Provider("aws", region=cfg.region)
    opts = pulumi.ResourceOptions(provider=provider)
    aws.eks.Cluster("cluster", name="c", version="1.34", role_arn="arn:aws:iam::123456789012:role/r",
                    vpc_config={"subnet_ids": ["subnet-a", "subnet-b"]}, opts=opts)
    aws.eks.NodeGroup("gpu", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                      subnet_ids=["subnet-a"], instance_types=["g6e.xlarge"],
                      scaling_config={"min_size": 1, "desired_size": 1, "max_size": 3}, opts=opts)
    aws.ec2.VpcEndpoint("ecr", vpc_id="vpc-1", service_name="com.amazonaws.ap-southeast-1.ecr.api",
                        vpc_endpoint_type="Interface", subnet_ids=["subnet-a", "subnet-b"], opts=opts)
    aws.ec2.VpcEndpoint("s3", vpc_id="vpc-1", service_name="com.amazonaws.ap-southeast-1.s3",
                        vpc_endpoint_type="Gateway", opts=opts)
    aws.ec2.NatGateway("nat", subnet_id="subnet-a", allocation_id="eipalloc-1", opts=opts)
    aws.kms.Key("key", opts=opts)
    aws.cloudwatch.LogGroup("logs", name="/x", retention_in_days=30, opts=opts)
    aws.iam.Role("role", assume_role_policy="{}", opts=opts)
    aws.sqs.Queue("queue", opts=opts)  # no pricing rule: must be listed, never counted as 0
    aws.ec2.Eip("eip", domain="vpc", opts=opts)  # has a rule, but no price in TEST_PRICES
    return {}


@pytest.fixture
def small_cost(synth):
    plan = synth("sg", values_with("sg"), program=small_stack)
    usage = parse_usage('{"egress_gb": 10}', load_rules(), "test")
    return price_snapshot(plan.snapshot, "ap-southeast-1", usage, load_rules(), parse_prices(TEST_PRICES), "sg")


def test_small_stack_totals_match_the_hand_computation(small_cost):
    by_name = {r.name: r for r in small_cost.priced}
    expected = {
        "cluster": H * 0.10,                                   # 1.34: standard support
        "gpu": H * 1 * 2.0,                                    # desired 1 node
        "ecr": H * 2 * 0.01 + 200 * 0.01,                      # 2 AZs + endpoint_gb default 200
        "s3": 0.0,                                             # gateway endpoint: free
        "nat": H * 0.045 + 10 * 0.045,                         # egress_gb overridden to 10
        "key": 1.0 + 2_000_000 * 0.000003,                     # key + kms_requests default
        "logs": 20 * 0.5 + 20 * (30 / (365 / 12)) * 0.03,      # ingest + 30 days kept
    }
    assert {n: round(r.monthly, 6) for n, r in by_name.items()} == {n: round(v, 6) for n, v in expected.items()}
    assert small_cost.monthly == pytest.approx(sum(expected.values()))
    assert small_cost.monthly == pytest.approx(73.0 + 1460.0 + 16.6 + 32.85 + 0.45 + 7.0 + 10.0 + 0.5917808)
    gpu = by_name["gpu"]
    assert gpu.gpu and gpu.nodes == (1, 1, 3)
    assert (gpu.at_min, gpu.at_max) == (pytest.approx(H * 2.0), pytest.approx(3 * H * 2.0))
    assert small_cost.at_max == pytest.approx(small_cost.monthly + 2 * H * 2.0)
    assert small_cost.free == 1  # the IAM role


def test_unknown_types_and_missing_prices_are_listed_not_priced_never_zero(small_cost):
    unpriced = {u.name: u.reason for u in small_cost.not_priced}
    assert unpriced == {"queue": "no pricing rule for this type",
                        "eip": "no public_ipv4_hour price for ap-southeast-1 (none found offline)"}
    assert not {"queue", "eip"} & {r.name for r in small_cost.priced}


def endpoint_logs_and_key(cfg):
    """An interface endpoint (hours per AZ + data processed), a log group (ingestion + storage, both
    usage) and a key (per month + requests)."""
    opts = pulumi.ResourceOptions(provider=aws.Provider("aws", region=cfg.region))
    aws.ec2.VpcEndpoint("ecr", vpc_id="vpc-1", service_name="com.amazonaws.ap-southeast-1.ecr.api",
                        vpc_endpoint_type="Interface", subnet_ids=["subnet-a", "subnet-b"], opts=opts)
    aws.cloudwatch.LogGroup("logs", name="/x", retention_in_days=30, opts=opts)
    aws.kms.Key("key", opts=opts)
    return {}


def prices_without(*keys: str):
    rows = {k: v for k, v in TEST_PRICES["regions"]["ap-southeast-1"]["prices"].items() if k not in keys}
    return parse_prices({"schema_version": 1, "regions": {"ap-southeast-1": {"checked": "2026-01-02", "prices": rows}}})


def test_a_usage_part_without_a_price_is_a_usage_item_open_and_the_total_stays_known(synth):
    """Data processed, log ingestion and storage are `usage:` parts: without their prices they are
    usage items open (resource, part, price, why); the endpoint's hours and the key are still
    priced, and the total is their sum. A log group with only usage parts, none priced, is not
    shown as $0: it is only listed open."""
    plan = synth("sg", values_with("sg"), program=endpoint_logs_and_key)
    rules = load_rules()
    cost = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules,
                          prices_without("interface_endpoint_gb", "logs_ingest_gb", "logs_storage_gb_month"))
    assert cost.complete and not cost.open_resources
    assert cost.total == pytest.approx(H * 2 * 0.01 + 1.0 + 2_000_000 * 0.000003)  # 14.60 + 7.00
    assert {r.name: [line.part for line in r.lines] for r in cost.priced} == {
        "ecr": ["endpoint per AZ"], "key": ["customer managed key", "requests"]}
    assert [(u.name, u.part, u.reason) for u in cost.open_usage] == [
        ("logs", "ingestion", "ingestion (usage log_ingest_gb): no logs_ingest_gb price for ap-southeast-1 "
                              "(none found offline)"),
        ("logs", "storage", "storage (usage log_ingest_gb): no logs_storage_gb_month price for ap-southeast-1 "
                            "(none found offline)"),
        ("ecr", "data processed", "data processed (usage endpoint_gb): no interface_endpoint_gb price for "
                                  "ap-southeast-1 (none found offline)")]


def test_a_resource_driven_part_without_a_price_leaves_the_resource_not_priced_and_the_total_unknown(synth):
    """The endpoint's hours per AZ and the key's monthly charge are charged for existing: without
    their price the resource is not priced (its usage parts with it) and the total is unknown."""
    plan = synth("sg", values_with("sg"), program=endpoint_logs_and_key)
    rules = load_rules()
    for missing, name in (("interface_endpoint_az_hour", "ecr"), ("kms_key_month", "key")):
        cost = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, prices_without(missing))
        assert cost.total is None and cost.total_at_max is None
        assert [(u.name, u.part) for u in cost.not_priced] == [(name, "")]
        assert cost.unknown_reason == (f"1 resource-driven item(s) not priced: {name} ({cost.not_priced[0].type}): "
                                       f"no {missing} price for ap-southeast-1 (none found offline)")
        assert name not in {r.name for r in cost.priced}


def test_a_newly_open_usage_item_shows_in_the_comparison_and_the_markdown_comment(synth):
    from infra.commands.cost import guardrail, render_markdown, render_text

    plan = synth("sg", values_with("sg"), program=endpoint_logs_and_key)
    rules = load_rules()
    base = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, parse_prices(TEST_PRICES), "sg")
    head = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, prices_without("interface_endpoint_gb"),
                          "sg")
    delta = compare(head, base)
    assert [(u.name, u.part, u.usage) for u in delta.newly_unpriced] == [("ecr", "data processed", True)]
    assert delta.exact and delta.monthly == pytest.approx(-200 * 0.01)  # the part no longer priced
    assert guardrail([(head, delta)], usd=100.0, percent=None) == []  # judged, not "not checked"
    markdown = render_markdown([(head, delta)])
    assert ("Newly open usage items: ecr (`ec2/vpcEndpoint:VpcEndpoint`): data processed (usage endpoint_gb): "
            "no interface_endpoint_gb price for ap-southeast-1 (none found offline)") in markdown
    assert "Newly not priced" not in markdown and "| sg | ap-southeast-1 | $" in markdown
    assert "    newly open (usage): ecr (ec2/vpcEndpoint:VpcEndpoint): data processed" in render_text([(head, delta)])
    assert compare(head, head).newly_unpriced == []


def cluster_and_nat(version: str, firewall: bool):
    def program(cfg):
        opts = pulumi.ResourceOptions(provider=aws.Provider("aws", region=cfg.region))
        aws.eks.Cluster("cluster", name="c", version=version, role_arn="arn:aws:iam::123456789012:role/r",
                        vpc_config={"subnet_ids": ["subnet-a"]}, opts=opts)
        aws.ec2.NatGateway("nat", subnet_id="subnet-a", allocation_id="eipalloc-1", opts=opts)
        if firewall:
            aws.networkfirewall.Firewall("fw", firewall_policy_arn="arn:x", vpc_id="vpc-1",
                                         subnet_mappings=[{"subnet_id": "subnet-f"}], opts=opts)
        return {}
    return program


@pytest.mark.parametrize("version, firewall, control_plane, nat", [
    ("1.33", False, H * 0.60, H * 0.045 + 100 * 0.045),  # 1.33 left standard support: extended rate
    ("1.34", True, H * 0.10, 0.0),                        # NAT behind Network Firewall: waived
])
def test_variants_follow_inputs_and_the_rest_of_the_stack(synth, version, firewall, control_plane, nat):
    plan = synth("sg", values_with("sg"), program=cluster_and_nat(version, firewall))
    rules = load_rules()
    cost = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, parse_prices(TEST_PRICES))
    by_name = {r.name: r for r in cost.priced}
    assert by_name["cluster"].monthly == pytest.approx(control_plane)
    assert by_name["nat"].monthly == pytest.approx(nat)
    assert ("waived" in by_name["nat"].note) == firewall


def test_usage_shared_over_the_resources_of_a_rule(synth):
    rules = load_rules()
    plan = synth("sg")
    book = parse_prices({**TEST_PRICES})
    cost = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, book)
    interface = {r.urn for r in plan.snapshot.custom_resources()
                 if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint" and r.inputs.get("vpcEndpointType") == "Interface"}
    endpoints = [r for r in cost.priced if r.urn in interface]
    processed = [line.monthly for r in endpoints for line in r.lines if line.part == "data processed"]
    assert len(endpoints) == len(interface) > 1 and len(processed) == len(interface)
    assert set(map(round, processed, [9] * len(processed))) == {round(200 * 0.01 / len(interface), 9)}
    assert sum(processed) == pytest.approx(rules.usage["endpoint_gb"] * 0.01)


@pytest.mark.parametrize("raw, message", [
    ('{"egress": 5}', "unknown key 'egress'; allowed: egress_gb, endpoint_gb"),
    ('{"egress_gb": -1}', "egress_gb: '-1' is not a number >= 0"),
    ('{"egress_gb": true}', "is not a number >= 0"),
    ('[1, 2]', "expected a mapping of usage keys to numbers; allowed keys: egress_gb"),
])
def test_bad_usage_profiles_are_input_errors_naming_the_allowed_keys(raw, message):
    with pytest.raises(InputError, match=None) as exc:
        parse_usage(raw, load_rules(), "Pulumi.x.yaml")
    assert message in str(exc.value)


def test_rules_file_refuses_unknown_part_keys_and_unrefreshable_prices():
    raw = yaml.safe_load((ROOT / "stacks" / "cost_rules.yaml").read_text())
    raw["rules"]["aws:kms/key:Key"][0]["parts"][0]["hourz"] = True
    with pytest.raises(PriceDataError, match="unknown key.*hourz; allowed: part, price"):
        parse_rules(raw)
    raw = yaml.safe_load((ROOT / "stacks" / "cost_rules.yaml").read_text())
    raw["rules"]["aws:kms/key:Key"][0]["parts"][0]["price"] = "kms_gold"
    with pytest.raises(PriceDataError, match="price 'kms_gold' has no entry under queries"):
        parse_rules(raw)
    with pytest.raises(PriceDataError, match="missing 'checked'"):
        parse_prices({"schema_version": 1, "regions": {"us-east-1": {"prices": {}}}})


def test_compare_reports_movers_and_newly_unpriced(small_cost, synth):
    plan = synth("sg", values_with("sg"), program=small_stack)
    rules = load_rules()
    base = price_snapshot(plan.snapshot, "ap-southeast-1", parse_usage('{"egress_gb": 10}', rules, "t"), rules,
                          parse_prices(TEST_PRICES), "sg")
    base.priced = [r for r in base.priced if r.name != "nat"]
    base.not_priced = [u for u in base.not_priced if u.name != "queue"]
    delta = compare(small_cost, base)
    assert delta.monthly == pytest.approx(H * 0.045 + 10 * 0.045)
    assert [(m.name, m.change) for m in delta.movers] == [("nat", "added")]
    assert [u.name for u in delta.newly_unpriced] == ["queue"]


# --- the console script -------------------------------------------------------------------------

def residency(*args, env=None, timeout=240):
    return run_script(args, {**os.environ, **(env or {})}, ROOT, timeout)


def project_copy(tmp_path: Path, stack: str | None = None, **config) -> Path:
    """A copy of the project's Pulumi files, with `config` added to Pulumi.<stack>.yaml."""
    root = tmp_path / "project"
    root.mkdir()
    for path in ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, root / path.name)
    if stack:
        doc = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())
        doc["config"].update({f"ai-companion:{k}": v for k, v in config.items()})
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return root


def test_cli_text_json_and_markdown():
    text = residency("cost", "--stack", "us")
    assert text.returncode == 0, text.stderr
    assert "stack us: us-east-1" in text.stdout
    assert "bedrock-guardrail (bedrock/guardrail:Guardrail): charged per text unit" in text.stdout
    js = residency("cost", "--stack", "us", "--format", "json")
    doc = json.loads(js.stdout)
    assert doc["monthly"] == pytest.approx(sum(r["monthly"] for r in doc["resources"]), abs=0.05)
    assert doc["gpu_pools"], "the GPU pool must be priced (a new node shape needs a pricing rule)"
    for pool in doc["gpu_pools"]:  # gpuMinSize 0 and gpuMaxSize 2 (Pulumi.yaml defaults) in us
        assert (pool["min_nodes"], pool["max_nodes"], pool["monthly_at_min"]) == (0, 2, 0)
        assert (f"GPU pool {pool['name']} ({pool['instance_type']}): $0.00 at min (0 nodes), "
                f"${pool['monthly_at_max']:,.2f} at max (2 nodes)") in text.stdout
    assert f"total: ${doc['monthly']:,.2f} per month" in text.stdout  # markdown: the GPU delta test
    # The committed stack file is not seeded: priced with its cluster layer, and it says so.
    assert len(doc["assumptions"]) == 1 and "placeholder image digest" in doc["assumptions"][0]
    assert f"assumed: {doc['assumptions'][0]}" in text.stdout
    priced = {(r["type"], r["name"]) for r in doc["resources"]}
    assert {("aws:ec2/instance:Instance", "api-tunnel"), ("kubernetes:core/v1:Service", "model-vllm")} <= priced
    assert {"net-ssm", "net-ssmmessages", "net-ec2messages"} <= {r["name"] for r in doc["resources"]
                                                                  if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"}


def test_cli_seeded_stack_is_priced_with_its_own_digest_and_no_assumption(tmp_path):
    digest = "sha256:" + "cd" * 32
    root = project_copy(tmp_path, "sg", modelImageDigest=digest)
    result = residency("--project-dir", str(root), "cost", "--stack", "sg", "--format", "json",
                       "--plan-out", str(tmp_path / "plans"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["assumptions"] == []
    export = json.loads((tmp_path / "plans" / "sg.json").read_text())
    images = [c["image"] for r in export["deployment"]["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"
              for c in r["inputs"]["spec"]["template"]["spec"]["containers"]]
    assert images and all(i.endswith("@" + digest) for i in images)


def test_cli_all_prices_every_stack():
    result = residency("cost", "--all", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [d["stack"] for d in json.loads(result.stdout)] == list_stacks()


def repo_prices_without(tmp_path: Path, region: str, *keys: str) -> tuple[Path, dict]:
    """The committed price file with `keys` taken out of `region`: (its path, the region's rows)."""
    doc = yaml.safe_load((ROOT / "stacks" / "prices.yaml").read_text())
    rows = doc["regions"][region]["prices"]
    kept = {k: rows.pop(k) for k in keys}
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, {**rows, **kept}


def test_cli_a_missing_usage_price_is_a_usage_item_open_and_a_missing_resource_price_makes_the_total_unknown(
        tmp_path):
    """sg with the committed prices but CloudWatch Logs ingestion: the two log groups' ingestion is
    open, their storage still priced, and the total is the full one less the ingestion (20 GB x the
    price); without the NLB's hourly price the total is unknown, in JSON and in text."""
    full = json.loads(residency("cost", "--stack", "sg", "--format", "json").stdout)
    prices, rows = repo_prices_without(tmp_path, "ap-southeast-1", "logs_ingest_gb")
    js = residency("cost", "--stack", "sg", "--prices", str(prices), "--format", "json")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert full["monthly"] is not None and doc["monthly"] is not None and doc["monthly_reason"] is None
    assert doc["monthly"] == pytest.approx(full["monthly"] - 20 * rows["logs_ingest_gb"], abs=0.011)
    opened = [(u["name"], u["reason"]) for u in doc["not_priced"] if u["usage_item"]]
    for name in ("net-flow-logs", "serving-control-plane"):
        assert (name, "ingestion (usage log_ingest_gb): no logs_ingest_gb price for ap-southeast-1 "
                      "(none found offline)") in opened
        (group,) = [r for r in doc["resources"] if r["name"] == name and "logGroup" in r["type"]]
        assert [p["part"] for p in group["parts"]] == ["storage"]
    assert not [u for u in doc["not_priced"] if not u["usage_item"]]
    text = residency("cost", "--stack", "sg", "--prices", str(prices)).stdout
    assert f"total: ${doc['monthly']:,.2f} per month" in text and "  not priced: 0\n" in text
    assert ("    net-flow-logs (cloudwatch/logGroup:LogGroup): ingestion (usage log_ingest_gb): no logs_ingest_gb "
            "price for ap-southeast-1 (none found offline)") in text

    prices, _ = repo_prices_without(tmp_path, "ap-southeast-1", "nlb_hour")
    js = residency("cost", "--stack", "sg", "--prices", str(prices), "--format", "json")
    doc = json.loads(js.stdout)
    assert doc["monthly"] is None and doc["monthly_at_max"] is None
    assert doc["monthly_reason"] == ("1 resource-driven item(s) not priced: model-vllm (kubernetes:core/v1:Service): "
                                     "no nlb_hour price for ap-southeast-1 (none found offline)")
    text = residency("cost", "--stack", "sg", "--prices", str(prices)).stdout
    assert f"total: unknown, ≥ ${doc['monthly_priced']:,.2f} (1 items unpriced) per month" in text


def test_gpu_max_size_change_moves_the_pr_delta_by_exactly_its_price(tmp_path):
    base_root = project_copy(tmp_path, "us", gpuMaxSize=5)
    plans = tmp_path / "base-plans"
    # As preview.yml plans the base: the plans `cost` prices, cluster layer included.
    planned = residency("--project-dir", str(base_root), "cost", "--stack", "us", "--plan-out", str(plans))
    assert planned.returncode == 0, planned.stderr
    assert "placeholder image digest" in planned.stdout
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"schema_version": 1, "regions": {"us-east-1": {
        "checked": "2026-01-02", "prices": {"ec2_instance_hour": {"g6e.xlarge": 2.0, "m6i.large": 0.1},
                                            "eks_auto_mode_fee_share": 0.5}}}}))
    result = residency("cost", "--stack", "us", "--base", str(plans), "--prices", str(prices), "--format", "json")
    assert result.returncode == 0, result.stderr
    change = json.loads(result.stdout)["change"]
    assert change["monthly"] == 0  # desired sizes did not change
    # Each instance: $2.00 an hour plus the Auto Mode fee, half of it in these test prices.
    assert change["monthly_at_max"] == pytest.approx((2 - 5) * H * 3.0, abs=0.001)  # -6570.00
    assert [(m["name"], m["monthly_at_max"]) for m in change["movers"]] == [("model-gpu-pool", -6570.0)]
    doc = json.loads(result.stdout)
    markdown = residency("cost", "--stack", "us", "--base", str(plans), "--prices", str(prices), "--format", "markdown")
    # A lower bound: everything but the instances is not priced with these test prices.
    assert doc["monthly"] is None and "resource-driven item(s) not priced" in doc["monthly_reason"]
    unpriced = len([u for u in doc["not_priced"] if not u["usage_item"]])
    assert (f"| us | us-east-1 | ≥ ${doc['monthly_priced']:,.2f} ({unpriced} items unpriced) | "
            f"≥ ${doc['monthly_at_max_priced']:,.2f} ({unpriced} items unpriced) |") in markdown.stdout
    assert "| ±$0.00 | -$6,570.00 |" in markdown.stdout and "| model-gpu-pool |" in markdown.stdout


def test_cli_bad_usage_profile_key_exits_2_naming_the_allowed_keys(tmp_path):
    root = project_copy(tmp_path, "sg", costUsage={"egres_gb": 5})
    result = residency("--project-dir", str(root), "cost", "--stack", "sg")
    assert result.returncode == 2 and result.stdout == ""
    assert "ai-companion:costUsage: unknown key 'egres_gb'; allowed: egress_gb, endpoint_gb" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_usage_profile_from_the_stack_file_changes_the_total(tmp_path, planned):
    root = project_copy(tmp_path, "us", costUsage={"egress_gb": 1100})
    rules, book = load_rules(), load_prices()
    plan = planned("us")
    models = tuple(m.key for m in plan.config.bedrock_models)
    default = price_snapshot(plan.snapshot, "us-east-1", rules.usage, rules, book, "us", models).monthly  # egress_gb 100
    more = json.loads(residency("--project-dir", str(root), "cost", "--stack", "us", "--format", "json").stdout)
    gb_price = book.regions["us-east-1"].prices["network_firewall_gb"]
    assert more["usage"]["egress_gb"] == 1100 and rules.usage["egress_gb"] == 100
    assert more["monthly"] - default == pytest.approx(1000 * gb_price, abs=0.01)


@pytest.mark.parametrize("args, message", [
    (["cost", "--stack", "atlantis"], "unknown stack 'atlantis': no Pulumi.atlantis.yaml; stacks: au, ca, eu"),
    (["cost", "--stack", "us", "--base", "/nonexistent-base"], "--base: /nonexistent-base is not a directory"),
    (["cost", "--refresh", "--base", "x"], "--base prices a plan; it does not apply to --refresh"),
    (["cost", "--refresh", "--plan-out", "x"], "--plan-out prices a plan; it does not apply to --refresh"),
    (["cost", "--stack", "us", "--prices", "/nonexistent/prices.yaml"], "cannot read /nonexistent/prices.yaml"),
    (["cost", "--stack", "us", "--format", "table"], "invalid choice: 'table'"),
])
def test_cli_bad_input_exits_2(args, message):
    result = residency(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_refresh_that_cannot_read_prices_exits_3_and_writes_nothing(tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on: connection refused, no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prices = tmp_path / "prices.yaml"
    shutil.copy(ROOT / "stacks" / "prices.yaml", prices)
    before = prices.read_text()
    result = residency("cost", "--refresh", "--prices", str(prices), env={
        "AWS_ENDPOINT_URL_PRICING": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    assert result.returncode == 3, result.stderr
    assert "could not read prices" in result.stderr and "nothing written" in result.stderr
    assert prices.read_text() == before and list(tmp_path.iterdir()) == [prices]


def test_preview_summary_prices_head_and_base_without_cloud_credentials():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    job = doc["jobs"]["cost"]
    assert "id-token" not in (job.get("permissions") or {})
    assert not any("configure-aws-credentials" in str(s.get("uses", "")) for s in job["steps"])
    base = next(s for s in job["steps"] if s.get("with", {}).get("path") == ".base")
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    plan_base = next(s for s in job["steps"] if s.get("working-directory") == ".base")
    assert "-m infra cost --all --plan-out ../base-plans" in plan_base["run"]
    runs = [s.get("run", "") for s in job["steps"]]
    assert any("-m infra cost --all --format markdown --base base-plans" in r and '>> "$GITHUB_STEP_SUMMARY"' in r
               for r in runs)


# --- the cluster layer: a Karpenter NodePool, sized from its limit and the workloads on it ---------

POOL_PRICES = {"schema_version": 1, "currency": "USD", "regions": {"ap-southeast-1": {
    "checked": "2026-01-02", "source": "test",
    "prices": {"ec2_instance_hour": {"g6e.12xlarge": 10.0, "g9.xlarge": 3.0, "t4g.nano": 0.01, "m6i.large": 0.2},
               "eks_cluster_hour": 0.10, "eks_auto_mode_fee_share": 0.1}}}}


def node_pool(name, instance_type, labels, limits, provider, group="eks.amazonaws.com"):
    import pulumi_kubernetes as k8s

    return k8s.apiextensions.CustomResource(
        name, api_version="karpenter.sh/v1", kind="NodePool", metadata={"name": name},
        spec={"template": {"metadata": {"labels": labels}, "spec": {
            "nodeClassRef": {"group": group, "kind": "NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]}]}},
            **({"limits": limits} if limits else {})},
        opts=pulumi.ResourceOptions(provider=provider))


def gpu_workload(name, replicas, gpus, selector, provider):
    import pulumi_kubernetes as k8s

    return k8s.apps.v1.Deployment(name, spec={
        "replicas": replicas, "selector": {"match_labels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "node_selector": selector,
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}},
        opts=pulumi.ResourceOptions(provider=provider))


def pools_stack(cfg):
    """g6e.12xlarge has 4 GPUs (pool_units): a limit of 10 GPUs is 2 instances at most."""
    import pulumi_kubernetes as k8s

    k8s_provider = k8s.Provider("k8s", kubeconfig="{}")
    node_pool("gpu", "g6e.12xlarge", {"pool": "gpu"}, {"nvidia.com/gpu": "10"}, k8s_provider)
    gpu_workload("llm", 3, 2, {"pool": "gpu"}, k8s_provider)     # 6 GPUs on the pool: 2 nodes of 4
    gpu_workload("other", 5, 1, {"pool": "elsewhere"}, k8s_provider)  # not on this pool: ignored
    node_pool("unknown-type", "g9.xlarge", {"pool": "x"}, {"nvidia.com/gpu": "1"}, k8s_provider)
    node_pool("unbounded", "g6e.12xlarge", {"pool": "y"}, None, k8s_provider)
    opts = pulumi.ResourceOptions(provider=aws.Provider("aws", region=cfg.region))
    aws.ec2.Instance("tunnel", ami="ami-1", instance_type="t4g.nano", subnet_id="subnet-a", opts=opts)
    aws.eks.Cluster("auto", name="c", version="1.35", role_arn="arn:aws:iam::123456789012:role/r",
                    vpc_config={"subnet_ids": ["subnet-a"]}, compute_config={"enabled": True, "node_pools": ["system"]},
                    opts=opts)
    aws.eks.Cluster("classic", name="d", version="1.35", role_arn="arn:aws:iam::123456789012:role/r",
                    vpc_config={"subnet_ids": ["subnet-a"]}, opts=opts)
    return {}


@pytest.fixture(scope="module")
def pools_cost():
    from infra.harness.synth import synthesize

    rules = load_rules()
    plan = synthesize("sg", values_with("sg"), program=pools_stack)
    return price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, parse_prices(POOL_PRICES), "sg")


def test_node_pool_priced_at_zero_min_its_workloads_and_its_gpu_limit(pools_cost):
    (pool,) = [r for r in pools_cost.priced if r.name == "gpu"]
    assert pool.gpu and pool.instance_type == "g6e.12xlarge" and pool.nodes == (0, 2, 2)
    assert pool.at_min == 0.0
    # Each node: the instance and the Auto Mode fee on it (10% of the instance in POOL_PRICES).
    assert pool.monthly == pytest.approx(2 * H * 11.0)  # ceil(3 replicas x 2 GPUs / 4 per node) = 2
    assert pool.at_max == pytest.approx(2 * H * 11.0)   # floor(10 GPUs / 4 per node) = 2
    assert [line.part for line in pool.lines] == ["instances", "Auto Mode fee"]
    assert pool.lines[1].basis.endswith("0.1 x $10")
    assert [p.name for p in pools_cost.gpu_pools] == ["gpu"]


def test_node_pool_without_gpu_count_or_limit_is_not_priced_with_the_reason(pools_cost):
    reasons = {u.name: u.reason for u in pools_cost.not_priced}
    assert reasons["unknown-type"] == "no nvidia.com/gpu count for g9.xlarge (cost_rules.yaml pool_units)"
    assert reasons["unbounded"] == "spec.limits[nvidia.com/gpu] is not set: the pool has no maximum"
    assert not {"unknown-type", "unbounded"} & {r.name for r in pools_cost.priced}


def test_auto_mode_fee_and_system_pool_are_priced_only_with_auto_mode(pools_cost):
    by_name = {r.name: r for r in pools_cost.priced}
    assert not [u for u in pools_cost.not_priced if u.name in by_name]  # nothing left beside the priced parts
    # Auto Mode with the built-in system pool: one system node (usage profile), priced as m6i.large, and its fee.
    assert [line.part for line in by_name["auto"].lines] == ["control plane", "system pool nodes",
                                                             "Auto Mode fee (system pool)"]
    assert by_name["auto"].monthly == pytest.approx(H * 0.10 + H * 0.2 + H * 0.2 * 0.1)
    assert by_name["classic"].monthly == pytest.approx(H * 0.10)  # control plane only
    assert by_name["tunnel"].monthly == pytest.approx(H * 0.01)  # not managed by Auto Mode: no fee


def test_gpu_max_size_moves_the_pool_at_max_by_whole_instances(synth):
    """gpuMaxSize is GPUs: on a 1-GPU type each GPU more is one instance more at max, none at desired."""
    rules, book = load_rules(), parse_prices({**POOL_PRICES, "regions": {"ap-southeast-1": {
        **POOL_PRICES["regions"]["ap-southeast-1"], "prices": {"ec2_instance_hour": {"g4dn.xlarge": 2.0},
                                                              "eks_auto_mode_fee_share": 0.5}}}})
    digest = "sha256:" + "ab" * 32

    def pool(max_size):
        plan = synth("sg", values_with("sg", modelImageDigest=digest, gpuMaxSize=str(max_size)))
        cost = price_snapshot(plan.snapshot, "ap-southeast-1", rules.usage, rules, book, "sg")
        (gpu,) = cost.gpu_pools
        return cost, gpu

    (base, two), (head, five) = pool(2), pool(5)
    assert (two.nodes, five.nodes) == ((0, 1, 2), (0, 1, 5))  # one vLLM replica with one GPU
    # $2.00 an hour per instance plus the Auto Mode fee (half of it in these test prices).
    assert (two.at_min, two.monthly, two.at_max) == (0.0, pytest.approx(H * 3.0), pytest.approx(2 * H * 3.0))
    delta = compare(head, base)
    assert delta.monthly == pytest.approx(0.0)
    assert delta.at_max == pytest.approx(3 * H * 3.0)  # +6570.00
    assert [(m.name, round(m.at_max, 2)) for m in delta.movers] == [("model-gpu-pool", 6570.0)]


@pytest.mark.parametrize("path, expected", [
    ("spec.limits[nvidia.com/gpu]", "10"),
    ("spec.requirements[key=zone].values.1", "b"),
    ("spec.requirements[key=absent].values", None),
    ("spec.requirements.0.key", "type"),
    ("spec.limits.nvidia", None),
])
def test_lookup_paths_with_dotted_keys_and_list_selectors(path, expected):
    from infra.commands.pricing import lookup

    props = {"spec": {"limits": {"nvidia.com/gpu": "10"},
                      "requirements": [{"key": "type", "values": ["g"]}, {"key": "zone", "values": ["a", "b"]}]}}
    assert lookup(props, path) == expected
