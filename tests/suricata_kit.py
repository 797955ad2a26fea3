"""The stack's Network Firewall policy as Suricata 7 runs it, and traffic to replay through it.

AWS Network Firewall runs Suricata 7 (its developer guide). From a plan's `FirewallPolicy` and its
rule groups this module writes the rule set the firewall's stateful engine evaluates:

- rule groups in the policy's `priority` order (STRICT_ORDER);
- each group's `rulesString` verbatim (the stacks write their allow-list as Suricata rules, not
  as a domain-list group, whose AWS-generated rules match any destination port);
- the policy's stateful default actions as final rules (`aws:drop_established` drops every packet
  of an established flow that no rule decided; `aws:alert_established` logs it).

STRICT_ORDER means the first matching rule in (group priority, position) order decides. Suricata
instead orders by action (pass, drop, reject, alert) and then by `priority`. Both are checked: an
IPS replay (`--simulate-ips`) gives Suricata's verdict, and an alert-only replay of the same rules
(every action rewritten to `alert`) lists every rule that matched each flow, from which the
STRICT_ORDER decision is taken. Tests assert both agree with the intended effect.

The Suricata binary is the Debian package (7.0.10, bookworm-backports). Missing: tests skip with
how to install it, except under CI=true where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

DEFAULT_ACTION_SIDS = {"aws:drop_established": 9_000_001, "aws:alert_established": 9_000_002,
                       "aws:drop_strict": 9_000_003, "aws:alert_strict": 9_000_004}
INSTALL_HINT = ("Suricata 7 is needed: `apt-get install -y -t bookworm-backports suricata` (as root; "
                "`make test` does it when run as root on Debian), then rerun the tests")
RUN_TIMEOUT_S = 120  # a guard against hangs, not a speed target
NFW_POLICY = "aws:networkfirewall/firewallPolicy:FirewallPolicy"
NFW_RULE_GROUP = "aws:networkfirewall/ruleGroup:RuleGroup"


def suricata_binary() -> str:
    path = shutil.which("suricata")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"suricata is not installed, and CI requires these tests. {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    return path


@dataclass(frozen=True)
class Rule:
    sid: int
    action: str
    text: str
    group: str  # rule group name, or "default-action"
    order: int  # STRICT_ORDER position (group priority first)


_SID = re.compile(r"\bsid\s*:\s*(\d+)\s*;")
_ACTION = re.compile(r"^\s*(pass|drop|reject|alert|rejectsrc|rejectdst|rejectboth)\b")


def default_action_rules(actions: list[str]) -> list[str]:
    rules = []
    for action in actions:
        verb = "drop" if "drop" in action else "alert"
        flow = "flow:established; " if action.endswith("_established") else ""
        rules.append(f'{verb} ip any any -> any any (msg:"default action {action}"; {flow}'
                     f'sid:{DEFAULT_ACTION_SIDS[action]}; rev:1;)')
    return rules


@dataclass
class FirewallRules:
    rules: list[Rule]
    home_net: list[str]

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.rules) + "\n"

    def by_sid(self, sid: int) -> Rule:
        return next(r for r in self.rules if r.sid == sid)


def firewall_rules(snapshot) -> FirewallRules:
    """The stack's egress firewall policy as one Suricata rule set, in STRICT_ORDER."""
    [policy] = [r for r in snapshot.resources if r.type == NFW_POLICY]
    doc = policy.inputs["firewallPolicy"]
    assert doc["statefulEngineOptions"]["ruleOrder"] == "STRICT_ORDER"
    groups = {r.outputs.get("arn"): r for r in snapshot.resources if r.type == NFW_RULE_GROUP}
    refs = sorted(doc["statefulRuleGroupReferences"], key=lambda ref: ref["priority"])
    rules: list[Rule] = []
    home_nets = set()
    for ref in refs:
        group = groups[ref["resourceArn"]]
        body = group.inputs["ruleGroup"]
        for ip_set in (body.get("ruleVariables") or {}).get("ipSets") or []:
            if ip_set["key"] == "HOME_NET":
                home_nets.add(tuple(ip_set["ipSet"]["definitions"]))
        lines = [line for line in body["rulesSource"]["rulesString"].splitlines()
                 if line.strip() and not line.startswith("#")]
        rules += [_rule(line, group.inputs.get("name", group.name), len(rules) + i) for i, line in enumerate(lines)]
    rules += [_rule(line, "default-action", len(rules) + i)
              for i, line in enumerate(default_action_rules(doc["statefulDefaultActions"]))]
    assert len(home_nets) == 1, f"rule groups disagree on HOME_NET: {home_nets}"
    return FirewallRules(rules, list(home_nets.pop()))


def _rule(text: str, group: str, order: int) -> Rule:
    return Rule(int(_SID.search(text).group(1)), _ACTION.match(text).group(1), text, group, order)


# --- running Suricata ------------------------------------------------------------------------------

CONFIG = """%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[{home_net}]"
    EXTERNAL_NET: "!$HOME_NET"
  port-groups:
    HTTP_PORTS: "80"
default-log-dir: {log_dir}
stats:
  enabled: no
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
        - drop:
            alerts: yes
        - tls
        - http
app-layer:
  protocols:
    tls:
      enabled: yes
      detection-ports:
        dp: 443
      ja4-fingerprints: yes
    http:
      enabled: yes
    quic:
      enabled: yes
    dns:
      tcp:
        enabled: yes
      udp:
        enabled: yes
stream:
  midstream: false
# Network Firewall's stream exception policy is DROP; `auto` drops the flow in IPS mode.
exception-policy: auto
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
"""


def write_config(directory: Path, home_net: list[str]) -> Path:
    log_dir = directory / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = directory / "suricata.yaml"
    path.write_text(CONFIG.format(home_net=",".join(home_net), log_dir=log_dir))
    return path


def check_rules(rules_text: str, home_net: list[str], directory: Path) -> subprocess.CompletedProcess:
    """`suricata -T -v`: load the rules (exclusively) and exit; non-zero when any rule fails."""
    binary = suricata_binary()
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, home_net)
    rules = directory / "rules.rules"
    rules.write_text(rules_text)
    return subprocess.run([binary, "-T", "-v", "-c", str(config), "-S", str(rules), "-l", str(directory / "log")],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def loaded_counts(output: str) -> tuple[int, int]:
    """(rules loaded, rules failed) from `suricata -v` output."""
    m = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", output)
    assert m, output[-2000:]
    return int(m.group(1)), int(m.group(2))


def replay(rules_text: str, home_net: list[str], pcap: Path, directory: Path, ips: bool) -> list[dict]:
    """`suricata -r pcap` (IPS simulation or IDS); returns the eve events."""
    binary = suricata_binary()
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, home_net)
    rules = directory / "rules.rules"
    rules.write_text(rules_text)
    cmd = [binary, "-c", str(config), "-S", str(rules), "-r", str(pcap), "-l", str(directory / "log"),
           "-k", "none", "--runmode", "single"] + (["--simulate-ips"] if ips else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    eve = directory / "log" / "eve.json"
    return [json.loads(line) for line in eve.read_text().splitlines() if line.strip()] if eve.exists() else []


def as_alerts(rules_text: str) -> str:
    """The same rules with every action turned into `alert`: every rule that matches is logged."""
    return "\n".join(_ACTION.sub("alert", line, count=1) for line in rules_text.splitlines()) + "\n"
