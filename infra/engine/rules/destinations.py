"""Rule class 7: delivery by an AWS service to a host outside AWS (issue #13).

A managed service (an SNS https subscription, an API Gateway HTTP integration, an AppSync HTTP
data source, an IoT rule's HTTP action, a Step Functions HTTP task, a Firehose HTTP endpoint, a
webhook in an environment variable, a container image pulled from a public registry ...) pushes
data to a host the stack names. No VPC route is involved and no firewall sees it. The rule is
generic, not a list of services, and reads meaning, not spelling (issue #19):

- in any string value of any property, at any depth (JSON and YAML documents stored as strings
  included), the authority of every URI of any scheme (`https://`, `jdbc:postgresql://`,
  `kafka://`, `mongodb+srv://` ...; `s3://` names a bucket), a value that is a hostname under a
  public suffix (publicsuffixlist's bundled list), `host:port`, an IP address or a list of them,
  and standalone IPv4 addresses in free text (DNS forwarders in a Corefile) are destinations;
- in a host-shaped property (catalog `destinations.host_properties`: `endpoint`, `url`,
  `hostname`, `server`, `image` ...), so are `host/path`, image references and dotted names
  under no public suffix;
- a bare name in a property that names what the resource owns, matches, forwards or labels
  (catalog `name_property`: `name`, `domainName`, `dnsName`, DNS Firewall `domains`, principals,
  API groups, keys, paths) is not one; neither are dict keys, tags, labels or descriptions.

A destination passes only when it is an AWS endpoint inside the geography (a region label of the
geography under the geography's partition DNS suffix or `api.aws`/`on.aws`: ECR image refs
`<acct>.dkr.ecr.<region>.amazonaws.com/...`, EKS, OIDC, VPC endpoint names), a bucket host
(`<bucket>.s3.amazonaws.com`) of a bucket of the stack inside the geography, an internal address
(private IP, in-cluster or VPC-internal DNS), a reviewed non-destination (catalog), or the host of
an enabled connector in a federated stack (a declared path). Anything else is a finding, and an
unresolvable destination (a template, a value not known yet) fails closed.
"""

from __future__ import annotations

import functools
import ipaddress
import mimetypes
import re

import yaml
from publicsuffixlist import PublicSuffixList

from infra.program.catalog import YAML_LOADER, Destinations
from infra.engine.model import Resource
from infra.engine.rules import patterns as P
from infra.engine.rules.engine import Scope, rule
from infra.engine.rules.replication import bucket_region

# A URI of any scheme with an authority (`https://`, `jdbc:postgresql://`, `mongodb+srv://`,
# `kafka://`, `sftp://` ...): the authority is `[user[:pw]@]host[:port]`, or several of them
# separated by commas (`mongodb://h1:27017,h2:27017/db`). `jdbc:x://` matches at `x://`.
URL_RE = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*)://([^\s/?#\"'<>\\;]*)")
HOST_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
# A whole value that is a host or `host:port` (labels, then a label that can be a TLD).
BARE_HOST_RE = re.compile(r"(?i)(?:[a-z0-9_-]+\.)+[a-z][a-z0-9-]*\.?(?::\d{1,5})?")
# An IPv4 address standing alone in free text (a Corefile's `forward . 8.8.8.8`); not a CIDR, not
# part of a version (`v1.2.3.4`) or of a longer dotted token.
_TEXT_IPV4_RE = re.compile(r"(?<![\w.:/-])(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?(?![\w.:/-])")
_PSL = PublicSuffixList(accept_unknown=False)  # the bundled snapshot; nothing is fetched
_FILE_TYPES = mimetypes.MimeTypes()  # Python's built-in table only (no /etc/mime.types)
_YAML_MAX = 200_000  # longer strings are read as text, not parsed as YAML
_TEMPLATE_MARKS = ("${", "{{", "$(", "#{", "<", ">")
_BUCKET_HOST_RE = re.compile(r"(?P<bucket>[a-z0-9.-]+)\.s3(?:-external-1)?\.amazonaws\.com")
_SKIP = "skip"  # judged by another rule (RSD-013: regional AWS hostname outside the geography)
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
    "0.0.0.0/32", "fc00::/7", "fe80::/10", "::1/128", "::/128"))


