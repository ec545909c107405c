"""svcprop(1) stand-in, after illumos-gate usr/src/man/man1/svcprop.1 and
usr/src/cmd/svc/svcprop/svcprop.c.

    svcprop [-fqtv] [-C | -c | -s snapshot] [-z zone] [-p [name/]name]... {FMRI | pattern}...

Properties come from `state["services"][FMRI]["properties"]` (`"pg/prop": [type, value]`,
the value a scalar or a list), plus the two every instance has: `general/enabled`
(boolean, from `enabled`) and `restarter/state` (astring, from `state`). The running
snapshot, the composed view and the directly attached properties are the same thing here,
so `-C`, `-c` and `-s` only get svcprop's checks (mutually exclusive).

Output as svcprop.c prints it: one selected property prints its values alone, separated by
spaces, each with the Bourne shell's metacharacters backslash-quoted and an empty string
as `""`; with `-t`, `-f`, a property group (`-p pg`), no `-p` at all, mixed `-p` forms or
several matched instances, each line is `pg/prop type values` (`-f` or several instances:
the property's full FMRI as designator). A missing property or group prints
`svcprop: Couldn't find property `pg/prop' for instance `FMRI'.` and exits 1 (`-q`: no
output, exit 1). `-w` would block until the property changes, which nothing here would
ever do: it is refused as a usage error. `-z ZONE` names a zone that does not exist.
"""

from __future__ import annotations

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt
from sim.standins.svcadm import match

USAGE = ("Usage: svcprop [-fqtv] [-C | -c | -s snapshot] [-z zone] [-p [name/]name]... \n"
         "         {FMRI | pattern}...\n"
         "       svcprop -w [-fqtv] [-z zone] [-p [name/]name] {FMRI | pattern}")
SHELL_METACHARS = ";&()|^<>\n \t\\\"'`"


def _usage(inv: Invocation) -> None:
    inv.err(USAGE)
    raise Exit(2)


def quote(value: str) -> str:
    """svcprop.c quote_for_shell()."""
    if value == "":
        return '""'
    return "".join("\\" + ch if ch in SHELL_METACHARS else ch for ch in value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def properties_of(svc: dict) -> dict[str, tuple[str, list[str]]]:
    props: dict[str, tuple[str, list[str]]] = {
        "general/enabled": ("boolean", ["true" if svc.get("enabled") else "false"]),
        "restarter/state": ("astring", [str(svc.get("state", "uninitialized"))]),
    }
    for name, (ptype, value) in svc.get("properties", {}).items():
        values = value if isinstance(value, list) else [value]
        props[name] = (ptype, [_text(v) for v in values])
    return props


def _parse(inv: Invocation) -> tuple[dict[str, object], list[str], list[str]]:
    """svcprop's getopt(3C) loop "Ccfp:qs:tvwz:": -p repeats; -C, -c, -s, -w exclude
    one another; options end at the first operand or `--`."""
    try:
        pairs, operands = posix_getopt(list(inv.argv), "Ccfqtvw", "psz")
    except BadOption:
        _usage(inv)
    opts: dict[str, object] = {}
    selected: list[str] = []
    for letter, value in pairs:
        if letter == "p":
            selected.append(value)
        else:
            opts[letter] = value
        if letter in "Ccsw" and sum(k in opts for k in "Ccsw") > 1:
            _usage(inv)
    if not operands:
        _usage(inv)
    for name in selected:
        parts = name.split("/")
        if len(parts) > 2:
            inv.err(f"svcprop: -p argument `{name}' has too many components.")
            _usage(inv)
        for part in parts:
            if not part:
                inv.err(f"svcprop: Invalid component name `{part}'.")
                raise Exit(2)
    return opts, selected, operands


def main(inv: Invocation) -> int:
    opts, selected, operands = _parse(inv)
    if "w" in opts:
        inv.err("svcprop: -w is not simulated (nothing would ever change the property)")
        _usage(inv)
    quiet = bool(opts.get("q"))
    warn = not quiet or bool(opts.get("v"))
    if "z" in opts:
        if warn:
            inv.err(f"svcprop: invalid zone '{opts['z']}'")
        raise Exit(1)
    services = inv.state.get("services", {})
    matched: list[str] = []
    status = 0
    for operand in operands:
        found = match(services, operand)
        if not found:
            if warn:
                inv.err(f"svcprop: Pattern '{operand}' doesn't match any entities")
            status = 1
        matched.extend(f for f in found if f not in matched)
    full_fmri = bool(opts.get("f")) or len(matched) > 1
    types = bool(opts.get("t")) or full_fmri or len({"/" in s for s in selected}) > 1

    def show(fmri: str, name: str, prop: tuple[str, list[str]], with_type: bool) -> None:
        if quiet:
            return
        ptype, values = prop
        shown = " ".join(quote(v) for v in values)
        if not with_type:
            inv.out(shown)
            return
        designator = f"{fmri}/:properties/{name}" if full_fmri else name
        inv.out(f"{designator} {ptype} {shown}")

    for fmri in matched:
        props = properties_of(services[fmri])
        groups = {n.split("/")[0] for n in props}
        if not selected:
            for name in sorted(props):
                show(fmri, name, props[name], True)
        for wanted in selected:
            pg = wanted.split("/")[0]
            if "/" in wanted and wanted in props:
                show(fmri, wanted, props[wanted], types)
                continue
            if "/" not in wanted and pg in groups:
                for name in sorted(n for n in props if n.split("/")[0] == pg):
                    show(fmri, name, props[name], True)
                continue
            if pg not in groups:
                problem = f"Couldn't find property group `{pg}' for instance `{fmri}'."
            else:
                problem = f"Couldn't find property `{wanted}' for instance `{fmri}'."
            if not warn:
                raise Exit(1)
            inv.err(f"svcprop: {problem}")
            status = 1
    return status
