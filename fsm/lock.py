"""One agent at a time per guest: an SMF restart racing a manual run must not interleave."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator

from fsm.system import System

log = logging.getLogger(__name__)

LOCK_PATH = "/var/metadata/.lock"


@contextlib.contextmanager
def agent_lock(system: System) -> Iterator[None]:
    try:
        system.ensure_dir("/var/metadata", 0o755)
        fd = os.open(system.path(LOCK_PATH), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        log.warning("cannot take the agent lock (%s); going on without it", e.strerror or e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another agent is running on this guest; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
