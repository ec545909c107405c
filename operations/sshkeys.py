"""root's SSH keys: merge the metadata's keys into /root/.ssh/authorized_keys.

The file is merged, never replaced: lines an operator added by hand stay, whatever they
hold. To let a new instance drop the previous instance's keys (an image captured from a
configured VM and booted elsewhere), the agent remembers the lines it installed itself in
MANAGED_PATH; a later run whose metadata lists at least one valid key removes those of them
the metadata no longer lists, and only those. Metadata with no valid key (an empty seed, a
source without keys, a field the agent could not read) never removes anything: only a
source that positively says which keys are current can retire the others. A key already present in any line (same type and data, whatever its options or
comment) is not added again, so an operator's restricted line (`from=...`) is never
shadowed by an unrestricted copy.

Nothing is read or written through a symbolic link: a link (or any non-directory) at
/root/.ssh, or a link, hard link, FIFO or device at authorized_keys, fails the step with a
clear error before anything is written.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from fsm.errors import AgentError
from fsm.steps import Context, Outcome
from fsm.system import System
from operations.validate import (
    MAX_KEYS_TOTAL_BYTES,
    KeyLineError,
    parse_authorized_keys,
    parse_key_line,
)

log = logging.getLogger(__name__)

SSH_DIR = "/root/.ssh"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
MANAGED_PATH = "/var/metadata/authorized_keys.managed"
MANAGED_HEADER = ("# Lines of /root/.ssh/authorized_keys installed by the metadata agent; "
                  "a later run removes those the metadata no longer lists.\n")
ROOT_OWNER = (0, 0)
MAX_PRESENT_BYTES = 4 * MAX_KEYS_TOTAL_BYTES


class UnsafeFileError(AgentError):
    """A file the agent must rewrite is a link or not a plain file: refuse, touch nothing."""

    def __init__(self, guest_path: str, problem: str):
        self.guest_path = guest_path
        super().__init__(f"{guest_path}: {problem}; refusing to read or write it "
                         f"(nothing was changed)")


def refuse_linked_parents(system: System, guest_path: str) -> None:
    """Raise UnsafeFileError if a directory on the way to `guest_path` is a symbolic link.

    `System.stat` and `read_bytes` resolve parents like any path; this makes reads as
    strict as `write_file`, which opens each parent with O_NOFOLLOW.
    """
    walked = ""
    for part in [p for p in guest_path.split("/") if p][:-1]:
        walked += "/" + part
        try:
            if stat.S_ISLNK(system.stat(walked).st_mode):
                raise UnsafeFileError(walked, "is a symbolic link")
        except FileNotFoundError:
            return


def read_regular_file(system: System, guest_path: str,
                      limit: int) -> tuple[str | None, os.stat_result | None]:
    """(text, stat) of a plain file, (None, None) when it is absent.

    A symbolic link, hard link, FIFO, device or directory raises UnsafeFileError, so a
    planted link can neither leak its target into a rewrite nor redirect one. Bytes that
    are not UTF-8 survive a read-modify-write unchanged (surrogateescape).
    """
    refuse_linked_parents(system, guest_path)
    try:
        st = system.stat(guest_path)
    except FileNotFoundError:
        return None, None
    except NotADirectoryError:
        raise UnsafeFileError(guest_path, "a parent is not a directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFileError(guest_path, "is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(guest_path, "is not a regular file")
    if st.st_nlink > 1:
        raise UnsafeFileError(guest_path, f"has {st.st_nlink} hard links")
    try:
        data = system.read_bytes(guest_path, limit=limit)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise UnsafeFileError(guest_path, f"is larger than {limit} bytes") from None
        raise
    return data.decode("utf-8", errors="surrogateescape"), st


def needs_fixing(st: os.stat_result, mode: int) -> bool:
    """Mode or owner differ from what the agent writes (owner only checked as root, since
    only root can give a file away and the write would not change it otherwise)."""
    wrong_owner = os.geteuid() == 0 and (st.st_uid, st.st_gid) != ROOT_OWNER
    return stat.S_IMODE(st.st_mode) != mode or wrong_owner


def _identity(line: str) -> tuple[str, str] | None:
    try:
        return parse_key_line(line).identity
    except KeyLineError:
        return None


def merge(present: list[str], managed_before: set[str],
          wanted: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(new file lines, lines added, lines removed), a pure function of the three inputs.

    Present lines stay in order, except agent-installed ones whose key the metadata no
    longer lists; wanted keys not present in any line are appended.
    """
    wanted_ids = {_identity(w) for w in wanted}
    kept: list[str] = []
    removed: list[str] = []
    for line in present:
        if line.strip(" \t") in managed_before and _identity(line) not in wanted_ids:
            removed.append(line)
        else:
            kept.append(line)
    kept_ids = {i for i in (_identity(k) for k in kept) if i is not None}
    added: list[str] = []
    for line in wanted:
        ident = _identity(line)
        if ident not in kept_ids:
            added.append(line)
            kept_ids.add(ident)
    return kept + added, added, removed


def _managed_text(lines: list[str]) -> str:
    return MANAGED_HEADER + "".join(line + "\n" for line in lines)


def _read_managed(system: System, outcome: Outcome) -> tuple[set[str], str | None]:
    """(agent-installed lines, the record's text) from MANAGED_PATH."""
    try:
        text, _ = read_regular_file(system, MANAGED_PATH, MAX_PRESENT_BYTES)
    except UnsafeFileError as e:
        outcome.warnings.append(f"{e}: every present key line is treated as an operator's")
        return set(), None
    if text is None:
        return set(), None
    lines = {ln.strip(" \t") for ln in text.split("\n")}
    return {ln for ln in lines if ln and not ln.startswith("#")}, text


