"""OpenStack: the `config-2` drive, else the metadata service; also Proxmox VE's configdrive2.

The drive is an ISO 9660 (Nova: genisoimage `-V config-2 -r -J`; Proxmox VE: genisoimage
`-J -R -V config-2`) or FAT volume labelled `config-2` (cloud-init accepts `CONFIG-2` too;
the label is compared without case), found by fstyp on disks and CD-ROMs like every seed
(providers/localdisk.py). Below `openstack/` are version directories: `latest` is read
when present, else the newest dated one (cloud-init prefers the newest dated version it
knows over `latest`; Nova writes the same documents into both, and Proxmox VE writes only
`latest`). In it:

- `meta_data.json` (required): `uuid` the instance id, `hostname`, `public_keys` (name ->
  key) and `keys` (`[{type: ssh, data}]`); `network_config.content_path` names a Debian
  ENI file below `openstack/` (`/content/0000`: how Proxmox VE's configdrive2 gives the
  network; Nova's older `injected` networks too), read when there is no network_data.json.
- `network_data.json`: providers/openstack_network.py.
- `user_data`: a script or `#cloud-config`, handled as on every platform
  (providers/cloudconfig.py); `vendor_data.json`: a JSON string, or an object whose
  `cloud-init` member is that string (cloud-init's convert_vendordata), merged under
  user-data; Proxmox VE writes its vendor snippet verbatim, so a file that is not JSON but
  is a `#cloud-config` document is taken as it is.

DETECT: SMBIOS `OpenStack Foundation` / `OpenStack Nova` (providers/smbios.py) says
OpenStack: the drive is used when attached, else the metadata service at
`openstack.endpoint` is read after DHCP on the first link (as nocloud-net reaches its URL),
every request bounded by `timeouts.http` and all of them by `timeouts.fetch`. Elsewhere
(Proxmox VE, any QEMU or unknown machine) only a `config-2` volume selects it: the network
is never waited on for a guess.
"""

from __future__ import annotations

import json
import logging
import re

from fsm.errors import MetadataError, ServiceError
from providers import cloudconfig, localdisk, smbios
from providers.base import Provider
from providers.items import Items
from providers.model import Metadata, Nic

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any, Callable

    from fsm.steps import Context

log = logging.getLogger(__name__)

SOURCE = "openstack"
LABEL = "config-2"
LATEST = "latest"
FILES = ("meta_data.json", "network_data.json", "user_data", "vendor_data.json")
FILE_CAP = 1 << 20
DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def choose_version(available: list[str]) -> str | None:
    """`latest` if listed, else the newest dated version, else None."""
    if LATEST in available:
        return LATEST
    dated = sorted(v for v in available if DATED.match(v))
    return dated[-1] if dated else None


def content_path(meta: dict[str, Any]) -> str | None:
    """The path below `openstack/` of meta_data.json's `network_config` content, if any."""
    item = meta.get("network_config")
    path = item.get("content_path") if isinstance(item, dict) else None
    if not isinstance(path, str):
        return None
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    return "/".join(parts)


# ---- reading: the drive and the service give the same files --------------------------------

def read_drive(ctx: Context, volume: localdisk.Volume) -> dict[str, bytes]:
    """The chosen version's files (and the ENI content) from a mounted config-2 volume."""
    with localdisk.mounted(ctx.system, volume) as top:
        try:
            available = ctx.system.listdir(f"{top}/openstack")
        except OSError:
            available = []
        version = choose_version(list(available))
        if version is None:
            raise MetadataError(f"{volume.device}", "openstack/", "no `latest` or dated "
                                "version directory on the config drive")

        def read(name: str) -> bytes | None:
            return localdisk.read_one(ctx.system, volume, f"openstack/{name}", FILE_CAP)

        return _gather(read, version, f"{volume.device}:openstack/{version}")


def read_service(ctx: Context) -> dict[str, bytes]:
    """The same files from the metadata service: GET /openstack for the versions."""
    from providers import nocloudnet
    from providers.http import HttpClient

    base = ctx.settings.get("openstack.endpoint").rstrip("/") + "/openstack"
    nocloudnet._bring_up_dhcp(ctx, SOURCE, "the metadata service")
    with HttpClient.from_settings(SOURCE, ctx.settings) as client:

        def read(name: str) -> bytes | None:
            url = f"{base}/{name}" if name else base
            reply = client.request("GET", url)
            if reply.status == 404:
                return None
            if reply.status != 200:
                raise ServiceError(f"{SOURCE}: GET {url}: HTTP {reply.status}")
            if len(reply.body) > FILE_CAP:
                raise MetadataError(SOURCE, url, f"larger than {FILE_CAP} bytes")
            return reply.body

        listing = (read("") or b"").decode("utf-8", "replace")
        version = choose_version([line.strip() for line in listing.splitlines()])
        if version is None:
            raise ServiceError(f"{SOURCE}: GET {base}: no `latest` or dated version listed")
        return _gather(read, version, f"{base}/{version}")


