"""`residency cost --refresh`: re-read every price from the AWS Price List Query API.

One `pricing:GetProducts` query per price key and region (per instance type for keyed prices),
built from `queries:` in stacks/cost_rules.yaml. Each PriceList entry is a JSON *string* (the
documented price-list format: `product.attributes` with `usagetype` and `regionCode`, and
`terms.OnDemand.<offer>.priceDimensions.<rate>` with `unit`, `beginRange` and `pricePerUnit.USD`).

The Price List API has endpoints only in a few regions (botocore 1.44.8: us-east-1, eu-central-1,
ap-south-1). Its endpoint region is where the *catalogue* is read from: it returns public list
prices for every region, carries no stack data, and is not a data path of any stack.

All or nothing: if any price cannot be read, nothing is written (exit 3).
"""

from __future__ import annotations

import datetime as dt
import json

import yaml

from infra.commands.output import write_atomic
from infra.commands.pricing import PriceBook, RegionPrices, Rules

PRICING_ENDPOINT_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
DEFAULT_PRICING_REGION = "us-east-1"
SOURCE = "AWS Price List Query API (pricing:GetProducts), on-demand, read by `residency cost --refresh`"


class RefreshError(Exception):
    """Prices could not be read (no credentials, API error, no or ambiguous product)."""


def pricing_client(endpoint_region: str):
    """A Price List client from the one credential-checked session: no credentials is bad input
    (exit 2), as in every command that calls AWS."""
    from botocore.config import Config

    from infra.engine.credentials import aws_session

    return aws_session(None).client("pricing", region_name=endpoint_region, config=Config(
        retries={"total_max_attempts": 2}, connect_timeout=10, read_timeout=60))


def filters_for(query: dict, region: str, by_value: str | None = None) -> list[dict]:
    filters = {"regionCode": region, **(query.get("filters") or {})}
    if query.get("by") and by_value is not None:
        filters[query["by"]] = by_value
    return [{"Type": "TERM_MATCH", "Field": k, "Value": str(v)} for k, v in filters.items()]


def on_demand_price(price_list: list[str], query: dict, by_value: str | None = None) -> float | None:
    """The one on-demand USD price in `price_list` whose usagetype ends with the query's (`{value}`
    in it is the keyed value, e.g. `BoxUsage:{value}`) and whose unit is the query's (first tier of
    a tiered price). None when there is none; RefreshError when several different prices match
    (the query is not specific enough)."""
    wanted = str(query.get("usagetype") or "").replace("{value}", by_value or "")
    found = set()
    for item in price_list:
        entry = json.loads(item)
        usagetype = entry.get("product", {}).get("attributes", {}).get("usagetype", "")
        if wanted and not usagetype.endswith(wanted):
            continue
        for offer in (entry.get("terms", {}).get("OnDemand") or {}).values():
            for dim in (offer.get("priceDimensions") or {}).values():
                if dim.get("unit", "").lower() != str(query["unit"]).lower() or str(dim.get("beginRange", "0")) != "0":
                    continue
                usd = dim.get("pricePerUnit", {}).get("USD")
                if usd is not None:
                    found.add(float(usd) * float(query.get("scale", 1)))
    if len(found) > 1:
        raise RefreshError(f"{len(found)} different prices match ({', '.join(f'{p:g}' for p in sorted(found))})")
    return found.pop() if found else None


class NoProduct(RefreshError):
    """The Price List has no product for the query in that region."""


def read_price(client, query: dict, region: str, by_value: str | None = None) -> float:
    paginator = client.get_paginator("get_products")
    items: list[str] = []
    for page in paginator.paginate(ServiceCode=query["service"], Filters=filters_for(query, region, by_value),
                                   FormatVersion="aws_v1", PaginationConfig={"PageSize": 100}):
        items.extend(page.get("PriceList", []))
    price = on_demand_price(items, query, by_value)
    if price is None:
        raise NoProduct("no matching on-demand product")
    return price


