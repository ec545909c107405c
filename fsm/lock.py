"""One agent at a time per guest: an SMF restart racing a manual run must not interleave.

The lock is `flock` on /var/metadata/.lock, a regular file opened without following a link.
When /var refuses it (read-only, or a file where /var/metadata should be), the lock is
taken on FALLBACK_PATH in /etc/svc/volatile instead, the tmpfs svc.startd mounts first
thing at boot: every agent of the guest meets the same refusal and takes the same
fallback, so they still exclude each other and the guest is configured. When something is
planted at the lock (a directory, a link, a FIFO: someone is interfering) or neither lock
can be taken, `metadata run` still runs, but `agent_lock` says why it is not held and the
machine refuses every one-shot step (reguid, swap, hostname, keys, the first-boot script):
two agents without the lock would each run them. Per-boot steps are idempotent (each compares
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
FALLBACK_PATH = "/etc/svc/volatile/illumos-metadata.lock"
# What a planted object at the lock gives: refused, never worked around.
_HOSTILE = (errno.ELOOP, errno.EISDIR, errno.EINVAL)


class LockUnavailable(AgentError):
    """The lock could not be taken (not a lockable file, or another agent kept it)."""


def _open_at(system: System, path: str) -> int:
    system.ensure_dir(os.path.dirname(path), 0o755)
    fd = os.open(system.path(path),
                 os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd


def _open_lock(system: System) -> int:
    """An fd of the lock file (or of the fallback when /var refuses it), or OSError."""
    try:
        return _open_at(system, LOCK_PATH)
    except OSError as e:
        if e.errno in _HOSTILE or isinstance(e, AgentError):  # planted (UnsafePathError:
            raise                                             # a link on the way)
        try:
            fd = _open_at(system, FALLBACK_PATH)
        except OSError:
            raise e from None
        log.warning("cannot create %s (%s); locking %s instead", LOCK_PATH,
                    e.strerror or e, FALLBACK_PATH)
        return fd


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return f"{LOCK_PATH} is a symbolic link"
    if e.errno == errno.EISDIR:
        return f"{LOCK_PATH} is a directory"
    if e.errno == errno.EINVAL:
        return f"{LOCK_PATH} is not a regular file"
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
