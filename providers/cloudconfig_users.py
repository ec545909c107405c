"""cloud-config `users`, `user`, `groups`, `password` and `chpasswd`: type checks and
safe names (see cloudconfig_items.py for the handler contract). Passwords and hashes are
never quoted in a warning.
"""

from __future__ import annotations

from fsm.errors import shown
from providers.cloudconfig_items import (
    HASH,
    MAX_ITEMS,
    NAME,
    PROFILE,
    _bool,
    _keys,
    _names,
    _str,
)
from providers.cloudconfig_model import GroupSpec, PasswordSpec, UserSpec

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

# ---- users and groups --------------------------------------------------------------------

USER_KEYS = ("name", "gecos", "shell", "homedir", "primary_group", "groups", "lock_passwd",
             "passwd", "hashed_passwd", "plain_text_passwd", "ssh_authorized_keys",
             "ssh-authorized-keys", "profiles", "roles", "uid", "no_create_home")


def _user(item: dict, where: str, warnings: list[str]) -> UserSpec | None:
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        warnings.append(f"{where}: name {shown(name)} is not a valid login name (letters, "
                        f"digits, `_`, `.`, `-`; at most 32; no shell characters); user skipped")
        return None
    spec: dict[str, Any] = {"name": name}
    for key, value in item.items():
        at = f"{where}.{key}"
        if key not in USER_KEYS:
            note = "; use profiles (RBAC) instead" if key == "sudo" else ""
            warnings.append(f"{at}: not supported{note}; ignored")
        elif key in ("gecos",):
            text = _str(value, at, warnings)
            if text is not None and (":" in text or "\n" in text or len(text) > 256):
                warnings.append(f"{at}: {shown(text)} has a `:` or newline or is too long; ignored")
            elif text is not None:
                spec["gecos"] = text
        elif key in ("shell", "homedir"):
            text = _str(value, at, warnings)
            if text is not None and (not text.startswith("/") or ":" in text or
                                     "/../" in text + "/" or any(c.isspace() for c in text)):
                warnings.append(f"{at}: {shown(text)} is not an absolute path; ignored")
            elif text is not None:
                spec[key] = text
        elif key == "primary_group":
            names = _names([value] if isinstance(value, str) else value, at, warnings)
            if names:
                spec["primary_group"] = names[0]
        elif key in ("groups",):
            spec["groups"] = _names(value, at, warnings)
        elif key in ("profiles", "roles"):
            spec[key] = _names(value, at, warnings,
                               PROFILE if key == "profiles" else NAME, key[:-1])
        elif key in ("lock_passwd", "no_create_home"):
            flag = _bool(value, at, warnings)
            if flag is not None:
                spec[key] = flag
        elif key in ("passwd", "hashed_passwd"):
            if isinstance(value, str) and HASH.match(value):
                spec["passwd"] = value
            else:
                warnings.append(f"{at}: not a crypt(3C) password hash (`$id$salt$hash`); "
                                f"ignored (the value is not shown)")
        elif key == "plain_text_passwd":
            text = _str(value, at, warnings, secret=True)
            if text is not None and "\n" not in text:
                spec["plain_passwd"] = text
        elif key in ("ssh_authorized_keys", "ssh-authorized-keys"):
            spec["ssh_authorized_keys"] = _keys(value, at, warnings)
        elif key == "uid":
            if isinstance(value, bool) or not (isinstance(value, int) or
                                               (isinstance(value, str) and value.isdigit())):
                warnings.append(f"{at}: {shown(value)} is not a user id; ignored")
            elif not 100 <= int(value) <= 2147483646:
                warnings.append(f"{at}: {int(value)} is reserved or out of range; ignored")
            else:
                spec["uid"] = int(value)
    return UserSpec(**spec)


def _users(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, dict):   # the old mapping form: name -> attributes
        value = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in value.items()]
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list, not {type(value).__name__}; ignored")
        return
    users: list[UserSpec] = []
    fields["users_given"] = True
    for i, item in enumerate(value[:MAX_ITEMS]):
        if item == "default":
            fields["default_user"] = True
            continue
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            warnings.append(f"{where}[{i}]: must be `default`, a name or a mapping, not "
                            f"{type(item).__name__}; skipped")
            continue
        spec = _user(item, f"{where}[{i}]", warnings)
        if spec is not None and any(u.name == spec.name for u in users):
            warnings.append(f"{where}[{i}]: user {spec.name} is listed twice; the first is used")
        elif spec is not None:
            users.append(spec)
    fields["users"] = tuple(users)


