"""Amazon EC2: the instance metadata service (IMDS), IMDSv2 first.

DETECT is SMBIOS only (`Amazon EC2`, or Xen `HVM domU` with `amazon` in its version): no
network is touched until SMBIOS has said EC2. FETCH first brings up DHCP on the primary
link (`ena*`, then `xnf*`, then the first link), because the service is only reachable
through it, then asks for a session token (`PUT /latest/api/token`) and sends it with every
GET. A 403 on that PUT means IMDS is disabled for the instance: nothing will change by
retrying, so FETCH fails at once. Only a service without the token API (404/405 on the
PUT) is read the IMDSv1 way, without a token. A token refused later (401: it expired or the
service restarted) is renewed once per request.

Secondary NICs are configured statically from `local-ipv4s` and the subnet's prefix, not
by DHCP: a DHCP client on every NIC would fight over the default route. Secondary private
addresses of an ENI (`local-ipv4s`, `ipv6s` beyond the first) are static addresses too.

IPv6-only subnets: when no DHCPv4 lease comes within `timeouts.dhcp`, FETCH brings up IPv6
autoconfiguration on the primary link and reads IMDS at `ec2.endpoint_ipv6`
(`http://[fd00:ec2::254]`); the primary NIC then gets no DHCPv4 (IMDS lists no
`local-ipv4s` for it). A malformed listing line, key or address is a warning naming its
path and is skipped.

IPv6 routes: IMDS offers no IPv6 gateway, and AWS's routers advertise themselves, so an
ENI with `ipv6s` gets SLAAC (addrconf, no `dhcp6`: cloud-init stopped asking EC2 for
DHCPv6, canonical/cloud-init#5104) and in.ndpd installs the default route from the
router advertisement; the agent adds no static IPv6 route.
"""

from __future__ import annotations

import ipaddress
import logging

from fsm.errors import MetadataError, ServiceError, shown
from fsm.record import replace
from providers import smbios
from providers.base import Provider, primary_link
from providers.items import Items
from providers.model import Metadata, Nic, normalise_mac

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context
    from providers.http import HttpClient
    from providers.smbios import SmbiosInfo

log = logging.getLogger(__name__)

SOURCE = "ec2"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_TTL_S = 21600
PRIMARY_LINK_PREFIXES = ("ena", "xnf")


def is_ec2(info: SmbiosInfo | None) -> bool:
    return smbios.platform(info) == "ec2"


class Imds:
    """GETs against one IMDS endpoint, with the IMDSv2 token handled here."""

    def __init__(self, client: HttpClient, endpoint: str):
        self.client = client
        self.base = endpoint.rstrip("/") + "/latest/"
        self.token: str | None = None
        self.v1_only = False

    def _new_token(self) -> None:
        url = self.base + "api/token"
        reply = self.client.request("PUT", url, {TTL_HEADER: str(TOKEN_TTL_S)})
        token = reply.body.strip()
        if reply.status == 200 and token:
            # The token goes back in a header: anything but printable ASCII cannot be sent.
            if not all(0x21 <= b <= 0x7e for b in token) or len(token) > 1024:
                raise ServiceError(f"{SOURCE}: PUT {url}: the token is not a printable "
                                   f"ASCII string ({len(token)} bytes)")
            self.token = token.decode("ascii")
        elif reply.status == 403:
            raise ServiceError(f"{SOURCE}: PUT {url}: HTTP 403: the instance metadata service "
                               "is disabled for this instance (enable it with "
                               "HttpEndpoint=enabled); not retrying")
        elif reply.status in (404, 405):
            log.info("%s: the service has no IMDSv2 token API (HTTP %d on PUT %s): "
                     "reading it as IMDSv1", SOURCE, reply.status, url)
            self.v1_only = True
        else:
            raise ServiceError(f"{SOURCE}: PUT {url}: unexpected HTTP {reply.status}"
                               + ("" if reply.status != 200 else " with an empty token"))

    def get(self, path: str) -> bytes | None:
        """The body at `path` (under /latest/), or None when the service says 404."""
        url = self.base + path
        for attempt in (1, 2):
            if self.token is None and not self.v1_only:
                self._new_token()
            headers = {} if self.v1_only else {TOKEN_HEADER: str(self.token)}
            reply = self.client.request("GET", url, headers)
            if reply.status == 200:
                return reply.body
            if reply.status == 404:
                return None
            if reply.status == 401 and not self.v1_only and attempt == 1:
                log.info("%s: token refused on GET %s (HTTP 401): renewing it", SOURCE, url)
                self.token = None
                continue
            if reply.status == 401:
                raise ServiceError(f"{SOURCE}: GET {url}: HTTP 401 "
                                   + ("although the service has no token API"
                                      if self.v1_only else "even with a fresh token"))
            raise ServiceError(f"{SOURCE}: GET {url}: unexpected HTTP {reply.status}")
        raise AssertionError("unreachable")

    def text(self, path: str) -> str | None:
        body = self.get(path)
        if body is None:
            return None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError(SOURCE, path, "is not UTF-8 text") from None

    def lines(self, path: str) -> list[str]:
        text = self.text(path)
        return [] if text is None else [ln.strip() for ln in text.splitlines() if ln.strip()]


