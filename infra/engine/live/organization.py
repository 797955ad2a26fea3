"""`residency audit --org`: every account of an AWS Organization, each judged against its own
geography, with one account's failure never hiding another's results.

1. Discover the accounts: Organizations ListAccounts (ACTIVE ones), with each account's parent OU
   chain (ListParents) and tags (ListTagsForResource), from the caller's session (the management
   account, or a delegated administrator).
2. Map each account to a stack (a `Pulumi.<stack>.yaml`, hence a geography), first match wins:
   the mapping file's `accounts` (id -> stack), the account tag named by `tag`, the mapping file's
   `ous` (OU id -> stack, nearest OU first), then `default` (the `--stack` given, if any). An
   account that maps to nothing is not checked: no geography, no verdict.
3. Assume the read-only role (`--org-role`, default `ai-companion-audit`) in each account and run
   the one account scan there (scan_account), accounts side by side in a bounded pool, every client
   with botocore's adaptive retry mode.
4. Attribute every finding and every unit not checked to its account (and region), and name the
   accounts that could not be read at all (the role could not be assumed).

    # residency-org.yaml
    accounts: {"111111111111": eu}
    ous: {"ou-ab12-eu000001": eu, "ou-ab12-us000001": us}
    tag: residency-stack
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from infra.engine.credentials import session_sharing_models
from infra.engine.live import LiveScan, NotChecked, scan_account
from infra.engine.live import org as org_scps
from infra.engine.live.core import Clients, ReadOnlyViolation, fault, fault_kind, pages
from infra.engine.timeouts import Timeouts
from infra.program.errors import InputError
from infra.program.stackfiles import read_yaml

# Its reads (ListAccounts, ListTagsForResource) are in core.ALLOWED_OPERATIONS: this module is
# imported only for --org, and the allow-list (and the audit policy) must not depend on that.
DEFAULT_ROLE = "ai-companion-audit"
DEFAULT_POOL = 4
MAP_KEYS = ("accounts", "ous", "tag")


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    parents: tuple[str, ...] = ()  # nearest OU first, then the root
    tags: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class AccountScan:
    account: Account
    stack: str | None
    scan: LiveScan | None = None
    unreadable: str | None = None  # why the account could not be read at all


def load_mapping(path: str | None) -> dict:
    if path is None:
        return {}
    try:  # the stack files' strict reader: an unquoted account id such as 012345670123 is not misread
        doc = read_yaml(Path(path))
    except InputError as exc:
        raise InputError(f"--org-map: {exc}") from None
    unknown = sorted(set(doc) - set(MAP_KEYS))
    if unknown:
        raise InputError(f"--org-map {path}: unknown key(s) {', '.join(unknown)}; keys: {', '.join(MAP_KEYS)}")
    for key in ("accounts", "ous"):
        if not isinstance(doc.get(key, {}), dict):
            raise InputError(f"--org-map {path}: {key}: expected a mapping of id -> stack")
    return {"accounts": {str(k): str(v) for k, v in (doc.get("accounts") or {}).items()},
            "ous": {str(k): str(v) for k, v in (doc.get("ous") or {}).items()}, "tag": doc.get("tag")}


def stack_for(account: Account, mapping: dict, default: str | None) -> str | None:
    if account.id in mapping.get("accounts", {}):
        return mapping["accounts"][account.id]
    tag = mapping.get("tag")
    if tag and account.tags.get(tag):
        return account.tags[tag]
    for parent in account.parents:
        if parent in mapping.get("ous", {}):
            return mapping["ous"][parent]
    return default


def discover(org_client) -> list[Account]:
    """ACTIVE accounts of the organization, with their OU chain and tags."""
    accounts = []
    for page in pages(org_client, "list_accounts"):
        for a in page["Accounts"]:
            if a.get("Status", "ACTIVE") != "ACTIVE":
                continue
            chain, child = [], a["Id"]
            while True:
                parents = [p for p in pages(org_client, "list_parents", ChildId=child) for p in p["Parents"]]
                if not parents:
                    break
                chain.append(parents[0]["Id"])
                if parents[0].get("Type") == "ROOT":
                    break
                child = parents[0]["Id"]
            tags = {t["Key"]: t["Value"] for p in pages(org_client, "list_tags_for_resource", ResourceId=a["Id"])
                    for t in p["Tags"]}
            accounts.append(Account(a["Id"], a.get("Name") or a["Id"], tuple(chain), tags))
    return sorted(accounts, key=lambda x: x.id)


def assume(session, account: Account, role: str, partition: str, endpoint_url: str | None, region: str):
    """A boto3 session with the read-only role's credentials in `account` (sts:AssumeRole is the
    caller's, not the scanner's: it mints credentials and reads nothing, so it is not on the
    scanner's allow-list and runs on a client of its own)."""
    sts = session.client("sts", region_name=region, endpoint_url=endpoint_url)
    creds = sts.assume_role(RoleArn=f"arn:{partition}:iam::{account.id}:role/{role}",
                            RoleSessionName="ai-companion-residency-audit")["Credentials"]
    # The process's model loader (credentials.model_loader): each account's session would parse
    # every service model again, the largest cost of a many-account scan.
    return session_sharing_models(aws_access_key_id=creds["AccessKeyId"],
                                  aws_secret_access_key=creds["SecretAccessKey"],
                                  aws_session_token=creds["SessionToken"])


