"""An OpenStack instance without a config drive: its metadata from Nova's metadata service
only (sim/emulators/openstack.py, `drive: false`)."""

from __future__ import annotations

from typing import Any

from sim.emulators.openstack import default_metadata as nova_metadata
from sim.emulators.openstack import lay_out, serve

__all__ = ["default_metadata", "lay_out", "serve"]


def default_metadata() -> dict[str, Any]:
    return {**nova_metadata("openstack-http"), "drive": False}
