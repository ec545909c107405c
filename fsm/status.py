"""`metadata status`: the checkpoint as an operator reads it, like `cloud-init status --long`
and `cloud-init analyze blame` in one view. Reads only: a damaged file is reported, not moved.

The outcome is one word a script can test by exit code, as `cloud-init status` does:
`done` 0, `done with warnings` 2 (skipped items), `error` 1 (held at a phase, stopped in
DETECT/FETCH, a settings error before any checkpoint, or a start killed half way),
`running` and `not run` 0 (`--wait` blocks through both). Every failure and warning of
the current boot is listed with what to do next.

The JSON form is stable: the keys of the first version keep their meaning and new ones are
only added (`status`, `exit_code`, `running`, `failures`, `warnings`, `next`, `history`,
`host_keys`, `detected_provider`, `settings_error`; each step's `changed`).
"""

from __future__ import annotations

import fcntl
import os
import time

from fsm import history
from fsm.cpfile import (
    CHECKPOINT_PATH,
    FAILED,
    MAX_CHECKPOINT_BYTES,
    PREVIOUS_SUFFIX,
    CheckpointError,
    completed_steps,
    decode_fields,
)
from fsm.guestfiles import GuestFiles

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# Status imports neither the system layer nor the machine's checkpoint, lock or settings
# modules (logging, subprocess, records, tomllib: issue 17); their paths, which a test
# compares with those modules' own:
LOCK_PATH = "/var/metadata/.lock"            # fsm/lock.py
SETTINGS_PATH = "/etc/metadata-agent.toml"   # fsm/settings.py

STATUS_SCHEMA = 1

DONE, WARNED, ERROR, RUNNING, NOT_RUN = "done", "done with warnings", "error", "running", \
    "not run"
