"""digitalocean metadata source (placeholder: detects nothing until the providers issue lands)."""

from __future__ import annotations

from providers.base import Provider


class DigitalOceanProvider(Provider):
    name = "digitalocean"

    def detect(self, ctx) -> bool:
        return False
