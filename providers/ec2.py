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
by DHCP: a DHCP client on every NIC would fight over the default route.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from fsm.errors import MetadataError, ServiceError
from providers import smbios
from providers.base import Provider
from providers.model import Metadata, Nic, normalise_mac

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


def choose_primary_link(links: list[str]) -> str | None:
    for prefix in PRIMARY_LINK_PREFIXES:
        for link in links:
            if link.startswith(prefix) and link[len(prefix):].isdigit():
                return link
    return links[0] if links else None


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
    provenance = {"instance_id": "meta-data/instance-id", "ssh_keys": "meta-data/public-keys/",
                  "nics": "meta-data/network/interfaces/macs/", "user_script": "user-data"}
    instance_id = (imds.text("meta-data/instance-id") or "").strip()
    if not instance_id or any(c.isspace() for c in instance_id):
        raise MetadataError(SOURCE, "meta-data/instance-id",
                            f"expected an instance id such as i-0123456789abcdef0, got "
                            f"{instance_id!r}" if instance_id else "missing")
    hostname, provenance["hostname"] = _hostname(imds, dhcp_hostname)
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname,
                    nics=_nics(imds, primary_mac), ssh_keys=_ssh_keys(imds),
                    user_script=_user_script(imds), provenance=provenance)


def _hostname(imds: Imds, dhcp_hostname: str | None) -> tuple[str | None, str]:
    if dhcp_hostname:
        return dhcp_hostname, "(DHCP lease hostname)"
    for key in ("meta-data/local-hostname", "meta-data/hostname"):
        name = (imds.text(key) or "").strip()
        if name:
            return name, key
    return None, "meta-data/local-hostname"


def _ssh_keys(imds: Imds) -> tuple[str, ...]:
    keys: list[str] = []
    for line in imds.lines("meta-data/public-keys/"):
        index, sep, name = line.partition("=")
        if not sep or not index.isdigit():
            raise MetadataError(SOURCE, "meta-data/public-keys/",
                                f"expected `N=name` lines, got {line!r}")
        text = imds.text(f"meta-data/public-keys/{index}/openssh-key")
        if text is None:
            log.warning("%s: public key %s (%s) has no openssh-key: skipped", SOURCE, index, name)
            continue
        keys.extend(ln.strip() for ln in text.splitlines()
                    if ln.strip() and not ln.strip().startswith("#"))
    return tuple(keys)


def _nics(imds: Imds, primary_mac: str | None) -> tuple[Nic, ...]:
    macs_dir = "meta-data/network/interfaces/macs/"
    found: list[tuple[int, Nic]] = []
    for entry in imds.lines(macs_dir):
        try:
            mac = normalise_mac(entry.rstrip("/"))
        except ValueError:
            raise MetadataError(SOURCE, macs_dir, f"not a MAC address: {entry!r}") from None
        found.append(_nic(imds, f"{macs_dir}{entry.rstrip('/')}/", mac))
    if not found:
        # No per-MAC data (an old or partial service): DHCP on the link FETCH came up on.
        return (Nic(mac=primary_mac, dhcp4=True, primary=True, name="primary"),)
    found.sort(key=lambda pair: pair[0])
    if found[0][0] != 0:
        log.warning("%s: no NIC with device-number 0; treating device %d as primary",
                    SOURCE, found[0][0])
    primary = found[0][1]
    primary = Nic(mac=primary.mac, dhcp4=True, addrconf=primary.addrconf, primary=True,
                  name=primary.name)
    return (primary, *(nic for _, nic in found[1:]))


def _nic(imds: Imds, prefix: str, mac: str) -> tuple[int, Nic]:
    number_text = (imds.text(prefix + "device-number") or "").strip()
    if not number_text.isdigit():
        raise MetadataError(SOURCE, prefix + "device-number",
                            f"expected a non-negative integer, got {number_text!r}")
    device_number = int(number_text)
    ipv6s = imds.lines(prefix + "ipv6s")
    if device_number == 0:
        # The primary is configured by DHCP; its static details are not needed.
        return 0, Nic(mac=mac, addrconf=bool(ipv6s), name=f"device-{device_number}")
    addresses: list[str] = []
    local_ipv4s = imds.lines(prefix + "local-ipv4s")
    if local_ipv4s:
        subnet_key = prefix + "subnet-ipv4-cidr-block"
        subnet_text = (imds.text(subnet_key) or "").strip()
        try:
            prefix_len = ipaddress.IPv4Network(subnet_text, strict=False).prefixlen
        except ValueError:
            raise MetadataError(SOURCE, subnet_key,
                                f"expected an IPv4 CIDR block, got {subnet_text!r}") from None
        for address in local_ipv4s:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise MetadataError(SOURCE, prefix + "local-ipv4s",
                                    f"not an IPv4 address: {address!r}") from None
            addresses.append(f"{address}/{prefix_len}")
    return device_number, Nic(mac=mac, addresses=tuple(addresses), addrconf=bool(ipv6s),
                              name=f"device-{device_number}")


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

        primary_mac, lease = _bring_up_primary_link(ctx)
        endpoint = ctx.settings.get("ec2.endpoint")
        with HttpClient.from_settings(SOURCE, ctx.settings) as client:
            return read_imds(Imds(client, endpoint), dhcp_hostname=lease.get("hostname"),
                             primary_mac=primary_mac)


def _bring_up_primary_link(ctx: Context) -> tuple[str | None, dict]:
    """DHCP on the primary link: IMDS is reachable only once it has a lease."""
    from operations.dhcp import ensure_dhcp
    from operations.netlinks import list_links

    links = list_links(ctx.system)
    link = choose_primary_link([name for name, _ in links])
    if link is None:
        raise ServiceError(f"{SOURCE}: no network link to reach the metadata service on")
    mac = dict(links)[link]
    if ctx.system.dry_run:
        # `metadata plan` changes nothing: use a lease already bound (a running instance),
        # and otherwise read the service as it can be reached now.
        from operations.dhcp import lease_facts

        log.info("%s: plan: would bring up DHCP on %s; reading the service without it",
                 SOURCE, link)
        return mac, lease_facts(ctx, link) or {}
    log.info("%s: DHCP on %s to reach the metadata service", SOURCE, link)
    lease = ensure_dhcp(ctx, link, primary=True) or {}
    return mac, lease
