"""dhcpagent(8) per-interface settings: which DHCP options a lease may not apply.

netplan's `dhcp4-overrides: {use-routes: false, use-dns: false}` (cloud-init network-config
v2) asks that a NIC's lease install no router and give no DNS servers: a second NIC's lease
would otherwise add a second default route. illumos dhcpagent reads `/etc/default/dhcpagent`
and honours `IFNAME.PARAM_IGNORE_LIST=CODE,...` per interface before the global
`PARAM_IGNORE_LIST` (usr/src/cmd/cmd-inet/sbin/dhcpagent/defaults.c: df_get_string looks up
`if_name.param`, then `param`): option 3 is the router, 6 the DNS servers. The agent writes
that line for the link before it starts DHCP there; other lines are kept as they are.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Outcome
    from fsm.system import System
    from providers.model import Nic

DHCPAGENT = "/etc/default/dhcpagent"
PARAM = "PARAM_IGNORE_LIST"
ROUTER, DNS_SERVERS = 3, 6


def ignored_options(nic: Nic) -> list[int]:
    """DHCP option codes the lease on this NIC must not apply."""
    return ([] if nic.dhcp_routes else [ROUTER]) + ([] if nic.dhcp_dns else [DNS_SERVERS])


def _key(line: str) -> tuple[str, str] | None:
    name, sep, _value = line.strip().partition("=")
    if not sep or line.lstrip().startswith("#"):
        return None
    iface, dot, param = name.strip().rpartition(".")
    return (iface if dot else "", param.upper())


def ensure_ignore_list(system: System, link: str, codes: list[int], outcome: Outcome) -> None:
    """`LINK.PARAM_IGNORE_LIST=codes` in dhcpagent's defaults, when codes are wanted."""
    if not codes:
        return
    wanted = f"{link}.{PARAM}={','.join(str(c) for c in codes)}"
    text = system.read_text(DHCPAGENT, default="")
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if _key(ln) == (link, PARAM)), None)
    if at is not None and lines[at].strip() == wanted:
        return
    if at is None:
        lines.append(wanted)
    else:
        lines[at] = wanted
    system.write_file(DHCPAGENT, "\n".join(lines) + "\n", mode=0o644)
    outcome.changed(f"{DHCPAGENT}: {wanted} (the lease on {link} installs no "
                    f"{' and no '.join(_what(c) for c in codes)})")


def _what(code: int) -> str:
    return {ROUTER: "router", DNS_SERVERS: "DNS servers"}.get(code, f"option {code}")

