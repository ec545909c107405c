"""smartos metadata source (placeholder: detects nothing until the providers issue lands)."""

from __future__ import annotations

from providers.base import Provider


class SmartOSProvider(Provider):
    name = "smartos"

    def detect(self, ctx) -> bool:
        return False


class SmartOSProbeProvider(Provider):
    name = "smartos"

    def detect(self, ctx) -> bool:
        return False
