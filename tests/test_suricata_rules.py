"""The Federated egress firewall's rules through Suricata 7, the engine AWS Network Firewall runs.

For each Federated stack, the Network Firewall policy of its plan (tests/suricata_kit.py) is
loaded with `suricata -T`, then traffic written here with scapy is replayed with `suricata -r`:
once as an IPS (`--simulate-ips`, Suricata's verdict) and once with every rule turned into an
alert (every rule that matched, from which the STRICT_ORDER decision is taken). Each case names
the rule meant to decide it; every rule of the guard group and of the allow-list must decide at
least one case. The allow-list binds the port: TLS to an allowed host passes on 443 only, HTTP
never (no catalogued connector documents cleartext HTTP), and payload sent before the TCP handshake
completes (in the SYN, or before the SYN-ACK) is dropped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.tls.extensions import (ServerName, TLS_Ext_ServerName, TLS_Ext_SignatureAlgorithms,
                                         TLS_Ext_SupportedGroups, TLS_Ext_SupportedVersion_CH)
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS
from scapy.packet import Raw
from scapy.utils import wrpcap

from infra.program.catalog import Connector
from infra.program.components.egress import GUARD_RULES, allowlist_rules
from tests import suricata_kit as kit
from stack_plans import planned

FEDERATED = ["eu", "us"]
BLOCKING = {"drop", "reject"}


def client_hello(sni: str | None) -> bytes:
    ext = [TLS_Ext_SupportedVersion_CH(versions=[0x0304, 0x0303]), TLS_Ext_SupportedGroups(groups=[29, 23]),
           TLS_Ext_SignatureAlgorithms(sig_algs=[0x0403, 0x0804])]
    if sni is not None:
        ext.insert(0, TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())]))
    return bytes(TLS(msg=[TLSClientHello(ciphers=[0x1301, 0x1302, 0xC02F], ext=ext)]))


def tcp_flow(client: str, server: str, sport: int, dport: int, payload: bytes) -> list:
    """Handshake, the client's first bytes (ACK piggybacked), the server's ACK."""
    c, s = IP(src=client, dst=server), IP(src=server, dst=client)
    return [c / TCP(sport=sport, dport=dport, flags="S", seq=1000),
            s / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001),
            c / TCP(sport=sport, dport=dport, flags="PA", seq=1001, ack=5001) / Raw(payload),
            s / TCP(sport=dport, dport=sport, flags="A", seq=5001, ack=1001 + len(payload))]


def syn_with_data(client: str, server: str, sport: int, dport: int, payload: bytes) -> list:
    """Payload in the SYN itself (as TCP Fast Open sends it), answered by the server's SYN-ACK."""
    c, s = IP(src=client, dst=server), IP(src=server, dst=client)
    return [c / TCP(sport=sport, dport=dport, flags="S", seq=1000) / Raw(payload),
            s / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001 + len(payload))]


def data_before_syn_ack(client: str, server: str, sport: int, dport: int, payload: bytes) -> list:
    """A SYN, then the client's payload before any SYN-ACK: the handshake never completed."""
    c = IP(src=client, dst=server)
    return [c / TCP(sport=sport, dport=dport, flags="S", seq=1000),
            c / TCP(sport=sport, dport=dport, flags="PA", seq=1001, ack=0) / Raw(payload)]


def http_get(host: str) -> bytes:
    return f"GET /v1/models HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n".encode()


@dataclass
class Case:
    name: str
    packets: list
    server: str
    decided_by: int  # sid of the rule meant to decide the flow under STRICT_ORDER


