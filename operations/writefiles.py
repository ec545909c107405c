"""USERSCRIPT/write-files: cloud-config `write_files`, before the first-boot script.

Each file goes through `System.write_file`: temp file, fsync, rename, fsync of the
directory, every parent opened with O_NOFOLLOW, so a symbolic link anywhere on the way
refuses the write rather than redirect it outside the rules. A link, directory, FIFO or
device, or a hard-linked file, at the path itself is refused too (a per-file warning).
Paths were checked when parsed (absolute, no `..`, nothing under the agent's own
/var/metadata, /proc, /dev, /devices or /system).

`owner` is `user:group` of this guest (a user made by the users step is already there);
an unknown one skips the file with a warning. `append` adds the content to what is
there, unless the file already ends with it: a step resumed after a crash must not append
twice. `defer` changes nothing here: this step runs after IDENTITY made the users and
after `packages`, which is what cloud-init's deferral waits for.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError, shown
from fsm.steps import Context, Outcome
from operations import accounts
from operations.sshkeys import UnsafeFileError, read_regular_file
from providers.cloudconfig_items import MAX_FILES_BYTES

log = logging.getLogger(__name__)


def _owner(ctx: Context, owner: str) -> tuple[int, int] | None:
    user, _, group = owner.partition(":")
    users = accounts.accounts(ctx)
    if user not in users:
        return None
    gid = users[user].gid
    if group:
        groups = accounts.groups(ctx)
        if group not in groups:
            return None
        gid = groups[group][0]
    return users[user].uid, gid


def apply_write_files(ctx: Context) -> Outcome:
    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None or not cc.write_files:
        return outcome
    where = f"{ctx.metadata.source}:cloud-config write_files"
    for item in sorted(cc.write_files, key=lambda f: f.defer):
        owner = _owner(ctx, item.owner)
        if owner is None:
            outcome.warnings.append(f"{where}: {item.path}: owner {shown(item.owner)} is not a "
                                    f"user (and group) of this guest; not written")
            continue
        try:
            present, _ = read_regular_file(ctx.system, item.path, MAX_FILES_BYTES)
        except UnsafeFileError as e:
            outcome.warnings.append(f"{where}: {item.path}: not written: {e}")
            continue
        data = item.content
        if item.append and present is not None:
            old = present.encode("utf-8", "surrogateescape")
            if old.endswith(data):
                continue
            data = old + data
        elif present is not None and present.encode("utf-8", "surrogateescape") == data:
            st = ctx.system.stat(item.path)
            if (st.st_mode & 0o7777) == item.permissions:
                continue
        try:
            ctx.system.write_file(item.path, data, mode=item.permissions, owner=owner)
        except (AgentError, OSError) as e:
            outcome.warnings.append(f"{where}: {item.path}: not written: {e}")
            continue
        outcome.changed(f"{item.path} written ({len(data)} bytes, mode "
                        f"{item.permissions:04o}, owner {item.owner}"
                        + (", appended" if item.append else "") + ")")
    return outcome
