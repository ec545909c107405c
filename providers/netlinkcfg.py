"""Link-layer items of cloud-init's network config (v1 and v2): MTU, VLANs, bonds.

What each maps to on illumos (dladm(8)):
- `mtu` -> the `mtu` link property of the NIC's link (`dladm set-linkprop -p mtu=N`).
- v1 `type: vlan` (`vlan_link`, `vlan_id`) and v2 `vlans:` (`link`, `id`) -> a VLAN link
  (`dladm create-vlan -l OVER -v VID NAME`) carrying the item's addresses.
- v1 `type: bond` (`bond_interfaces`, `params`) and v2 `bonds:` (`interfaces`,
  `parameters`) -> a link aggregation (`dladm create-aggr`). illumos aggregations balance
  traffic over every port (static, or negotiated with LACP): Linux's `802.3ad` is LACP
  active, `balance-xor` a static aggregation (LACP off). The other Linux modes
  (`balance-rr`, the default, `active-backup`, `broadcast`, `balance-tlb`, `balance-alb`)
  have no aggregation equivalent (active-backup is IPMP's job on illumos): such a bond is a
  warning naming the field and value, and is skipped with its addresses; its member
  interfaces are still configured. `lacp-rate` fast/slow -> LACP timer short/long;
  `transmit-hash-policy` layer2, layer2+3, layer3+4 -> policy L2, L2,L3, L3,L4.
Sources: cloud-init doc/rtd/reference/network-config-format-v1.rst and -v2.rst; dladm.c
do_create_aggr() and libdladm's aggr policy/LACP strings for the illumos side.
"""

from __future__ import annotations

from providers.items import quoted as shown
from providers.model import Aggr, Nic, Vlan

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

# Linux bonding mode -> illumos LACP mode; modes absent here are not supported.
BOND_MODES = {"802.3ad": "active", "balance-xor": "off"}
LACP_RATES = {"fast": "short", "slow": "long"}
HASH_POLICIES = {"layer2": "L2", "layer2+3": "L2,L3", "layer3+4": "L3,L4"}
MTU_MIN, MTU_MAX = 68, 65535     # IPv4's minimum; the largest a link property can hold here

# Bond parameters as v1 (`params`, `bond-` prefixed) and v2 (`parameters`) spell them.
V1_BOND_KEYS = {"bond-mode": "mode", "bond-lacp-rate": "lacp-rate",
                "bond-xmit-hash-policy": "transmit-hash-policy"}


def mtu_of(item: dict[str, Any], where: str, cx: Any) -> int | None:
    """The item's `mtu` as an int, or None (absent, or malformed: a warning)."""
    value = item.get("mtu")
    if value is None:
        return None
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()) or not MTU_MIN <= int(text) <= MTU_MAX:
        cx.items.skip(f"{cx.field} {where}.mtu", value,
                      f"must be a number from {MTU_MIN} to {MTU_MAX}")
        return None
    return int(text)


def vlan_of(item: dict[str, Any], where: str, cx: Any, v1: bool = False) -> dict[str, Any]:
    """`{"vlan": Vlan}` for a v1 vlan item or a v2 vlans entry; MetadataError if unusable."""
    vid_key, over_key = ("vlan_id", "vlan_link") if v1 else ("id", "link")
    vid = item.get(vid_key)
    if isinstance(vid, bool) or not (str(vid).strip().isascii() and str(vid).strip().isdigit()) or not 1 <= int(str(vid)) <= 4094:
        raise cx.error(f"{where}.{vid_key}", f"{shown(vid)} is not a VLAN ID from 1 to 4094")
    over = item.get(over_key)
    if not isinstance(over, str) or not over.strip():
        raise cx.error(f"{where}.{over_key}", f"{shown(over)} does not name an interface")
    return {"vlan": Vlan(vid=int(str(vid)), over=over.strip()),
            "link_name": str(item.get("name") or where.split(".", 1)[-1])}


def aggr_of(item: dict[str, Any], where: str, cx: Any, v1: bool = False) -> dict[str, Any]:
    """`{"aggr": Aggr}` for a v1 bond item or a v2 bonds entry; MetadataError if the bond
    has no members or a mode illumos aggregations cannot do (the bond is skipped)."""
    members_key, params_key = ("bond_interfaces", "params") if v1 else ("interfaces", "parameters")
    members = item.get(members_key)
    if (not isinstance(members, list) or not members
            or not all(isinstance(m, str) and m.strip() for m in members)):
        raise cx.error(f"{where}.{members_key}", f"{shown(members)} is not a list of "
                                                 "interface names")
    params = item.get(params_key) or {}
    if not isinstance(params, dict):
        raise cx.error(f"{where}.{params_key}", f"{shown(params)} is not a mapping")
    wanted: dict[str, Any] = {}
    for key, value in params.items():
        name = V1_BOND_KEYS.get(key, key) if v1 else key
        if name in ("mode", "lacp-rate", "transmit-hash-policy"):
            wanted[name] = (key, value)
        else:
            cx.items.skip(f"{cx.field} {where}.{params_key}.{key}", value,
                          "not supported by illumos link aggregations")
    mode_key, mode = wanted.get("mode", ("bond-mode" if v1 else "mode", "balance-rr"))
    if str(mode) not in BOND_MODES:
        raise cx.error(f"{where}.{params_key}.{mode_key}",
                       f"bond mode {shown(mode)}{' (the default)' if 'mode' not in wanted else ''}"
                       f" has no illumos link aggregation equivalent (supported: "
                       f"{', '.join(BOND_MODES)}); the bond and its addresses are not "
                       "configured")
    timer = policy = None
    if "lacp-rate" in wanted:
        key, value = wanted["lacp-rate"]
        timer = LACP_RATES.get(str(value))
        if timer is None:
            cx.items.skip(f"{cx.field} {where}.{params_key}.{key}", value,
                          "must be fast or slow; the LACP timer is left at its default")
    if "transmit-hash-policy" in wanted:
        key, value = wanted["transmit-hash-policy"]
        policy = HASH_POLICIES.get(str(value))
        if policy is None:
            cx.items.skip(f"{cx.field} {where}.{params_key}.{key}", value,
                          f"no illumos aggregation policy for it (supported: "
                          f"{', '.join(HASH_POLICIES)}); the default (L4) is used")
    return {"aggr": Aggr(members=tuple(m.strip() for m in members),
                         lacp_mode=BOND_MODES[str(mode)], lacp_timer=timer, policy=policy),
            "link_name": str(item.get("name") or where.split(".", 1)[-1])}


def primary_index(nics: list[Nic]) -> int:
    """The first NIC, as before, unless bonds or VLANs are configured: then the first one
    with an address that is not an aggregation port (a port carries no IP), so a bonded
    VLAN's DHCP lease, not the bare bond's, is the one whose router and DNS servers count."""
    if not any(nic.vlan or nic.aggr for nic in nics):
        return 0
    members = {m for nic in nics if nic.aggr for m in nic.aggr.members}
    candidates = [i for i, nic in enumerate(nics) if nic.name not in members]
    for i in candidates:
        if nics[i].dhcp4 or nics[i].addresses or nics[i].addrconf:
            return i
    return candidates[0] if candidates else 0