@functools.lru_cache(maxsize=8)
def _subtree_re(dest: Destinations) -> re.Pattern:
    names = dest.of_kind("subtree")
    return re.compile(r"(?:^|\.)(?:" + "|".join(map(re.escape, names)) + r")(?:[.\[]|$)")


def _authority_host(authority: str) -> str:
    """`user:pw@host:port` -> host; `[v6]:port` -> v6."""
    authority = authority.rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _bare_host(value: str, image: bool, registry: str) -> str | None:
    """The host a bare host-shaped value names (None: not a host at all)."""
    value = value.strip()
    if not value or value.startswith("arn:") or any(c.isspace() for c in value):
        return None
    if image:
        first, slash, _ = value.partition("/")
        # Docker's rule: the first component is a registry when it has a dot or a port, or is
        # localhost; otherwise the image comes from Docker Hub.
        if slash and ("." in first or ":" in first or first == "localhost"):
            return _authority_host(first)
        return registry
    if "@" in value and "/" not in value:
        return None  # an e-mail address (SNS e-mail endpoints are judged by RSD-035)
    return _authority_host(value.split("/", 1)[0])


def _ip_verdict(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return _SKIP  # not an IP
    if any(ip.version == n.version and ip in n for n in _INTERNAL_NETS):
        return None
    return "is a public IP address outside AWS's in-geography endpoints"


def host_verdict(host: str, scope: Scope) -> str | None:
    """None when `host` is an allowed destination; `_SKIP` when another rule judges it; else why not."""
    catalog = scope.ctx.get_catalog()
    dest = catalog.destinations
    h = P.normalise_host(host).lstrip("*.")
    if any(m in h for m in _TEMPLATE_MARKS):
        return "is a template that cannot be resolved"
    if not h:
        return None
    ip = _ip_verdict(h.strip("[]"))
    if ip != _SKIP:
        return ip
    if any(h == s.lstrip(".") or h.endswith(s if s.startswith(".") else "." + s)
           for s in dest.of_kind("host_suffix")):
        return None
    if scope.ctx.has("federated") and h in {x for c in scope.ctx.connectors for x in c.hosts}:
        return None  # a declared path: the connector's own rules (RSD-050..054) judge it
    geo = scope.ctx.geography
    suffixes = (catalog.partitions.get(geo.partition, "amazonaws.com"),) + dest.aws_dns_suffixes
    other_partitions = tuple(s for s in set(catalog.partitions.values()) if s not in suffixes)
    if any(h.endswith("." + s) for s in other_partitions) and not any(h.endswith("." + s) for s in suffixes):
        return f"is an AWS endpoint of another partition than {geo.partition}"
    if not any(h.endswith("." + s) for s in suffixes):
        connector = " and not an enabled connector host" if scope.ctx.has("federated") else ""
        return f"is outside AWS{connector}: no AWS service may deliver data there"
    regions = P.REGION_TOKEN_RE.findall(h)
    if regions:
        outside = sorted({r for r in regions if r not in scope.regions})
        if not outside:
            return None
        if P.HOSTNAME_RE.search(h):
            return _SKIP
        return f"is an AWS endpoint in {', '.join(outside)}, outside {geo.code}"
    m = _BUCKET_HOST_RE.fullmatch(h)
    if m:
        found, region = bucket_region(m.group("bucket"), scope)
        if not found:
            return None if not scope.complete else (
                f"names bucket {m.group('bucket')}, which is not in this stack: its region cannot be proven")
        if region in scope.regions:
            return None
        return f"names bucket {m.group('bucket')} in {region or 'no provable region'}, outside {geo.code}"
    return f"is a region-less (global) AWS endpoint: it cannot be placed in {geo.code}"


def _ip_host(token: str) -> str | None:
    """The address of an IP address, `v4:port`, `[v6]` or `[v6]:port` token (None: not one)."""
    host = _authority_host(token) if token.count(":") <= 1 or token.startswith("[") else token
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return host


def _public_name(host: str, port: bool) -> bool:
    """A hostname under a suffix of the Public Suffix List, and not a file name: a two-label value
    without a port whose last label is a file extension Python's MIME table knows (`main.py`,
    `lambda.zip`) is read as a file."""
    h = host.lower().rstrip(".")
    if _PSL.publicsuffix(h) is None:
        return False
    return port or h.count(".") > 1 or _FILE_TYPES.guess_type(h)[0] is None


def _value_hosts(value: str, dest: Destinations, again) -> tuple[tuple[str, str, bool], ...]:
    """(where, host, bare) for every destination a string names, whatever its property is called:

    - the authority of every URI of any scheme (a bucket for `s3://`);
    - when the whole value is a host, `host:port`, an IP address or a comma-separated list of
      them, each of those (`bare`: the property may say the value is a name, not a place);
    - in free text, every standalone IPv4 address;
    - in a YAML document stored as a string, all of the above per value (`where`: its path).
    """
    if len(value) < 3 or value.startswith("arn:"):
        return ()
    if "\n" in value and ":" in value and len(value) <= _YAML_MAX:
        try:
            doc = yaml.load(value, Loader=YAML_LOADER)
        except yaml.YAMLError:
            doc = None
        if isinstance(doc, (dict, list)):
            return tuple((f"{path}.{where}" if where else path, host, bare) for path, leaf, _ in P.walk(doc)
                         if isinstance(leaf, str) for where, host, bare in again(leaf))
    found = []
    if "://" in value:
        prefixes = dest.of_kind("url_prefix")
        for m in URL_RE.finditer(value):
            if value.startswith(prefixes, m.start()):
                continue
            scheme = m.group(1).lower()
            for authority in m.group(2).split(","):
                host = _authority_host(authority)
                if host:
                    found.append(("", f"{host}.s3.amazonaws.com" if scheme in dest.bucket_schemes else host, False))
    if "://" in value or any(c.isspace() for c in value.strip()):
        found += [("", m.group(1), False) for m in _TEXT_IPV4_RE.finditer(value)]
        return tuple(found)
    for token in value.split(","):
        token = token.strip()
        ip = _ip_host(token)
        if ip is not None:
            found.append(("", ip, True))
        elif BARE_HOST_RE.fullmatch(token):
            host, _, port = token.partition(":")
            if _public_name(host, bool(port)):
                found.append(("", host, True))
        elif token:
            return ()  # another shape (a path, a name with a slash): not a list of addresses
    return tuple(found)


_READERS: dict[int, tuple[Destinations, object]] = {}


def reader(dest: Destinations):
    """_value_hosts bound to one catalog's `destinations`, memoised per string value (values repeat
    across resources; hashing the catalog data on every call would cost more than the reading)."""
    known = _READERS.get(id(dest))
    if known is None or known[0] is not dest:
        @functools.lru_cache(maxsize=65536)
        def read(value: str) -> tuple[tuple[str, str, bool], ...]:
            return _value_hosts(value, dest, read)
        known = _READERS[id(dest)] = (dest, read)
    return known[1]


def names_only(key: str, dest: Destinations) -> bool:
    """The property's value is a name (owned, matched, forwarded, an identity, a file), not a place."""
    return not key.endswith(dest.host_properties) and key.endswith(dest.of_kind("name_property"))


def destinations(path: str, value: str, dest) -> list[tuple[str, str]]:
    """(path, host) of every destination a string leaf names (reader), except bare names in
    a property that names the resource or what it matches (catalog `name_property`); for a
    host-shaped property also `host/path` values and image references."""
    key = P.last_key(path).lower()
    found = []
    for where, host, bare in reader(dest)(value):
        inner = P.last_key(where).lower() if where else key
        if bare and names_only(inner, dest):
            continue
        found.append((f"{path}.{where}" if where else path, host))
    if key.endswith(dest.host_properties) and "://" not in value and not found:
        image = key.endswith(dest.image_properties)
        host = _bare_host(value, image, dest.implicit_registry)
        if host and (image or any(c in host for c in _TEMPLATE_MARKS) or HOST_RE.fullmatch(host.lower().lstrip("*."))
                     or _ip_verdict(host.strip("[]")) != _SKIP):
            found.append((path, host))
    return found


@rule("RSD-055", "delivery_host_in_geography", "Destination host outside AWS or outside the geography",
      "CRITICAL",
      rationale="""A URI of any scheme, a hostname under a public suffix, `host:port` or an IP
      address, in any property value (lists, environment variables, JSON and YAML documents stored
      as strings), and any host in a host-shaped property (endpoint, url, hostname, server,
      image ...), is a place an AWS service may deliver data to (SNS and EventBridge HTTP
      targets, API Gateway and AppSync HTTP integrations, IoT HTTP actions, Step Functions HTTP
      tasks, Firehose HTTP endpoints, database and broker URLs in environment variables, DNS
      forwarders, images pulled from public registries). No VPC route or firewall sees such a
      path. It passes only when it is an AWS endpoint inside the geography, a bucket of the stack
      inside it, an internal address, a reviewed non-destination (stacks/catalog.yaml
      `destinations`), or an enabled connector host of a federated stack; anything else,
      including a value that cannot be resolved, is a finding. A name the resource owns, matches,
      forwards or labels (its own domain or DNS name, a forwarded domain, a tag) is not a
      destination.""",
      remediation="""Deliver only to in-geography AWS endpoints (ARNs, VPC endpoints, ECR in the
      home region). Third-party APIs belong behind the Federated connectors; mirror public images
      into the stack's ECR repository.""",
      category="destinations", types=("*", "pulumi:providers:aws", "pulumi:providers:kubernetes"),
      gates=("destination",), fails_closed=True,
      controls=("CT:AWS-GR_DISALLOW_VPC_INTERNET_ACCESS (partly)",))
def delivery_host_in_geography(res: Resource, scope: Scope):
    dest = scope.ctx.get_catalog().destinations
    if dest is None:
        return
    skip = _subtree_re(dest)
    seen = set()
    for path, value, _ in scope.facts(res).walked:
        if not isinstance(value, str) or len(value) < 3 or skip.search(path):
            continue
        for where, host in destinations(path, value, dest):
            verdict = host_verdict(host, scope)
            if verdict and verdict != _SKIP and (where, host) not in seen:
                seen.add((where, host))
                yield f"{where}: {host} {verdict}"
    for path in scope.snapshot.unknown.get(res.urn, ()):
        if P.last_key(path).lower().endswith(dest.host_properties) and not skip.search(path):
            yield f"{path} is not known yet: its destination cannot be verified"


@rule("RSD-064", "dns_forwarding_in_geography", "Resolver rule forwards DNS queries to a public address", "HIGH",
      rationale="""A Route 53 Resolver forwarding rule sends every query for its domain from the
      VPC to its target IPs. Queries carry data (the names asked for; DNS tunnelling carries
      anything), and a public target address is outside AWS, so the queries leave the geography
      with no firewall between. Private targets (on-premises resolvers over VPN or Direct
      Connect, resolvers in a peered VPC) are judged with those paths by RSD-025 and RSD-026. A
      target with no address cannot be placed: it fails closed.""",
      remediation="""Forward only to private addresses of resolvers inside the geography (inbound
      Resolver endpoints in the geography's regions, or on-premises resolvers over the reviewed
      private path).""",
      category="destinations", types=("aws:route53/resolverRule:ResolverRule",), fails_closed=True)
def dns_forwarding_in_geography(res: Resource, scope: Scope):
    p = res.props
    if str(p.get("ruleType") or "").upper() != "FORWARD":
        return
    for i, target in enumerate(p.get("targetIps") or []):
        address = (target.get("ip") or target.get("ipv6")) if isinstance(target, dict) else None
        if not isinstance(address, str) or not address:
            yield f"targetIps[{i}] has no address: where the queries go cannot be proven"
            continue
        verdict = _ip_verdict(address.strip("[]"))
        if verdict == _SKIP:
            yield f"targetIps[{i}] '{address}' is not an IP address"
        elif verdict:
            yield f"targetIps[{i}] {address} {verdict}: queries for {p.get('domainName') or 'its domain'} leave AWS"
