"""The last starts of the agent, for `metadata status`: what `cloud-init analyze` keeps.

The checkpoint holds where the current boot is; this file holds how each recent start
ended, failed ones included: its result and exit code, the provider DETECT chose (known
even when FETCH then failed), the error, the failed steps and how long each phase took.
A start is recorded as `running` before the machine runs, so one killed half way shows as
`interrupted` at the next start. A settings error (exit 96 before any checkpoint exists)
is recorded too, so `status` can show it instead of "never run".

JSON at /var/metadata/history.json (0600), rewritten atomically, at most MAX_ENTRIES
entries with every string cut to MAX_TEXT characters, so it stays small whatever the
metadata says. It is advisory: a damaged file is started afresh, a failed write only
logged; it never costs the guest a step.
"""

from __future__ import annotations

import json
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (status imports this)
if TYPE_CHECKING:
    from typing import Any

    from fsm.system import System


def _log():
    """This module's logger, made when there is something to log: `metadata status` reads
    this module's file without importing logging."""
    import logging

    return logging.getLogger(__name__)


HISTORY_PATH = "/var/metadata/history.json"
MAX_ENTRIES = 20
MAX_TEXT = 300
MAX_BYTES = 256 << 10

RUNNING, INTERRUPTED, SETTINGS_ERROR = "running", "interrupted", "settings error"


def _cut(text: object) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "... (cut)"


def load(system: System) -> list[dict[str, Any]]:
    """The entries, oldest first; [] when absent or unreadable."""
    try:
        data = json.loads(system.read_bytes(HISTORY_PATH, limit=MAX_BYTES))
    except (OSError, ValueError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict)][-MAX_ENTRIES:]


def _save(system: System, entries: list[dict[str, Any]]) -> None:
    if system.dry_run:
        return
    # One entry a line: readable, and json's C encoder does it (given an indent, json
    # encodes in Python, which cost a boot more CPU than anything else here, twice a boot).
    lines = ",\n".join(json.dumps(e, sort_keys=True) for e in entries[-MAX_ENTRIES:])
    text = f'{{"entries": [\n{lines}\n], "schema": 1}}\n'
    try:
        system.write_file(HISTORY_PATH, text, mode=0o600)
    except OSError as e:
        _log().warning("history: cannot write %s: %s", HISTORY_PATH, e.strerror or e)


def begin(system: System) -> dict[str, Any]:
    """Record a start as running; an earlier start still `running` was interrupted."""
    entries = load(system)
    for entry in entries:
        if entry.get("result") == RUNNING:
            entry["result"] = INTERRUPTED
    entry = {"started": time.time(), "result": RUNNING}
    entries.append(entry)
    _save(system, entries)
    return entry


def finish(system: System, entry: dict[str, Any], cp: Any, provider: str | None,
           code: int) -> None:
    """Complete `entry` from the checkpoint the machine left (`cp`) and its exit code."""
    started = entry["started"]
    phases = [{"phase": name, "duration_s": rec.get("duration"), "result": rec.get("result")}
              for name, rec in cp.phases.items()
              if isinstance(rec, dict) and rec.get("start", 0) >= started]
    failed = sorted(key for table in (cp.boot_steps, cp.once,
                                      cp.instances.get(cp.instance_id or "unknown", {}))
                    for key, rec in table.items()
                    if rec.get("status") == "failed" and rec.get("finished", 0) >= started)
    err = cp.last_error
    if code == 0:
        result = "done"
    elif cp.phase in ("DETECT", "FETCH"):
        result = "stopped"
    else:
        result = "held"
    entry.update(finished=time.time(), result=result, exit_code=code, boot=cp.boot,
                 instance_id=None if cp.instance_id is None else _cut(cp.instance_id),
                 provider=provider, phases=phases,
                 failed_steps=failed, warnings=len(cp.warnings),
                 error=None if not err else {
                     "phase": err.get("phase"), "step": err.get("step"),
                     "message": _cut(err.get("message", "")), "exit_code": err.get("exit_code")})
    entries = [e for e in load(system) if e.get("started") != started] + [entry]
    _save(system, sorted(entries, key=lambda e: e.get("started", 0)))


def settings_error(system: System, message: str, code: int) -> None:
    """A start that ended before the machine: its settings could not be read."""
    entries = load(system)
    entries.append({"started": time.time(), "finished": time.time(), "result": SETTINGS_ERROR,
                    "exit_code": code, "error": {"phase": None, "step": "settings",
                                                 "message": _cut(message), "exit_code": code}})
    _save(system, entries)
