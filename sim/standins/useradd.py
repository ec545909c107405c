"""useradd(8) stand-in, after illumos-gate usr/src/cmd/oamuser/user/useradd.c (main(),
getopt "b:c:Dd:e:f:G:g:k:mop:s:u:A:P:R:K:") and user/messages.c.

    useradd [-u uid [-o]] [-g group] [-G group[,group]...] [-d dir] [-m [-k skel]]
            [-s shell] [-c comment] [-P profile[,profile]...] [-R role[,role]...] login

What the real one does, in its order: check the login name (valid_login: M_INVALID, exit
3; M_USED "%s is already in use.  Choose another.", exit 9), the uid (M_UID_USED exit 4),
the primary group (M_GRP_NOTUSED "group %s does not exist.  Choose another.", exit 6) and
each -G group (valid_lgroup: the same message, exit 6), a relative -d (M_RELPATH, exit
3); then passmgmt -a: /etc/passwd `login:x:uid:gid:comment:dir:shell` and /etc/shadow
`login:*LK*:lastchg::::::` (locked), and -P/-R/-A/-K into /etc/user_attr as
`login::::type=normal;profiles=...;roles=...` (passmgmt's key=value arguments); then -G
membership in /etc/group (edit_group); then -m: the home directory, mode 0755, owned by
the new user (create_home()). Defaults (useradd.dfl / getusrdef): group 1 (other), base
dir /home, shell /bin/sh. Errors: `UX: useradd: ERROR: ...` on stderr.
"""

from __future__ import annotations

import os

from sim.standins import acctfiles as af
from sim.standins.base import BadOption, Invocation, posix_getopt

M_AUSAGE = ("UX: useradd: ERROR: invalid syntax.\nusage:  useradd [-u uid [-o] | -g group | "
            "-G group[[,group]...] |-d dir | -b base_dir |\n\t\t-s shell | -c comment | -m "
            "[-k skel_dir] | -f inactive |\n\t\t-e expire | -A authorization [, authorization "
            "...] |\n\t\t-P profile [, profile ...] | -R role [, role ...] |\n\t\t-K key=value "
            "| -p project [, project ...]] login")
DEFAULT_GID = "1"
DEFAULT_SHELL = "/bin/sh"
DEFAULT_BASE = "/home"


def _err(inv: Invocation, text: str, code: int) -> None:
    inv.fail(f"UX: useradd: ERROR: {text}", code)


def _group_id(inv: Invocation, groups: list[list[str]], name: str) -> str:
    for row in groups:
        if row[0] == name or (name.isdigit() and len(row) > 2 and row[2] == name):
            return row[2]
    _err(inv, f"group {name} does not exist.  Choose another.", af.EX_NAME_NOT_EXIST)
    return ""


def main(inv: Invocation) -> int:
    try:
        pairs, operands = posix_getopt(inv.argv, "Dmo", "bcdefGgkpsuAPRK")
    except BadOption:
        inv.fail(M_AUSAGE, af.EX_SYNTAX)
    opts = dict(pairs)
    if "D" in opts or len(operands) != 1 or ("k" in opts and "m" not in opts):
        inv.fail(M_AUSAGE, af.EX_SYNTAX)
    login = operands[0]
    passwd = af.read(inv.root, "etc/passwd")
    groups = af.read(inv.root, "etc/group")
    if not af.valid_name(login):
        _err(inv, f"{login} is not a valid login name.  Choose another.", af.EX_BADARG)
    if any(r[0] == login for r in passwd):
        _err(inv, f"{login} is already in use.  Choose another.", af.EX_NAME_EXISTS)
    uid = opts.get("u")
    if uid is not None:
        if not uid.isdigit():
            _err(inv, f"{uid} is not a valid user id.  Choose another.", af.EX_BADARG)
        if any(len(r) > 2 and r[2] == uid for r in passwd) and "o" not in opts:
            _err(inv, f"uid {uid} is already in use.  Choose another.", af.EX_ID_EXISTS)
    else:
        uid = str(af.next_id(passwd, 2))
    gid = _group_id(inv, groups, opts["g"]) if "g" in opts else DEFAULT_GID
    extra = [g for g in opts.get("G", "").split(",") if g]
    for g in extra:
        _group_id(inv, groups, g)
    home = opts.get("d") or f"{opts.get('b', DEFAULT_BASE)}/{login}"
    if not home.startswith("/"):
        _err(inv, f"{home} is not a full path name.  Choose another.", af.EX_BADARG)
    shell = opts.get("s", DEFAULT_SHELL)
    passwd.append([login, "x", uid, gid, opts.get("c", ""), home, shell])
    af.write(inv.root, "etc/passwd", passwd)
    shadow = af.read(inv.root, "etc/shadow")
    shadow.append([login, "*LK*", af.today(), "", "", "", "", "", ""])
    af.write(inv.root, "etc/shadow", shadow, 0o400)
    attrs = [f"{k}={opts[f]}" for f, k in (("A", "auths"), ("P", "profiles"), ("R", "roles"))
             if opts.get(f)] + ([opts["K"]] if opts.get("K") else [])
    if attrs:
        rows = af.read(inv.root, "etc/user_attr")
        rows.append([login, "", "", "", ";".join(["type=normal", *attrs])])
        af.write(inv.root, "etc/user_attr", rows)
    for row in groups:
        if row[0] in extra:
            members = [m for m in row[3].split(",") if m] if len(row) > 3 else []
            row[3:] = [",".join([*members, login])]
    if extra:
        af.write(inv.root, "etc/group", groups)
    if "m" in opts:
        path = os.path.join(inv.root, home.lstrip("/"))
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(path, int(uid), int(gid))
        except OSError as e:
            _err(inv, f"Unable to create the home directory: {e.strerror}.", af.EX_HOMEDIR)
    return 0
