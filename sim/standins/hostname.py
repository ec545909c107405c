"""hostname(1) stand-in: `hostname` prints the live node name, `hostname NAME` sets it
(root only, not persistent: /etc/nodename is what survives a reboot)."""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "s", "")
    if len(rest) > 1:
        inv.usage("too many arguments")
    if rest:
        name = rest[0]
        if not name or len(name) > 256:
            inv.fail("hostname: name too long")
        inv.state["hostname"] = name
        return 0
    name = inv.state.get("hostname", "unknown")
    inv.out(name.split(".")[0] if opts.get("s") else name)
    return 0
