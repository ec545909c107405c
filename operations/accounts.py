"""The guest's account files, read; and who gets which keys and passwords.

/etc/passwd, /etc/group and /etc/shadow are read through the system layer (never through a
link, capped), parsed into plain tuples; the commands that change them (useradd, groupadd,
usermod) and the one file the agent rewrites itself (/etc/shadow, for password hashes, so
no hash ever reaches a command's argv) are in operations/users.py and passwords.py.

The default user: cloud-init's `default` entry in `users`, and the user `password` and
the top-level `ssh_authorized_keys` belong to. There is no convention across illumos
distributions, so it is a setting (`[users] default`), unset by default; cloud-config's
`user:` key (Proxmox VE writes `user: NAME`) names it too. With none, `default` in `users`
is a warning, and root stands in for it (root is who the agent has always given the
metadata's keys to) unless the cloud-config says `disable_root: true`.
"""

from __future__ import annotations

from fsm.record import record, replace
from fsm.steps import Context
from operations.sshkeys import read_regular_file
from providers.cloudconfig_model import CloudConfig, UserSpec

PASSWD = "/etc/passwd"
GROUP = "/etc/group"
SHADOW = "/etc/shadow"
USER_ATTR = "/etc/user_attr"
MAX_ACCOUNT_FILE_BYTES = 4 << 20
ROOT = "root"


@record(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def _fields(text: str | None, count: int) -> list[list[str]]:
    rows = []
    for line in (text or "").split("\n"):
        if not line or line.startswith(("#", "+", "-")):
            continue
        parts = line.split(":")
        if len(parts) >= count:
            rows.append(parts)
    return rows


def accounts(ctx: Context) -> dict[str, Account]:
    text, _ = read_regular_file(ctx.system, PASSWD, MAX_ACCOUNT_FILE_BYTES)
    out = {}
    for p in _fields(text, 7):
        if p[2].isdigit() and p[3].isdigit():
            out[p[0]] = Account(p[0], int(p[2]), int(p[3]), p[5])
    return out


def groups(ctx: Context) -> dict[str, tuple[int, tuple[str, ...]]]:
    """group name -> (gid, members)."""
    text, _ = read_regular_file(ctx.system, GROUP, MAX_ACCOUNT_FILE_BYTES)
    return {p[0]: (int(p[2]), tuple(m for m in p[3].split(",") if m))
            for p in _fields(text, 4) if p[2].isdigit()}


def default_user_name(ctx: Context) -> str | None:
    cc = config(ctx)
    if cc is not None and cc.user is not None:
        return cc.user.name
    return ctx.settings.get("users.default") or None


def config(ctx: Context) -> CloudConfig | None:
    return ctx.metadata.cloud_config if ctx.metadata is not None else None


def root_takes_default_keys(ctx: Context) -> bool:
    """Whether root gets the top-level `ssh_authorized_keys` and `password`."""
    cc = config(ctx)
    default = default_user_name(ctx)
    disable_root = cc.disable_root if cc is not None else None
    if default == ROOT:
        return True
    if default is None:
        return disable_root is not True
    return disable_root is False


def wanted_users(ctx: Context) -> tuple[list[UserSpec], list[str]]:
    """The users to create or configure, default user first, and warnings."""
    cc = config(ctx)
    if cc is None:
        return [], []
    warnings: list[str] = []
    specs = list(cc.users)
    default = default_user_name(ctx)
    wants_default = cc.default_user or not cc.users_given or cc.user is not None
    if cc.default_user and default is None:
        warnings.append("cloud-config users: `default` is listed, but no default user is "
                        "configured ([users] default in /etc/metadata-agent.toml, or `user:` "
                        "in the cloud-config); skipped: root takes its keys and password"
                        + (" (disable_root: true: nobody does)" if cc.disable_root else ""))
    if default is not None and wants_default:
        base = cc.user if cc.user is not None else UserSpec(name=default)
        profiles = ctx.settings.get("users.default_profiles")
        if not base.profiles and profiles and default != ROOT:
            base = replace(base, profiles=tuple(p.strip() for p in profiles.split(",")))
        if base.gecos is None and default != ROOT:
            base = replace(base, gecos="default user")
        named = next((s for s in specs if s.name == default), None)
        if named is not None:   # listed by name too: that entry's attributes win
            specs.remove(named)
            base = replace(base, **{k: v for k, v in named.__dict__.items()
                                    if v not in (None, (), False)})
        specs.insert(0, base)
    return specs, warnings


def keys_for(ctx: Context, name: str) -> tuple[str, ...]:
    """Every key line `name` should have, from the cloud-config (and, for the default user,
    the metadata's own keys)."""
    cc = config(ctx)
    md = ctx.metadata
    keys: list[str] = []
    default = default_user_name(ctx)
    if cc is not None:
        if name == default or (name == ROOT and root_takes_default_keys(ctx)):
            keys += cc.ssh_authorized_keys
        for spec in cc.users:
            if spec.name == name:
                keys += spec.ssh_authorized_keys
        if cc.user is not None and cc.user.name == name:
            keys += cc.user.ssh_authorized_keys
    if md is not None and name == default and name != ROOT:
        keys += md.ssh_keys
    return tuple(dict.fromkeys(keys))
