"""Several stacks per geography: the catalog's region_services and model source regions, and a
geography as seen from another of its regions (issue #14)."""

from __future__ import annotations

import copy

import pytest
import yaml

from infra.program.catalog import CATALOG_PATH, CatalogError, load_catalog, parse_catalog

RAW = yaml.safe_load(CATALOG_PATH.read_text())


def _broken(mutate):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    return raw


def test_every_catalogued_region_has_its_services_and_every_home_region_serves_the_default_gpu():
    catalog = load_catalog()
    assert set(catalog.region_services) == catalog.all_regions
    for geo in catalog.geographies.values():
        home = catalog.region_services[geo.home_region]
        assert "eks" in home.services and "g6e" in home.gpu_families, geo.code
        if "federated" in geo.options:
            assert "network-firewall" in home.services


def test_services_match_botocore_endpoint_data():
    """The catalog's eks / network-firewall entries are botocore's endpoint data, except the
    documented me-west-1 assumption (no service lists it yet)."""
    import botocore.session

    session = botocore.session.get_session()
    for service in ("eks", "network-firewall"):
        offered = set(session.get_available_regions(service))
        listed = {r for r, s in load_catalog().region_services.items() if service in s.services}
        assert listed - offered == ({"me-west-1"} if service == "eks" else set()), service


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r["region_services"]["regions"].update({"eu-west-2": RAW["region_services"]["regions"]["eu-west-1"]}),
     "eu-west-2: not a region of any geography"),
    (lambda r: r["region_services"]["regions"]["eu-west-1"]["gpu_families"].append("z9"),
     "z9 not in region_services.gpu_families"),
    (lambda r: r["region_services"]["regions"]["eu-west-1"].update(availability_zones=["eu-west-1a"]),
     "need 2\\+ zones of eu-west-1"),
    (lambda r: r["geographies"]["EU"]["zm_plus"]["models"]["claude-sonnet-4-5"]["sources"].append("eu-west-2"),
     "sources: must include eu-central-1 and only EU regions"),
], ids=["region outside", "unknown gpu family", "one zone", "foreign source"])
def test_contradictions_are_refused(mutate, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(_broken(mutate))


def test_a_geography_seen_from_another_region():
    catalog = load_catalog()
    eu = catalog.geography("EU").at(catalog.region_services["eu-west-1"])
    assert eu.home_region == "eu-west-1" and eu.availability_zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")
    assert eu.regions == catalog.geography("EU").regions
    assert set(eu.zm_plus.models) == {"claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"}


def test_a_profile_called_from_a_region_routes_there_too_and_in_region_models_stay_put():
    catalog = load_catalog()
    us = catalog.geography("US").at(catalog.region_services["us-west-1"])
    assert "us-west-1" in us.zm_plus.models["claude-sonnet-4-5"].destinations
    assert "us-west-1" not in catalog.geography("US").zm_plus.models["claude-sonnet-4-5"].destinations
    assert "claude-haiku-4-5" not in us.zm_plus.models  # in-region in us-east-1 only
    assert catalog.geography("US").at(catalog.region_services["us-east-1"]) is catalog.geography("US")
