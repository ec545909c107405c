"""The cloud-config subset the agent applies, as plain frozen records (fsm/record.py).

`providers/cloudconfig.py` parses `#cloud-config` user-data and vendor-data into a
`CloudConfig`; the steps in `operations/` (users, passwords, write-files, runcmd...) read
it. Secrets (plain passwords, password hashes, file contents, commands) are fields with
`repr=False`, so a record printed in a log or a traceback never shows them, and nothing
here is ever checkpointed (only step records are).
"""

from __future__ import annotations

from fsm.record import field, record


@record(frozen=True)
class UserSpec:
    """One entry of `users` (not `default`, which the parser resolves to a flag)."""

    name: str
    gecos: str | None = None
    shell: str | None = None
    homedir: str | None = None
    primary_group: str | None = None
    groups: tuple[str, ...] = ()
    lock_passwd: bool | None = None          # None: not given (true for users we create)
    passwd: str | None = field(default=None, repr=False)   # a crypt(3C) hash, never plain
    plain_passwd: str | None = field(default=None, repr=False)  # hashed before it is written
    ssh_authorized_keys: tuple[str, ...] = field(default=(), repr=False)
    profiles: tuple[str, ...] = ()           # RBAC execution profiles (user_attr profiles=)
    roles: tuple[str, ...] = ()              # RBAC roles the user may assume (roles=)
    uid: int | None = None
    no_create_home: bool = False


@record(frozen=True)
class GroupSpec:
    name: str
    members: tuple[str, ...] = ()


@record(frozen=True)
class PasswordSpec:
    """One password to set: `chpasswd` users/list, or `password` for the default user."""

    name: str
    secret: str = field(repr=False)
    hashed: bool = False                     # a crypt(3C) hash already (`$6$...`)


@record(frozen=True)
class WriteFile:
    path: str
    content: bytes = field(repr=False)
    owner: str = "root:root"
    permissions: int = 0o644
    append: bool = False
    defer: bool = False


@record(frozen=True)
class CloudConfig:
    """The merged cloud-config (vendor-data under user-data); empty fields mean absent."""

    modules: tuple[str, ...] = ()            # the top-level keys taken, for `seed inspect`
    hostname: str | None = None
    fqdn: str | None = None
    preserve_hostname: bool = False
    ssh_authorized_keys: tuple[str, ...] = field(default=(), repr=False)
    disable_root: bool | None = None         # None: not given
    default_user: bool = False               # `default` was listed in `users`
    users_given: bool = False                # `users` was given (else: as if [default])
    user: UserSpec | None = None             # `user`: the default user's name/attributes
    users: tuple[UserSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    password: str | None = field(default=None, repr=False)   # plain or hash, default user
    chpasswd: tuple[PasswordSpec, ...] = field(default=(), repr=False)
    chpasswd_expire: bool = True
    ssh_pwauth: bool | None = None
    write_files: tuple[WriteFile, ...] = ()
    runcmd: tuple[str, ...] = field(default=(), repr=False)   # shell lines
    bootcmd: tuple[str, ...] = field(default=(), repr=False)
    timezone: str | None = None
    packages: tuple[str, ...] = ()
    package_update: bool = False
    package_upgrade: bool = False
    # fs_setup's ZFS entries as `[storage] pools` entries ({"name", "disks"}), checked by
    # operations/poolspec.py like the settings' (providers/cloudconfig_disks.py).
    pools: tuple[dict, ...] = ()
