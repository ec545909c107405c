"""`seed inspect` and `plan`: every cloud-config module of a seed and what it would do.

One line per module the agent takes, in the order the steps apply them; secrets (hashes,
plain passwords, file contents, commands) are described, never shown: a password is
"a $6$ hash" or "plain text, hashed before it is written", a file its path, size, mode and
owner, runcmd its number of commands.
"""

from __future__ import annotations

from providers.cloudconfig_model import CloudConfig


def _secret(value: str) -> str:
    return f"a ${value.split('$')[1]}$ hash" if value.startswith("$") else \
        "plain text, hashed ($6$) before it is written"


def describe_cloud_config(cc: CloudConfig) -> list[str]:
    out = [f"modules: {', '.join(cc.modules) or '(none)'}"]
    if cc.bootcmd:
        out.append(f"bootcmd: {len(cc.bootcmd)} command(s), run on every boot")
    if cc.preserve_hostname:
        out.append("preserve_hostname: the host name is left as it is")
    elif cc.fqdn or cc.hostname:
        out.append(f"hostname: {cc.fqdn or cc.hostname}")
    if cc.ssh_authorized_keys:
        out.append(f"ssh_authorized_keys: {len(cc.ssh_authorized_keys)} key(s) for the default "
                   f"user (root when none is configured"
                   + (", and root: disable_root is false)" if cc.disable_root is False else ")"))
    if cc.disable_root is not None:
        out.append(f"disable_root: {str(cc.disable_root).lower()}")
    if cc.user is not None:
        out.append(f"user: the default user is {cc.user.name}")
    if cc.default_user:
        out.append("users: default (needs [users] default on the guest, else a warning)")
    for group in cc.groups:
        out.append(f"groups: {group.name}" + (f" (members {', '.join(group.members)})"
                                              if group.members else ""))
    for u in cc.users:
        bits = [f"shell {u.shell}" if u.shell else "", f"groups {','.join(u.groups)}"
                if u.groups else "", f"profiles {','.join(u.profiles)}" if u.profiles else "",
                f"roles {','.join(u.roles)}" if u.roles else "",
                f"{len(u.ssh_authorized_keys)} key(s)" if u.ssh_authorized_keys else "",
                f"password {_secret(u.passwd)}" if u.passwd else "",
                "password locked (key login only)" if u.lock_passwd is not False else ""]
        out.append(f"users: {u.name}: created if missing ({'; '.join(b for b in bits if b)})")
    if cc.password is not None:
        out.append(f"password: {_secret(cc.password)}, for the default user (or root)")
    for p in cc.chpasswd:
        out.append(f"chpasswd: {p.name}: {_secret(p.secret) if p.hashed else _secret('')}")
    if cc.password is not None or cc.chpasswd:
        out.append(f"chpasswd expire: {str(cc.chpasswd_expire).lower()}")
    if cc.ssh_pwauth is not None:
        out.append(f"ssh_pwauth: PasswordAuthentication {'yes' if cc.ssh_pwauth else 'no'}")
    if cc.timezone:
        out.append(f"timezone: TZ={cc.timezone} in /etc/default/init")
    if cc.packages or cc.package_update or cc.package_upgrade:
        what = [w for w, on in (("pkg refresh", cc.package_update), ("pkg update",
                                                                    cc.package_upgrade)) if on]
        if cc.packages:
            what.append(f"pkg install {' '.join(cc.packages)}")
        out.append(f"packages: {'; '.join(what)} (where the image has pkg)")
    for f in cc.write_files:
        out.append(f"write_files: {f.path} ({len(f.content)} bytes, mode {f.permissions:04o}, "
                   f"owner {f.owner}{', append' if f.append else ''}"
                   f"{', defer' if f.defer else ''})")
    if cc.runcmd:
        out.append(f"runcmd: {len(cc.runcmd)} command(s), run once per instance by the "
                   f"userscript service")
    return out
