"""`metadata status`: the checkpoint as an operator reads it, like `cloud-init status --long`
and `cloud-init analyze blame` in one view. Reads only: a damaged file is reported, not moved.
"""

from __future__ import annotations

import time
from typing import Any

from fsm.checkpoint import CHECKPOINT_PATH, PREVIOUS_SUFFIX, CheckpointError, decode
from fsm.steps import PHASE_NAMES
from fsm.system import System

STATUS_SCHEMA = 1


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def status_data(root: str) -> dict[str, Any]:
    system = System(root)
    problems: list[str] = []
    cp = None
    source = None
    for path in (CHECKPOINT_PATH, CHECKPOINT_PATH + PREVIOUS_SUFFIX):
        if not system.exists(path):
            continue
        try:
            cp = decode(system.read_bytes(path))
            source = path
            break
        except (CheckpointError, OSError) as e:
            problems.append(f"{path}: {e}")
    # Phase by phase, each in the order its steps were recorded (the machine's order), from
    # the checkpoint alone: status imports no step code.
    order = {p: i for i, p in enumerate(PHASE_NAMES)}
    if cp is None:
        return {"schema": STATUS_SCHEMA, "checkpoint": None, "phase": None, "boot": 0,
                "instance_id": None, "provider": None, "done": False, "last_error": None,
                "phases": [], "steps": [], "problems": problems}
    phases = []
    for name in PHASE_NAMES:
        rec = cp.phases.get(name)
        if rec:
            phases.append({"phase": name, "start": _iso(rec.get("start")),
                           "duration_s": rec.get("duration"), "result": rec.get("result")})
    steps = []
    for key, rec in sorted(cp.completed_steps(), key=lambda kv: (
            order.get(kv[0].split("/")[0], 99), kv[1].get("started") or kv[1].get("finished") or 0,
            kv[0])):
        steps.append({"step": key, "status": rec.get("status"), "frequency": rec.get("frequency"),
                      "boot": rec.get("boot"), "finished": _iso(rec.get("finished")),
                      "duration_s": rec.get("duration"), "changes": rec.get("changes", 0),
                      "error": rec.get("error")})
    err = cp.last_error
    return {"schema": STATUS_SCHEMA, "checkpoint": source, "phase": cp.phase, "boot": cp.boot,
            "instance_id": cp.instance_id, "provider": cp.provider, "done": cp.phase == "DONE",
            "last_error": None if not err else {**err, "time": _iso(err.get("time"))},
            "phases": phases, "steps": steps, "problems": problems}


def render_status(root: str, as_json: bool = False) -> str:
    data = status_data(root)
    if as_json:
        import json

        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    if data["checkpoint"] is None:
        lines = ["status: never run (no checkpoint)"]
        lines += [f"damaged: {p}" for p in data["problems"]]
        return "\n".join(lines) + "\n"
    state = "done" if data["done"] else ("error" if data["last_error"] else "running")
    lines = [f"status:   {state}",
             f"phase:    {data['phase']} (boot {data['boot']})",
             f"instance: {data['instance_id'] or 'unknown'}",
             f"provider: {data['provider'] or '-'}"]
    if data["last_error"]:
        e = data["last_error"]
        lines.append(f"error:    {e['phase']}/{e['step']}: {e['message']} (exit {e['exit_code']})")
    lines += [f"damaged:  {p}" for p in data["problems"]]
    lines += ["", "phase       started                duration  result"]
    for ph in data["phases"]:
        dur = "" if ph["duration_s"] is None else f"{ph['duration_s'] * 1000:.0f} ms"
        lines.append(f"{ph['phase']:<11} {ph['start'] or '-':<22} {dur:>8}  {ph['result']}")
    lines += ["", "step                      frequency     boot  status  duration  changes"]
    for st in data["steps"]:
        dur = "" if st["duration_s"] is None else f"{st['duration_s'] * 1000:.0f} ms"
        lines.append(f"{st['step']:<25} {st['frequency']:<13} {st['boot']!s:>4}  {st['status']:<6} "
                     f"{dur:>8}  {st['changes']}")
    return "\n".join(lines) + "\n"
