"""Issue #19: RSD-055 reads a destination in any form, whatever its property is called, and nothing
that is not one; RSD-012 reads plain region properties and fails closed on unreadable ones; whole-
construct refusals say they are a stance. Each form: once where it fires (outside the geography),
once where it stays quiet (inside it, or not a destination)."""

import json

import pytest

from infra.engine.model import Snapshot
from infra.engine.rules import RULES_BY_ID, evaluate
from rules_kit import ACCOUNT, ctx, fired, res, run

FN = "aws:lambda/function:Function"
EU_RDS = "app.cluster-abc.eu-central-1.rds.amazonaws.com"
EU_MSK = "b-1.events.abc.c2.kafka.eu-central-1.amazonaws.com"


def env(**variables):
    return res(FN, "fn", inputs={"environment": {"variables": variables}})


def dest_findings(*resources, context=None):
    return fired(run(list(resources), context), "RSD-055")


# --- item 1: URIs of any scheme with an authority ------------------------------------------------

@pytest.mark.parametrize("outside,inside", [
    ("jdbc:postgresql://db.example.com:5432/app", f"jdbc:postgresql://{EU_RDS}:5432/app"),
    ("sftp://drop.partner.example.net/in", f"sftp://s-1234.server.transfer.eu-central-1.amazonaws.com/in"),
    ("kafka://broker.example.io:9092", f"kafka://{EU_MSK}:9092"),
    ("mongodb+srv://app:pw@cluster0.abc.mongodb.net/db", f"mongodb://app:pw@docdb.cluster-x.eu-central-1.docdb.amazonaws.com:27017/db"),
    ("redis://:secret@cache.example.com:6379/0", "redis://10.40.3.7:6379/0"),
    ("amqps://user:pw@rabbit.example.org:5671/vhost", f"amqps://b-1.mq.eu-central-1.amazonaws.com:5671"),
    ("smtp://smtp.example.com:587", "smtp://email-smtp.eu-central-1.amazonaws.com:587"),
    ("ftp://files.example.com/pub", "ftp://10.40.0.9/pub"),
])
def test_a_uri_of_any_scheme_is_a_destination(outside, inside):
    [f] = dest_findings(env(TARGET=outside))
    assert "environment.variables.TARGET" in f.message and "outside AWS" in f.message
    assert not dest_findings(env(TARGET=inside))


def test_every_host_of_a_multi_host_authority_is_read():
    found = dest_findings(env(MONGO="mongodb://a.example.com:27017,b.example.org:27017/db?replicaSet=rs0"))
    assert {"a.example.com", "b.example.org"} <= {m for f in found for m in f.message.split() if "example" in m}


def test_an_s3_uri_is_judged_as_the_stacks_bucket():
    bucket = res("aws:s3/bucket:Bucket", "weights", inputs={"bucket": "weights"})
    assert not dest_findings(bucket, env(MODEL="s3://weights/models/llama"))
    [f] = dest_findings(bucket, env(MODEL="s3://someone-elses-bucket/models"))
    assert "someone-elses-bucket" in f.message and "not in this stack" in f.message


# --- item 1: bare hostnames, host:port and IP addresses in any string -----------------------------

@pytest.mark.parametrize("value,host", [
    ("api.example.com", "api.example.com"),
    ("ingest.partner.co.uk:8443", "ingest.partner.co.uk"),
    ("203.0.113.9", "203.0.113.9"),
    ("198.51.100.7:5432", "198.51.100.7"),
    ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
])
def test_a_bare_host_or_public_ip_in_any_property_fires(value, host):
    [f] = dest_findings(res("aws:sagemaker/model:Model", "m", inputs={"primaryContainer": {"environment": {"X": value}}}))
    assert host in f.message


@pytest.mark.parametrize("value", [
    EU_RDS, f"{EU_MSK}:9092", "10.40.1.7", "172.20.0.10:53", "fd00::10",  # inside the geography / private
    "index.handler", "main.py", "lambda.zip", "g6e.xlarge", "python3.12", "v1.2.3", "networking.k8s.io/v1",
    "nvidia.com/gpu", "com.amazonaws.eu-central-1.s3", "ops@example.com", "10.40.0.0/16",
])
def test_values_inside_the_geography_or_not_hosts_are_quiet(value):
    assert not dest_findings(res("aws:sagemaker/model:Model", "m", inputs={"primaryContainer": {"environment": {"X": value}}}))


def test_a_list_of_addresses_is_read_element_by_element_and_as_a_comma_separated_value():
    found = dest_findings(env(BROKERS="b1.example.com:9092,b2.example.com:9092"),
                          res("aws:mq/broker:Broker", "mq", inputs={"peers": ["10.40.0.5", "mq.example.net"]}))
    hosts = " ".join(f.message for f in found)
    assert "b1.example.com" in hosts and "b2.example.com" in hosts and "mq.example.net" in hosts
    assert "10.40.0.5" not in hosts
    assert not dest_findings(env(BROKERS=f"{EU_MSK}:9092,{EU_MSK.replace('b-1', 'b-2')}:9092"))


