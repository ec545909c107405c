"""The names the machine and its checkpoint share: the phases, and the step frequencies.

Apart from fsm/steps.py (which re-exports both) so that the checkpoint's shape
(fsm/cpschema.py) and `metadata status` can name them without importing the step types
and their record classes: status runs at the cost of a bare interpreter (issue 17).
"""

from __future__ import annotations

import enum


class Frequency(str, enum.Enum):
    PER_BOOT = "per-boot"          # every boot: re-checks that cannot go stale
    PER_INSTANCE = "per-instance"  # once for each instance id (a new VM from the image)
    ONCE = "once"                  # once for the life of the image


PHASE_NAMES = ("DETECT", "FETCH", "NETWORK", "IDENTITY", "STORAGE", "USERSCRIPT", "DONE")
