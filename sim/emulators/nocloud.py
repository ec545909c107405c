"""Emulator of the nocloud metadata source (placeholder until the providers issue lands)."""

from __future__ import annotations

from typing import Any


def default_metadata() -> dict[str, Any]:
    return {}
