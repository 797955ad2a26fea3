"""Foreign regions that share the home region's prefix are outside, in every form a rule reads.

For the EU geography, eu-west-2 (London) and eu-central-2 (Zurich) start like eu-west-1 and
eu-central-1 but are not EU member-state regions (stacks/catalog.yaml). A rule that matched a
prefix, or a region "family", would pass them; each form below must fire for them and stay quiet
for the in-geography region of the same shape.
"""

import pytest

from rules_kit import ACCOUNT, fired, policy, provider, res, run

LOOKALIKES = ["eu-west-2", "eu-central-2"]
INSIDE = {"eu-west-2": "eu-west-1", "eu-central-2": "eu-central-1"}


def region_input(region):
    return [res("aws:s3/bucket:Bucket", "b", inputs={"region": region})], "RSD-001"


def through_provider(region):
    prov = provider(region, name="p")
    return [prov, res("aws:ec2/vpc:Vpc", "v", prov=prov)], "RSD-001"


def arn_in_a_policy(region):
    doc = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{region}:{ACCOUNT}:key/k"})
    return [res("aws:iam/rolePolicy:RolePolicy", "p", inputs={"policy": doc})], "RSD-010"


FORMS = [region_input, through_provider, arn_in_a_policy]


@pytest.mark.parametrize("region", LOOKALIKES)
@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__)
def test_a_lookalike_region_is_outside(form, region):
    resources, rule = form(region)
    found = fired(run(resources), rule)
    assert found, f"{rule} passed {region} given as {form.__name__}"
    assert region in found[0].message


@pytest.mark.parametrize("region", LOOKALIKES)
@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__)
def test_the_in_geography_region_of_the_same_shape_is_quiet(form, region):
    resources, rule = form(INSIDE[region])
    assert not fired(run(resources), rule)
