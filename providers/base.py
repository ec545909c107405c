"""The provider interface, after afterburn's provider trait and cloud-init's detect/fetch split.

`detect` is cheap and local (SMBIOS facts, a device node, a bounded serial probe) and never
waits on a network service SMBIOS did not point at; `fetch` talks to the source and parses
into the one `Metadata` model. Transports come from settings (base URL, serial device), so
the same code talks to the cloud and to our emulators.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import ClassVar

    from fsm.steps import Context
    from providers.model import Metadata


class Provider:
    name: ClassVar[str] = "base"
    # True when the provider needs the network, so DETECT may not pick it on a guess.
    uses_network: ClassVar[bool] = False

    def detect(self, ctx: Context) -> bool:
        raise NotImplementedError

    def fetch(self, ctx: Context) -> Metadata:
        raise NotImplementedError


def choose_primary_link(links: list[str], prefixes: tuple[str, ...]) -> str | None:
    """The first link of the cloud's own NIC driver (`prefixes` in order: ena before xnf on
    EC2), else the first link: the one its metadata service answers on."""
    for prefix in prefixes:
        for link in links:
            if link.startswith(prefix) and link[len(prefix):].isdigit():
                return link
    return links[0] if links else None


def primary_link(ctx: Context, source: str, prefixes: tuple[str, ...]) -> tuple[str, str]:
    """(link, its MAC) to bring DHCP up on to reach `source`'s metadata service; a
    ServiceError when the guest has no link at all."""
    from fsm.errors import ServiceError
    from operations.netlinks import known_links

    links = known_links(ctx)
    link = choose_primary_link([name for name, _ in links], prefixes)
    if link is None:
        raise ServiceError(f"{source}: no network link to reach the metadata service on")
    return link, dict(links)[link]