def entry_of(table: RegionPrices) -> dict:
    """A region of the price file as it is (a region no stack uses keeps its entry on refresh)."""
    return {"checked": table.checked, "source": table.source, "prices": table.prices,
            **({"sources": table.sources} if table.sources else {}),
            **({"unpublished": table.unpublished} if table.unpublished else {})}


def refresh_region(client, rules: Rules, current: RegionPrices | None, region: str, keyed: dict[str, set[str]],
                   today: dt.date, problems: list[str]) -> dict:
    """One region's new entry. `keep:` prices are carried over with their sources; a price the file
    says AWS has not published for the region stays unpublished while the API has no product."""
    from botocore.exceptions import BotoCoreError, ClientError

    prices: dict = {}
    kept: dict = {}
    unpublished: dict = {}
    for key, query in rules.queries.items():
        if query.get("keep"):  # not in the Price List API: carried over with its source
            if current and key in current.prices:
                prices[key] = current.prices[key]
                kept[key] = current.cited(key)
            elif current and key in current.unpublished:
                unpublished[key] = current.unpublished[key]
            continue
        for value in sorted(keyed.get(key, ())) if query.get("by") else [None]:
            item = f"{key}[{value}]" if value else key
            try:
                price = read_price(client, query, region, value)
            except BotoCoreError as exc:
                # No credentials, no connection: every later call would fail the same way.
                raise RefreshError(f"could not read prices ({region} {item}): {exc}") from exc
            except NoProduct as exc:
                reason = current and (current.unpublished.get(item) or current.unpublished.get(key))
                if reason:
                    unpublished[key if key in current.unpublished else item] = reason
                else:
                    problems.append(f"{region} {item}: {exc}")
                continue
            except (RefreshError, ClientError) as exc:
                problems.append(f"{region} {item}: {exc}")
                continue
            if value is None:
                prices[key] = price
            else:
                prices.setdefault(key, {})[value] = price
    for item, reason in (current.unpublished.items() if current else ()):
        key, _, value = item.partition("[")
        now = prices.get(key, {}).get(value.rstrip("]")) if value else prices.get(key)
        if now is None:  # not read this time (no stack uses that type): the file keeps saying why
            unpublished.setdefault(item, reason)
    return {"checked": today.isoformat(), "source": SOURCE, "prices": prices,
            **({"sources": kept} if kept else {}), **({"unpublished": unpublished} if unpublished else {})}


def refresh(client, rules: Rules, book: PriceBook, regions: list[str], keyed: dict[str, set[str]],
            today: dt.date | None = None) -> dict:
    """Read every price for `regions` and return the new price document; the file's other regions
    (catalogued, no stack there now) keep their entries. `keyed` names, per keyed price (e.g.
    ec2_instance_hour), the values to read (instance types). Raises RefreshError naming every price
    that could not be read."""
    today = today or dt.date.today()
    document = {"schema_version": 1, "currency": "USD", "regions": {}}
    problems: list[str] = []
    for region in sorted(regions):
        document["regions"][region] = refresh_region(client, rules, book.regions.get(region), region, keyed, today,
                                                     problems)
    for region, table in sorted(book.regions.items()):
        document["regions"].setdefault(region, entry_of(table))
    if problems:
        raise RefreshError("could not read " + str(len(problems)) + " price(s):\n  " + "\n  ".join(problems))
    return document


HEADER = """\
# On-demand list prices (USD) per region for `residency cost`, keyed as in stacks/cost_rules.yaml.
# Written by `residency cost --refresh` from the AWS Price List Query API; `checked` is the date
# each region was read; `sources` and `unpublished` are carried over from the previous file (prices
# not in the Price List API, and prices AWS has not published for a region). A region or price
# missing here makes the resources that need it "not priced" and the total unknown, never $0; a
# missing price of a usage-driven part (a `usage:` part of cost_rules.yaml) is a usage item open.
"""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # a source cited by several prices is written out each time
        return True


def write_prices(document: dict, path) -> None:
    write_atomic(path, HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False),
                 "--prices")
