"""svcadm(8) stand-in: enable [-rst], disable [-st], restart, refresh, clear.

Service instances live in `state["services"]` keyed by FMRI, with `state` (online,
disabled, maintenance) and `enabled`. An FMRI that matches no instance fails as illumos does.
"""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts

SUBCOMMANDS = {"enable": "rst", "disable": "st", "restart": "d", "refresh": "", "clear": "",
               "mark": "It"}


def resolve(services: dict, fmri: str) -> str | None:
    """Accept a full FMRI, one without `:default`, or an abbreviation matching one instance."""
    if fmri in services:
        return fmri
    full = fmri if fmri.startswith("svc:") else "svc:/" + fmri.lstrip("/")
    for candidate in (full, full + ":default"):
        if candidate in services:
            return candidate
    matches = [f for f in services if f.endswith("/" + fmri) or f.endswith("/" + fmri + ":default")]
    return matches[0] if len(matches) == 1 else None


def main(inv: Invocation) -> int:
    if not inv.argv or inv.argv[0] not in SUBCOMMANDS:
        inv.usage("unknown subcommand")
    sub = inv.argv[0]
    opts, fmris = parse_opts(inv, inv.argv[1:], SUBCOMMANDS[sub], "")
    if not fmris:
        inv.usage(f"{sub} needs an FMRI")
    services = inv.state.setdefault("services", {})
    rc = 0
    for fmri in fmris:
        name = resolve(services, fmri)
        if name is None:
            inv.err(f"svcadm: Pattern '{fmri}' doesn't match any instances")
            rc = 1
            continue
        svc = services[name]
        if sub == "enable":
            svc.update(enabled=True, state="online", temporary=bool(opts.get("t")))
        elif sub == "disable":
            svc.update(enabled=False, state="disabled", temporary=bool(opts.get("t")))
        elif sub == "clear" and svc.get("state") == "maintenance":
            svc["state"] = "online" if svc.get("enabled") else "disabled"
        elif sub == "restart":
            svc["restarts"] = svc.get("restarts", 0) + 1
    return rc
