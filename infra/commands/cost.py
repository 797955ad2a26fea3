"""`residency cost`: what a stack costs per month, priced from the offline plan.

    residency cost --stack S | --all [--format text|json|markdown] [--base DIR [--fail-above-usd N]
                   [--fail-above-percent P]] [--plan-out DIR] [--prices FILE]
    residency cost --refresh [--pricing-region us-east-1] [--prices FILE]

Prices the resources `residency plan` synthesizes (infra/harness/synth.py; no second model of the stack)
with the rules of stacks/cost_rules.yaml and the prices of stacks/prices.yaml, and the stack's
usage profile (`ai-companion:costUsage`, defaults in the rules file). A stack is priced as it runs
once deployed: a stack file without `modelImageDigest` (not seeded yet) is planned with a
placeholder digest so the cluster layer (the GPU node pool, vLLM, its load balancer) is priced
too, and the output says so. `--base DIR` also prices the plan exports of the base branch
(`residency cost --all --plan-out DIR` run in a base checkout) with the same prices and usage,
and shows the change and the biggest movers.

Unknown is never $0: the monthly total is known only when every resource-driven item is priced;
otherwise JSON gives `monthly: null` with the reason and text/markdown a lower bound
`≥ $X (N items unpriced)`. Usage items (Bedrock tokens, guardrail text units, and every part a
rule of stacks/cost_rules.yaml drives by a `usage:` volume: log ingestion, NLB capacity units,
firewall traffic, KMS requests...) priced from the usage profile are part of the total; those
whose price is missing are listed as "usage items open" (the resource, the part, the price and
why) and leave the total known, with the resource's other parts still priced. A missing price of
a part charged for the resource existing (hours, per month, per instance, counts) leaves the
resource not priced and the total unknown.

Guardrails (as Infracost's thresholds): with `--base`, `--fail-above-usd N` and
`--fail-above-percent P` fail the command when a stack's monthly total rises by more than N
dollars or P percent against the base, naming the biggest movers. The change is exact when both
totals are known, or when the same items (same inputs) are unpriced on both sides.

Exit codes: 0 ok (resources not priced are listed, they are not an error); 1 a guardrail
threshold was crossed; 2 bad input (unknown stack, bad usage profile key, unreadable price or base
file, a threshold without --base); 3 `--refresh` could not read the prices (nothing written), or a
threshold could not be checked: the change is unknown (items not priced differ between head and
base, or a new stack's total is unknown).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dataclasses import dataclass

from infra.commands.exit_codes import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from infra.engine.loaders import read_export
from infra.program.errors import InputError
from infra.commands.output import check_writable_target, write_atomic
from infra.commands.pricing import (PRICES_PATH, USAGE_KEY, Delta, StackCost, compare, load_prices, load_rules, lookup, num,
                           parse_usage, price_snapshot)
from infra.program.config import ConfigError
from infra.program.stackfiles import list_stacks, unknown_stack, load_stack_values

HELP = "monthly cost of a stack (or --all) priced from the offline plan; --refresh re-reads the prices"
FORMATS = ("text", "json", "markdown")


def add_arguments(parser) -> None:
    from infra.commands.price_refresh import DEFAULT_PRICING_REGION, PRICING_ENDPOINT_REGIONS

    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file)")
    target.add_argument("--all", action="store_true", help="price every stack file in the repo")
    target.add_argument("--refresh", action="store_true",
                        help="re-read every price from the AWS Price List Query API and rewrite the price file")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--base", metavar="DIR",
                        help="directory of the base branch's priced plans (<stack>.json, written on the base "
                             "branch by `residency cost --all --plan-out DIR`, which includes the cluster layer "
                             "as this side does): show the change against it")
    parser.add_argument("--fail-above-usd", metavar="N", type=non_negative,
                        help="with --base: exit 1 when a stack's monthly total rises by more than N dollars")
    parser.add_argument("--fail-above-percent", metavar="P", type=non_negative,
                        help="with --base: exit 1 when a stack's monthly total rises by more than P percent")
    parser.add_argument("--plan-out", metavar="DIR",
                        help="also write the plans priced here as <stack>.json exports (what --base reads)")
    parser.add_argument("--prices", metavar="FILE", default=str(PRICES_PATH),
                        help="price file to read (and, with --refresh, to rewrite); default stacks/prices.yaml")
    parser.add_argument("--pricing-region", choices=PRICING_ENDPOINT_REGIONS, default=DEFAULT_PRICING_REGION,
                        help="endpoint region of the Price List API (where the public catalogue is read; "
                             "not a data path)")


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number >= 0")
    return value


def usage_of(stack: str) -> dict[str, float]:
    values, _ = load_stack_values(stack)
    return parse_usage(values.get(USAGE_KEY), load_rules(), f"Pulumi.{stack}.yaml")


def cost_plan(stack: str):
    """The plan a stack is priced from. The offline plan always holds the cluster layer: a stack
    not seeded yet is planned with the placeholder digest, and says so (`plan.assumptions`)."""
    from infra.harness.synth import synthesize

    return synthesize(stack)


def cost_stack(stack: str, book, base_dir: Path | None = None,
               plan_out: Path | None = None, plan=None) -> tuple[StackCost, Delta | None]:
    """Plan `stack` offline (unless the caller has its `plan` already) and price it; with
    `base_dir`, price the base export too and compare; with `plan_out`, write the plan priced as
    <stack>.json there."""
    rules = load_rules()
    usage = usage_of(stack)  # bad usage input fails before the (slower) plan
    plan = cost_plan(stack) if plan is None else plan
    if plan_out is not None:
        write_atomic(plan_out / f"{stack}.json", json.dumps(plan.export, indent=1, sort_keys=True) + "\n",
                     "--plan-out")
    models = tuple(m.key for m in plan.config.bedrock_models)
    head = price_snapshot(plan.snapshot, plan.config.region, usage, rules, book, stack, models)
    head.assumptions = plan.assumptions
    if base_dir is None:
        return head, None
    base_file = base_dir / f"{stack}.json"
    base = None
    if base_file.exists():
        snapshot, _ = read_export(base_file, stack=stack, default_region=plan.config.region, source="export")
        base = price_snapshot(snapshot, plan.config.region, usage, rules, book, stack, models)
    return head, compare(head, base)


def money(value: float, signed: bool = False) -> str:
    text = f"${abs(value):,.2f}"
    if signed:
        return ("+" if value >= 0.005 else "-" if value <= -0.005 else "±") + text
    return text


def short_type(type_: str) -> str:
    return type_.split(":", 1)[1] if type_.count(":") == 2 else type_


def gpu_line(cost: StackCost) -> list[str]:
    if not cost.gpu_pools:
        return ["GPU pool: none priced"]
    return [f"GPU pool {p.name} ({p.instance_type}): {money(p.at_min)} at min ({p.nodes[0]} nodes), "
            f"{money(p.at_max)} at max ({p.nodes[2]} nodes)" for p in cost.gpu_pools]


def total_text(cost: StackCost) -> str:
    """The monthly total, or a lower bound that says it is one: unknown is never shown as $0."""
    if cost.complete:
        text = (f"total: {money(cost.monthly)} per month at desired sizes, {money(cost.at_max)} "
                "with every pool at its max")
    else:
        text = (f"total: unknown, ≥ {money(cost.monthly)} ({len(cost.open_resources)} items unpriced) per month "
                f"at desired sizes, ≥ {money(cost.at_max)} with every pool at its max")
    return text + (f" (usage items open: {len(cost.open_usage)})" if cost.open_usage else "")


def render_text(results: list[tuple[StackCost, Delta | None]], breaches: list[Breach] = ()) -> str:
    blocks = []
    for cost, delta in results:
        lines = [f"stack {cost.stack}: {cost.region}, {cost.currency} per month, "
                 f"prices checked {cost.checked or 'never (no prices for this region)'}"]
        rows = [("RESOURCE", "TYPE", "MONTHLY", "BASIS")]
        for r in cost.priced:
            basis = "; ".join(f"{line.part}: {line.basis}" for line in r.lines) or r.note
            rows.append((r.name, short_type(r.type), money(r.monthly), basis))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines += ["  " + "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3]])
                  for row in rows]
        lines += ["  " + line for line in gpu_line(cost)]
        lines += [f"  assumed: {a}" for a in cost.assumptions]
        lines += [f"  warning: {w}" for w in cost.warnings]
        lines.append("  " + total_text(cost))
        if delta is not None:
            lines.append(f"  change against base: {money(delta.monthly, True)} per month, "
                         f"{money(delta.at_max, True)} at max" if delta.base else "  change against base: no base plan")
            for m in delta.movers:
                lines.append(f"    {m.change} {m.name} ({short_type(m.type)}): {money(m.monthly, True)}, "
                             f"{money(m.at_max, True)} at max")
            lines += [f"    newly {'open (usage)' if u.usage else 'not priced'}: {u.name} ({short_type(u.type)}): "
                      f"{u.reason}" for u in (delta.newly_unpriced if delta.base else [])]
        lines.append(f"  free (no charge of their own): {cost.free} resources")
        lines.append(f"  not priced: {len(cost.open_resources)}" + (" (the total is unknown):" if cost.open_resources else ""))
        lines += [f"    {u.name} ({short_type(u.type)}): {u.reason}" for u in cost.open_resources]
        if cost.open_usage:
            lines.append(f"  usage items open: {len(cost.open_usage)}:")
            lines += [f"    {u.name} ({short_type(u.type)}): {u.reason}" for u in cost.open_usage]
        lines.append("  usage profile: " + ", ".join(f"{k}={num(v)}" for k, v in cost.usage.items()))
        blocks.append("\n".join(lines))
    blocks += [breach.text() for breach in breaches]
    return "\n\n".join(blocks)


def cents(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def to_json(cost: StackCost, delta: Delta | None, book=None) -> dict:
    table = book.regions.get(cost.region) if book else None
    used = sorted({key for r in cost.priced for line in r.lines for key in line.prices})
    doc = {
        "stack": cost.stack, "region": cost.region, "currency": cost.currency, "prices_checked": cost.checked,
        # Unknown is never $0: null with the reason unless every resource-driven item is priced.
        "monthly": cents(cost.total), "monthly_at_max": cents(cost.total_at_max),
        "monthly_reason": cost.unknown_reason,
        "monthly_priced": round(cost.monthly, 2), "monthly_at_max_priced": round(cost.at_max, 2),
        "gpu_pools": [{"name": p.name, "instance_type": p.instance_type, "min_nodes": p.nodes[0],
                       "max_nodes": p.nodes[2], "monthly_at_min": round(p.at_min, 2),
                       "monthly_at_max": round(p.at_max, 2)} for p in cost.gpu_pools],
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "monthly": round(r.monthly, 2),
                       "monthly_at_max": round(r.at_max, 2), "note": r.note, "usage_item": r.usage,
                       "parts": [{"part": line.part, "basis": line.basis, "unit_price": line.unit_price,
                                  "monthly": round(line.monthly, 2)} for line in r.lines]} for r in cost.priced],
        "not_priced": [{"urn": u.urn, "type": u.type, "name": u.name, "reason": u.reason, "usage_item": u.usage}
                       for u in cost.not_priced],
        "free": cost.free,
        "usage": cost.usage,
        "assumptions": cost.assumptions,
        "warnings": cost.warnings,
        "price_sources": {key: table.cited(key) for key in used} if table else {},
    }
    if delta is not None:
        doc["change"] = None if delta.base is None else {
            "base_monthly": cents(delta.base.total), "base_monthly_at_max": cents(delta.base.total_at_max),
            "monthly": round(delta.monthly, 2), "monthly_at_max": round(delta.at_max, 2),
            "exact": delta.exact,
            "movers": [{"type": m.type, "name": m.name, "change": m.change, "monthly": round(m.monthly, 2),
                        "monthly_at_max": round(m.at_max, 2)} for m in delta.movers],
            "newly_not_priced": [{"type": u.type, "name": u.name, "reason": u.reason, "usage_item": u.usage}
                                 for u in delta.newly_unpriced],
        }
    return doc


def md(text: str) -> str:
    return str(text).replace("|", "\\|")


def md_total(cost: StackCost, value: float) -> str:
    return money(value) if cost.complete else f"≥ {money(value)} ({len(cost.open_resources)} items unpriced)"


def render_markdown(results: list[tuple[StackCost, Delta | None]], breaches: list[Breach] = ()) -> str:
    compared = any(d is not None for _, d in results)
    out = [MARKER, "## Cost", "",
           "Monthly on-demand list prices of the offline plan (`residency cost`); usage (Bedrock tokens, "
           "data volumes, system nodes) from each stack's profile. Not priced: data transfer to the "
           "connectors, savings plans (README \"Cost\").", ""]
    if breaches:
        out += ["### Cost guardrail crossed", ""] + [f"- {md(b.text())}" for b in breaches] + [""]
    elif compared and all(d is not None and d.base is not None and not d.movers and not d.newly_unpriced
                          for _, d in results):
        out += ["No cost change against the base branch.", ""]
    head = "| stack | region | monthly | at max | not priced | usage open |" + (
        " change | change at max |" if compared else "")
    out += [head, "|" + "---|" * (head.count("|") - 1)]
    for cost, delta in results:
        row = (f"| {cost.stack} | {cost.region} | {md_total(cost, cost.monthly)} | {md_total(cost, cost.at_max)} | "
               f"{len(cost.open_resources)} | {len(cost.open_usage)} |")
        if compared:
            row += (f" {money(delta.monthly, True)} | {money(delta.at_max, True)} |" if delta and delta.base
                    else " new (no base plan) | |")
        out.append(row)
    for cost, delta in results:
        out += ["", f"### {cost.stack} (prices checked {cost.checked or 'never'})", ""]
        out += [f"- {line}" for line in gpu_line(cost)]
        out += [f"- Assumed: {a}" for a in cost.assumptions]
        out += [f"- Warning: {md(w)}" for w in cost.warnings]
        if not cost.complete:
            out.append(f"- Total unknown: {md(cost.unknown_reason)}")
        if delta and delta.movers:
            out += ["", "Biggest movers:", "", "| resource | type | change | monthly | at max |", "|---|---|---|---|---|"]
            out += [f"| {md(m.name)} | `{md(short_type(m.type))}` | {m.change} | {money(m.monthly, True)} | "
                    f"{money(m.at_max, True)} |" for m in delta.movers]
        for label, usage in (("Newly not priced", False), ("Newly open usage items", True)):
            items = [u for u in (delta.newly_unpriced if delta else []) if u.usage == usage]
            if items:
                out += ["", f"{label}: " + ", ".join(f"{md(u.name)} (`{md(short_type(u.type))}`): {md(u.reason)}"
                                                     for u in items)]
        out += ["", f"<details><summary>{len(cost.priced)} priced, {len(cost.open_resources)} not priced, "
                    f"{len(cost.open_usage)} usage open</summary>", "",
                "| resource | type | monthly | basis |", "|---|---|---|---|"]
        out += [f"| {md(r.name)} | `{md(short_type(r.type))}` | {money(r.monthly)} | "
                f"{md('; '.join(f'{line.part}: {line.basis}' for line in r.lines) or r.note)} |" for r in cost.priced]
        out += [f"| {md(u.name)} | `{md(short_type(u.type))}` | {'usage open' if u.usage else 'not priced'} | "
                f"{md(u.reason)} |" for u in cost.not_priced]
        out += ["", "</details>"]
    return "\n".join(out)


# The first line of the markdown report: preview.yml finds its own pull-request comment by it and
# updates that comment in place instead of adding one per push.
MARKER = "<!-- residency-cost -->"


@dataclass(frozen=True)
class Breach:
    """A stack whose monthly total rose past a guardrail threshold (or could not be checked)."""
    stack: str
    change: float | None  # None: a total is unknown, the threshold was not checked
    percent: float | None  # None: the base cost nothing (any rise is infinite), or unknown
    limits: tuple[str, ...]
    movers: tuple
    reason: str = ""
    of_priced: bool = False  # the base total is unknown: the percentage is of its priced part

    def text(self) -> str:
        if self.change is None:
            return f"cost guardrail: stack {self.stack} not checked: {self.reason}"
        pct = "new cost" if self.percent is None else f"{self.percent:+.1f}%" + (
            " of the priced part" if self.of_priced else "")
        movers = ", ".join(f"{m.name} ({short_type(m.type)}) {money(m.monthly, True)}" for m in self.movers)
        return (f"cost guardrail: stack {self.stack} {money(self.change, True)} per month ({pct}) is above "
                f"{' and '.join(self.limits)}; biggest movers: {movers or 'none'}")


def guardrail(results: list[tuple[StackCost, Delta | None]], usd: float | None,
              percent: float | None) -> list[Breach]:
    """The stacks whose monthly total (at desired sizes) rose by more than `usd` dollars or more
    than `percent` percent of the base. The change is exact when both totals are known, or when what
    is not priced is the same on both sides (it cancels out); otherwise the stack is reported as not
    checked. A stack with no base plan is judged against $0 when its total is known."""
    if usd is None and percent is None:
        return []
    breaches = []
    for cost, delta in results:
        base = delta.base if delta else None
        exact = delta.exact if base is not None else cost.complete
        if not exact:
            changed = ", ".join(sorted({u.name for u in (delta.newly_unpriced if base is not None else [])
                                        if not u.usage}))
            breaches.append(Breach(cost.stack, None, None, (), (), reason=(
                f"the head total is unknown ({cost.unknown_reason})" if base is None else
                "items not priced differ between head and base, so the change is unknown"
                + (f" (newly not priced: {changed})" if changed else "")
                + f"; head: {cost.unknown_reason or 'known'}")))
            continue
        before = base.monthly if base is not None else 0.0
        change = cost.monthly - before
        pct = change / before * 100 if before else None
        limits = []
        if usd is not None and change > usd:
            limits.append(f"--fail-above-usd {usd:g}")
        if percent is not None and change > 0 and (pct is None or pct > percent):
            limits.append(f"--fail-above-percent {percent:g}")
        if limits:
            breaches.append(Breach(cost.stack, change, pct, tuple(limits), tuple(delta.movers if delta else ()),
                                   of_priced=base is not None and not base.complete))
    return breaches


def keyed_values(stacks: list[str], book) -> dict[str, set[str]]:
    """For each keyed price (e.g. ec2_instance_hour by instance type): the values the stacks use
    (from their plans) plus those already in the price file."""
    rules = load_rules()
    keyed: dict[str, set[str]] = {}
    for table in book.regions.values():
        for key, value in table.prices.items():
            if isinstance(value, dict):
                keyed.setdefault(key, set()).update(value)
    for stack in stacks:
        for r in cost_plan(stack).snapshot.custom_resources():
            for variant in rules.by_type.get(r.type, ()):
                for part in variant.parts:
                    value = part.key or (lookup(r.props, part.by) if part.by else None)
                    if isinstance(value, str):
                        keyed.setdefault(part.price, set()).add(value)
    return keyed


def run_refresh(args, client=None) -> int:
    """Re-read the prices for every stack's region; `client` is injected by tests (Stubber)."""
    from infra.commands.price_refresh import RefreshError, pricing_client, refresh, write_prices
    from infra.program.stackfiles import load_stack_config

    check_writable_target(Path(args.prices), "--prices")  # what the local files can refuse, first
    stacks = list_stacks()
    book = load_prices(Path(args.prices)) if Path(args.prices).exists() else load_prices(PRICES_PATH)
    regions = sorted({load_stack_config(s).region for s in stacks})
    rules = load_rules()
    client = client or pricing_client(args.pricing_region)  # then credentials: bad ones are exit 2 at once,
    keyed = keyed_values(stacks, book)  # not after planning every stack (seconds each)
    try:
        document = refresh(client, rules, book, regions, keyed)
    except RefreshError as exc:
        print(f"residency cost: {exc}; nothing written", file=sys.stderr)
        return EXIT_INCOMPLETE
    write_prices(document, Path(args.prices))
    count = sum(len(v) if isinstance(v, dict) else 1 for r in document["regions"].values() for v in r["prices"].values())
    print(f"wrote {count} prices for {', '.join(regions)} to {args.prices}")
    return EXIT_OK


