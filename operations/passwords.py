"""IDENTITY/passwords: `password`, `chpasswd` (users, list, expire) and `ssh_pwauth`.

Hashes land in /etc/shadow (shadow(5): `name:password:lastchg:min:max:warn:inactive:
expire:flag`), which the agent rewrites whole and atomically with its mode and owner kept,
instead of running passmgmt(8) `-m -p HASH` (what OmniOS's cloud-init port does): a hash
in a command's argv is visible to every process on the guest. Plain passwords are hashed
first (operations/passhash.py, `$6$`); a plain password that the present hash already
matches is left alone, so a resumed step rewrites nothing. `expire` (cloud-init's default
is true) sets lastchg to 0, as `passwd -f` does: the user must choose a new password at
the next login. The other lines of the file are kept byte for byte.

`password` belongs to the default user (operations/accounts.py): with none configured,
to root (unless `disable_root: true`). A user that does not exist is a warning.

`ssh_pwauth` sets `PasswordAuthentication yes|no` in /etc/ssh/sshd_config (the first
uncommented line, else a line appended); when the file changed and svc:/network/ssh is
online, `svcadm refresh` makes sshd re-read it (cloud-init restarts ssh only if it runs).
"""

from __future__ import annotations

import logging
import stat
import time

from fsm.errors import AgentError
from fsm.steps import Context, Outcome
from operations import accounts
from operations.sshkeys import read_regular_file

log = logging.getLogger(__name__)

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSH_FMRI = "svc:/network/ssh:default"
SVCPROP = "/usr/bin/svcprop"
SVCADM = "/usr/sbin/svcadm"


def _verifies(plain: str, present: str) -> bool:
    """Whether a present `$6$` hash is of this plain password (no new salt needed)."""
    if not present.startswith("$6$"):
        return False
    from operations.passhash import crypt_sha512  # only a boot with a plain password

    salt_spec = present[3:].rsplit("$", 1)[0]
    return crypt_sha512(plain, salt_spec) == present


def set_shadow_fields(ctx: Context, fields: dict[str, str], expire: set[str],
                      outcome: Outcome, plain: dict[str, str] | None = None) -> list[str]:
    """Put `fields` (name -> hash, `NP`...) into /etc/shadow; names not there are returned.

    `plain` maps a name to its plain password: when the present hash verifies it, the
    line is kept."""
    system = ctx.system
    text, st = read_regular_file(system, accounts.SHADOW, accounts.MAX_ACCOUNT_FILE_BYTES)
    if text is None:
        raise AgentError(f"{accounts.SHADOW} does not exist; no password set")
    lines = text.split("\n")
    seen: set[str] = set()
    today = str(int(time.time() // 86400))
    for i, line in enumerate(lines):
        parts = line.split(":")
        if len(parts) < 3 or parts[0] not in fields or parts[0] in seen:
            continue
        name = parts[0]
        seen.add(name)
        wanted = fields[name]
        if plain and name in plain and _verifies(plain[name], parts[1]):
            wanted = parts[1]
        new = list(parts)
        if new[1] != wanted:
            new[1] = wanted
            new[2] = today
        if name in expire:
            new[2] = "0"
        if new != parts:
            lines[i] = ":".join(new)
            outcome.changed(f"{accounts.SHADOW}: password of {name} "
                            + ("set" if wanted not in ("NP", "*LK*") else f"set to {wanted}")
                            + (" (expired: to be changed at the next login)"
                               if name in expire else ""))
    new_text = "\n".join(lines)
    if new_text != text:
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o400
        owner = (st.st_uid, st.st_gid) if st is not None else (0, 3)
        system.write_file(accounts.SHADOW, new_text.encode("utf-8", "surrogateescape"),
                          mode=mode, owner=owner)
    return [name for name in fields if name not in seen]


def _wanted(ctx: Context, outcome: Outcome) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> hash, name -> plain) from `password` and `chpasswd`."""
    cc = accounts.config(ctx)
    hashes: dict[str, str] = {}
    plain: dict[str, str] = {}
    if cc is None:
        return hashes, plain
    entries = list(cc.chpasswd)
    if cc.password is not None and not entries:
        owner = accounts.default_user_name(ctx)
        if owner is None and accounts.root_takes_default_keys(ctx):
            owner = accounts.ROOT
        if owner is None:
            outcome.warnings.append("cloud-config password: no default user, and "
                                    "disable_root is true; not set for anyone")
        else:
            from providers.cloudconfig_items import HASH
            from providers.cloudconfig_model import PasswordSpec

            entries.append(PasswordSpec(owner, cc.password,
                                        hashed=bool(HASH.match(cc.password))))
    from operations.passhash import hash_password

    for entry in entries:
        if entry.hashed:
            hashes[entry.name] = entry.secret
        else:
            plain[entry.name] = entry.secret
            hashes[entry.name] = hash_password(entry.secret)
    return hashes, plain


def apply_passwords(ctx: Context) -> Outcome:
    """IDENTITY/passwords: see the module docstring."""
    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None:
        return outcome
    hashes, plain = _wanted(ctx, outcome)
    if hashes:
        expire = set(hashes) if cc.chpasswd_expire else set()
        for name in set_shadow_fields(ctx, hashes, expire, outcome, plain=plain):
            outcome.warnings.append(f"cloud-config chpasswd: user {name} does not exist; "
                                    f"its password was not set")
    if cc.ssh_pwauth is not None:
        _ssh_pwauth(ctx, cc.ssh_pwauth, outcome)
    return outcome


def _ssh_pwauth(ctx: Context, allow: bool, outcome: Outcome) -> None:
    system = ctx.system
    text, st = read_regular_file(system, SSHD_CONFIG, 1 << 20)
    if text is None:
        outcome.warnings.append(f"cloud-config ssh_pwauth: {SSHD_CONFIG} does not exist "
                                f"(no SSH server in this image); ignored")
        return
    value = "yes" if allow else "no"
    lines = text.split("\n")
    for i, line in enumerate(lines):
        words = line.split()
        if words and words[0].lower() == "passwordauthentication":
            lines[i] = f"PasswordAuthentication {value}"
            break
        if words and words[0].lower() == "match":   # options after Match are conditional
            lines.insert(i, f"PasswordAuthentication {value}")
            break
    else:
        if lines and lines[-1] == "":
            lines.insert(len(lines) - 1, f"PasswordAuthentication {value}")
        else:
            lines.append(f"PasswordAuthentication {value}")
    new_text = "\n".join(lines)
    if new_text == text:
        return
    system.write_file(SSHD_CONFIG, new_text.encode("utf-8", "surrogateescape"),
                      mode=stat.S_IMODE(st.st_mode), owner=(st.st_uid, st.st_gid))
    outcome.changed(f"{SSHD_CONFIG}: PasswordAuthentication {value}")
    state = system.run([SVCPROP, "-p", "restarter/state", SSH_FMRI], check=False)
    if state.returncode == 0 and state.stdout.strip() == "online":
        system.apply([SVCADM, "refresh", SSH_FMRI])
        outcome.changed(f"{SSH_FMRI} refreshed: sshd re-reads its configuration")
    else:
        log.info("%s is not online: sshd reads the new setting when it starts", SSH_FMRI)