def test_json_and_yaml_documents_stored_as_strings_are_read():
    as_json = res("aws:pipes/pipe:Pipe", "p", inputs={"targetParameters": json.dumps({"sink": {"address": "sink.example.com:9092"}})})
    [f] = dest_findings(as_json)
    assert "targetParameters.sink.address: sink.example.com" in f.message
    config = res("kubernetes:core/v1:ConfigMap", "cfg", prov=None, inputs={"data": {
        "app.yaml": "broker:\n  address: kafka.example.com:9092\nlog: info\n"}})
    [f] = dest_findings(config)
    assert "data.app.yaml.broker.address: kafka.example.com" in f.message
    inside = res("kubernetes:core/v1:ConfigMap", "cfg", prov=None, inputs={"data": {
        "app.yaml": f"broker:\n  address: {EU_MSK}:9092\nname: api.example.com\n"}})
    assert not dest_findings(inside)  # in-geography broker; `name` is a name, not a place


# --- item 1: DNS resolution handed to resolvers, judged by where the queries go -------------------

RESOLVER_RULE = "aws:route53/resolverRule:ResolverRule"


def resolver_rule(*ips):
    return res(RESOLVER_RULE, "fwd", inputs={"domainName": "corp.example.com", "ruleType": "FORWARD",
                                               "resolverEndpointId": "rslvr-out-1",
                                               "targetIps": [{"ip": ip, "port": 53} for ip in ips]})


def test_a_forwarding_rule_to_a_public_resolver_fires_and_to_a_resolver_in_the_vpc_is_quiet():
    [f] = dest_findings(resolver_rule("10.40.0.2", "8.8.8.8"))
    assert "targetIps[1].ip: 8.8.8.8" in f.message
    assert not dest_findings(resolver_rule("10.40.0.2", "10.40.1.2"))  # the forwarded domain is not a destination


@pytest.mark.parametrize("resource,quiet", [
    (lambda s: res("aws:ec2/vpcDhcpOptions:VpcDhcpOptions", "dhcp",
                   inputs={"domainName": "corp.example.com", "domainNameServers": [s]}), "AmazonProvidedDNS"),
    (lambda s: res("kubernetes:core/v1:ConfigMap", "coredns", prov=None, inputs={"data": {
        "Corefile": f".:53 {{\n    errors\n    forward . {s}\n    cache 30\n}}\n"}}), "/etc/resolv.conf"),
    (lambda s: res("kubernetes:core/v1:Pod", "pod", prov=None, inputs={"spec": {"dnsPolicy": "None", "dnsConfig": {
        "nameservers": [s]}}}), "172.20.0.10"),
])
def test_custom_resolvers_outside_the_vpc_fire(resource, quiet):
    [f] = dest_findings(resource("1.1.1.1"))
    assert "1.1.1.1 is a public IP address" in f.message
    assert not dest_findings(resource(quiet))


# --- item 2: what a property means ----------------------------------------------------------------

@pytest.mark.parametrize("type_,inputs", [
    ("aws:acm/certificate:Certificate", {"domainName": "api.example.com", "subjectAlternativeNames": ["www.example.com"]}),
    (RESOLVER_RULE, {"domainName": "corp.example.com", "ruleType": "SYSTEM"}),
    ("aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList", {"domains": ["malware.example.com", "*.bad.example"]}),
    ("aws:route53/zone:Zone", {"name": "internal.example.com"}),
    ("aws:route53/record:Record", {"name": "api.example.com", "type": "A", "zoneId": "Z1", "records": ["10.40.0.8"]}),
    ("aws:apigateway/domainName:DomainName", {"domainName": "api.example.com", "regionalCertificateArn":
                                              f"arn:aws:acm:eu-central-1:{ACCOUNT}:certificate/1"}),
    ("aws:ec2/eip:Eip", {"domain": "vpc", "publicIp": "203.0.113.50", "publicDns": "ec2-203-0-113-50.compute.example.com"}),
    ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", {"clientIdLists": ["sts.amazonaws.com"],
                                                             "url": "https://oidc.eks.eu-central-1.amazonaws.com/id/ABC"}),
    ("aws:lambda/permission:Permission", {"principal": "events.amazonaws.com", "action": "lambda:InvokeFunction"}),
    ("aws:s3/bucket:Bucket", {"bucket": "b", "tags": {"Owner": "data.example.com", "Endpoint": "203.0.113.1"}}),
])
def test_names_owned_matched_forwarded_or_labelled_are_not_destinations(type_, inputs):
    assert not dest_findings(res(type_, "n", inputs=inputs))


def test_the_same_name_in_a_connecting_property_is_a_destination():
    [f] = dest_findings(res("aws:apigateway/integration:Integration", "i",
                            inputs={"type": "HTTP_PROXY", "uri": "http://api.example.com/v1", "connectionId": "c"}))
    assert "uri: api.example.com" in f.message


PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"


@pytest.mark.parametrize("key", ["peerRegion", "replicaRegion", "failoverRegion", "secondaryRegion", "copyRegions",
                                 "destinationRegion"])