def scan_organization(session, load_config: Callable, *, mapping: dict, default_stack: str | None,
                      role: str = DEFAULT_ROLE, pool: int = DEFAULT_POOL, regions=None,
                      endpoint_url: str | None = None, timeouts: Timeouts = Timeouts(),
                      progress: Callable[[str], None] = lambda _m: None, home: str = "us-east-1",
                      shard: tuple[int, int] | None = None) -> list[AccountScan]:
    """Scan every account; `load_config(stack)` gives a stack's StackConfig (InputError if unknown)."""
    timeouts = dataclasses.replace(timeouts, retry_mode="adaptive")
    top = Clients(session, endpoint_url, timeouts)("organizations", home)  # guarded: reads only
    accounts = discover(top)
    progress(f"organization: {len(accounts)} active account(s)")
    plans = [AccountScan(a, stack_for(a, mapping, default_stack)) for a in accounts]
    configs = {p.stack: load_config(p.stack) for p in plans if p.stack}  # bad stack names: bad input, up front
    scanned = {stack: _regions_for(cfg, regions) for stack, cfg in configs.items()}

    def one(plan: AccountScan) -> AccountScan:
        if plan.stack is None:
            plan.unreadable = "no geography: the account matches no entry of --org-map and no --stack was given"
            return plan
        cfg = configs[plan.stack]
        try:
            assumed = assume(session, plan.account, role, cfg.geography.partition, endpoint_url, cfg.region)
        except ReadOnlyViolation:
            raise
        except Exception as exc:  # noqa: BLE001 -- this account only: the others are still scanned
            plan.unreadable = f"cannot assume role {role}: {fault(exc)} ({fault_kind(exc)})"
            progress(f"account {plan.account.id}: {plan.unreadable}")
            return plan
        wanted = scanned[plan.stack]
        progress(f"account {plan.account.id} ({plan.account.name}): stack {plan.stack}")
        # A member account may not read its own OU chain and SCPs: they are read from the top.
        scps = {"organizations": lambda unit, a=plan.account.id: org_scps.scan_account_in(unit, top, a)}
        plan.scan = scan_account(cfg, regions=wanted, endpoint_url=endpoint_url, session=assumed, timeouts=timeouts,
                                 progress=lambda m, a=plan.account.id: progress(f"{a}: {m}"), overrides=scps,
                                 shard=shard)
        return plan

    with ThreadPoolExecutor(max_workers=max(1, pool)) as executor:
        return list(executor.map(one, plans))


def _regions_for(cfg, regions):
    """`--regions` in an organization scan: those of each account's geography (InputError when a
    geography in play has none of them)."""
    if regions is None:
        return None
    wanted = [r.strip() for r in (regions.split(",") if isinstance(regions, str) else regions) if r.strip()]
    mine = [r for r in wanted if r in cfg.geography.regions]
    if not mine:
        raise InputError(f"--regions: none of {', '.join(wanted)} is in geography {cfg.geography.code} (stack "
                         f"'{cfg.stack}', accounts mapped to it); its regions: {', '.join(cfg.geography.regions)}")
    return mine


def unit_not_checked(account: str, entry: NotChecked) -> dict:
    return {"account": account, "service": entry.service, "region": entry.region, "reason": entry.reason,
            "kind": entry.kind}
