"""Blast radius for parsers: one item the agent cannot apply costs that item, not the document.

A provider parses a document item by item (a NIC, a subnet, a route, a nameserver, a key
field). An item that is malformed or that the agent cannot honour is recorded as a warning
naming the source, the field and the value, and skipped; the rest of the document is still
applied and the warnings reach the checkpoint through `Metadata.warnings` (FETCH records
them). Only a document that cannot be parsed at all (not JSON/YAML, not a mapping) is a
MetadataError that stops the boot at FETCH.

Usage, in a parser:

    items = Items("nocloud")
    for i, sub in enumerate(subnets):
        with items.guard():
            addresses.append(parse_subnet(sub))   # raises MetadataError for this item
    items.skip("network-config config[0].type", "bond", "bonds are not supported")
    Metadata(..., warnings=items.tuple())
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fsm.errors import MetadataError, shown

log = logging.getLogger(__name__)

SKIPPED = "skipped; the rest is applied"


def quoted(value: object) -> str:
    """A metadata value as a warning quotes it: `fsm.errors.shown` for text and numbers; a
    list or mapping is described, not printed (a YAML alias bomb is a few hundred bytes
    that expand to hundreds of millions of characters when printed)."""
    if isinstance(value, (list, tuple, dict)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        return f"({kind} of {len(value)} item{'s' if len(value) != 1 else ''})"
    return shown(value)


class Items:
    """The warnings of one parse; each is logged once as it is recorded."""

    def __init__(self, source: str):
        self.source = source
        self.warnings: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.warnings:
            log.warning("%s", text)
            self.warnings.append(text)

    def skip(self, field: str, value: object, why: str) -> None:
        """Record that `field` (holding `value`) is not applied, and why."""
        self.add(f"{self.source}: {field}: {quoted(value)}: {why}; {SKIPPED}")

    def note(self, field: str, why: str) -> None:
        """A warning about a field without quoting its value (e.g. user-data: may be secret)."""
        self.add(f"{self.source}: {field}: {why}")

    @contextmanager
    def guard(self, what: str = "") -> Iterator[None]:
        """Run one item's parse; a MetadataError becomes a warning and the item is skipped."""
        try:
            yield
        except MetadataError as e:
            label = f" ({what})" if what else ""
            self.add(f"{e}{label}; {SKIPPED}")

    def extend(self, warnings: tuple[str, ...] | list[str]) -> None:
        for warning in warnings:
            self.add(warning)

    def tuple(self) -> tuple[str, ...]:
        return tuple(self.warnings)

