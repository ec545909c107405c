"""cloud-init's NoCloud seed in the SMBIOS system serial number: `ds=nocloud[;k=v...]` or
`ds=nocloud-net[;k=v...]`, as OmniOS and Tribblix bhyve zones set it (`smbios -t 1`
`Serial Number: ds=nocloud;i=<uuid>`) and QEMU's `-smbios type=1,serial=...` can.

Keys, as cloud-init's NoCloud documentation lists them: `i` / `instance-id`, `h` /
`local-hostname`, `s` / `seedfrom` (a URL ending in `/` that `meta-data`, `user-data`,
`vendor-data` and `network-config` are fetched below). Values given here win over the
seed's meta-data, as in cloud-init. Unknown keys are ignored; a malformed serial is
simply not a seed.
"""

from __future__ import annotations

from fsm.record import record, replace

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from providers.model import Metadata
    from providers.smbios import SmbiosInfo

ALIASES = {"i": "instance-id", "h": "local-hostname", "s": "seedfrom"}


@record(frozen=True)
class SerialSeed:
    mode: str                       # "nocloud" or "nocloud-net"
    instance_id: str | None = None
    hostname: str | None = None
    seedfrom: str | None = None


def parse(serial: str) -> SerialSeed | None:
    parts = [p.strip() for p in serial.strip().split(";")]
    if not parts or parts[0] not in ("ds=nocloud", "ds=nocloud-net"):
        return None
    values: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if sep and value.strip() and key not in values:
            values[key] = value.strip()
    return SerialSeed(mode=parts[0][len("ds="):], instance_id=values.get("instance-id"),
                      hostname=values.get("local-hostname"), seedfrom=values.get("seedfrom"))


def from_smbios(info: SmbiosInfo | None) -> SerialSeed | None:
    return parse(info.serial) if info is not None and info.serial else None


def apply(md: Metadata, seed: SerialSeed) -> Metadata:
    """The serial's instance id and hostname over the seed's meta-data."""
    changes: dict[str, object] = {}
    provenance = dict(md.provenance)
    if seed.instance_id:
        changes["instance_id"] = seed.instance_id
        provenance["instance_id"] = "SMBIOS serial ds= i"
    if seed.hostname and "user-data" not in provenance.get("hostname", ""):
        changes["hostname"] = seed.hostname
        provenance["hostname"] = "SMBIOS serial ds= h"
    return replace(md, provenance=provenance, **changes) if changes else md
