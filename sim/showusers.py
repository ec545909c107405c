"""`sim show`'s `users`: the accounts the image did not ship with, and root, as an operator
checks them after boot: passwd fields, the kind of /etc/shadow entry (never the hash
itself: `$6$` and a short digest, `NP`, `*LK*`), lastchg, supplementary groups, RBAC
attributes from /etc/user_attr, and the user's authorized_keys (lines, modes, owner)."""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

SHIPPED_MAX_UID = 99     # the image's system accounts; nobody & co are 60001+


def _rows(root: str, rel: str) -> list[list[str]]:
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            return [ln.rstrip("\n").split(":") for ln in f if ln.strip() and ln[0] != "#"]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _password(field: str) -> str:
    if field.startswith("$"):
        scheme = field.split("$")[1]
        return f"${scheme}$ sha256:{hashlib.sha256(field.encode()).hexdigest()[:12]}"
    return field


def _keys(root: str, home: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rel, key in ((f"{home}/.ssh", "dir"), (f"{home}/.ssh/authorized_keys", "file")):
        try:
            st = os.lstat(os.path.join(root, rel.lstrip("/")))
        except (FileNotFoundError, NotADirectoryError):
            out[key] = None
            continue
        out[key] = {"mode": f"{stat.S_IMODE(st.st_mode):04o}",
                    "owner": f"{st.st_uid}:{st.st_gid}",
                    "type": "symlink" if stat.S_ISLNK(st.st_mode) else
                            "dir" if stat.S_ISDIR(st.st_mode) else "file"}
    try:
        with open(os.path.join(root, home.lstrip("/"), ".ssh/authorized_keys"),
                  encoding="utf-8") as f:
            out["authorized_keys"] = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        out["authorized_keys"] = []
    return out


def users(root: str) -> dict[str, Any]:
    shadow = {r[0]: r for r in _rows(root, "etc/shadow")}
    attrs = {r[0]: r[4] for r in _rows(root, "etc/user_attr") if len(r) > 4}
    groups = _rows(root, "etc/group")
    out = {}
    for row in _rows(root, "etc/passwd"):
        if len(row) < 7 or not row[2].isdigit():
            continue
        uid = int(row[2])
        if row[0] != "root" and (uid <= SHIPPED_MAX_UID or uid >= 60001):
            continue
        entry = shadow.get(row[0], [])
        out[row[0]] = {
            "uid": uid, "gid": int(row[3]) if row[3].isdigit() else row[3],
            "gecos": row[4], "home": row[5], "shell": row[6],
            "password": _password(entry[1]) if len(entry) > 1 else None,
            "lastchg": entry[2] if len(entry) > 2 else None,
            "groups": sorted(g[0] for g in groups if len(g) > 3 and row[0] in g[3].split(",")),
            "user_attr": attrs.get(row[0]),
            "ssh": _keys(root, row[5] if row[0] != "root" else "/root"),
        }
    return out