def install_keys(ctx: Context) -> Outcome:
    """IDENTITY/ssh-keys: see the module docstring for the merge rules."""
    system = ctx.system
    md = ctx.metadata
    outcome = Outcome()
    keys = md.ssh_keys if md is not None else ()
    origin = md.origin("ssh_keys") if md is not None else "none:ssh_keys"
    if md is not None and md.cloud_config is not None:
        from operations.accounts import keys_for  # cloud-config: root's keys there too

        extra = tuple(k for k in keys_for(ctx, "root") if k not in keys)
        if extra:
            keys, origin = keys + extra, f"{origin} and {md.source}:cloud-config"
    wanted, problems = parse_authorized_keys("\n".join(keys), origin) if keys else ([], [])
    outcome.warnings.extend(problems)
    if not wanted:
        # Removing keys needs a source that positively lists the current ones: no keys (or
        # none valid) may be an empty seed or a broken field, never a reason to lock root out.
        log.info("no %sSSH keys in the metadata; %s left as it is (keys installed before "
                 "are kept)", "valid " if keys else "", AUTHORIZED_KEYS)
        return outcome
    managed_before, managed_text_before = _read_managed(system, outcome)

    # Every check comes before any write: a refused link leaves the guest untouched.
    try:
        dir_st = system.stat(SSH_DIR)
    except FileNotFoundError:
        dir_st = None
    if dir_st is not None and stat.S_ISLNK(dir_st.st_mode):
        raise UnsafeFileError(SSH_DIR, "is a symbolic link")
    if dir_st is not None and not stat.S_ISDIR(dir_st.st_mode):
        raise UnsafeFileError(SSH_DIR, "is not a directory")
    present_text, file_st = read_regular_file(system, AUTHORIZED_KEYS, MAX_PRESENT_BYTES)
    distrust = _untrusted(dir_st, file_st)
    if distrust and present_text:
        # sshd's StrictModes ignores such a file; rewriting its lines into a root-owned
        # 0600 file would turn a line someone else could write into a working root login.
        # Kept aside for the operator, never carried over.
        system.move_aside(AUTHORIZED_KEYS, AUTHORIZED_KEYS + UNTRUSTED_SUFFIX)
        outcome.warnings.append(
            f"{AUTHORIZED_KEYS}: {distrust}, so sshd ignored it; its lines were not "
            f"carried into the new root-owned file (moved aside to "
            f"{AUTHORIZED_KEYS + UNTRUSTED_SUFFIX})")
        present_text, file_st = None, None
    present = (present_text or "").split("\n")
    if present[-1] == "":
        present.pop()
    lines, added, removed = merge(present, managed_before, wanted)
    present_now = {ln.strip(" \t") for ln in lines}
    managed_now = sorted((managed_before & present_now) | set(added))

    if system.ensure_dir(SSH_DIR, mode=0o700, owner=ROOT_OWNER):
        outcome.changed(f"{SSH_DIR} (mode 0700, owner root)")
    if added or removed or (file_st is not None and needs_fixing(file_st, 0o600)):
        if added:
            # The superset first: after a crash before the final record the next run
            # still knows both the lines just added and those being removed as ours.
            superset = _managed_text(sorted(managed_before | set(added)))
            _write_record(system, superset, outcome)
            managed_text_before = superset   # written: the final record need not repeat it
        content = "".join(line + "\n" for line in lines)
        system.write_file(AUTHORIZED_KEYS, content.encode("utf-8", "surrogateescape"),
                          mode=0o600, owner=ROOT_OWNER)
        what = []
        if added:
            what.append(f"{len(added)} key(s) added")
        if removed:
            what.append(f"{len(removed)} key(s) no longer in the metadata removed")
        outcome.changed(f"{AUTHORIZED_KEYS} ({', '.join(what) or 'mode 0600, owner root'})")
    else:
        log.info("%s already holds the metadata's %d key(s)", AUTHORIZED_KEYS, len(wanted))
    managed_text = _managed_text(managed_now)
    if managed_text != managed_text_before and (managed_now or managed_text_before is not None):
        _write_record(system, managed_text, outcome)
    return outcome


UNTRUSTED_SUFFIX = ".untrusted"


def _untrusted(dir_st: os.stat_result | None, file_st: os.stat_result | None) -> str | None:
    """Why sshd (StrictModes) would not trust the present file, or None: it or /root/.ssh
    is owned by someone other than the agent's user (root), or writable by group or others."""
    me = os.geteuid()
    for what, st in (("/root/.ssh", dir_st), ("it", file_st)):
        if st is None:
            continue
        if st.st_uid != me:
            return f"{what} was owned by uid {st.st_uid}, not root"
        if stat.S_IMODE(st.st_mode) & 0o022:
            return f"{what} was writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _write_record(system: System, text: str, outcome: Outcome) -> None:
    """The record is bookkeeping: a full or read-only /var must not cost root its keys, so
    failing to write it is a warning (the keys it would name are then kept as the
    operator's on a later instance) rather than a failed step."""
    try:
        system.write_file(MANAGED_PATH, text, mode=0o600, owner=ROOT_OWNER)
    except OSError as e:
        if isinstance(e, AgentError):
            raise
        warning = (f"cannot record the agent's keys in {MANAGED_PATH} ({e.strerror or e}); "
                   f"the keys are installed, but a later instance will keep them")
        if warning not in outcome.warnings:
            outcome.warnings.append(warning)