EXIT_CODES = {DONE: 0, WARNED: 2, ERROR: 1, RUNNING: 0, NOT_RUN: 0}
CLEAR = "`svcadm clear metadata`"


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def agent_running(system: GuestFiles) -> bool:
    """Another process holds the agent's lock (fsm/lock.py): a start is in progress."""
    try:
        fd = os.open(system.path(LOCK_PATH), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class _Recorded:
    """The checkpoint's fields as attributes: what status reads of fsm.checkpoint's
    Checkpoint, from the same decoder, without its class."""

    def __init__(self, fields: dict[str, Any]):
        self.__dict__.update(fields)

    def completed_steps(self) -> list[tuple[str, dict[str, Any]]]:
        return completed_steps(self.boot_steps, self.instances, self.instance_id, self.once)


def _load(system: GuestFiles, problems: list[str]):
    for path in (CHECKPOINT_PATH, CHECKPOINT_PATH + PREVIOUS_SUFFIX):
        if not system.lexists(path):
            continue
        try:
            # The run's own read path: no link followed, no FIFO waited on, bounded size.
            fields = decode_fields(system.read_bytes(path, limit=MAX_CHECKPOINT_BYTES))
            return _Recorded(fields), path
        except (CheckpointError, OSError) as e:
            problems.append(f"{path}: {e}")
    return None, None


def advice(failure: dict[str, Any], held_at: str | None) -> str:
    """What an operator does about one failure."""
    kind, code = failure.get("kind"), failure.get("exit_code")
    message = str(failure.get("message") or "")
    # The agent's settings: the TOML file or the service's SMF properties. (A ConfigError
    # from a seed's config.toml is metadata, and is advised as such below.)
    if failure.get("step") == "settings" or (
            kind in ("ConfigError", None) and message.startswith((SETTINGS_PATH, "svc:/"))):
        return (f"fix the setting named in the message (/etc/metadata-agent.toml, or the SMF "
                f"property config/<section>_<key>), then {CLEAR}")
    if kind == "MetadataError" or code == 96:
        return ("fix the metadata field named in the message where the platform keeps it "
                f"(user-data, seed, instance metadata), then {CLEAR}")
    if failure.get("phase") in ("DETECT", "FETCH"):
        return (f"the metadata could not be read; once the source answers, {CLEAR} "
                "(or the next boot) starts again")
    where = f" resumes from {held_at}" if held_at else " retries"
    return f"fix the cause named in the message, then {CLEAR}{where}"


def _steps(cp) -> list[dict[str, Any]]:
    def began(rec: dict[str, Any]) -> float:
        return rec.get("started") or rec.get("finished", 0) - (rec.get("duration") or 0)

    rows = sorted(cp.completed_steps(), key=lambda kv: (began(kv[1]), kv[0]))
    return [{"step": key, "status": rec.get("status"), "frequency": rec.get("frequency"),
             "boot": rec.get("boot"), "finished": _iso(rec.get("finished")),
             "duration_s": rec.get("duration"), "changes": rec.get("changes", 0),
             "changed": list(rec.get("changed") or []), "error": rec.get("error")}
            for key, rec in rows]


def _failures(cp) -> list[dict[str, Any]]:
    """Every failed step of the current boot, and a DETECT/FETCH stop."""
    out = []
    for key, rec in cp.completed_steps():
        if rec.get("status") == FAILED and rec.get("boot") == cp.boot:
            phase, _, name = key.partition("/")
            out.append({"phase": phase, "step": name, "message": rec.get("error"),
                        "exit_code": rec.get("exit_code"), "kind": rec.get("kind")})
    err = cp.last_error
    if err and err.get("phase") in ("DETECT", "FETCH"):
        out.insert(0, {k: err.get(k) for k in ("phase", "step", "message", "exit_code", "kind")})
    return out


def _history(entries: list[dict[str, Any]], running: bool) -> list[dict[str, Any]]:
    """Newest first; a start left `running` while no agent runs was killed half way."""
    rows = []
    for i, e in enumerate(reversed(entries)):
        result = e.get("result")
        if result == history.RUNNING and (i > 0 or not running):
            result = history.INTERRUPTED
        rows.append({"started": _iso(e.get("started")), "finished": _iso(e.get("finished")),
                     "result": result, "exit_code": e.get("exit_code"),
                     "boot": e.get("boot"), "instance_id": e.get("instance_id"),
                     "provider": e.get("provider"), "phases": e.get("phases", []),
                     "failed_steps": e.get("failed_steps", []),
                     "warnings": e.get("warnings", 0), "error": e.get("error")})
    return rows


def status_data(root: str) -> dict[str, Any]:
    system = GuestFiles(root)
    problems: list[str] = []
    cp, source = _load(system, problems)
    entries = history.load(system)
    latest = entries[-1] if entries else {}
    running = agent_running(system)
    settings_error = None
    if latest.get("result") == history.SETTINGS_ERROR and (
            cp is None or latest.get("started", 0) > cp.updated):
        settings_error = latest.get("error")
    detected = latest.get("provider") if latest.get("result") != history.RUNNING else None
    base: dict[str, Any] = {
        "schema": STATUS_SCHEMA, "checkpoint": source, "phase": None, "boot": 0,
        "instance_id": None, "provider": None, "done": False, "last_error": None,
        "phases": [], "steps": [], "problems": problems, "running": running,
        "settings_error": settings_error, "detected_provider": detected,
        "failures": [], "warnings": [], "next": [], "history": _history(entries, running),
        "host_keys": _host_keys(system)}
    if cp is not None:
        phases = [{"phase": name, "start": _iso(rec.get("start")),
                   "duration_s": rec.get("duration"), "result": rec.get("result")}
                  for name, rec in cp.phases.items() if isinstance(rec, dict)]
        err = cp.last_error
        base.update(phase=cp.phase, boot=cp.boot, instance_id=cp.instance_id,
                    provider=cp.provider, done=cp.phase == "DONE",
                    last_error=None if not err else {**err, "time": _iso(err.get("time"))},
                    phases=phases, steps=_steps(cp), failures=_failures(cp),
                    warnings=[dict(w) for w in cp.warnings])
        base["detected_provider"] = detected or cp.provider
    base["status"] = _outcome(base, cp)
    base["exit_code"] = EXIT_CODES[base["status"]]
    base["next"] = _next(base, cp)
    return base


def _outcome(data: dict[str, Any], cp) -> str:
    if data["running"]:
        return RUNNING
    if data["settings_error"]:
        return ERROR
    if cp is None:
        return NOT_RUN
    if cp.phase == "DONE":
        return WARNED if cp.warnings else DONE
    return ERROR   # held, stopped in DETECT/FETCH, or killed half way and not restarted


def _next(data: dict[str, Any], cp) -> list[str]:
    steps: list[str] = []
    if data["settings_error"]:
        steps.append(f"settings: {advice(data['settings_error'], None)}")
        return steps
    if cp is None or data["running"]:
        return steps
    held_at = cp.resume_from or (cp.phase if cp.phase != "DONE" else None)
    for f in data["failures"]:
        steps.append(f"{f['phase']}/{f['step']}: {advice(f, held_at)}")
    if data["status"] == ERROR and not data["failures"]:
        steps.append(f"the last start was killed in {cp.phase}; {CLEAR} (or the next boot) "
                     "resumes there")
    if data["warnings"]:
        steps.append("warnings: the items named were skipped and everything else applied; "
                     "fix them in the metadata")
    return steps


def _host_keys(system: GuestFiles) -> dict[str, str]:
    """The host keys' fingerprints as the last start that configured the instance recorded
    them (fsm/query.py): status reads records, it loads no step code."""
    from fsm import query

    try:
        keys = query.load(system).get("host_key_fingerprints")
    except query.QueryError:
        return {}
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}
