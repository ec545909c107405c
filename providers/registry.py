"""Every provider, in the order DETECT tries them: one explicit tuple of entries.

The first whose `detect` says yes wins. SMBIOS-identified platforms come first (on SmartOS,
a NoCloud disk before the serial service: providers/smartosnocloud.py); then the
local sources (CPIO seed disk, NoCloud volume, OpenStack `config-2` volume), which need no
network; the SmartOS serial probe is tried only when SMBIOS is unknown and nothing local
was found; `NoMetadataProvider` always says yes, so it is last.

An entry names its provider's module and class rather than importing them: a boot imports
only the providers DETECT asks and the one it chooses (the agent's start-up is on every
boot's critical path). Each entry carries a cheap hint, the SMBIOS platforms
(`providers.smbios.platform`) on which its `detect` can say yes at all: on any other
platform the provider is skipped without importing it. A hint only skips what `detect`
would refuse anyway; `tests/test_startup.py` checks each hint against its provider.
"""

from __future__ import annotations

import importlib

from fsm.record import record
from providers.smbios import CLOUDS

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from providers.base import Provider

UNKNOWN = "unknown"  # how a hint names "no SMBIOS table, or an unknown maker"
_NONE: frozenset[str] = frozenset()


@record(frozen=True)
class ProviderEntry:
    name: str
    module: str
    cls: str
    # The hint: `detect` says yes only on these platforms (None: on any) ...
    only_on: frozenset[str] | None = None
    # ... and never on these.
    never_on: frozenset[str] = _NONE

    def may_detect(self, platform: str | None) -> bool:
        platform = platform or UNKNOWN
        return platform not in self.never_on and (self.only_on is None
                                                  or platform in self.only_on)

    def load(self) -> type[Provider]:
        return getattr(importlib.import_module(self.module), self.cls)


PROVIDERS: tuple[ProviderEntry, ...] = (
    # A SmartOS VM with a cidata disk reads the disk (providers/smartosnocloud.py).
    ProviderEntry("nocloud", "providers.smartosnocloud", "SmartOSNoCloudProvider",
                  frozenset({"smartos"})),
    ProviderEntry("smartos", "providers.smartos", "SmartOSProvider", frozenset({"smartos"})),
    ProviderEntry("digitalocean", "providers.digitalocean", "DigitalOceanProvider",
                  frozenset({"digitalocean"})),
    ProviderEntry("ec2", "providers.ec2", "EC2Provider", frozenset({"ec2"})),
    ProviderEntry("vmware", "providers.vmware", "VMwareProvider", frozenset({"vmware"})),
    ProviderEntry("azure", "providers.azure", "AzureProvider", frozenset({"azure"})),
    ProviderEntry("openstack", "providers.openstack", "OpenStackProvider",
                  frozenset({"openstack"})),
    ProviderEntry("cpio", "providers.cpio", "CpioProvider", never_on=frozenset(CLOUDS)),
    ProviderEntry("nocloud", "providers.nocloud", "NoCloudProvider",
                  never_on=frozenset({"smartos", "digitalocean", "ec2"})),
    # A `config-2` volume elsewhere (Proxmox VE's configdrive2): after NoCloud, so guests
    # with a cidata volume never load it.
    ProviderEntry("openstack", "providers.openstack", "ConfigDriveProvider",
                  never_on=frozenset({*CLOUDS, "openstack"})),
    ProviderEntry("smartos", "providers.smartos", "SmartOSProbeProvider", frozenset({UNKNOWN})),
    ProviderEntry("none", "providers.nometadata", "NoMetadataProvider"),
)


def provider_classes() -> tuple[type[Provider], ...]:
    """Every provider class, importing them all (docs, tests; never a boot)."""
    return tuple(entry.load() for entry in PROVIDERS)
