"""Test helpers: a simulated guest and the agent run against it as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from fsm.checkpoint import CHECKPOINT_PATH, Checkpoint, decode
from sim import guest as sim_guest
from sim import state as sim_state
from sim.show import show

PROJECT_DIR = sim_guest.PROJECT_DIR


@dataclass
class Guest:
    root: str
    platform: str

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """`metadata run --root ROOT` as a real process, as SMF would start it."""
        return self.metadata("run", *args, env=env, timeout=timeout)

    def metadata(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k != "METADATA_AGENT_CRASH_AT"}
        full_env["PYTHONPATH"] = PROJECT_DIR
        full_env.update(env or {})
        argv = [sys.executable, "-m", "fsm", *args]
        if args and args[0] in ("run", "status", "plan", "reset"):
            argv += ["--root", self.root]
        return subprocess.run(argv, capture_output=True, text=True, env=full_env,
                              timeout=timeout)

    def show(self) -> dict[str, Any]:
        return show(self.root)

    def state(self) -> dict[str, Any]:
        return sim_state.load(self.root)

    def set_state(self, **changes: Any) -> None:
        with sim_state.locked(self.root) as st:
            st.update(changes)

    def calls(self) -> dict[str, int]:
        return self.state().get("calls", {})

    def checkpoint(self) -> Checkpoint:
        with open(self.path(CHECKPOINT_PATH), "rb") as f:
            return decode(f.read())

    def path(self, guest_path: str) -> str:
        return os.path.join(self.root, guest_path.lstrip("/"))

    def read(self, guest_path: str) -> str:
        with open(self.path(guest_path), encoding="utf-8") as f:
            return f.read()

    def write(self, guest_path: str, text: str, mode: int = 0o644) -> None:
        path = self.path(guest_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)


def make_guest(tmp_path, platform: str = "qemu", metadata: dict[str, Any] | None = None,
               name: str = "guest") -> Guest:
    root = str(tmp_path / name)
    sim_guest.create(root, platform, metadata)
    return Guest(root, platform)


def without_calls(shown: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shown.items() if k != "calls"}


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


def fresh_python(probe: str, *args: str) -> str:
    """What `probe` prints in a new interpreter beside the sources (a module-import
    question: what a boot would load, with nothing a test imported before); asserts it
    ran to the end."""
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                          text=True, cwd=PROJECT_DIR, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
