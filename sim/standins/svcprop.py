"""svcprop(1) stand-in: `svcprop -p PG/PROP FMRI` prints the value; `svcprop -p PG FMRI`
prints `PG/PROP TYPE VALUE` lines, as svcprop does for a property group. A missing property
fails with exit 1 and svcprop's message."""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts
from sim.standins.svcadm import resolve


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(" ", "\\ ") if value else '""'


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "fqtCc", "pPsz")
    if len(rest) != 1 or "p" not in opts:
        inv.usage("this stand-in serves `svcprop -p PROP FMRI` only")
    services = inv.state.get("services", {})
    name = resolve(services, rest[0])
    if name is None:
        inv.fail(f"svcprop: Pattern '{rest[0]}' doesn't match any entities")
    props: dict = services[name].get("properties", {})
    want = opts["p"]
    if "/" in want:
        if want not in props:
            inv.fail(f"svcprop: Couldn't find property '{want}' for instance '{name}'.")
        ptype, value = props[want]
        inv.out(_escape(str(value)) if ptype == "astring" else str(value))
        return 0
    rows = sorted((k, v) for k, v in props.items() if k.split("/")[0] == want)
    if not rows:
        inv.fail(f"svcprop: Couldn't find property group '{want}' for instance '{name}'.")
    for key, (ptype, value) in rows:
        shown = _escape(str(value)) if ptype == "astring" else str(value)
        inv.out(f"{key} {ptype} {shown}")
    return 0
