"""An OmniOS bhyve zone's cloud-init seed: a CIDATA CD and `ds=nocloud;i=` (zoneseed.py)."""

from __future__ import annotations

from typing import Any

from sim.emulators.zoneseed import OPERATOR_KEY, ZONE_HASH, lay_out, serve, zone_metadata

__all__ = ["default_metadata", "lay_out", "serve"]


def default_metadata() -> dict[str, Any]:
    return zone_metadata("omnios-zone", "web-1", OPERATOR_KEY, ZONE_HASH,
                         "10.0.5.20/24", "10.0.5.1")
