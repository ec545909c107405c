"""IDENTITY/users: cloud-config `groups` and `users` (the default user, root, named users).

Accounts are made by the system's own tools, run through the system layer like every
command: `groupadd NAME`, then `useradd [-c GECOS] [-s SHELL] [-g GROUP] [-G G1,G2]
[-P PROFILES] [-R ROLES] [-u UID] -m -d HOME NAME` (useradd(8); illumos useradd runs
passmgmt(8) itself and records -P/-R in /etc/user_attr, the RBAC way OmniOS's cloud-init
port gives its default user "Primary Administrator"). Homes go under /export/home: /home is
the automounter's on illumos. Missing groups named by a user are created first, as
cloud-init does. A user that already exists (root included) is not changed by useradd:
only its keys and, when asked, its password are applied.

illumos useradd leaves a new account locked (`*LK*` in /etc/shadow), and a locked account
cannot log in at all, not even with a key. So a user this step creates gets `NP` (no
password: key login only) or, with `lock_passwd: false`, its `passwd` hash. The shadow
field is written by rewriting /etc/shadow whole and atomically (operations/passwords.py),
never by passing a hash in a command's argv. Each user's keys are merged into
HOME/.ssh/authorized_keys (0700 and 0600, owned by the user) without removing lines; root's
go through the ssh-keys step. One user failing (a refused name, useradd exiting non-zero)
never stops the others: the step fails at the end, naming them, so `svcadm clear` retries.
"""

from __future__ import annotations

import logging
import stat

from fsm.checkpoint import STARTED, UNKNOWN_INSTANCE
from fsm.errors import AgentError, CommandError, shown
from fsm.steps import Context, Outcome
from operations import accounts, passwords
from operations.sshkeys import UnsafeFileError, read_regular_file
from operations.validate import MAX_KEYS_TOTAL_BYTES, parse_authorized_keys
from providers.cloudconfig_model import UserSpec

log = logging.getLogger(__name__)


def _hash(plain: str) -> str:
    """A `$6$` hash: passhash (and the secrets and hmac modules behind its salt) is loaded
    only by a boot that has a plain password to hash."""
    from operations.passhash import hash_password

    return hash_password(plain)


USERADD = "/usr/sbin/useradd"
GROUPADD = "/usr/sbin/groupadd"
HOME_BASE = "/export/home"
HOME_BASES = ("/export/home/", "/home/")


def _ensure_groups(ctx: Context, names: list[str], outcome: Outcome) -> None:
    present = accounts.groups(ctx)
    for name in names:
        made = f"group {name} created"
        if name not in present and made not in outcome.changes:   # (a plan makes none)
            ctx.system.apply([GROUPADD, name])
            outcome.changed(made)


def _home(spec: UserSpec, present: dict[str, accounts.Account], outcome: Outcome) -> str:
    """The new user's home: `homedir` when it is a home of its own under /export/home or
    /home, else HOME_BASE/NAME with a warning. A home shared with another account (/root,
    /var/adm...) would hand that account's authorized_keys to the new user."""
    default = f"{HOME_BASE}/{spec.name}"
    if spec.homedir is None:
        return default
    own = spec.homedir.rstrip("/")
    if own.startswith(HOME_BASES) and own.count("/") == 3 and \
            not any(a.home.rstrip("/") == own for a in present.values()):
        return own
    outcome.warnings.append(f"cloud-config users: {spec.name}: homedir {shown(spec.homedir)} "
                            f"is not a home of its own under {' or '.join(HOME_BASES)}; "
                            f"{default} used")
    return default


def _useradd_argv(spec: UserSpec, home: str) -> list[str]:
    argv = [USERADD]
    for flag, value in (("-c", spec.gecos), ("-s", spec.shell), ("-g", spec.primary_group),
                        ("-G", ",".join(spec.groups)), ("-P", ",".join(spec.profiles)),
                        ("-R", ",".join(spec.roles)),
                        ("-u", str(spec.uid) if spec.uid is not None else None)):
        if value:
            argv += [flag, value]
    if not spec.no_create_home:
        argv.append("-m")
    return [*argv, "-d", home, spec.name]


def _new_shadow_field(spec: UserSpec, outcome: Outcome) -> str:
    """What a user we just created gets instead of useradd's `*LK*`."""
    secret = spec.passwd or (_hash(spec.plain_passwd) if spec.plain_passwd else None)
    if secret and spec.lock_passwd is False:
        return secret
    if secret:
        outcome.warnings.append(f"cloud-config users: {spec.name}: its password is not set "
                                f"because lock_passwd is true (the default); give "
                                f"`lock_passwd: false` to use it")
    return "NP"


