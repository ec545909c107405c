"""The provider interface, after afterburn's provider trait and cloud-init's detect/fetch split.

`detect` is cheap and local (SMBIOS facts, a device node, a bounded serial probe) and never
waits on a network service SMBIOS did not point at; `fetch` talks to the source and parses
into the one `Metadata` model. Transports come from settings (base URL, serial device), so
the same code talks to the cloud and to our emulators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
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
