"""The guest with no metadata source: do what can be done without one.

As the original agent did on an unknown platform, bring up DHCP on the first link so the
guest is reachable; the instance id falls back to the SMBIOS UUID (in fsm/gather.py).
"""

from __future__ import annotations

from providers.base import Provider
from providers.model import Metadata, Nic

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context


class NoMetadataProvider(Provider):
    name = "none"

    def detect(self, ctx: Context) -> bool:
        return True

    def fetch(self, ctx: Context) -> Metadata:
        return Metadata(source=self.name, nics=(Nic(mac=None, dhcp4=True, primary=True),),
                        provenance={"nics": "(no metadata: DHCP on the first link)"})
