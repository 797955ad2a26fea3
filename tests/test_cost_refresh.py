"""`residency cost --refresh` against botocore's Stubber: GetProducts responses in the documented
PriceList format (each entry a JSON string), validated by the Stubber against botocore's pricing
service model. Never the network."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import botocore.session
import pytest
from botocore.stub import Stubber

from infra.commands import cost
from infra.commands.cost import keyed_values, run_refresh
from infra.commands.price_refresh import RefreshError, refresh, write_prices
from infra.commands.pricing import load_prices, load_rules, parse_rules
from infra.program.stackfiles import list_stacks, load_stack_config
from cli_run import run_script
from stack_plans import planned

TODAY = dt.date(2026, 11, 30)


def price_item(service: str, region: str, usagetype: str, unit: str, *tiers: tuple[str, str]) -> str:
    """One PriceList entry as the API returns it: a JSON string (product + OnDemand terms)."""
    sku = f"SKU{abs(hash((service, region, usagetype))) % 10**8:08d}"
    dims = {f"{sku}.JRTCKXETXF.{i}": {"unit": unit, "beginRange": begin, "endRange": "Inf",
                                      "description": f"{usagetype} tier {i}", "pricePerUnit": {"USD": usd},
                                      "rateCode": f"{sku}.JRTCKXETXF.{i}", "appliesTo": []}
            for i, (begin, usd) in enumerate(tiers)}
    return json.dumps({
        "product": {"productFamily": "x", "sku": sku,
                    "attributes": {"regionCode": region, "usagetype": usagetype, "servicecode": service}},
        "serviceCode": service,
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {"priceDimensions": dims, "sku": sku,
                                                     "effectiveDate": "2026-11-01T00:00:00Z",
                                                     "offerTermCode": "JRTCKXETXF", "termAttributes": {}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z",
    })


def stubbed_client():
    session = botocore.session.get_session()
    client = session.create_client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")
    return client, Stubber(client)


SMALL_RULES = parse_rules({
    "schema_version": 1, "usage": {}, "rules": {},
    "queries": {
        "ec2_instance_hour": {"service": "AmazonEC2", "by": "instanceType", "unit": "Hrs", "usagetype": "BoxUsage:{value}",
                              "filters": {"operatingSystem": "Linux", "tenancy": "Shared"}},
        "nat_gateway_hour": {"service": "AmazonEC2", "filters": {"productFamily": "NAT Gateway"},
                             "usagetype": "NatGateway-Hours", "unit": "Hrs"},
        "s3_standard_gb_month": {"service": "AmazonS3", "usagetype": "TimedStorage-ByteHrs", "unit": "GB-Mo"},
    },
})


# The GetProducts filters each SMALL_RULES query must send, written out by hand (not by the function
# under test): the region, the query's own filters, then the keyed attribute.
SMALL_FILTERS = {
    "ec2_instance_hour": lambda region, value: [("regionCode", region), ("operatingSystem", "Linux"),
                                                ("tenancy", "Shared"), ("instanceType", value)],
    "nat_gateway_hour": lambda region, value: [("regionCode", region), ("productFamily", "NAT Gateway")],
    "s3_standard_gb_month": lambda region, value: [("regionCode", region)],
}


def wanted_filters(query: dict, region: str, value: str | None) -> list[tuple[str, str]]:
    """The filters a rules-file query asks for, read from the query itself (the oracle for the real
    rules file; filters_for, under test, is not used)."""
    by = [(query["by"], value)] if query.get("by") else []
    return [("regionCode", region), *((k, str(v)) for k, v in (query.get("filters") or {}).items()), *by]


def expect(stubber, rules, region, key, items, value=None):
    query = rules.queries[key]
    pairs = SMALL_FILTERS[key](region, value) if rules is SMALL_RULES else wanted_filters(query, region, value)
    filters = [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in pairs]
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": items},
                         {"ServiceCode": query["service"], "Filters": filters,
                          "FormatVersion": "aws_v1", "MaxResults": 100})


def test_refresh_reads_each_price_per_region_and_writes_it_with_the_date(tmp_path):
    client, stubber = stubbed_client()
    for region, prefix in (("eu-central-1", "EUC1-"), ("us-east-1", "")):
        expect(stubber, SMALL_RULES, region, "ec2_instance_hour", [  # the dedicated-tenancy product is not it
            price_item("AmazonEC2", region, f"{prefix}DedicatedUsage:g6e.xlarge", "Hrs", ("0", "9.9")),
            price_item("AmazonEC2", region, f"{prefix}BoxUsage:g6e.xlarge", "Hrs", ("0", "2.3270000000"))],
               "g6e.xlarge")
        expect(stubber, SMALL_RULES, region, "nat_gateway_hour", [
            price_item("AmazonEC2", region, f"{prefix}NatGateway-Bytes", "GB", ("0", "0.0520000000")),
            price_item("AmazonEC2", region, f"{prefix}NatGateway-Hours", "Hrs", ("0", "0.0520000000"))])
        # Tiered: the first tier (beginRange 0) is the price.
        expect(stubber, SMALL_RULES, region, "s3_standard_gb_month", [price_item(
            "AmazonS3", region, f"{prefix}TimedStorage-ByteHrs", "GB-Mo",
            ("0", "0.0245000000"), ("51200", "0.0235000000"), ("512000", "0.0225000000"))])
    with stubber:
        document = refresh(client, SMALL_RULES, load_prices(), ["us-east-1", "eu-central-1"],
                           {"ec2_instance_hour": {"g6e.xlarge"}}, today=TODAY)
        stubber.assert_no_pending_responses()
    eu = document["regions"]["eu-central-1"]
    assert eu["checked"] == "2026-11-30" and "Price List Query API" in eu["source"]
    assert eu["prices"] == {"ec2_instance_hour": {"g6e.xlarge": 2.327}, "nat_gateway_hour": 0.052,
                            "s3_standard_gb_month": 0.0245}
    path = tmp_path / "prices.yaml"
    write_prices(document, path)
    book = load_prices(path)
    assert book.regions["us-east-1"].checked == "2026-11-30"
    assert book.regions["eu-central-1"].prices["ec2_instance_hour"]["g6e.xlarge"] == 2.327


def test_refresh_fails_naming_each_price_it_could_not_read():
    client, stubber = stubbed_client()
    expect(stubber, SMALL_RULES, "us-east-1", "ec2_instance_hour", [], "p5.48xlarge")  # no product
    stubber.add_client_error("get_products", service_error_code="ThrottlingException", service_message="Rate exceeded")
    expect(stubber, SMALL_RULES, "us-east-1", "s3_standard_gb_month", [  # two products, two prices
        price_item("AmazonS3", "us-east-1", "TimedStorage-ByteHrs", "GB-Mo", ("0", "0.023")),
        price_item("AmazonS3", "us-east-1", "EUC1-TimedStorage-ByteHrs", "GB-Mo", ("0", "0.0245"))])
    with stubber, pytest.raises(RefreshError) as exc:
        refresh(client, SMALL_RULES, load_prices(), ["us-east-1"], {"ec2_instance_hour": {"p5.48xlarge"}}, TODAY)
    message = str(exc.value)
    assert "could not read 3 price(s)" in message
    assert "us-east-1 ec2_instance_hour[p5.48xlarge]: no matching on-demand product" in message
    assert "us-east-1 nat_gateway_hour: An error occurred (ThrottlingException)" in message
    assert "us-east-1 s3_standard_gb_month: 2 different prices match (0.023, 0.0245)" in message


def test_refresh_command_rewrites_every_stack_region_from_the_rules_file_queries(tmp_path, capsys, monkeypatch):
    """The whole `--refresh` path with the real rules: one stubbed answer per query, in order."""
    rules = load_rules()
    regions = sorted({load_stack_config(s).region for s in list_stacks()})
    path = tmp_path / "prices.yaml"
    client, stubber = stubbed_client()
    book = load_prices()
    with monkeypatch.context() as m:  # the expectations from the session's plans; run_refresh plans its own
        m.setattr(cost, "cost_plan", planned)  # the same stack files: only the image digest differs
        keyed = keyed_values(list_stacks(), book)
    assert {"g6e.xlarge", "m6i.large"} <= keyed["ec2_instance_hour"]
    expected = {}
    for r, region in enumerate(regions):
        for k, (key, query) in enumerate(rules.queries.items()):
            if query.get("keep"):
                continue
            unpublished = book.regions[region].unpublished
            for value in sorted(keyed.get(key, ())) if query.get("by") else [None]:
                if key in unpublished:  # AWS has no product there: the file keeps saying so
                    expect(stubber, rules, region, key, [], value)
                    continue
                usd = f"{(r + 1) * 0.001 + k * 0.01 + len(value or ''):.6f}"
                usagetype = query["usagetype"].replace("{value}", value or "")
                expect(stubber, rules, region, key,
                       [price_item(query["service"], region, f"X-{usagetype}", query["unit"], ("0", usd))], value)
                scaled = float(usd) * float(query.get("scale", 1))
                expected.setdefault(region, {})[(key, value)] = scaled
    args = SimpleNamespace(prices=str(path), pricing_region="us-east-1", base=None)
    with stubber:
        assert run_refresh(args, client=client) == 0
        stubber.assert_no_pending_responses()
    assert f"to {path}" in capsys.readouterr().out
    new = load_prices(path)
    assert sorted(new.regions) == sorted(book.regions)  # regions no stack uses keep their entries
    for region, prices in expected.items():
        table = new.regions[region]
        assert table.checked == dt.date.today().isoformat()
        for (key, value), usd in prices.items():
            got = table.prices[key][value] if value else table.prices[key]
            assert got == pytest.approx(usd)
        # Prices the Price List API has no query for are carried over with their own sources.
        for key in ("eks_auto_mode_fee_share", "bedrock_input_mtok"):
            if key in book.regions[region].prices:
                assert table.prices[key] == book.regions[region].prices[key]
                assert table.cited(key) == book.regions[region].cited(key)
    assert new.regions["me-west-1"].unpublished == book.regions["me-west-1"].unpublished
    # An instance type no stack uses is not read again: the file keeps saying AWS has no price for it.
    assert new.regions["us-east-1"].unpublished == book.regions["us-east-1"].unpublished != {}
    assert new.regions["eu-west-3"] == book.regions["eu-west-3"]


class RecordedPriceList:
    """A loopback stand-in for the Price List API (AWS JSON 1.1, `AWSPriceListService.GetProducts`):
    for a request it returns, like the real API, every product whose service and filters match,
    one per query of the rules file, priced 0.5 + 0.01 x the query's position."""

    def __init__(self, rules):
        import http.server
        import threading

        self.rules, self.requests = rules, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
                outer.requests.append(body)
                reply = json.dumps({"FormatVersion": "aws_v1", "PriceList": outer.products(body)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def products(self, body: dict) -> list[str]:
        given = {f["Field"]: f["Value"] for f in body["Filters"]}
        items = []
        for i, (key, query) in enumerate(self.rules.queries.items()):
            if query.get("keep") or given["regionCode"] == "me-west-1":  # no product (me-west-1: none published)
                continue
            value = given.get(query.get("by")) if query.get("by") else None
            # What the rules file asks for, read from the query itself (not from filters_for, under test).
            expected = dict(wanted_filters(query, given.get("regionCode"), value))
            if query["service"] == body["ServiceCode"] and expected == given:
                usagetype = query.get("usagetype", "").replace("{value}", value or "")
                items.append(price_item(query["service"], given["regionCode"], f"R-{usagetype}", query["unit"],
                                        ("0", f"{0.5 + 0.01 * i:.4f}")))
        return items

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_refresh_through_the_console_script_against_a_loopback_price_list(tmp_path):
    import os

    from infra.program.stackfiles import ROOT

    api = RecordedPriceList(load_rules())
    prices = tmp_path / "prices.yaml"
    env = {**os.environ, "AWS_ENDPOINT_URL_PRICING": api.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    try:
        result = run_script(["cost", "--refresh", "--prices", str(prices)], env, ROOT, timeout=300)
    finally:
        api.close()
    assert result.returncode == 0, result.stderr
    regions = sorted({load_stack_config(s).region for s in list_stacks()})
    book = load_prices(prices)
    assert set(regions) <= set(book.regions)
    assert {book.regions[r].checked for r in regions} == {dt.date.today().isoformat()}
    assert {r["Filters"][0]["Value"] for r in api.requests} == set(regions)  # regionCode first
    priced = run_script(["cost", "--stack", "sg", "--prices", str(prices), "--format", "json"], cwd=ROOT, timeout=300)
    doc = json.loads(priced.stdout)
    # With every price refreshed (and the kept Auto Mode share), every item is priced: a known total.
    assert doc["prices_checked"] == dt.date.today().isoformat() and doc["gpu_pools"]
    assert doc["not_priced"] == [] and doc["monthly"] == doc["monthly_priced"] > 0


def test_pricing_endpoint_choices_are_botocores_pricing_regions():
    from infra.commands.price_refresh import DEFAULT_PRICING_REGION, PRICING_ENDPOINT_REGIONS

    available = botocore.session.get_session().get_available_regions("pricing")
    assert sorted(PRICING_ENDPOINT_REGIONS) == sorted(available) and DEFAULT_PRICING_REGION in available


def test_bad_credentials_are_refused_before_any_stack_is_planned(tmp_path, monkeypatch, capsys):
    """The credential check comes first: a bad AWS_PROFILE is exit 2 at once, not after planning
    every stack to collect the instance types to price."""
    import infra.commands.cost as cost
    from infra.cli import main

    def planned(stack):
        raise AssertionError(f"planned {stack} before the credentials were checked")

    monkeypatch.setattr(cost, "cost_plan", planned)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert main(["cost", "--refresh", "--prices", str(tmp_path / "prices.yaml")]) == 2
    assert "AWS_PROFILE: The config profile (no-such-profile) could not be found" in capsys.readouterr().err
    assert not (tmp_path / "prices.yaml").exists()


def test_a_prices_path_that_cannot_be_written_is_refused_before_the_credentials_are_read(tmp_path):
    """--prices naming a directory: exit 2 naming --prices, before AWS_PROFILE (which names no
    profile here, another exit 2 with another message) is read and before any stack is planned."""
    from cli_run import user_env

    target = tmp_path / "prices"
    target.mkdir()
    env = user_env(AWS_PROFILE="no-such-profile", AWS_CONFIG_FILE=str(tmp_path / "config"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    result = run_script(["cost", "--refresh", "--prices", str(target)], env)
    assert result.rc == 2 and result.err.strip() == f"residency cost: error: --prices: {target} is a directory", result.err
