"""A Tribblix bhyve zone whose cloud-init attribute is a URL: `ds=nocloud-net;s=URL;i=`,
the seed files served over HTTP (zoneseed.py), keys only (`zap create-zone -k`)."""

from __future__ import annotations

from typing import Any

from sim.emulators.zoneseed import OPERATOR_KEY, lay_out, serve, zone_metadata

__all__ = ["default_metadata", "lay_out", "serve"]


def default_metadata() -> dict[str, Any]:
    md = zone_metadata("tribblix-zone", "trib-1", OPERATOR_KEY, None, "10.0.7.30/24",
                       "10.0.7.1")
    uuid = md["serial"].split("i=", 1)[1]
    return {**md, "serial": f"ds=nocloud-net;s={{url}};i={uuid}", "served": True}