def run(args) -> int:
    if args.refresh:
        given = [flag for flag, value in (("--base", args.base), ("--plan-out", args.plan_out),
                                          ("--fail-above-usd", args.fail_above_usd),
                                          ("--fail-above-percent", args.fail_above_percent)) if value is not None]
        if given:
            raise InputError(f"{given[0]} prices a plan; it does not apply to --refresh")
        return run_refresh(args)
    known = list_stacks()
    if args.stack and args.stack not in known:
        raise unknown_stack(args.stack)
    if (args.fail_above_usd is not None or args.fail_above_percent is not None) and not args.base:
        raise InputError("--fail-above-usd and --fail-above-percent compare against the base: give --base DIR")
    base_dir = Path(args.base) if args.base else None
    if base_dir is not None and not base_dir.is_dir():
        raise InputError(f"--base: {base_dir} is not a directory (expected <stack>.json plan exports)")
    book = load_prices(Path(args.prices))
    plan_out = Path(args.plan_out) if args.plan_out else None
    if plan_out is not None and base_dir is not None and plan_out.resolve() == base_dir.resolve():
        raise InputError("--plan-out is the --base directory: the plans written would replace the base plans "
                         "being compared; write them somewhere else")
    results = []
    for stack in known if args.all else [args.stack]:
        try:
            results.append(cost_stack(stack, book, base_dir, plan_out))
        except (ConfigError, InputError) as exc:
            if not args.all:
                raise
            raise InputError(f"Pulumi.{stack}.yaml: {exc}") from exc  # --all: name the stack file that failed
    breaches = guardrail(results, args.fail_above_usd, args.fail_above_percent)
    if args.format == "json":
        docs = [to_json(c, d, book) for c, d in results]
        for doc in docs:
            doc["guardrail"] = [b.text() for b in breaches if b.stack == doc["stack"]]
        print(json.dumps(docs if args.all else docs[0], indent=2))
    elif args.format == "markdown":
        print(render_markdown(results, breaches))
    else:
        print(render_text(results, breaches))
    if any(b.change is None for b in breaches):
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if breaches else EXIT_OK
