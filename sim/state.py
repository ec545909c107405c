"""The simulated guest's kernel-side state (links, addresses, pools, swap, services, the
live hostname, call counts), kept as JSON in `<root>/var/sim/state.json`.

Stand-ins load it under an exclusive lock and replace it atomically, so a stand-in killed
mid-command (the crash tests kill the agent's process group) never leaves it half-written.
Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

STATE_DIR = "var/sim"
STATE_FILE = "state.json"


def state_path(root: str) -> str:
    return os.path.join(root, STATE_DIR, STATE_FILE)


def load(root: str) -> dict[str, Any]:
    with open(state_path(root), encoding="utf-8") as f:
        return json.load(f)


def save(root: str, state: dict[str, Any]) -> None:
    path = state_path(root)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class locked:  # noqa: N801 - used as `with locked(root) as state:`
    """Load the state under the guest's lock; saved back when the block ends cleanly.

    A class rather than a contextlib generator: every simulated command enters it, and
    contextlib's imports cost each of them several milliseconds."""

    def __init__(self, root: str):
        self.root = root
        self.fd = -1

    def __enter__(self) -> dict[str, Any]:
        os.makedirs(os.path.join(self.root, STATE_DIR), exist_ok=True)
        self.fd = os.open(os.path.join(self.root, STATE_DIR, "state.lock"),
                          os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.state = load(self.root)
        except BaseException:
            os.close(self.fd)
            raise
        return self.state

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                save(self.root, self.state)
        finally:
            os.close(self.fd)