def read_imds(imds: Imds, dhcp_hostname: str | None = None,
              primary_mac: str | None = None) -> Metadata:
    """Everything the agent uses from IMDS, parsed into the model."""
    items = Items(SOURCE)
    provenance = {"instance_id": "meta-data/instance-id", "ssh_keys": "meta-data/public-keys/",
                  "nics": "meta-data/network/interfaces/macs/", "user_script": "user-data"}
    instance_id = (imds.text("meta-data/instance-id") or "").strip()
    if not instance_id or any(c.isspace() for c in instance_id):
        raise MetadataError(SOURCE, "meta-data/instance-id",
                            f"expected an instance id such as i-0123456789abcdef0, got "
                            f"{shown(instance_id)}" if instance_id else "missing")
    hostname, provenance["hostname"] = _hostname(imds, dhcp_hostname)
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname,
                    nics=_nics(imds, primary_mac, items), ssh_keys=_ssh_keys(imds, items),
                    user_script=_user_script(imds), provenance=provenance,
                    warnings=items.tuple())


def _hostname(imds: Imds, dhcp_hostname: str | None) -> tuple[str | None, str]:
    if dhcp_hostname:
        return dhcp_hostname, "(DHCP lease hostname)"
    for key in ("meta-data/local-hostname", "meta-data/hostname"):
        name = (imds.text(key) or "").strip()
        if name:
            return name, key
    return None, "meta-data/local-hostname"


def _ssh_keys(imds: Imds, items: Items) -> tuple[str, ...]:
    keys: list[str] = []
    for line in imds.lines("meta-data/public-keys/"):
        index, sep, name = line.partition("=")
        if not sep or not index.isdigit():
            items.skip("meta-data/public-keys/", line, "expected `N=name` lines")
            continue
        text = imds.text(f"meta-data/public-keys/{index}/openssh-key")
        if text is None:
            items.skip(f"meta-data/public-keys/{index}/openssh-key", name, "absent")
            continue
        keys.extend(ln.strip() for ln in text.splitlines()
                    if ln.strip() and not ln.strip().startswith("#"))
    return tuple(keys)


def _nics(imds: Imds, primary_mac: str | None, items: Items) -> tuple[Nic, ...]:
    macs_dir = "meta-data/network/interfaces/macs/"
    found: list[tuple[int, Nic]] = []
    for entry in imds.lines(macs_dir):
        try:
            mac = normalise_mac(entry.rstrip("/"))
        except ValueError:
            items.skip(macs_dir, entry, "not a MAC address")
            continue
        with items.guard():
            found.append(_nic(imds, f"{macs_dir}{entry.rstrip('/')}/", mac, items))
    if not found:
        # No per-MAC data (an old or partial service): DHCP on the link FETCH came up on.
        return (Nic(mac=primary_mac, dhcp4=True, primary=True, name="primary"),)
    found.sort(key=lambda pair: pair[0])
    if found[0][0] != 0:
        log.warning("%s: no NIC with device-number 0; treating device %d as primary",
                    SOURCE, found[0][0])
    primary = replace(found[0][1], primary=True)
    return (primary, *(nic for _, nic in found[1:]))


def _nic(imds: Imds, prefix: str, mac: str, items: Items) -> tuple[int, Nic]:
    """One ENI. The primary (device 0) gets its first IPv4 address by DHCP (when it has
    one: an IPv6-only subnet has no DHCPv4 server) and its first IPv6 address by
    addrconf; every further private address (`local-ipv4s`, `ipv6s`) is configured
    statically with its subnet's prefix, as cloud-init's get_secondary_addresses does.
    Another ENI's IPv4 addresses are all static (a DHCP client on each NIC would fight over
    the default route)."""
    number_text = (imds.text(prefix + "device-number") or "").strip()
    if not number_text.isdigit():
        raise MetadataError(SOURCE, prefix + "device-number",
                            f"expected a non-negative integer, got {shown(number_text)}")
    device_number = int(number_text)
    local_ipv4s = imds.lines(prefix + "local-ipv4s")
    ipv6s = imds.lines(prefix + "ipv6s")
    primary = device_number == 0
    addresses = _static(imds, prefix, "local-ipv4s", local_ipv4s[1:] if primary else local_ipv4s,
                        "subnet-ipv4-cidr-block", 4, items)
    addresses += _static(imds, prefix, "ipv6s", ipv6s[1:], "subnet-ipv6-cidr-blocks", 6, items)
    return device_number, Nic(mac=mac, addresses=tuple(addresses),
                              dhcp4=primary and (bool(local_ipv4s) or not ipv6s),
                              addrconf=bool(ipv6s), name=f"device-{device_number}")


