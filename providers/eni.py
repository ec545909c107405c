"""NoCloud `meta-data` `network-interfaces`: Debian ifupdown (ENI) text, as in cloud-init's
own NoCloud example (doc/rtd/reference/datasources/nocloud.rst):

    network-interfaces: |
      iface eth0 inet static
      address 192.168.1.10
      network 192.168.1.0
      netmask 255.255.255.0
      broadcast 192.168.1.255
      gateway 192.168.1.254

cloud-init converts it with cloudinit/net/eni.py and uses it only when there is no
`network-config` file; so does the agent. Methods: `inet static|dhcp|manual`, `inet6
static|auto|dhcp`; options `address` (with or without /prefix), `netmask`, `gateway`,
`dns-nameservers`, `dns-search`, `hwaddress [ether] MAC`; `network`, `broadcast`, `mtu`,
`auto` and `allow-hotplug` need nothing; `lo` configures no link, but its `dns-*`
options (also spelt `dns_*`, as Proxmox VE's config drive writes them) are taken. Hook
commands (`pre-up`, `up`, `post-up`...) are never run: each is a warning naming the
interface. Interfaces are named by Linux names
(eth0): without `hwaddress` the first one is the first link (providers/netconfig.py).
"""

from __future__ import annotations

from fsm.record import replace
from providers import netconfig
from providers.items import Items
from providers.items import quoted as shown
from providers.model import Nic

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

FIELD = "meta-data network-interfaces"
IGNORED = {"network", "broadcast", "mtu", "metric", "hostname", "scope", "pointopoint"}
DNS_UNDERSCORED = {"dns_nameservers", "dns_search", "dns_domain"}
HOOKS = {"pre-up", "up", "post-up", "pre-down", "down", "post-down"}


def parse_eni(text: Any, items: Items, field: str = FIELD) -> dict[str, Any] | None:
    """The model's network fields from ENI text; None when it holds no interface. `field`
    names where the text came from in warnings (an OpenStack config drive's
    `network_config` content file is ENI too)."""
    if not isinstance(text, str):
        items.skip(field, text, "must be text in /etc/network/interfaces format")
        return None
    cx = netconfig._Ctx(items, field)
    stanzas: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        keyword, args = words[0], words[1:]
        if keyword in ("auto", "allow-hotplug") or keyword.startswith("allow-"):
            current = None
            continue
        if keyword == "iface":
            if len(args) < 3:
                items.skip(f"{cx.field} line {number}", raw.strip(), "expected `iface NAME "
                                                                  "inet|inet6 METHOD`")
                current = None
                continue
            name, family, method = args[:3]
            current = stanzas.setdefault(name, {"mac": None, "v4": [], "v6": [],
                                                "dhcp4": False, "addrconf": False,
                                                "gateways": [], "line": number})
            current["family"], current["method"] = family, method
            where = f"iface {name} {family}"
            if family == "inet" and method == "dhcp":
                current["dhcp4"] = True
            elif family == "inet6" and method in ("auto", "dhcp"):
                current["addrconf"] = True
            elif method not in ("static", "manual") and name != "lo":
                items.skip(f"{cx.field} {where}", method, "this method is not supported")
            continue
        if current is None:
            items.skip(f"{cx.field} line {number}", raw.strip(), "not inside an iface stanza")
            continue
        _option(current, keyword, args, number, cx, stanzas)
    # `lo` configures no link, but resolvconf takes its dns- options like any stanza's.
    nics = [_nic(name, st, cx) for name, st in stanzas.items() if name != "lo"]
    nics = [nic for nic in nics if nic is not None]
    if not nics:
        return None
    nics = netconfig._one_unnamed_nic(nics, cx)
    out_resolvers = [r for st in stanzas.values() for r in st.get("dns", [])]
    out_search = [d for st in stanzas.values() for d in st.get("search", [])]
    return {"nics": tuple(replace(nic, primary=i == 0) for i, nic in enumerate(nics)),
            "resolvers": tuple(dict.fromkeys(out_resolvers)),
            "search_domains": tuple(dict.fromkeys(out_search))}


def _name_of(stanzas: dict[str, dict[str, Any]], st: dict[str, Any]) -> str:
    return next(name for name, value in stanzas.items() if value is st)


def _option(st: dict[str, Any], keyword: str, args: list[str], number: int,
            cx: netconfig._Ctx, stanzas: dict[str, dict[str, Any]]) -> None:
    name = _name_of(stanzas, st)
    where = f"iface {name} {keyword}"
    value = " ".join(args)
    items = cx.items
    if keyword in DNS_UNDERSCORED:
        # ifupdown hands options to hooks as IF_<NAME> with `-` made `_`, so resolvconf
        # reads `dns_nameservers` as `dns-nameservers` (Proxmox VE writes it so).
        keyword = keyword.replace("_", "-")
    if keyword in HOOKS:
        items.note(f"{cx.field} {where}", "hook commands are never run by this agent; skipped")
        return
    if keyword in IGNORED:
        return
    if st["method"] != "static" and keyword in ("address", "netmask", "gateway"):
        items.skip(f"{cx.field} {where}", value, "only a static stanza takes an address")
        return
    with items.guard():
        if keyword == "address":
            st["v6" if st["family"] == "inet6" else "v4"].append([value, None])
        elif keyword == "netmask":
            family = st["v6" if st["family"] == "inet6" else "v4"]
            if not family:
                raise cx.error(where, f"{shown(value)} comes before any address")
            family[-1][1] = value
        elif keyword == "gateway":
            st["gateways"].append(netconfig._ip(value, where, cx))
        elif keyword == "dns-nameservers":
            st.setdefault("dns", []).extend(netconfig._ips(value, where, cx))
        elif keyword in ("dns-search", "dns-domain"):
            st.setdefault("search", []).extend(args)
        elif keyword == "hwaddress":
            mac = args[1] if args[:1] == ["ether"] and len(args) > 1 else value
            st["mac"] = netconfig._mac(mac, where, cx)
        else:
            items.skip(f"{cx.field} {where}", value, "this option is not supported")


def _nic(name: str, st: dict[str, Any], cx: netconfig._Ctx) -> Nic | None:
    addresses = []
    for family in ("v4", "v6"):
        for address, mask in st[family]:
            with cx.items.guard():
                addresses.append(netconfig._cidr(address, f"iface {name} address", cx,
                                                 netmask=mask if "/" not in address else None))
    return Nic(mac=st["mac"], addresses=tuple(addresses), dhcp4=st["dhcp4"],
               addrconf=st["addrconf"], gateways=tuple(dict.fromkeys(st["gateways"])),
               name=name)
