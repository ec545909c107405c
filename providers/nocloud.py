"""nocloud metadata source (placeholder: detects nothing until the providers issue lands)."""

from __future__ import annotations

from providers.base import Provider


class NoCloudProvider(Provider):
    name = "nocloud"

    def detect(self, ctx) -> bool:
        return False
