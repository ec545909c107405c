"""The account files the user stand-ins edit (/etc/passwd, /etc/shadow, /etc/group,
/etc/user_attr), read and rewritten under the guest root, and the messages and exit codes
the illumos oamuser commands share.

Facts from illumos-gate usr/src/cmd/oamuser/: errors go to stderr as `UX: CMD: ERROR:
...` (lib/errmsg.c errmsg(): "UX: %s: " then the message of user/messages.c); exit
codes from inc/users.h as useradd(8)/groupadd(8) document them: 2 syntax, 3 bad argument,
4 id in use, 6 group does not exist, 9 name in use, 10 files not updated, 12 home not
created. New uids and gids start at 100 (findnextuid(), findnextgid(): the first free id
above DEFRID 99). passmgmt -a (which useradd runs) writes the new shadow entry with the
password `*LK*` (passmgmt.c: "locked" until passwd(1) sets one) and lastchg today.
"""

from __future__ import annotations

import os
import time

EX_SYNTAX, EX_BADARG, EX_ID_EXISTS, EX_NAME_NOT_EXIST = 2, 3, 4, 6
EX_NAME_EXISTS, EX_UPDATE, EX_HOMEDIR = 9, 10, 12
FIRST_ID = 100
FILES = ("etc/passwd", "etc/shadow", "etc/group", "etc/user_attr")


def read(root: str, rel: str) -> list[list[str]]:
    try:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()
                    and not line.startswith("#")]
    except FileNotFoundError:
        return []


def write(root: str, rel: str, rows: list[list[str]], mode: int | None = None) -> None:
    path = os.path.join(root, rel)
    keep = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else (mode or 0o644)
    comments = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            comments = [ln for ln in f if ln.startswith("#")]
    tmp = f"{path}.sim-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(comments)
        f.writelines(":".join(row) + "\n" for row in rows)
    os.chmod(tmp, keep)
    os.replace(tmp, path)


def next_id(rows: list[list[str]], column: int) -> int:
    used = {int(r[column]) for r in rows if len(r) > column and r[column].isdigit()}
    n = FIRST_ID
    while n in used:
        n += 1
    return n


def today() -> str:
    return str(int(time.time() // 86400))


def valid_name(name: str) -> bool:
    """valid_login()/valid_gname(): printable, no `:`, not empty; LOGNAME_MAX is 32."""
    return bool(name) and len(name) <= 32 and ":" not in name and name.isprintable() and \
        not name.startswith("-") and "\n" not in name
