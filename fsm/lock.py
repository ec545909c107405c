"""One agent at a time per guest: an SMF restart racing a manual run must not interleave.

The lock is `flock` on /var/metadata/.lock, a regular file opened without following a link.
When it cannot be taken at all (a directory or a link planted there, /var read-only or
full), `metadata run` still runs, but `agent_lock` says why it is not held and the machine
refuses every one-shot step (reguid, swap, hostname, keys, the first-boot script): two
agents without the lock would each run them. Per-boot steps are idempotent (each compares
the guest with what it wants before changing it) and still run, so the guest keeps its
network. `metadata reset` must hold the lock too, waiting a bounded time for a running
agent: the agent would otherwise re-save the checkpoint reset just moved aside.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterator

from fsm.errors import AgentError
from fsm.system import System

log = logging.getLogger(__name__)

LOCK_PATH = "/var/metadata/.lock"


class LockUnavailable(AgentError):
    """The lock could not be taken (not a lockable file, or another agent kept it)."""


def _open_lock(system: System) -> int:
    """An fd of the lock file, or OSError saying why there cannot be one."""
    system.ensure_dir("/var/metadata", 0o755)
    fd = os.open(system.path(LOCK_PATH),
                 os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", LOCK_PATH)
    return fd


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return f"{LOCK_PATH} is a symbolic link"
    if e.errno == errno.EISDIR:
        return f"{LOCK_PATH} is a directory"
    return f"{LOCK_PATH}: {e.strerror or e}"


@contextlib.contextmanager
def agent_lock(system: System) -> Iterator[str | None]:
    """Hold the lock for the block; yields None when held, else why it is not.

    Waits for another agent holding it: SMF's start timeout bounds that wait, and the
    other agent's own waits are bounded."""
    try:
        fd = _open_lock(system)
    except OSError as e:
        why = _why(e)
        log.error("cannot take the agent lock (%s): one-shot steps will not run in this "
                  "start; per-boot steps (network, DNS, pool expansion) still do", why)
        yield f"the agent lock is not held ({why})"
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another agent is running on this guest; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield None
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(system: System, wait_s: float) -> Iterator[None]:
    """Hold the lock for an operator's command (`metadata reset`), waiting at most
    `wait_s` for a running agent; LockUnavailable says why it could not."""
    try:
        fd = _open_lock(system)
    except OSError as e:
        raise LockUnavailable(f"cannot take the agent lock: {_why(e)}; remove what is "
                              f"there and try again") from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockUnavailable(
                        f"an agent is running on this guest (it holds {LOCK_PATH}); waited "
                        f"{wait_s:g} s. Try again when `svcs metadata` no longer shows it "
                        f"starting; nothing was changed") from None
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        yield
    finally:
        os.close(fd)
