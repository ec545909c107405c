"""The one data model every provider returns, whatever its source.

Plain frozen records (fsm/record.py): providers parse into them, operations read them,
and nothing here touches the guest. Optional fields default to empty. `provenance` maps a model field to the
source field it came from (e.g. `hostname` -> `sdc:hostname`), so an operation rejecting a
value can name where it came from.
"""

from __future__ import annotations

import ipaddress

from fsm.record import field, record

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from providers.cloudconfig_model import CloudConfig


@record(frozen=True)
class Nic:
    """One network interface as the metadata describes it."""

    mac: str | None = None                  # normalised `aa:bb:cc:00:11:22`; None = first link
    addresses: tuple[str, ...] = ()         # static CIDRs, IPv4 or IPv6 ("10.0.0.5/24")
    dhcp4: bool = False
    addrconf: bool = False                  # IPv6 stateless autoconfiguration / DHCPv6
    # The source asks for DHCPv6 (v1 `dhcp6`, v2 `dhcp6: true`): the addrconf object is
    # created with `-p stateful=yes`, so in.ndpd runs DHCPv6 when the router asks for it.
    dhcp6: bool = False
    gateways: tuple[str, ...] = ()
    primary: bool = False
    name: str | None = None                 # the source's own label (e.g. "net0", "public")
    # netplan dhcp4-overrides use-routes / use-dns: may this NIC's lease install its router
    # and give DNS servers (operations/dhcpagent.py)?
    dhcp_routes: bool = True
    dhcp_dns: bool = True
    # Link-layer settings (operations/datalinks.py). `mtu`: the link's MTU (SmartOS nics,
    # NoCloud v1/v2 `mtu`, OpenStack links). `link_name`: the datalink name wanted for this
    # NIC: for a physical NIC the rename target (v2 `set-name`, v1 `name` with a MAC), for a
    # VLAN or an aggregation the name of the link to create (None: derived).
    mtu: int | None = None
    link_name: str | None = None
    vlan: Vlan | None = None                # this NIC is a VLAN over another NIC
    aggr: Aggr | None = None                # this NIC is an aggregation of other NICs


@record(frozen=True)
class Vlan:
    """A tagged VLAN link (`dladm create-vlan -l OVER -v VID NAME`)."""

    vid: int                                # 1..4094
    over: str                               # `Nic.name` of the NIC it tags (physical or aggr)


@record(frozen=True)
class Aggr:
    """A link aggregation (`dladm create-aggr -L MODE [-T TIMER] [-P POLICY] -l ... NAME`).

    The source's bond mode is mapped by the provider to what illumos aggr supports (LACP
    off/active/passive); a mode it cannot map is a warning there and no Aggr is made."""

    members: tuple[str, ...]                # `Nic.name`s of the member NICs
    lacp_mode: str = "off"                  # off, active, passive
    lacp_timer: str | None = None           # short, long; None = dladm's default (short)
    policy: str | None = None               # L2, L3, L4 or a combination; None = default (L4)


@record(frozen=True)
class Route:
    """A static route. Without a gateway it is a link route: the destination is directly
    on `interface`'s link (`route add -interface`)."""

    destination: str                        # CIDR, or "default"
    gateway: str | None = None              # None: a link route
    # The NIC the route goes out of: a Nic's `mac` or `name`, or an address of it (SmartOS
    # `linklocal` routes name the NIC by its IP). None: the gateway's NIC, else the primary.
    interface: str | None = None


@record(frozen=True)
class Metadata:
    source: str                             # provider name, used in every error message
    instance_id: str | None = None
    hostname: str | None = None
    nics: tuple[Nic, ...] = ()
    routes: tuple[Route, ...] = ()
    resolvers: tuple[str, ...] = ()
    search_domains: tuple[str, ...] = ()
    ssh_keys: tuple[str, ...] = ()          # raw lines, validated by operations/sshkeys
    user_script: bytes | None = None        # secret: never logged, never checkpointed
    network_skip: bool = False
    # `#cloud-config` user-data merged over vendor-data (providers/cloudconfig.py); its
    # secrets are never logged, and nothing of it is checkpointed.
    cloud_config: CloudConfig | None = field(default=None, repr=False)
    # Items the source carried that the agent skips, each naming source, field and value:
    # the rest of the document is still applied (blast radius).
    warnings: tuple[str, ...] = ()
    # The source was found but yielded nothing usable (an empty seed volume, every file
    # missing or empty): not a new instance, and nothing a previous instance installed is
    # removed on its word (fsm/gather.py keeps the recorded instance and its network).
    empty: bool = False
    provenance: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def origin(self, model_field: str) -> str:
        """`source:field` of a model field, for error messages."""
        return f"{self.source}:{self.provenance.get(model_field, model_field)}"


def normalise_mac(mac: str) -> str:
    """`2:8:20:A:b:c` (as dladm prints) -> `02:08:20:0a:0b:0c`; ValueError if not a MAC."""
    parts = mac.strip().replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {mac!r}") from None


def netmask_prefix(mask: str) -> int | None:
    """`255.255.240.0` -> 20; None for anything else. Python's ipaddress would also take a
    host mask (`0.0.0.255` as /24): a netmask written backwards is an error, not a /24."""
    try:
        value = int(ipaddress.IPv4Address(mask.strip()))
    except ValueError:
        return None
    host_bits = ~value & 0xFFFFFFFF
    if host_bits & (host_bits + 1):
        return None
    return 32 - host_bits.bit_length()
