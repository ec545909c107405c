"""Named points where tests may kill the agent, to prove resume is correct.

`METADATA_AGENT_CRASH_AT=<point>` makes the process SIGKILL itself at that point, the way a
power cut would stop it; `<point>` is e.g. `before:NETWORK/addresses`,
`after:STORAGE/reguid` (after the step, before its checkpoint write) or `checkpoint:mid`.
A `#N` suffix fires on the N-th time the point is reached. Unset (as under SMF), it costs one
dictionary lookup per point.
"""

from __future__ import annotations

import os
from _signal import SIGKILL  # signal.py's C core (see fsm/spawn.py)

_target = os.environ.get("METADATA_AGENT_CRASH_AT", "")
_seen: dict[str, int] = {}


def reached(point: str) -> None:
    if not _target:
        return
    name, _, nth = _target.partition("#")
    if name != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] >= int(nth or 1):
        os.kill(os.getpid(), SIGKILL)
