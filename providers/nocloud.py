"""NoCloud: a volume labelled `cidata` (hsfs from cloud-localds/genisoimage, or pcfs) holding
`meta-data`, `user-data` and `network-config`, as cloud-init's NoCloud source defines them.

DETECT: SMBIOS in the local group (QEMU, OmniOS, Tribblix, VMware, unknown/absent) or
Oxide, and a `cidata` volume found by fstyp (providers/localdisk.py: disks and CD-ROMs), or
an SMBIOS serial `ds=nocloud[-net];...` (providers/dsserial.py; `s=URL` fetches the files
over HTTP, providers/nocloudnet.py). It is tried after the CPIO seed
disk, but unlike the original agent a QEMU guest with a NoCloud disk uses it.

A file that is not JSON or YAML at all is refused (FETCH fails, naming it); everything
else is taken item by item, a field the agent cannot use being a warning that names it and
its value (providers/items.py), so one bad interface never costs the keys. YAML goes through
`yaml.safe_load` only (no object construction) and each file is capped in size before it is
parsed. An empty file is the same as an absent one, and a volume whose files are all
missing or empty yields `empty=True` (no usable data: not a new instance). The network
comes from `network-config` (providers/netconfig.py), else from meta-data
`network-interfaces` (providers/eni.py), else DHCP on the first link, as cloud-init
orders them. `user-data` is a script (`#!`) or `#cloud-config`, merged over `vendor-data`
(providers/cloudconfig.py; Proxmox puts root's keys and the name there: cloud-config's
`ssh_authorized_keys` go to the default user, root unless `[users] default` names one,
and `fqdn`/`hostname` win over meta-data's name, as in cloud-init); other kinds, and
modules the agent does not apply, are skipped with a warning that never quotes
user-data's secrets.
"""

from __future__ import annotations

import json
import logging

from fsm.errors import MetadataError
from providers import dsserial, localdisk, smbios
from providers.base import Provider
from providers.items import Items
from providers.model import Metadata, Nic

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context

log = logging.getLogger(__name__)

LABEL = "cidata"
FILES = ("meta-data", "user-data", "vendor-data", "network-config")
FILE_CAP = 1 << 20
TOO_DEEP = "nested too deeply to be metadata"
SOURCE = "nocloud"


class NoCloudProvider(Provider):
    name = SOURCE

    def __init__(self) -> None:
        self.volume: localdisk.Volume | None = None
        self.serial: dsserial.SerialSeed | None = None

    def detect(self, ctx: Context) -> bool:
        if smbios.platform(ctx.smbios) in ("smartos", "digitalocean", "ec2"):
            return False
        self.serial = dsserial.from_smbios(ctx.smbios)
        volumes = localdisk.find_labelled(ctx.system, LABEL, ctx.facts)
        if len(volumes) > 1:
            raise MetadataError(self.name, "volume", f"{len(volumes)} volumes are labelled "
                                f"{LABEL!r} ({', '.join(v.device for v in volumes)}); "
                                "attach only one")
        if volumes:
            self.volume = volumes[0]
            log.info("NoCloud volume %r (%s) on %s", volumes[0].label, volumes[0].fstype,
                     volumes[0].device)
        if self.serial is not None:
            log.info("NoCloud seed in the SMBIOS serial (%s)", self.serial.mode)
        return bool(volumes) or self.serial is not None

    def fetch(self, ctx: Context) -> Metadata:
        if self.volume is None and self.serial is None and not self.detect(ctx):
            raise MetadataError(self.name, "volume", f"no volume labelled {LABEL!r}")
        files = {}
        if self.volume is not None:
            files = localdisk.read_files(ctx.system, self.volume, FILES, FILE_CAP)
        if self.serial is not None and self.serial.seedfrom:
            from providers import nocloudnet

            fetched = nocloudnet.fetch_files(ctx, self.serial.seedfrom, FILES, FILE_CAP)
            files = {**fetched, **files}
        md = parse_seed(files)
        return dsserial.apply(md, self.serial) if self.serial is not None else md


