"""groupadd(8) stand-in, after illumos-gate usr/src/cmd/oamuser/group/groupadd.c.

    groupadd [-g gid [-o]] group

getopt "g:o"; a bad command line prints `UX: groupadd: ERROR: invalid syntax.` and the
usage, exit 2; a name in use: `UX: groupadd: ERROR: NAME is already in use.  Choose
another.`, exit 9; a gid in use without -o: exit 4. The new line in /etc/group is
`name::gid:` (no password, no members); the gid the first free one from 100.
"""

from __future__ import annotations

from sim.standins import acctfiles as af
from sim.standins.base import BadOption, Invocation, posix_getopt

USAGE = "usage:  groupadd [-g gid [-o]] group"


def main(inv: Invocation) -> int:
    try:
        pairs, operands = posix_getopt(inv.argv, "o", "g")
    except BadOption:
        inv.fail(f"UX: groupadd: ERROR: invalid syntax.\n{USAGE}", af.EX_SYNTAX)
    opts = dict(pairs)
    if len(operands) != 1:
        inv.fail(f"UX: groupadd: ERROR: invalid syntax.\n{USAGE}", af.EX_SYNTAX)
    name = operands[0]
    rows = af.read(inv.root, "etc/group")
    if not af.valid_name(name):
        inv.fail(f"UX: groupadd: ERROR: {name} is not a valid group name.  Choose another.",
                 af.EX_BADARG)
    if any(r[0] == name for r in rows):
        inv.fail(f"UX: groupadd: ERROR: {name} is already in use.  Choose another.",
                 af.EX_NAME_EXISTS)
    gid = opts.get("g")
    if gid is not None:
        if not str(gid).isdigit():
            inv.fail(f"UX: groupadd: ERROR: {gid} is not a valid group id.  Choose another.",
                     af.EX_BADARG)
        if any(r[2] == gid for r in rows if len(r) > 2) and "o" not in opts:
            inv.fail(f"UX: groupadd: ERROR: {gid} is already in use.  Choose another.",
                     af.EX_ID_EXISTS)
    else:
        gid = str(af.next_id(rows, 2))
    rows.append([name, "", gid, ""])
    af.write(inv.root, "etc/group", rows)
    return 0
