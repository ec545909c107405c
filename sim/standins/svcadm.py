"""svcadm(8) stand-in, after illumos-gate usr/src/man/man8/svcadm.8 and
usr/src/cmd/svc/svcadm/svcadm.c.

    svcadm [-S state] [-v] [-Z | -z zone] enable [-rst] {FMRI | pattern}...
    svcadm ... disable [-c comment] [-st] {FMRI | pattern}...
    svcadm ... restart [-d] | refresh | clear {FMRI | pattern}...
    svcadm ... mark [-It] maintenance|degraded {FMRI | pattern}...
    svcadm [-v] milestone [-d] milestone_FMRI

Service instances live in `state["services"]` keyed by full FMRI, each with `state`
(online, disabled, maintenance, degraded), `enabled`, optional `temporary` and `properties`
(`"pg/prop": [type, value]`). Operands follow svcadm(8): a full FMRI, an abbreviation (the
instance name, or a trailing part of the service name, with or without `:instance`), or an
fnmatch(7) pattern (`svc:/` prepended when absent). An operand matching nothing:
`svcadm: Pattern 'X' doesn't match any instances`; an abbreviation matching several
instances: `svcadm: Pattern 'X' matches multiple instances:` and the candidates, the
operand ignored; both make the exit status 1. A bad command line prints svcadm's usage and
exits 2. Services come online at once here, so `-s` never has to wait; `-Z` acts on the
only zone there is, and `-z ZONE` names a zone that does not exist.
"""

from __future__ import annotations

import fnmatch

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt

USAGE = ("Usage: svcadm [-S <state>] [-v] [-Z | -z zone] [cmd [args ... ]]\n\n"
         "\tsvcadm enable [-rst] [<service> ...]\t- enable and online service(s)\n"
         "\tsvcadm disable [-st] [<service> ...]\t- disable and offline service(s)\n"
         "\tsvcadm restart [-d] [<service> ...]\t- restart specified service(s)\n"
         "\tsvcadm refresh [<service> ...]\t\t- re-read service configuration\n"
         "\tsvcadm mark [-It] <state> [<service> ...] - set maintenance state\n"
         "\tsvcadm clear [<service> ...]\t\t- clear maintenance state\n"
         "\tsvcadm milestone [-d] <milestone>\t- advance to a service milestone")
MILESTONES = ("svc:/milestone/single-user:default", "svc:/milestone/multi-user:default",
              "svc:/milestone/multi-user-server:default")
# subcommand -> (flags, options taking a value)
SUBCOMMANDS = {"enable": ("rst", ""), "disable": ("st", "c"), "restart": ("d", ""),
               "refresh": ("", ""), "clear": ("", ""), "mark": ("It", ""),
               "milestone": ("d", "")}


def usage(inv: Invocation) -> None:
    inv.err(USAGE)
    raise Exit(2)


def getopt(inv: Invocation, args: list[str], flags: str,
           with_value: str) -> tuple[dict[str, object], list[str]]:
    """getopt(3C): options up to the first operand or `--`; anything else is usage."""
    try:
        pairs, operands = posix_getopt(args, flags, with_value)
    except BadOption:
        usage(inv)
    return dict(pairs), operands


def _split(fmri: str) -> tuple[str, str]:
    """`svc:/network/smtp:sendmail` -> (`network/smtp`, `sendmail`)."""
    body = fmri[len("svc:/"):] if fmri.startswith("svc:/") else fmri
    service, _, instance = body.rpartition(":")
    return service, instance


def match(services: dict, operand: str) -> list[str]:
    """Instances an operand names, following svcadm(8) OPERANDS."""
    if any(ch in operand for ch in "*?["):
        pattern = operand if operand.startswith("svc:") else "svc:/" + operand
        return [f for f in services if fnmatch.fnmatchcase(f, pattern)]
    if operand.startswith("svc:/"):
        body = operand[len("svc:/"):]
        if ":" in body:
            return [operand] if operand in services else []
        return [f for f in services if _split(f)[0] == body]
    want_svc, colon, want_inst = operand.lstrip("/").rpartition(":")
    if not colon:
        want_svc, want_inst = operand.lstrip("/"), ""
    found = []
    for fmri in services:
        service, instance = _split(fmri)
        svc_ok = not want_svc or service == want_svc or service.endswith("/" + want_svc)
        if colon:
            if svc_ok and instance == want_inst:
                found.append(fmri)
        elif svc_ok or instance == want_svc:
            found.append(fmri)
    return found


