"""Every provider, in the order DETECT tries them: one explicit tuple, no string lookups.

The first whose `detect` says yes wins. SMBIOS-identified platforms come first; then the
local sources (CPIO seed disk, NoCloud volume), which need no network; the SmartOS serial
probe is tried only when SMBIOS is unknown and nothing local was found; `NoMetadataProvider`
always says yes, so it is last.
"""

from __future__ import annotations

from providers.base import Provider
from providers.cpio import CpioProvider
from providers.digitalocean import DigitalOceanProvider
from providers.ec2 import EC2Provider
from providers.nocloud import NoCloudProvider
from providers.nometadata import NoMetadataProvider
from providers.smartos import SmartOSProbeProvider, SmartOSProvider
from providers.vmware import VMwareProvider

PROVIDERS: tuple[type[Provider], ...] = (
    SmartOSProvider,
    DigitalOceanProvider,
    EC2Provider,
    VMwareProvider,
    CpioProvider,
    NoCloudProvider,
    SmartOSProbeProvider,
    NoMetadataProvider,
)