def _gather(read: Callable[[str], bytes | None], version: str, where: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in FILES:
        data = read(f"{version}/{name}")
        if data is not None:
            files[name] = data
    if "meta_data.json" not in files:
        raise MetadataError(SOURCE, f"{where}/meta_data.json", "missing (it is required)")
    if "network_data.json" not in files and files["meta_data.json"].strip():
        meta = _json_object(files["meta_data.json"], "meta_data.json")
        path = content_path(meta)
        data = read(path) if path else None
        if data is not None:
            files["network_config"] = data
    log.info("%s: %s: %s", SOURCE, where, ", ".join(sorted(files)))
    return files


# ---- parsing: a pure function of the files --------------------------------------------------

def parse(files: dict[str, bytes]) -> Metadata:
    """Metadata from the config drive's files (name -> contents); pure.

    meta_data.json that is not a JSON object fails FETCH (MetadataError); every other
    problem is a per-item warning and the rest is applied (providers/items.py)."""
    from providers.nocloud import public_keys

    files = {name: data for name, data in files.items() if data.strip()}
    items = Items(SOURCE)
    meta = _json_object(files.get("meta_data.json", b"{}"), "meta_data.json")
    provenance: dict[str, str] = {}
    instance_id = _string(meta, "uuid", items, spaces=False)
    hostname = _string(meta, "hostname", items)   # judged by IDENTITY/hostname's checks
    keys = public_keys(meta.get("public_keys"), items, "meta_data.json public_keys")
    keys += _keys_list(meta.get("keys"), items)
    keys = tuple(dict.fromkeys(keys))
    for model_field, key, present in (("instance_id", "uuid", instance_id),
                                      ("hostname", "hostname", hostname),
                                      ("ssh_keys", "public_keys", keys)):
        if present:
            provenance[model_field] = f"meta_data.json {key}"
    if isinstance(meta.get("files"), list) and meta["files"]:
        items.note("meta_data.json files", f"{len(meta['files'])} injected file(s) are not "
                                           "written by this agent; skipped")
    config, script, warnings = cloudconfig.from_documents(
        files.get("user_data"), _vendor_document(files.get("vendor_data.json"), items), SOURCE)
    if script is not None:
        provenance["user_script"] = "user_data"
    if config is not None and (config.fqdn or config.hostname):
        hostname = config.fqdn or config.hostname
        provenance["hostname"] = f"user_data {'fqdn' if config.fqdn else 'hostname'}"
    network = _network(files, items, provenance)
    empty = not (instance_id or hostname or keys or script or config is not None)
    if empty:
        items.note("(drive)", "no usable data: not a new instance; nothing a previous "
                              "instance installed is removed")
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname, ssh_keys=keys,
                    user_script=script, cloud_config=config, provenance=provenance,
                    warnings=items.tuple() + tuple(warnings), empty=empty, **network)


def _network(files: dict[str, bytes], items: Items, provenance: dict[str, str]) -> dict:
    from providers.openstack_network import parse_network_data

    network = None
    if "network_data.json" in files:
        with items.guard("DHCP on the first link instead"):
            doc = _json_any(files["network_data.json"], "network_data.json")
            network = parse_network_data(doc, items)
            provenance["nics"] = "network_data.json"
    elif "network_config" in files:
        from providers.eni import parse_eni

        text = files["network_config"].decode("utf-8", "replace")
        network = parse_eni(text, items, "meta_data.json network_config")
        provenance["nics"] = "meta_data.json network_config (ENI)"
    if network is None:
        provenance["nics"] = "(no usable network configuration: DHCP on the first link)"
        return {"nics": (Nic(mac=None, dhcp4=True, primary=True),)}
    return network