def _install_user_keys(ctx: Context, account: accounts.Account, outcome: Outcome) -> None:
    wanted_lines = accounts.keys_for(ctx, account.name)
    if not wanted_lines:
        return
    origin = f"{ctx.metadata.source}:cloud-config users.{account.name}.ssh_authorized_keys"
    wanted, problems = parse_authorized_keys("\n".join(wanted_lines), origin)
    outcome.warnings.extend(problems)
    shared = [a.name for a in accounts.accounts(ctx).values()
              if a.home.rstrip("/") == account.home.rstrip("/") and a.uid != account.uid]
    if shared or account.home.rstrip("/") in ("", "/root"):
        outcome.warnings.append(f"cloud-config users: {account.name}: home {account.home} is "
                                f"shared with {', '.join(shared) or 'root'}; its keys were "
                                f"not installed")
        return
    if not wanted or not account.home.startswith("/"):
        return
    system, owner = ctx.system, (account.uid, account.gid)
    ssh_dir, path = f"{account.home}/.ssh", f"{account.home}/.ssh/authorized_keys"
    try:
        st = system.stat(ssh_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeFileError(ssh_dir, "is a link or not a directory")
    except FileNotFoundError:
        pass
    present_text, _ = read_regular_file(system, path, 4 * MAX_KEYS_TOTAL_BYTES)
    present = [ln for ln in (present_text or "").split("\n") if ln]
    have = {key_id for ln in present for key_id in _ids(ln)}
    added = [ln for ln in wanted if not any(key_id in have for key_id in _ids(ln))]
    if not system.exists(account.home):
        system.ensure_dir(account.home, mode=0o755, owner=owner)
        outcome.changed(f"{account.home} created")
    if system.ensure_dir(ssh_dir, mode=0o700, owner=owner):
        outcome.changed(f"{ssh_dir} (mode 0700, owner {account.name})")
    if added or present_text is None:
        text = "".join(ln + "\n" for ln in present + added)
        system.write_file(path, text.encode("utf-8", "surrogateescape"), mode=0o600, owner=owner)
        outcome.changed(f"{path} ({len(added)} key(s) added)")


def _ids(line: str) -> list[str]:
    """`TYPE BLOB` of a key line, whatever options lead it."""
    words = line.split()
    return [f"{words[i]} {words[i + 1]}" for i in range(len(words) - 1)
            if words[i].startswith(("ssh-", "ecdsa-", "sk-"))][:1]


STEP_KEY = "IDENTITY/users"


def _interrupted_intent(ctx: Context) -> dict:
    cp = ctx.checkpoint
    rec = cp.instances.get(cp.instance_id or UNKNOWN_INSTANCE, {}).get(STEP_KEY) or {}
    return rec.get("intent") or {} if rec.get("status") == STARTED else {}


def users_intent(ctx: Context) -> dict:
    """The users this run is to create, recorded before it runs: useradd leaves `*LK*`, and
    a run killed between useradd and the shadow write must still give the user `NP` or
    its hash when it runs again, though the user then already exists. A run resumed after
    such a kill keeps the names the killed run recorded."""
    cc = accounts.config(ctx)
    if cc is None:
        return {}
    specs, _ = accounts.wanted_users(ctx)
    present = accounts.accounts(ctx)
    creates = list(_interrupted_intent(ctx).get("creates", []))
    creates += [s.name for s in specs if s.name not in present and s.name not in creates]
    return {"creates": creates} if creates else {}


def apply_users(ctx: Context) -> Outcome:
    """IDENTITY/users: see the module docstring."""
    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None:
        return outcome
    creating = set(_interrupted_intent(ctx).get("creates", []))
    specs, warnings = accounts.wanted_users(ctx)
    outcome.warnings.extend(warnings)
    failed: list[str] = []
    group_names = [g.name for g in cc.groups]
    try:
        _ensure_groups(ctx, group_names, outcome)
    except CommandError as e:
        failed.append(f"groups ({e})")
    shadow_fields: dict[str, str] = {}
    plain: dict[str, str] = {}
    for spec in specs:
        try:
            present = accounts.accounts(ctx)
            if spec.name not in present:
                _ensure_groups(ctx, [g for g in (*spec.groups, spec.primary_group) if g],
                               outcome)
                home = _home(spec, present, outcome)
                ctx.system.apply(_useradd_argv(spec, home))
                outcome.changed(f"user {spec.name} created (home {home}"
                                + (f", profiles {', '.join(spec.profiles)}" if spec.profiles
                                   else "") + ")")
                shadow_fields[spec.name] = _new_shadow_field(spec, outcome)
                present = accounts.accounts(ctx)
            elif spec.name in creating:    # made by a run that was killed before this
                shadow_fields[spec.name] = _new_shadow_field(spec, Outcome())
            elif spec.lock_passwd is False and (spec.passwd or spec.plain_passwd):
                shadow_fields[spec.name] = spec.passwd or _hash(spec.plain_passwd or "")
                if not spec.passwd and spec.plain_passwd:
                    plain[spec.name] = spec.plain_passwd   # a matching hash is kept
            if spec.name in present and spec.name != accounts.ROOT:
                _install_user_keys(ctx, present[spec.name], outcome)
        except (AgentError, OSError) as e:
            failed.append(f"{spec.name} ({e})")
    for name, value in _member_updates(ctx, cc.groups):
        outcome.warnings.append(f"cloud-config groups: {name}: member {shown(value)} is not "
                                f"a user here; not added")
    if shadow_fields:
        passwords.set_shadow_fields(ctx, shadow_fields, expire=set(), outcome=outcome,
                                    plain=plain)
    if failed:
        raise AgentError(f"cloud-config users not applied: {'; '.join(failed)}")
    return outcome


def _member_updates(ctx: Context, groups) -> list[tuple[str, str]]:  # noqa: ANN001
    """Members named in `groups` are added with usermod -G; unknown users are reported."""
    missing: list[tuple[str, str]] = []
    present = accounts.accounts(ctx)
    current = accounts.groups(ctx)
    for group in groups:
        for member in group.members:
            if member not in present:
                missing.append((group.name, member))
                continue
            if member in current.get(group.name, (0, ()))[1]:
                continue
            mine = [g for g, (_, members) in current.items() if member in members]
            ctx.system.apply(["/usr/sbin/usermod", "-G", ",".join([*mine, group.name]), member])
            current = accounts.groups(ctx)
    return missing
