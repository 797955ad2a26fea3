"""The account's own AMIs shared with everyone (DescribeImages Owners=self, `Public`): recorded as
the launch permission for group `all` that makes them public, which RSD-061 judges."""

from __future__ import annotations

from infra.engine.live.core import Unit, pages, register_reads

register_reads("ec2", "DescribeImages")
SERVICE = "ec2-images"  # the "not checked" label; the client is EC2's


def scan_public_images(unit: Unit) -> None:
    with unit.step("DescribeImages"):
        for page in pages(unit.client("ec2"), "describe_images", Owners=["self"]):
            for image in page.get("Images") or []:
                if image.get("Public"):
                    unit.add("aws:ec2/amiLaunchPermission:AmiLaunchPermission", f"{image['ImageId']}:all",
                             {"imageId": image["ImageId"], "group": "all"}, name=image.get("Name") or image["ImageId"])