def test_a_plain_region_property_is_read(key):
    def region_findings(value):
        return fired(run([res("aws:example/thing:Thing", "t", inputs={"settings": {key: value}})]), "RSD-012")

    assert not region_findings("eu-west-1")
    assert "us-east-1 is outside EU" in region_findings("us-east-1")[0].message
    assert "is not a region" in region_findings("${var.dr_region}")[0].message
    assert "is not a region" in region_findings("global")[0].message


def test_flags_named_like_regions_are_not_region_fields():
    assert not fired(run([res("aws:kms/key:Key", "k", inputs={"multiRegion": False})]), "RSD-012")


def test_a_region_property_not_known_yet_fails_closed():
    peering = res(PEERING, "p", inputs={"vpcId": "vpc-1", "peerVpcId": "vpc-2"})
    snapshot = Snapshot([peering], "crossguard", "eu", "eu-central-1", unknown={peering.urn: ["peerRegion"]})
    report = evaluate(snapshot, ctx("EU"), rules=[RULES_BY_ID["RSD-012"]], targets={peering.urn}, complete=False)
    [f] = fired(report, "RSD-012")
    assert "peerRegion is not known yet" in f.message and RULES_BY_ID["RSD-012"].fails_closed


def test_a_peering_inside_the_geography_is_refused_as_a_stance_not_as_a_path_out():
    [f] = fired(run([res(PEERING, "p", inputs={"vpcId": "vpc-1", "peerVpcId": "vpc-2", "peerRegion": "eu-west-1"})]),
                "RSD-025")
    assert "peer region eu-west-1, inside EU" in f.message and "stance" in f.message
    assert "not a proven path out of the geography" in f.message


def test_every_stance_is_stated_in_the_rules_doc_with_its_reason():
    from infra.engine.rules import RULES
    from infra.engine.rules.docs import DOC_PATH

    doc = DOC_PATH.read_text()
    stances = [r for r in RULES if r.stance]
    assert {"RSD-025", "RSD-026", "RSD-036"} <= {r.id for r in stances}
    for r in stances:
        section = doc[doc.index(f"### {r.id}"):].split("\n### ", 1)[0]
        assert f"Stance (fails closed on the whole construct): {r.stance}" in section


def test_the_rules_doc_says_which_value_forms_the_destination_rule_reads_and_which_it_cannot():
    from infra.engine.rules.docs import DOC_PATH

    doc = DOC_PATH.read_text()
    section = doc[doc.index("## 7. Delivery by an AWS service"):doc.index("## 8.")]
    covers, blind = section.split("Cannot see:", 1)
    assert "`jdbc:postgresql://`" in covers and "public suffix" in covers and "targetIps" in covers
    assert "hostnames inside free text" in blind


def test_the_raw_prescreen_of_region_fields_never_changes_the_verdict(tmp_path):
    """The whole-document gate (engine.Scope.region_field_hits) is a speed-up only."""
    from infra.engine.loaders import read_export
    from infra.engine.rules import Context
    from infra.program.stackfiles import load_stack_config

    provider = "urn:pulumi:eu::ai-companion::pulumi:providers:aws::home"
    resources = [{"urn": provider, "custom": True, "id": "p1", "type": "pulumi:providers:aws",
                  "inputs": {"region": "eu-central-1"}, "outputs": {"region": "eu-central-1"}}]
    values = ["eu-west-1", "${peer}", "GLOBAL", None, True, ["eu-west-1", "us-east-1"], ["${x}"], "", "eu-central-1a"]
    for i, value in enumerate(values):
        resources.append({"urn": f"urn:pulumi:eu::ai-companion::aws:ec2/vpcPeeringConnection:VpcPeeringConnection::p{i}",
                          "custom": True, "id": f"pcx-{i}", "type": "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
                          "provider": f"{provider}::p1", "inputs": {"vpcId": "vpc-1", "peerRegion": value,
                                                                     "settings": {"Failover_Region": value}},
                          "outputs": {"region": "eu-central-1"}})
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"version": 3, "deployment": {"resources": resources}}))
    ctx = Context.from_config(load_stack_config("eu"))
    snapshot, raw = read_export(path, stack="eu")
    assert raw is not None
    fast = [(f.rule, f.urn, f.message) for f in evaluate(snapshot, ctx, raw=raw).findings if f.rule == "RSD-012"]
    plain = [(f.rule, f.urn, f.message) for f in evaluate(snapshot, ctx).findings if f.rule == "RSD-012"]
    assert fast == plain and {u.rsplit("::", 1)[-1] for _, u, _ in fast} == {"p1", "p2", "p5", "p6"}


def test_the_destination_prescreen_never_hides_a_destination_the_rule_reads():
    """engine.destination_hint may say "maybe" wrongly, never "no": a naming property holding a
    YAML document judges the document's own keys."""
    inside_a_name = res("kubernetes:core/v1:ConfigMap", "cfg", prov=None, inputs={"data": {
        "name": "sink:\n  address: sink.example.com:9092\n"}})
    assert dest_findings(inside_a_name)
    assert not dest_findings(res("kubernetes:core/v1:ConfigMap", "cfg", prov=None, inputs={"data": {
        "name": "sink.example.com"}}))
