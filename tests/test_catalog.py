"""The region catalog refuses to contradict itself."""

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


def test_catalog_loads_with_the_matrix():
    catalog = load_catalog()
    assert list(catalog.geographies) == ["US", "EU", "SG", "KSA", "AU", "IN", "CA"]
    assert catalog.geography("KSA").home_region == "me-west-1"
    assert "eu-west-2" not in catalog.geography("EU").regions  # London is not in the EU
    assert catalog.by_stack("eu").code == "EU"


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r["geographies"]["EU"]["zm_plus"]["models"]["claude-sonnet-4-5"]["destinations"].append("eu-west-2"),
     "eu-west-2 outside EU"),
    (lambda r: r["geographies"]["EU"]["federated"]["connectors"]["openai"]["hosts"].append("*.openai.com"),
     "exact hostnames only"),
    (lambda r: r["geographies"]["EU"]["zm_plus"].update(profile_prefix="global"), "never allowed"),
    (lambda r: r["geographies"]["SG"].update(home_region="us-east-1"), "is not one of its regions"),
    (lambda r: r["geographies"]["SG"]["options"].append("federated"), "'federated' section is required"),
    (lambda r: r["geographies"]["US"]["federated"]["connectors"]["anthropic"].update(processing="somewhere"),
     "is not one of in_geography, global"),
    (lambda r: r["geographies"]["CA"].update(stack="us"), "used twice"),
    (lambda r: r["geographies"]["EU"]["federated"]["connectors"]["openai"].update(cleartext_http={"port": 80}),
     "cleartext_http: needs `port` and the `source`"),
    (lambda r: r["geographies"]["EU"]["federated"]["connectors"]["openai"].update(
        cleartext_http={"port": 0, "source": "https://example.com"}), r"cleartext_http.port: a TCP port"),
], ids=["foreign destination", "wildcard host", "global profile", "home outside", "option without section",
        "bad processing", "duplicate stack", "cleartext HTTP without a source", "cleartext HTTP without a port"])
def test_contradictions_are_refused(mutate, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(_broken(mutate))


def test_a_documented_cleartext_http_port_is_kept_with_its_source():
    raw = _broken(lambda r: r["geographies"]["EU"]["federated"]["connectors"]["openai"].update(
        cleartext_http={"port": 80, "source": "https://example.com/http"}))
    openai = parse_catalog(raw).geography("EU").federated.connectors["openai"]
    assert (openai.http_port, openai.http_source) == (80, "https://example.com/http")
    assert load_catalog().geography("EU").federated.connectors["openai"].http_port is None
