"""hostname(1) stand-in: `hostname [-s] [name-of-host]`.

illumos-gate usr/src/man/man1/hostname.1 and usr/src/cmd/hostname/hostname.c:
- no operand: print the live node name (`-s`: only the part before the first dot);
- one operand: set the live name (sethostname(3C) -> sysinfo(SI_SET_HOSTNAME)); it is
  not persistent, /etc/nodename is what the next boot uses. `-s` is accepted and ignored;
- options are parsed with getopt(3C) (`-s` only; options end at the first operand or
  `--`); an unknown option or a second operand prints `usage: hostname [-s]
  [system_name]` and exits 1 (hostname.c's usage() exits 1, not 2);
- the kernel refuses an empty name or one of SYS_NMLN (257) bytes or more with EINVAL:
  `hostname: error in setting name: Invalid argument`, exit 1.
The simulated agent always runs as root, so the EPERM case ("Not owner") is not simulated.
"""

from __future__ import annotations

from sim.standins.base import BadOption, Invocation, posix_getopt

SYS_NMLN = 257
USAGE = "usage: hostname [-s] [system_name]"


def _getopt(inv: Invocation) -> tuple[bool, list[str]]:
    try:
        pairs, operands = posix_getopt(list(inv.argv), "s", "")
    except BadOption:
        inv.fail(USAGE, 1)  # hostname.c's usage() exits 1, not 2
    return bool(pairs), operands


def main(inv: Invocation) -> int:
    short, operands = _getopt(inv)
    if len(operands) > 1:
        inv.fail(USAGE, 1)
    if operands:
        name = operands[0]
        if not name or len(name.encode("utf-8", "surrogateescape")) >= SYS_NMLN:
            inv.fail("hostname: error in setting name: Invalid argument", 1)
        inv.state["hostname"] = name
        return 0
    name = inv.state.get("hostname", "unknown")
    inv.out(name.split(".", 1)[0] if short else name)
    return 0
