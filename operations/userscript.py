"""USERSCRIPT: install the metadata's first-boot script for the userscript service.

The agent never runs the script itself: it writes it to /var/metadata/userscript (0700,
root) and enables svc:/system/illumos/userscript:default, whose method (smf/) runs it once,
records success and disables itself. So a script is started by SMF, with SMF's logging and
restart rules, after the metadata service is online. The script may hold secrets: it is
never logged, only its size; and nothing about it enters the checkpoint.
"""

from __future__ import annotations

import logging

from fsm.steps import Context, Frequency, Outcome, Step

log = logging.getLogger(__name__)

SCRIPT_PATH = "/var/metadata/userscript"
USERSCRIPT_FMRI = "svc:/system/illumos/userscript:default"
SVCADM = "/usr/sbin/svcadm"
SVCPROP = "/usr/bin/svcprop"
# The userscript method's records (smf/userscript.sh), keyed by the script's checksum and
# the instance's tag: `<sha256>/<tag>`.
RUN_RECORDS = ("/var/metadata/userscript.done", "/var/metadata/userscript.started",
               "/var/metadata/userscript.failed")
# The tag of the instance the installed script is for (operations/witness.py), which the
# method puts in its records.
INSTANCE_PATH = "/var/metadata/userscript.instance"
MAX_RECORD_BYTES = 4096


def _record_tag(system, record: str) -> str | None:
    """The instance tag in a run record's key (`<sha256>/<tag>`); "" for a record written
    before records had one; None when the record cannot be read as one."""
    try:
        text = system.read_text(record, limit=MAX_RECORD_BYTES)
    except OSError:
        return None
    words = text.split()
    if not words:
        return None
    return words[0].partition("/")[2]


def _service_enabled(ctx: Context) -> bool:
    """general/enabled of the instance, in the composed (immediate) view, as svcprop(1)
    recommends for this property."""
    result = ctx.system.run([SVCPROP, "-c", "-p", "general/enabled", USERSCRIPT_FMRI],
                            check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def install(ctx: Context) -> Outcome:
    """USERSCRIPT/install: write the script if it differs, enable the service if it is not."""
    # Imported here: a boot whose script is installed (every boot but the first) enters
    # USERSCRIPT only to skip this step, and should not load the key and script validators.
    from operations.sshkeys import needs_fixing, read_regular_file
    from operations.validate import MAX_SCRIPT_BYTES, validate_script

    outcome = Outcome()
    md = ctx.metadata
    if md is None or md.user_script is None:
        log.info("no user script in the metadata: nothing to install")
        return outcome
    script = validate_script(md.user_script, md.origin("user_script"))
    system = ctx.system
    present, present_st = read_regular_file(system, SCRIPT_PATH, MAX_SCRIPT_BYTES)
    same = (present is not None and present.encode("utf-8", "surrogateescape") == script
            and present_st is not None and not needs_fixing(present_st, 0o700))
    if not same:
        system.write_file(SCRIPT_PATH, script, mode=0o700, owner=(0, 0))
        outcome.changed(f"{SCRIPT_PATH} installed ({len(script)} bytes, mode 0700, owner root)")
    mark_instance(ctx, RUN_RECORDS, outcome)
    if not _service_enabled(ctx):
        system.apply([SVCADM, "enable", USERSCRIPT_FMRI])
        outcome.changed(f"{USERSCRIPT_FMRI} enabled: it runs the script once")
    if not outcome.changes:
        log.info("user script already installed and its service enabled")
    return outcome


STEPS: tuple[Step, ...] = (
    Step("USERSCRIPT", "install", Frequency.PER_INSTANCE, install,
         changes=f"writes the metadata's first-boot script to {SCRIPT_PATH} (mode 0700, "
                 f"owner root; rewritten only when different) and runs `svcadm enable "
                 f"{USERSCRIPT_FMRI}` unless `svcprop -c -p general/enabled` already says "
                 f"true; that service runs the script once, records success and disables "
                 f"itself. It writes the instance's tag to {INSTANCE_PATH}; the method keys "
                 f"its run records (userscript.done/.started/.failed) by script and tag, "
                 f"so this instance's script never runs twice even when the checkpoint is "
                 f"lost, and records of another instance are removed, so a new VM from "
                 f"the same image runs its script too. No script in the metadata: nothing. The script is "
                 f"never logged (only its size) nor checkpointed",
         fails_when="the script does not begin with `#!` and an absolute interpreter path, "
                    "its `#!` line ends in CR-LF or exceeds 1023 bytes, it is over 16 MiB "
                    "(exit 96, nothing installed); a link or non-regular file at "
                    f"{SCRIPT_PATH} (exit 95); svcadm fails",
         on_failure="recorded; the machine holds at USERSCRIPT so `svcadm clear` retries; "
                    "networking, identity and storage are already done",
         checkpointed="started record before it runs, done record after (per instance; "
                      "never the script). The script itself is not run by the agent: the "
                      "userscript service runs it once per instance, and a script cut short "
                      "by a crash or power loss has no done record, so the service runs it "
                      "again from the start: first-boot scripts must be idempotent"),
)


def mark_instance(ctx: Context, records: tuple[str, ...], outcome: Outcome) -> None:
    """Write this instance's tag to INSTANCE_PATH and remove `records` of another instance.

    The method keys its records by the script and this tag, so a record of this
    instance's run survives a lost checkpoint (the install step running again for the same
    instance) and the script does not run twice. A record of another instance (the image
    builder's VM, say) would never match; it is removed so the audit trail is this VM's.
    The first-boot script and cloud-config's runcmd (operations/cloudcmds.py) share the tag.
    """
    from operations.witness import instance_tag

    system = ctx.system
    tag = instance_tag(ctx.checkpoint.instance_id)
    try:
        present_tag = system.read_text(INSTANCE_PATH, limit=MAX_RECORD_BYTES).strip()
    except (FileNotFoundError, NotADirectoryError):
        present_tag = None
    except OSError:
        present_tag = None
        system.remove(INSTANCE_PATH)
    if present_tag != tag:
        system.write_file(INSTANCE_PATH, tag + "\n", mode=0o644, owner=(0, 0))
        outcome.changed(f"{INSTANCE_PATH}: the script is for instance {tag}")
    for record in records:
        if not (system.exists(record) or system.is_symlink(record)):
            continue
        if _record_tag(system, record) == tag:
            log.info("%s records this instance's own run: kept", record)
            continue
        system.remove(record)
        outcome.changed(f"{record} removed: it recorded another instance's run")