def _json_any(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MetadataError(SOURCE, name, "is not UTF-8 text") from None
    except ValueError as e:
        # The position only: the text may hold secrets (vendor data, admin_pass).
        raise MetadataError(SOURCE, name, f"is not valid JSON ({type(e).__name__} at line "
                                          f"{getattr(e, 'lineno', '?')})") from None
    except RecursionError:
        raise MetadataError(SOURCE, name, "is nested too deeply to be metadata") from None


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    doc = _json_any(data, name)
    if not isinstance(doc, dict):
        raise MetadataError(SOURCE, name, f"must be a JSON object, not {type(doc).__name__}")
    return doc


def _string(meta: dict[str, Any], key: str, items: Items, spaces: bool = True) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        items.skip(f"meta_data.json {key}", value, "must be a non-empty string")
        return None
    if not spaces and any(c.isspace() for c in value.strip()):
        items.skip(f"meta_data.json {key}", value, "must not contain white space")
        return None
    return value.strip()


def _keys_list(value: Any, items: Items) -> tuple[str, ...]:
    """`keys`: `[{name, type: ssh, data}]`, the form meta_data.json has beside public_keys."""
    if value is None:
        return ()
    if not isinstance(value, list):
        items.skip("meta_data.json keys", value, "must be a list")
        return ()
    found: list[str] = []
    for i, key in enumerate(value):
        where = f"meta_data.json keys[{i}]"
        if not isinstance(key, dict) or not isinstance(key.get("data"), str):
            items.skip(where, key, "must be an object with a `data` string")
            continue
        if key.get("type", "ssh") != "ssh":
            items.skip(f"{where}.type", key.get("type"), "only ssh keys are installed")
            continue
        found += [line.strip() for line in key["data"].splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    return tuple(found)


def _vendor_document(data: bytes | None, items: Items) -> bytes | None:
    """The cloud-config (or script) inside vendor_data.json, as cloud-init finds it."""
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if data.lstrip().startswith((b"#cloud-config", b"#!")):
            return data   # Proxmox VE's vendor snippet, written verbatim
        items.note("vendor_data.json", "is neither JSON nor a #cloud-config document "
                                       f"({len(data)} bytes, not shown); ignored")
        return None
    if isinstance(doc, dict):
        doc = doc.get("cloud-init")
    if doc is None or doc == "":
        return None
    if isinstance(doc, str):
        return doc.encode("utf-8")
    items.note("vendor_data.json cloud-init", f"must be a string (a #cloud-config document), "
                                              f"not {type(doc).__name__}; ignored")
    return None


# ---- the providers -------------------------------------------------------------------------

def _find_drive(ctx: Context) -> localdisk.Volume | None:
    volumes = localdisk.find_labelled(ctx.system, LABEL, ctx.facts)
    if len(volumes) > 1:
        raise MetadataError(SOURCE, "volume", f"{len(volumes)} volumes are labelled {LABEL!r} "
                            f"({', '.join(v.device for v in volumes)}); attach only one")
    if volumes:
        log.info("config drive %r (%s) on %s", volumes[0].label, volumes[0].fstype,
                 volumes[0].device)
    return volumes[0] if volumes else None


class OpenStackProvider(Provider):
    """SMBIOS says OpenStack: the config drive when attached, else the metadata service."""

    name = SOURCE
    uses_network = True

    def __init__(self) -> None:
        self.volume: localdisk.Volume | None = None

    def detect(self, ctx: Context) -> bool:
        if smbios.platform(ctx.smbios) != "openstack":
            return False
        self.volume = _find_drive(ctx)
        return True

    def fetch(self, ctx: Context) -> Metadata:
        if self.volume is not None:
            return parse(read_drive(ctx, self.volume))
        log.info("%s: no %r volume: reading the metadata service", SOURCE, LABEL)
        return parse(read_service(ctx))


class ConfigDriveProvider(Provider):
    """A `config-2` volume on another hypervisor (Proxmox VE's configdrive2): no network."""

    name = SOURCE

    def __init__(self) -> None:
        self.volume: localdisk.Volume | None = None

    def detect(self, ctx: Context) -> bool:
        if smbios.platform(ctx.smbios) in (*smbios.CLOUDS, "openstack"):
            return False
        self.volume = _find_drive(ctx)
        return self.volume is not None

    def fetch(self, ctx: Context) -> Metadata:
        if self.volume is None and not self.detect(ctx):
            raise MetadataError(SOURCE, "volume", f"no volume labelled {LABEL!r}")
        assert self.volume is not None
        return parse(read_drive(ctx, self.volume))