def cases(rules: kit.FirewallRules, hosts: list[str]) -> list[Case]:
    client = str(ipaddress.ip_network(rules.home_net[0])[10])
    generated = {r.text.split("content:\"")[1].split("\"")[0]: r.sid for r in rules.rules if r.action == "pass"}
    assert all(" tls " in r.text for r in rules.rules if r.action == "pass"), "no connector documents cleartext HTTP"
    drops = {r.text.split(" ")[1]: r.sid for r in rules.rules
             if r.action == "drop" and r.group.endswith("allow-domains")}
    out: list[Case] = []

    def add(name, decided_by, build):
        server = f"203.0.113.{10 + len(out)}"
        out.append(Case(name, build(client, server, 40000 + len(out)), server, decided_by))

    for host in hosts:
        add(f"TLS to {host}", generated[host], lambda c, s, p, h=host: tcp_flow(c, s, p, 443, client_hello(h)))
        add(f"TLS to {host.upper()}", generated[host],  # SNI matching is case-insensitive
            lambda c, s, p, h=host: tcp_flow(c, s, p, 443, client_hello(h.upper())))
        # The allow-list binds the port: TLS to an allowed host elsewhere than 443 is dropped.
        add(f"TLS to {host} on port 8443", drops["tls"], lambda c, s, p, h=host: tcp_flow(c, s, p, 8443, client_hello(h)))
        # No connector documents cleartext HTTP: an allowed Host on 80 or any port is dropped.
        add(f"HTTP to {host}", drops["http"], lambda c, s, p, h=host: tcp_flow(c, s, p, 80, http_get(h)))
        add(f"HTTP to {host} on port 8080", drops["http"], lambda c, s, p, h=host: tcp_flow(c, s, p, 8080, http_get(h)))
        add(f"A ClientHello for {host} inside the SYN", 4400008,
            lambda c, s, p, h=host: syn_with_data(c, s, p, 443, client_hello(h)))
        add(f"A ClientHello for {host} before the SYN-ACK", 4400008,
            lambda c, s, p, h=host: data_before_syn_ack(c, s, p, 443, client_hello(h)))
    host = hosts[0]
    for other in ("exfil.example.net", f"x{host}", f"{host}.example.net"):
        add(f"TLS to {other}", drops["tls"], lambda c, s, p, o=other: tcp_flow(c, s, p, 443, client_hello(o)))
        add(f"HTTP to {other}", drops["http"], lambda c, s, p, o=other: tcp_flow(c, s, p, 80, http_get(o)))
    add("TLS with an IP-literal SNI", 4400005, lambda c, s, p: tcp_flow(c, s, p, 443, client_hello(s)))
    add("TLS without SNI", 4400006, lambda c, s, p: tcp_flow(c, s, p, 443, client_hello(None)))
    add("HTTP with an IP-literal Host", 4400007, lambda c, s, p: tcp_flow(c, s, p, 80, http_get(s)))
    add("QUIC (UDP 443)", 4400001, lambda c, s, p: [IP(src=c, dst=s) / UDP(sport=p, dport=443) / Raw(
        bytes([0xC3, 0, 0, 0, 1, 8]) + bytes(8) + bytes([0]) + bytes(40))])
    add("DNS to an outside resolver (UDP 53)", 4400002,
        lambda c, s, p: [IP(src=c, dst=s) / UDP(sport=p, dport=53) / DNS(rd=1, qd=DNSQR(qname="example.com"))])
    add("ICMP echo", 4400003, lambda c, s, p: [IP(src=c, dst=s) / ICMP(type=8) / Raw(b"ping")])
    add("GRE (another IP protocol)", 4400004, lambda c, s, p: [IP(src=c, dst=s, proto=47) / Raw(bytes(8))])
    add("SSH (TCP, neither TLS nor HTTP)", kit.DEFAULT_ACTION_SIDS["aws:drop_established"],
        lambda c, s, p: tcp_flow(c, s, p, 22, b"SSH-2.0-OpenSSH_9.6\r\n"))
    return out


def hosts_of(stack):
    return sorted({h for c in planned(stack).config.connectors for h in c.hosts})


def by_case(events, cases_):
    servers = {c.server: c for c in cases_}
    found = {c.name: [] for c in cases_}
    for e in events:
        if e.get("event_type") == "alert":
            server = e["dest_ip"] if e["dest_ip"] in servers else e["src_ip"]
            if server in servers:
                found[servers[server].name].append(e)
    return found


