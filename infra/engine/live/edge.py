"""Global edge services, scanned once per account: CloudFront, Global Accelerator, S3 MRAPs.

Their control planes answer only in one home region of the aws partition (CloudFront us-east-1;
Global Accelerator and the S3 Multi-Region Access Point control plane us-west-2), whatever
geography the stack is in. Calling there is a read of account configuration, not a data path, so
a scan of e.g. the EU geography makes these calls too (scan_regions limits the regions whose
*regional* services are scanned, not where these account-wide reads go). Each resource is placed in
that home region, where pulumi-aws would need its provider; RSD-027 flags every one of them anyway.
"""

from __future__ import annotations

from infra.engine.live.core import Unit, camel, pages

HOME_REGIONS = {"cloudfront": "us-east-1", "globalaccelerator": "us-west-2", "s3control": "us-west-2"}


def _items(container: dict | None) -> list:
    return (container or {}).get("Items") or []


def scan_cloudfront(unit: Unit) -> None:
    with unit.step("ListDistributions"):
        for page in pages(unit.client(), "list_distributions"):
            for d in _items(page.get("DistributionList")):
                unit.add("aws:cloudfront/distribution:Distribution", d["Id"], {
                    "enabled": d.get("Enabled"), "comment": d.get("Comment") or None,
                    "aliases": _items(d.get("Aliases")), "priceClass": d.get("PriceClass"),
                    "httpVersion": d.get("HttpVersion"), "isIpv6Enabled": d.get("IsIPV6Enabled"),
                    "webAclId": d.get("WebACLId") or None,
                    "origins": [{"originId": o.get("Id"), "domainName": o.get("DomainName")}
                                for o in _items(d.get("Origins"))],
                }, outputs={"domainName": d.get("DomainName"), "status": d.get("Status")}, arn=d.get("ARN"))


def scan_global_accelerator(unit: Unit) -> None:
    with unit.step("ListAccelerators"):
        for page in pages(unit.client(), "list_accelerators"):
            for a in page["Accelerators"]:
                arn = a["AcceleratorArn"]
                unit.add("aws:globalaccelerator/accelerator:Accelerator", arn, {
                    "name": a.get("Name"), "enabled": a.get("Enabled"), "ipAddressType": a.get("IpAddressType"),
                }, outputs={"dnsName": a.get("DnsName"), "dualStackDnsName": a.get("DualStackDnsName"),
                            "ipSets": [{"ipFamily": s.get("IpAddressFamily") or s.get("IpFamily"),
                                        "ipAddresses": s.get("IpAddresses")}
                                       for s in a.get("IpSets") or []]},
                    arn=arn, name=a.get("Name"))


def scan_mrap(unit: Unit) -> None:
    account = None
    with unit.step("GetCallerIdentity"):  # ListMultiRegionAccessPoints needs the account id
        account = unit.client("sts").get_caller_identity()["Account"]
    if account is None:
        return
    with unit.step("ListMultiRegionAccessPoints"):
        for page in pages(unit.client(), "list_multi_region_access_points", AccountId=account):
            for m in page.get("AccessPoints") or []:
                regions = m.get("Regions") or []
                unit.add("aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint", f"{account}:{m['Name']}", {
                    "accountId": account,
                    "details": {"name": m["Name"], "publicAccessBlock": camel(m.get("PublicAccessBlock")),
                                "regions": [{"bucket": r.get("Bucket"), "bucketAccountId": r.get("BucketAccountId")}
                                            for r in regions]},
                }, outputs={"alias": m.get("Alias"), "status": m.get("Status"),
                            "bucketRegions": [r.get("Region") for r in regions]},
                    arn=f"arn:{unit.partition}:s3::{account}:accesspoint/{m.get('Alias') or m['Name']}",
                    name=m["Name"])
