"""Rule class 1: effective region (RSD-001..004)."""

from rules_kit import EU_PROVIDER, US_PROVIDER, ctx, fired, home_logging, provider, res, run


def test_resource_region_outside_fires_from_own_region_input():
    bucket = res("aws:s3/bucket:Bucket", "b", inputs={"region": "us-east-1"})
    report = run([bucket])
    assert [f.urn for f in fired(report, "RSD-001")] == [bucket.urn]
    assert "us-east-1" in fired(report, "RSD-001")[0].message


def test_resource_region_outside_fires_through_provider():
    vpc = res("aws:ec2/vpc:Vpc", "v", prov=US_PROVIDER)
    assert fired(run([vpc]), "RSD-001", vpc.urn)


def test_resource_region_inside_other_geography_region_is_quiet():
    # eu-west-1 is not the home region but is inside EU; the resource input wins over the provider.
    bucket = res("aws:s3/bucket:Bucket", "b", inputs={"region": "eu-west-1"}, prov=US_PROVIDER)
    report = run([bucket])
    assert not fired(report, "RSD-001") and not report.unplaced


def test_provider_named_like_a_region_is_judged_by_its_region():
    liar = provider("us-east-1", name="eu-west-1")
    vpc = res("aws:ec2/vpc:Vpc", "v", prov=liar)
    report = run([liar, vpc])
    assert fired(report, "RSD-003", liar.urn) and "ignored" in fired(report, "RSD-003")[0].message
    assert fired(report, "RSD-001", vpc.urn)


def test_provider_named_foreign_but_configured_inside_is_quiet():
    honest = provider("eu-central-1", name="us-east-1")
    vpc = res("aws:ec2/vpc:Vpc", "v", prov=honest)
    report = run([honest, vpc, home_logging()])
    assert report.findings == []


def test_unplaced_regional_resource_is_reported_and_counted():
    default = provider(None, name="default_7_51_1")
    bucket = res("aws:s3/bucket:Bucket", "b", prov=default, outputs={"bucketRegionalDomainName": "b.s3.us-east-2.amazonaws.com"})
    report = run([default, bucket], source="export")
    assert report.unplaced == [{"urn": bucket.urn, "type": bucket.type}]
    [finding] = fired(report, "RSD-002")
    assert "us-east-2" in finding.message  # evidence is shown, but never used to pass


def test_unplaced_default_provider_without_config_region_fails_closed():
    bucket = res("aws:s3/bucket:Bucket", "b", prov=None)
    report = run([bucket], source="export")
    assert fired(report, "RSD-002", bucket.urn) and report.unplaced


def test_default_provider_placed_by_known_config_region_is_quiet():
    bucket = res("aws:s3/bucket:Bucket", "b", prov=None)
    report = run([bucket], source="export", default_region="eu-central-1")
    assert not fired(report, "RSD-002") and not report.unplaced


def test_global_and_neutral_types_are_not_unplaced_findings():
    default = provider(None, name="default")
    role = res("aws:iam/role:Role", "role", prov=default)
    zone = res("aws:route53/zone:Zone", "zone", prov=default)
    ns = res("kubernetes:core/v1:Namespace", "ns", prov=None)
    report = run([default, role, zone, ns], source="export")
    assert not fired(report, "RSD-002") and report.unplaced == []
    assert any("global" in n for n in report.notes)


def test_unknown_cloud_package_fails_closed():
    thing = res("gcp:storage/bucket:Bucket", "g", prov=None)
    report = run([thing], source="export")
    assert "not AWS" in fired(report, "RSD-002", thing.urn)[0].message


def test_default_provider_in_plan_is_flagged():
    bucket = res("aws:s3/bucket:Bucket", "b", prov=None)
    report = run([bucket], source="plan", default_region="eu-central-1")
    assert fired(report, "RSD-004", bucket.urn)


def test_explicit_provider_in_plan_is_quiet_and_export_is_not_judged():
    assert not fired(run([res("aws:s3/bucket:Bucket", "b", prov=EU_PROVIDER)]), "RSD-004")
    assert not fired(run([res("aws:s3/bucket:Bucket", "b", prov=None)], source="export",
                         default_region="eu-central-1"), "RSD-004")


def test_unplaced_provider_region_is_checked_against_each_geography():
    sg = ctx("SG")
    vpc = res("aws:ec2/vpc:Vpc", "v", prov=EU_PROVIDER)
    assert fired(run([vpc], sg), "RSD-001", vpc.urn)