def resolve_operands(inv: Invocation, services: dict, operands: list[str],
                     program: str = "svcadm") -> tuple[list[str], int]:
    """(matched instances, exit status so far) with svcadm's warnings on stderr."""
    chosen: list[str] = []
    status = 0
    for operand in operands:
        found = match(services, operand)
        globbing = any(ch in operand for ch in "*?[")
        if not found:
            inv.err(f"{program}: Pattern '{operand}' doesn't match any instances")
            status = 1
        elif len(found) > 1 and not globbing:
            inv.err(f"{program}: Pattern '{operand}' matches multiple instances:")
            for fmri in sorted(found):
                inv.err(f"    {fmri}")
            status = 1
        else:
            chosen.extend(f for f in found if f not in chosen)
    return chosen, status


def resolve(services: dict, fmri: str) -> str | None:
    """The one instance an operand names, or None (kept for other stand-ins)."""
    found = match(services, fmri)
    return found[0] if len(found) == 1 else None


def _set_enabled(svc: dict, enable: bool, temporary: bool) -> None:
    svc["enabled"] = enable
    svc["temporary"] = temporary
    if enable:
        if svc.get("state") in (None, "disabled", "offline", "uninitialized"):
            svc["state"] = "online"
    else:
        svc["state"] = "disabled"


def _apply(inv: Invocation, sub: str, opts: dict, fmri: str, svc: dict, verbose: bool,
           mark_state: str | None) -> None:
    if sub in ("enable", "disable"):
        enable = sub == "enable"
        temporary = bool(opts.get("t"))
        _set_enabled(svc, enable, temporary)
        if sub == "disable" and "c" in opts:
            svc.setdefault("properties", {})["general/comment"] = ["astring", opts["c"]]
        if verbose:
            word = "enabled" if enable else "disabled"
            inv.out(f"{fmri} temporarily {word}." if temporary else f"{fmri} {word}.")
    elif sub in ("restart", "refresh"):
        if sub == "restart" and svc.get("state") in ("online", "degraded"):
            svc["restarts"] = svc.get("restarts", 0) + 1
        if sub == "refresh":
            svc["refreshes"] = svc.get("refreshes", 0) + 1
        if verbose:
            inv.out(f"Action {sub} set for {fmri}.")
    elif sub == "clear":
        if svc.get("state") == "maintenance":
            svc["state"] = "online" if svc.get("enabled") else "disabled"
        elif svc.get("state") == "degraded":
            svc["state"] = "online"
    elif sub == "mark":
        if mark_state == "maintenance" or svc.get("state") == "online":
            svc["state"] = mark_state


def _milestone(inv: Invocation, args: list[str]) -> int:
    opts, rest = getopt(inv, args, "d", "")
    if len(rest) != 1:
        usage(inv)
    name = rest[0]
    if name not in ("all", "none"):
        full = [m for m in MILESTONES
                if m == name or m.endswith("/" + name) or m.endswith("/" + name + ":default")
                or m == "svc:/" + name or m.startswith("svc:/" + name + ":")]
        if not full:
            inv.err(f'"{name}" is not a valid major milestone.')
            raise Exit(2)
        name = full[0]
    inv.state["milestone"] = name
    if opts.get("d"):
        inv.state["default_milestone"] = name
    return 0


def main(inv: Invocation) -> int:
    if not inv.argv:
        usage(inv)
    gopts, rest = getopt(inv, inv.argv, "vZ", "Sz")
    if "z" in gopts and "Z" in gopts:
        usage(inv)
    if "z" in gopts:
        inv.fail(f"svcadm: invalid zone '{gopts['z']}'")
    if not rest or rest[0] not in SUBCOMMANDS:
        usage(inv)
    sub = rest[0]
    if sub == "milestone":
        return _milestone(inv, rest[1:])
    flags, with_value = SUBCOMMANDS[sub]
    opts, operands = getopt(inv, rest[1:], flags, with_value)
    mark_state = None
    if sub == "mark":
        if len(operands) < 2 and not ("S" in gopts and operands):
            usage(inv)
        mark_state = operands.pop(0)
        if mark_state == "degraded" and opts.get("t"):
            inv.err("svcadm: -t may not be used with degraded.")
            raise Exit(2)
        if mark_state not in ("maintenance", "degraded"):
            usage(inv)
    services = inv.state.setdefault("services", {})
    if "S" in gopts:
        if operands:
            usage(inv)
        if sub == "clear" and gopts["S"] not in ("maintenance", "degraded"):
            inv.fail("svcadm: State must be 'maintenance' or 'degraded'")
        chosen = [f for f, s in services.items() if s.get("state") == gopts["S"]]
        status = 0
    else:
        if not operands:
            usage(inv)
        chosen, status = resolve_operands(inv, services, operands)
    for fmri in chosen:
        _apply(inv, sub, opts, fmri, services[fmri], bool(gopts.get("v")), mark_state)
    return status
