"""AWS Organizations: the service control policies in force on this account (attached to it, to
its OUs or to the root), so the rules can tell whether the geography's SCP (`residency scp`)
holds the account. A caller that cannot read Organizations (a member account without delegated
access) makes this unit "not checked"."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.engine.live.core import Unit, pages
from infra.program.scp_policy import statement_digests

ORGANIZATION = "aws:organizations/organization:Organization"
NOT_IN_AN_ORGANIZATION = "AWSOrganizationsNotInUseException"


def scan(unit: Unit) -> None:
    unit.scan.account = unit.client("sts").get_caller_identity()["Account"]
    scan_account_in(unit, unit.client(), unit.scan.account)


def scan_account_in(unit: Unit, org, account: str) -> None:
    """The SCPs in force on `account`, read through `org` (in an organization scan: the management
    account's client, as a member account may not read its own parents and policies)."""
    try:
        organization = org.describe_organization()["Organization"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != NOT_IN_AN_ORGANIZATION:
            raise
        unit.add(ORGANIZATION, "none", {"featureSet": None}, outputs={"accountId": account, "effectiveScps": []},
                 region=None, name="no organization")
        return
    targets, target = [account], account
    while True:  # account -> OU ... -> root
        parents = [p for page in pages(org, "list_parents", ChildId=target) for p in page["Parents"]]
        if not parents:
            break
        target = parents[0]["Id"]
        targets.append(target)
        if parents[0].get("Type") == "ROOT":
            break
    scps: dict[str, dict] = {}
    for t in targets:
        for page in pages(org, "list_policies_for_target", TargetId=t, Filter="SERVICE_CONTROL_POLICY"):
            for p in page["Policies"]:
                if p["Id"] not in scps:
                    policy = org.describe_policy(PolicyId=p["Id"])["Policy"]
                    scps[p["Id"]] = {"id": p["Id"], "name": p.get("Name"), "attachedTo": t,
                                     "statementDigests": sorted(statement_digests(policy.get("Content") or ""))}
    unit.add(ORGANIZATION, organization["Id"], {"featureSet": organization.get("FeatureSet")},
             outputs={"accountId": account, "effectiveScps": list(scps.values())}, arn=organization.get("Arn"),
             region=None)
