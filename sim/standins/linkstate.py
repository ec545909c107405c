"""The simulated guest's datalinks of every class, as dlmgmtd would list them.

`state["links"]` holds the physical links (created by the platform), `state["aggrs"]` the
aggregations (`{"link", "ports", "policy", "lacp_mode", "lacp_timer", "mtu"}`) and
`state["vlans"]` the VLANs (`{"link", "vid", "over"}`) that `dladm create-aggr` and
`create-vlan` made. dladm, ipadm and dhcpagent read links through here, so a VLAN or an
aggregation can carry an IP interface like a physical link. Standard library only.
"""

from __future__ import annotations

from typing import Any

# A physical link's MTU range when the platform does not say (vioif with VIRTIO_NET_F_MTU
# unset takes 576..9000 here; `mtu_min`/`mtu_max` on a link override it).
MTU_MIN, MTU_MAX = 576, 9000


def phys(st: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((lk for lk in st.get("links", []) if lk["link"] == name), None)


def aggr(st: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((a for a in st.get("aggrs", []) if a["link"] == name), None)


def vlan(st: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((v for v in st.get("vlans", []) if v["link"] == name), None)


def all_names(st: dict[str, Any]) -> list[str]:
    """Every datalink, in creation order (dladm walks link ids in that order)."""
    return ([lk["link"] for lk in st.get("links", [])] + [a["link"] for a in st.get("aggrs", [])]
            + [v["link"] for v in st.get("vlans", [])])


def link_class(st: dict[str, Any], name: str) -> str | None:
    if phys(st, name):
        return "phys"
    if aggr(st, name):
        return "aggr"
    if vlan(st, name):
        return "vlan"
    return None


def mac_of(st: dict[str, Any], name: str) -> str | None:
    """A VLAN has its link's MAC; an aggregation its first port's (ADDRPOLICY auto)."""
    link = phys(st, name)
    if link:
        return link["mac"]
    group = aggr(st, name)
    if group:
        return mac_of(st, group["ports"][0])
    tagged = vlan(st, name)
    return mac_of(st, tagged["over"]) if tagged else None


def mtu_of(st: dict[str, Any], name: str) -> int:
    link = phys(st, name) or aggr(st, name)
    if link:
        return int(link.get("mtu", 1500))
    tagged = vlan(st, name)
    return mtu_of(st, tagged["over"]) if tagged else 1500


def mtu_range(st: dict[str, Any], name: str) -> tuple[int, int]:
    """What the driver accepts: an aggregation what all its ports accept."""
    link = phys(st, name)
    if link:
        return int(link.get("mtu_min", MTU_MIN)), int(link.get("mtu_max", MTU_MAX))
    group = aggr(st, name)
    if group:
        ranges = [mtu_range(st, port) for port in group["ports"]]
        return max(lo for lo, _ in ranges), min(hi for _, hi in ranges)
    return MTU_MIN, MTU_MAX


def port_of(st: dict[str, Any], name: str) -> str | None:
    """The aggregation `name` is a port of, if any."""
    return next((a["link"] for a in st.get("aggrs", []) if name in a["ports"]), None)


def over(st: dict[str, Any], name: str) -> str:
    """show-link's OVER: an aggregation's ports, a VLAN's link; empty for a physical link."""
    group = aggr(st, name)
    if group:
        return ",".join(group["ports"])
    tagged = vlan(st, name)
    return tagged["over"] if tagged else ""


def valid_linkname(name: str) -> bool:
    """libdladm.c dladm_valid_linkname(): shorter than MAXLINKNAMELEN (32), not starting
    with a digit, ending with one, of alphanumerics, `_` and `.`."""
    if not name or len(name) >= 32 or name[0].isdigit() or not name[-1].isdigit():
        return False
    return all(c.isascii() and (c.isalnum() or c in "_.") for c in name)