@pytest.fixture(scope="module")
def suricata():
    return kit.suricata_binary()


@pytest.mark.parametrize("stack", FEDERATED)
def test_suricata_loads_every_rule_of_the_policy(stack, suricata, tmp_path):
    rules = kit.firewall_rules(planned(stack).snapshot)
    done = kit.check_rules(rules.text, rules.home_net, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert kit.loaded_counts(done.stdout + done.stderr) == (len(rules.rules), 0)


def test_a_broken_rule_group_fails_the_load(suricata, tmp_path):
    broken = GUARD_RULES.replace("tls.sni;", "tls.sni_typo;", 1)
    assert broken != GUARD_RULES
    done = kit.check_rules(broken, ["10.0.0.0/16"], tmp_path)
    assert done.returncode != 0
    assert "tls.sni_typo" in done.stdout + done.stderr


@pytest.mark.parametrize("stack", FEDERATED)
def test_replayed_traffic_meets_each_rules_intended_effect(stack, suricata, tmp_path):
    rules = kit.firewall_rules(planned(stack).snapshot)
    replayed = cases(rules, hosts_of(stack))
    pcap = tmp_path / "egress.pcap"
    wrpcap(str(pcap), [p for c in replayed for p in c.packets])

    matched = by_case(kit.replay(kit.as_alerts(rules.text), rules.home_net, pcap, tmp_path / "alert", ips=False), replayed)
    verdicts = by_case(kit.replay(rules.text, rules.home_net, pcap, tmp_path / "ips", ips=True), replayed)
    for case in replayed:
        sids = {e["alert"]["signature_id"] for e in matched[case.name]}
        assert sids, f"{case.name}: no rule matched"
        first = min((rules.by_sid(s) for s in sids), key=lambda r: r.order)  # STRICT_ORDER: first match decides
        assert first.sid == case.decided_by, f"{case.name}: decided by {first.sid} ({first.text}), meant {case.decided_by}"
        blocked = any(e["alert"].get("action") == "blocked" for e in verdicts[case.name])
        assert blocked == (first.action in BLOCKING), f"{case.name}: Suricata's IPS verdict disagrees with STRICT_ORDER"

    decided = {c.decided_by for c in replayed}
    guard_sids = {r.sid for r in rules.rules if r.group.endswith("egress-guards")}
    allowlist_sids = {r.sid for r in rules.rules if r.group.endswith("allow-domains")}
    assert guard_sids <= decided and allowlist_sids <= decided


def test_cleartext_http_passes_only_where_a_connector_documents_it_and_on_its_port(suricata, tmp_path):
    documented = Connector("plain", "example", ("plain.example.com",), "in_geography",
                           http_port=80, http_source="https://example.com/docs/http")
    undocumented = Connector("tls-only", "example", ("tls.example.com",), "in_geography")
    text = GUARD_RULES + allowlist_rules((documented, undocumented)) + "\n".join(
        kit.default_action_rules(["aws:drop_established"])) + "\n"
    client, flows = "10.0.0.10", {}
    for n, (name, host, port) in enumerate([("documented host, documented port", "plain.example.com", 80),
                                           ("documented host, other port", "plain.example.com", 8080),
                                           ("undocumented host", "tls.example.com", 80)]):
        flows[name] = (f"203.0.113.{100 + n}", tcp_flow(client, f"203.0.113.{100 + n}", 41000 + n, port, http_get(host)))
    pcap = tmp_path / "http.pcap"
    wrpcap(str(pcap), [p for _, packets in flows.values() for p in packets])
    events = kit.replay(text, ["10.0.0.0/16"], pcap, tmp_path / "ips", ips=True)
    blocked = {name for name, (server, _) in flows.items()
               if any(e.get("event_type") == "alert" and server in (e["dest_ip"], e["src_ip"])
                      and e["alert"].get("action") == "blocked" for e in events)}
    assert blocked == {"documented host, other port", "undocumented host"}
