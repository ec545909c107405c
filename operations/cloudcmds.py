"""cloud-config `bootcmd` (every boot) and `runcmd` (once per instance), as cloud-init
documents them: each item a shell line, a list item quoted argument by argument.

bootcmd: IDENTITY/bootcmd writes the lines to /var/metadata/bootcmd (0700, root) as a
`/bin/sh` script with INSTANCE_ID exported (cloud-init's bootcmd gets it too) and runs it,
bounded by `timeouts.command`; a non-zero exit fails the step (retried on the next start).
Its output is not logged: commands can hold secrets.

runcmd: USERSCRIPT/runcmd writes /var/metadata/runcmd (0700, root) and enables the
userscript service, whose method runs it once per instance after the first-boot script,
with its own run records (runcmd.started/.done/.failed, keyed by its checksum and the
instance tag in userscript.instance), exactly like the first-boot script. Records an
earlier instance left are removed, so a new VM
from the same image runs its runcmd too. The agent never runs runcmd itself.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError
from fsm.steps import Context, Outcome

# The rest of what these steps use (operations.accounts, sshkeys, userscript) is imported
# when one has work to do: bootcmd runs every boot, and most boots have no cloud-config.

log = logging.getLogger(__name__)

BOOTCMD_PATH = "/var/metadata/bootcmd"
RUNCMD_PATH = "/var/metadata/runcmd"
RUNCMD_RECORDS = ("/var/metadata/runcmd.done", "/var/metadata/runcmd.started",
                  "/var/metadata/runcmd.failed")


def script(lines: tuple[str, ...], header: str = "") -> bytes:
    return ("#!/bin/sh\n" + header + "".join(line + "\n" for line in lines)).encode("utf-8")


def _install(ctx: Context, path: str, data: bytes, outcome: Outcome) -> None:
    from operations.sshkeys import needs_fixing, read_regular_file

    present, st = read_regular_file(ctx.system, path, 2 << 20)
    if present is not None and present.encode("utf-8", "surrogateescape") == data and \
            st is not None and not needs_fixing(st, 0o700):
        return
    ctx.system.write_file(path, data, mode=0o700, owner=(0, 0))
    outcome.changed(f"{path} installed ({len(data)} bytes, mode 0700, owner root)")


def run_bootcmd(ctx: Context) -> Outcome:
    outcome = Outcome()
    cc = ctx.metadata.cloud_config if ctx.metadata is not None else None
    if cc is None or not cc.bootcmd:
        return outcome
    iid = ctx.checkpoint.instance_id or ""
    quoted = "'" + iid.replace("'", "'\\''") + "'"
    _install(ctx, BOOTCMD_PATH, script(cc.bootcmd, f"INSTANCE_ID={quoted}; export INSTANCE_ID\n"),
             outcome)
    timeout = ctx.settings.get("timeouts.command")
    result = ctx.system.apply([BOOTCMD_PATH], timeout_s=timeout, check=False)
    if result.returncode != 0:
        raise AgentError(f"cloud-config bootcmd exited {result.returncode} (its output is "
                         f"not logged; run {BOOTCMD_PATH} by hand to see it)")
    outcome.changed(f"bootcmd ran ({len(cc.bootcmd)} command(s))")
    return outcome


def install_runcmd(ctx: Context) -> Outcome:
    from operations import accounts, userscript
    from operations.userscript import SVCADM, USERSCRIPT_FMRI, _service_enabled

    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None or not cc.runcmd:
        return outcome
    system = ctx.system
    _install(ctx, RUNCMD_PATH, script(cc.runcmd), outcome)
    # Keyed by checksum and instance tag like the first-boot script's records: this
    # instance's run survives a lost checkpoint, another instance's records are removed.
    userscript.mark_instance(ctx, RUNCMD_RECORDS, outcome)
    if not _service_enabled(ctx):
        system.apply([SVCADM, "enable", USERSCRIPT_FMRI])
        outcome.changed(f"{USERSCRIPT_FMRI} enabled: it runs runcmd once")
    return outcome
