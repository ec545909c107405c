"""`metadata status` as text (fsm/status.py gathers it) and `--wait`."""

from __future__ import annotations

import json
import time

from fsm.status import NOT_RUN, RUNNING, status_data

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

WAIT_POLL_S = 0.25


def wait_for(root: str, timeout_s: float | None) -> tuple[dict[str, Any], bool]:
    """Poll until the boot is finished (not `running`, not `not run`); (data, finished)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        data = status_data(root)
        if data["status"] not in (RUNNING, NOT_RUN):
            return data, True
        if deadline is not None and time.monotonic() >= deadline:
            return data, False
        remaining = WAIT_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
        time.sleep(min(WAIT_POLL_S, remaining))


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f} ms"


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_text(data: dict[str, Any]) -> str:
    lines = [f"status:   {data['status']}"]
    if data["checkpoint"] is None and not data["settings_error"]:
        lines[0] += " (no checkpoint: the agent has not run on this guest)" \
            if data["status"] == NOT_RUN else ""
    if data["checkpoint"] is not None:
        lines += [f"phase:    {data['phase']} (boot {data['boot']})",
                  f"instance: {data['instance_id'] or 'unknown'}"]
    lines.append(f"provider: {data['detected_provider'] or data['provider'] or '-'}")
    if data["settings_error"]:
        lines.append(f"error:    settings: {data['settings_error']['message']} "
                     f"(exit {data['settings_error']['exit_code']})")
    for f in data["failures"]:
        code = f" (exit {f['exit_code']})" if f.get("exit_code") is not None else ""
        lines.append(f"failed:   {f['phase']}/{f['step']}: {f['message']}{code}")
    for w in data["warnings"]:
        lines.append(f"warning:  {w['step']}: {w['message']}")
    for step in data["next"]:
        lines.append(f"next:     {step}")
    lines += [f"damaged:  {p}" for p in data["problems"]]
    for key_type, fp in sorted(data["host_keys"].items()):
        lines.append(f"host key: {key_type} {fp}")
    if data["phases"]:
        lines += ["", "phase       started                duration  result"]
        for ph in data["phases"]:
            lines.append(f"{ph['phase']:<11} {ph['start'] or '-':<22} "
                         f"{_ms(ph['duration_s']):>8}  {ph['result']}")
    if data["steps"]:
        lines += ["", "step (in the order they ran)  frequency     boot  status  duration"]
        for st in data["steps"]:
            lines.append(f"{st['step']:<29} {st['frequency']!s:<13} {st['boot']!s:>4}  "
                         f"{st['status']!s:<6} {_ms(st['duration_s']):>9}")
            for change in st["changed"]:
                lines.append(f"    changed: {change}")
            if st.get("error"):
                lines.append(f"    error: {st['error']}")
    if data["history"]:
        lines += ["", "recent starts (newest first)", "started               boot  result"
                  "              exit  phases"]
        for h in data["history"]:
            phases = " ".join(f"{p['phase']} {_ms(p.get('duration_s')).replace(' ', '')}"
                              for p in h["phases"] if isinstance(p, dict))
            code = "" if h["exit_code"] is None else str(h["exit_code"])
            lines.append(f"{h['started'] or '-':<21} {h['boot'] if h['boot'] is not None else '-'!s:>4}"
                         f"  {h['result']!s:<18} {code:>4}  {phases}")
    return "\n".join(lines) + "\n"