def _default_user(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    """`user`: the default user's name (Proxmox VE writes `user: NAME`) or attributes."""
    item = {"name": value} if isinstance(value, str) else value
    if not isinstance(item, dict):
        warnings.append(f"{where}: must be a name or a mapping, not {type(value).__name__}; "
                        f"ignored")
        return
    spec = _user(item, where, warnings)
    if spec is not None:
        fields["user"] = spec


def _manage_etc_hosts(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if value not in (True, "localhost", "template"):
        warnings.append(f"{where}: {shown(value)}: the hostname step always names the host on "
                        f"the loopback lines of /etc/inet/hosts; ignored")


def _groups(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if isinstance(value, (str, dict)):
        value = [value] if isinstance(value, dict) else [v.strip() for v in value.split(",")]
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list, not {type(value).__name__}; ignored")
        return
    groups: list[GroupSpec] = []
    for i, item in enumerate(value[:MAX_ITEMS]):
        entries = item.items() if isinstance(item, dict) else [(item, [])]
        for name, members in entries:
            if not isinstance(name, str) or not NAME.match(name):
                warnings.append(f"{where}[{i}]: {shown(name)} is not a valid group name; skipped")
                continue
            groups.append(GroupSpec(name, _names(members or [], f"{where}[{i}].{name}",
                                                 warnings)))
    fields["groups"] = tuple(groups)


# ---- passwords ---------------------------------------------------------------------------

def _password(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    text = _str(value, where, warnings, secret=True)
    if text is not None and "\n" not in text and text:
        fields["password"] = text


def _chpasswd(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if not isinstance(value, dict):
        warnings.append(f"{where}: must be a mapping, not {type(value).__name__}; ignored")
        return
    out: list[PasswordSpec] = []
    for key, item in value.items():
        at = f"{where}.{key}"
        if key == "expire":
            flag = _bool(item, at, warnings)
            if flag is not None:
                fields["chpasswd_expire"] = flag
        elif key == "users" and isinstance(item, list):
            for i, entry in enumerate(item[:MAX_ITEMS]):
                out += _chpasswd_user(entry, f"{at}[{i}]", warnings)
        elif key == "list":
            lines = item.splitlines() if isinstance(item, str) else item
            if not isinstance(lines, list):
                warnings.append(f"{at}: must be a list or lines of `user:password`; ignored")
                continue
            for i, line in enumerate(lines[:MAX_ITEMS]):
                name, sep, secret = line.partition(":") if isinstance(line, str) else ("", "", "")
                kind = "hash" if HASH.match(secret) else "text"
                out += _chpasswd_user({"name": name, "password": secret, "type": kind}
                                      if sep else None, f"{at}[{i}]", warnings)
        else:
            warnings.append(f"{at}: not supported; ignored")
    fields["chpasswd"] = tuple(out)


def _chpasswd_user(entry: Any, where: str, warnings: list[str]) -> list[PasswordSpec]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or \
            not NAME.match(entry["name"]):
        warnings.append(f"{where}: needs a valid user name and a password; skipped")
        return []
    kind = entry.get("type", "hash")
    secret = entry.get("password")
    if kind == "RANDOM" or secret in ("R", "RANDOM"):
        warnings.append(f"{where}: RANDOM passwords are not supported (the agent never "
                        f"shows a secret); {entry['name']} skipped")
        return []
    if not isinstance(secret, str) or not secret or "\n" in secret or kind not in ("hash", "text"):
        warnings.append(f"{where}: {entry['name']}: needs a text password and type hash or "
                        f"text; skipped (the value is not shown)")
        return []
    if kind == "hash" and not HASH.match(secret):
        warnings.append(f"{where}: {entry['name']}: type is hash but the password is not a "
                        f"crypt(3C) hash; skipped (the value is not shown)")
        return []
    return [PasswordSpec(entry["name"], secret, hashed=kind == "hash")]