def _static(imds: Imds, prefix: str, key: str, wanted: list[str], subnet_key: str,
            version: int, items: Items) -> list[str]:
    """`ADDRESS/PREFIX` of each address, the prefix that of the subnet's (first) CIDR
    block; without a readable block a host prefix (/32, /128), never a guessed subnet."""
    if not wanted:
        return []
    blocks = imds.lines(prefix + subnet_key)
    host_prefix = 32 if version == 4 else 128
    try:
        network = ipaddress.ip_network(blocks[0] if blocks else "", strict=False)
        if network.version != version:
            raise ValueError
        prefix_len = network.prefixlen
    except ValueError:
        items.skip(prefix + subnet_key, blocks[0] if blocks else None,
                   f"expected an IPv{version} CIDR block; the addresses get /{host_prefix}")
        prefix_len = host_prefix
    found = []
    for address in wanted:
        try:
            ip = ipaddress.ip_address(address)
            if ip.version != version:
                raise ValueError
        except ValueError:
            items.skip(prefix + key, address, f"not an IPv{version} address")
            continue
        found.append(f"{ip}/{prefix_len}")
    return found


def _user_script(imds: Imds) -> bytes | None:
    body = imds.get("user-data")
    if not body:
        return None
    if body.startswith(b"#!"):
        return body
    log.info("%s: user-data (%d bytes) is not a script (does not start with #!): not run",
             SOURCE, len(body))
    return None


class EC2Provider(Provider):
    name = SOURCE
    uses_network = True

    def detect(self, ctx: Context) -> bool:
        return is_ec2(ctx.smbios)

    def fetch(self, ctx: Context) -> Metadata:
        from providers.http import HttpClient

        link, primary_mac = primary_link(ctx, SOURCE, PRIMARY_LINK_PREFIXES)
        try:
            lease = _bring_up_dhcp(ctx, link)
            endpoint = ctx.settings.get("ec2.endpoint")
        except ServiceError as e:
            # An IPv6-only subnet has no DHCPv4 server: IPv6 autoconfiguration (SLAAC) gives
            # the link its address, and IMDS answers on [fd00:ec2::254] (Nitro).
            endpoint = ctx.settings.get("ec2.endpoint_ipv6")
            log.warning("%s: %s; trying the metadata service over IPv6 at %s", SOURCE, e,
                        endpoint)
            _bring_up_addrconf(ctx, link)
            lease = {}
        with HttpClient.from_settings(SOURCE, ctx.settings) as client:
            return read_imds(Imds(client, endpoint), dhcp_hostname=lease.get("hostname"),
                             primary_mac=primary_mac)


def _bring_up_dhcp(ctx: Context, link: str) -> dict:
    """DHCP on the primary link: IMDS over IPv4 is reachable only once it has a lease.
    ServiceError when no lease comes within `timeouts.dhcp`."""
    from operations.dhcp import ensure_dhcp

    if ctx.system.dry_run:
        # `metadata plan` changes nothing: use a lease already bound (a running instance),
        # and otherwise read the service as it can be reached now.
        from operations.dhcp import lease_facts

        log.info("%s: plan: would bring up DHCP on %s; reading the service without it",
                 SOURCE, link)
        return lease_facts(ctx, link) or {}
    log.info("%s: DHCP on %s to reach the metadata service", SOURCE, link)
    return ensure_dhcp(ctx, link, primary=True) or {}


def _bring_up_addrconf(ctx: Context, link: str) -> None:
    """IPv6 autoconfiguration on `link` (`LINK/v6`, as NETWORK names it), unless present."""
    from operations.addresses import IPADM, show_addresses

    if any(a.addrobj == f"{link}/v6" for a in show_addresses(ctx.system)):
        return
    ctx.system.apply([IPADM, "create-addr", "-T", "addrconf", f"{link}/v6"])
