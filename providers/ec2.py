"""ec2 metadata source (placeholder: detects nothing until the providers issue lands)."""

from __future__ import annotations

from providers.base import Provider


class EC2Provider(Provider):
    name = "ec2"

    def detect(self, ctx) -> bool:
        return False
