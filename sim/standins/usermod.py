"""usermod(8) stand-in, after illumos-gate usr/src/cmd/oamuser/user/usermod.c: the forms
the agent uses, `usermod [-G group[,group]...] [-s shell] [-c comment] [-P profile,...]
[-R role,...] login`. -G replaces the user's supplementary groups (edit_group()); an
unknown login is `UX: usermod: ERROR: LOGIN does not exist.`, exit 6; an unknown group
`group G does not exist.  Choose another.`, exit 6; a bad command line exits 2.
"""

from __future__ import annotations

from sim.standins import acctfiles as af
from sim.standins.base import BadOption, Invocation, posix_getopt

USAGE = "UX: usermod: ERROR: Invalid syntax.\nusage:  usermod -u uid [-o] | -g group | ..."


def main(inv: Invocation) -> int:
    try:
        pairs, operands = posix_getopt(inv.argv, "mo", "cdefGgklsuAPRK")
    except BadOption:
        inv.fail(USAGE, af.EX_SYNTAX)
    opts = dict(pairs)
    if len(operands) != 1 or not opts:
        inv.fail(USAGE, af.EX_SYNTAX)
    login = operands[0]
    passwd = af.read(inv.root, "etc/passwd")
    row = next((r for r in passwd if r[0] == login), None)
    if row is None:
        inv.fail(f"UX: usermod: ERROR: {login} does not exist.", af.EX_NAME_NOT_EXIST)
    groups = af.read(inv.root, "etc/group")
    if "G" in opts:
        wanted = [g for g in opts["G"].split(",") if g]
        for g in wanted:
            if not any(r[0] == g for r in groups):
                inv.fail(f"UX: usermod: ERROR: group {g} does not exist.  Choose another.",
                         af.EX_NAME_NOT_EXIST)
        for r in groups:
            members = [m for m in (r[3] if len(r) > 3 else "").split(",") if m and m != login]
            if r[0] in wanted:
                members.append(login)
            r[3:] = [",".join(members)]
        af.write(inv.root, "etc/group", groups)
    if "s" in opts or "c" in opts:
        row[6] = opts.get("s", row[6])
        row[4] = opts.get("c", row[4])
        af.write(inv.root, "etc/passwd", passwd)
    return 0