def parse_seed(files: dict[str, bytes]) -> Metadata:
    """Metadata from the NoCloud files present (name -> contents); pure.

    A file that is not JSON/YAML at all, or a meta-data that is not a mapping, is a
    MetadataError (FETCH fails). Anything else is taken item by item: a field of the wrong
    type, a key or an interface the agent cannot use is a warning (`Metadata.warnings`) and
    is skipped (providers/items.py). Every file missing or empty gives `empty=True`.
    """
    # The parsers here, not at the top: DETECT imports this module on every guest without
    # SMBIOS cloud (to look for a cidata volume), and only a NoCloud guest parses.
    from providers import cloudconfig
    from providers.eni import parse_eni
    from providers.netconfig import parse_network_config

    files = {name: data for name, data in files.items() if data.strip()}
    items = Items(SOURCE)
    provenance: dict[str, str] = {}
    meta = load_document(files["meta-data"], "meta-data") if "meta-data" in files else {}
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise MetadataError(SOURCE, "meta-data", "must be a mapping")
    instance_id = _optional_str(meta, "instance-id", items, int)
    hostname_key = "local-hostname" if "local-hostname" in meta else "hostname"
    hostname = _optional_str(meta, hostname_key, items)
    keys = public_keys(meta.get("public-keys"), items)
    for model_field, key, present in (("instance_id", "instance-id", instance_id),
                                      ("hostname", hostname_key, hostname),
                                      ("ssh_keys", "public-keys", keys)):
        if present:
            provenance[model_field] = f"meta-data {key}"
    config, script, warnings = cloudconfig.from_documents(
        files.get("user-data"), files.get("vendor-data"), SOURCE)
    if script is not None:
        provenance["user_script"] = "user-data"
    if config is not None and (config.fqdn or config.hostname):
        hostname = config.fqdn or config.hostname
        provenance["hostname"] = f"user-data {'fqdn' if config.fqdn else 'hostname'}"
    network: dict[str, Any] | None = None
    doc = None
    if "network-config" in files:
        doc = load_document(files["network-config"], "network-config")
        if doc is not None:
            network = parse_network_config(doc, items)
            provenance["nics"] = "network-config"
    if doc is None and meta.get("network-interfaces") is not None:
        network = parse_eni(meta["network-interfaces"], items)
        provenance["nics"] = "meta-data network-interfaces"
    if network is None:
        network = {"nics": (Nic(mac=None, dhcp4=True, primary=True),)}
        provenance["nics"] = "(no usable network configuration: DHCP on the first link)"
    if network.get("network_skip"):
        provenance["network_skip"] = "network-config config: disabled"
    empty = not (instance_id or hostname or keys or script or config is not None
                 or "network-config" in files or meta.get("network-interfaces") is not None)
    if empty:
        items.note("(volume)", "no usable data (every file missing or empty): not a new "
                               "instance; nothing a previous instance installed is removed")
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname, ssh_keys=keys,
                    user_script=script, provenance=provenance, cloud_config=config,
                    warnings=items.tuple() + tuple(warnings), empty=empty, **network)


def load_document(data: bytes, name: str) -> Any:
    """JSON or YAML (safe_load only) from a capped file; None when it holds nothing."""
    if len(data) > FILE_CAP:
        raise MetadataError(SOURCE, name, f"larger than {FILE_CAP} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(SOURCE, name, "is not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as e:
            raise MetadataError(SOURCE, name, f"not valid JSON: {e}") from None
        except RecursionError:
            raise MetadataError(SOURCE, name, TOO_DEEP) from None
    from providers import yamlload  # here, not at the top: only NoCloud guests pay for PyYAML

    yaml = yamlload.import_yaml()
    try:
        return yamlload.safe_load(text)
    except RecursionError:
        # Both parsers recurse per level: a hostile `[[[[...` must be our error, not a crash.
        raise MetadataError(SOURCE, name, TOO_DEEP) from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise MetadataError(SOURCE, name, f"not valid YAML{at}: "
                            f"{getattr(e, 'problem', None) or e}") from None


def _optional_str(doc: dict[str, Any], key: str, items: Items, *also: type,
                  prefix: str = "meta-data") -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, *also)):
        items.skip(f"{prefix} {key}", value, f"must be a string, not {type(value).__name__}")
        return None
    return str(value).strip() or None


def public_keys(value: Any, items: Items | None = None,
                where: str = "meta-data public-keys") -> tuple[str, ...]:
    """`public-keys` as a list of lines, one string (several lines), or a mapping of
    name -> key(s), the three shapes cloud-init accepts (sources.normalize_pubkey_data).
    An entry of another type is skipped with a warning; the other keys are kept."""
    items = items if items is not None else Items(SOURCE)
    if value is None:
        return ()
    if isinstance(value, str):
        entries: list[tuple[str, Any]] = [(where, value)]
    elif isinstance(value, list):
        entries = [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    elif isinstance(value, dict):
        entries = []
        for name, keys in value.items():
            if isinstance(keys, list):
                entries += [(f"{where}.{name}[{i}]", k) for i, k in enumerate(keys)]
            else:
                entries.append((f"{where}.{name}", keys))
    else:
        items.skip(where, value, "must be a list, a string or a mapping")
        return ()
    lines = []
    for field, item in entries:
        if not isinstance(item, str):
            items.skip(field, item, f"must be a string, not {type(item).__name__}")
            continue
        lines.extend(line.strip() for line in item.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))
    return tuple(lines)


# ---- network-config: providers/netconfig.py (also VMware's) -------------------------------

def _cidr(address: Any, where: str, netmask: Any = None, prefix: Any = None) -> str:
    """An address/prefix from cloud-init's forms (kept for the property tests)."""
    from providers import netconfig

    return netconfig._cidr(address, where, netconfig._Ctx(Items(SOURCE), "network-config"),
                           netmask=netmask, prefix=prefix)
