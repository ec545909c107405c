"""VMware guestinfo, read with open-vm-tools' `vmware-rpctool "info-get guestinfo.KEY"`.

The keys are those of cloud-init's VMware datasource: `guestinfo.metadata` (JSON or YAML:
instance-id, local-hostname, root's keys from the first of `public-keys-data`,
`public_keys_data`, `public-keys`, `public_keys` present (DataSourceVMware's order; the
first is what VMware's own documentation tells users to set), network as netplan v2 or v1) with
`guestinfo.metadata.encoding` (base64 or gzip+base64, also spelt b64 and gz+b64), and
`guestinfo.userdata` (+ `.encoding`): a `#!` script or `#cloud-config`
(providers/cloudconfig.py).

DETECT asks for `guestinfo.metadata` only when SMBIOS says VMware and the tool is
installed: the RPC goes to the hypervisor through the backdoor port, never the network, so
it is cheap. No tool or no metadata returns False, and the CPIO seed disk is tried next, as
the original agent did for VMware Fusion.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import logging
import zlib

from fsm.errors import MetadataError
from providers import cloudconfig, nocloud, smbios
from providers.base import Provider
from providers.items import Items
from providers.model import Metadata, Nic
from providers.netconfig import parse_network_config

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context
    from providers.smbios import SmbiosInfo

log = logging.getLogger(__name__)

RPCTOOL = "/usr/bin/vmware-rpctool"
RPC_TIMEOUT_S = 5.0
VALUE_CAP = 1 << 20
SOURCE = "vmware"


def is_vmware(info: SmbiosInfo | None) -> bool:
    return smbios.platform(info) == "vmware"


def guestinfo(ctx: Context, key: str) -> str | None:
    """The value of `guestinfo.<key>`, None when the VM has no such key."""
    result = ctx.system.run([RPCTOOL, f"info-get guestinfo.{key}"], timeout_s=RPC_TIMEOUT_S,
                            check=False)
    if result.returncode != 0:
        log.debug("guestinfo.%s: %s", key, result.stderr.strip() or "no value")
        return None
    value = result.stdout[:-1] if result.stdout.endswith("\n") else result.stdout
    return value if value.strip() else None


def decode(value: str, encoding: str | None, key: str) -> bytes:
    """A guestinfo value in its declared encoding; a wrong one is an error naming the key."""
    enc = (encoding or "").strip().lower()
    # base64 is 4/3 of the bytes it holds: anything longer cannot decode within the cap.
    if len(value) > VALUE_CAP * 4 // 3 + 4:
        raise MetadataError(SOURCE, f"guestinfo.{key}", f"larger than {VALUE_CAP} bytes")
    try:
        if enc in ("", "none"):
            return _capped(value.encode("utf-8"), key)
        if enc in ("base64", "b64"):
            return _capped(base64.b64decode(value, validate=False), key)
        if enc in ("gzip+base64", "gz+b64"):
            raw = base64.b64decode(value, validate=False)
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                data = f.read(VALUE_CAP + 1)
            if len(data) > VALUE_CAP:
                raise MetadataError(SOURCE, f"guestinfo.{key}",
                                    f"decompresses to more than {VALUE_CAP} bytes")
            return data
    except (binascii.Error, OSError, EOFError, zlib.error) as e:
        raise MetadataError(SOURCE, f"guestinfo.{key}", f"not valid {enc}: {e}") from None
    raise MetadataError(SOURCE, f"guestinfo.{key}.encoding",
                        f"unknown encoding {encoding!r}; expected base64 or gzip+base64")


def _capped(data: bytes, key: str) -> bytes:
    if len(data) > VALUE_CAP:
        raise MetadataError(SOURCE, f"guestinfo.{key}", f"larger than {VALUE_CAP} bytes")
    return data


class VMwareProvider(Provider):
    name = SOURCE

    def __init__(self) -> None:
        self.raw_metadata: str | None = None

    def detect(self, ctx: Context) -> bool:
        if not is_vmware(ctx.smbios) or not ctx.system.exists(RPCTOOL):
            return False
        self.raw_metadata = guestinfo(ctx, "metadata")
        if self.raw_metadata is None:
            log.info("VMware without guestinfo.metadata; trying the CPIO seed disk")
        return self.raw_metadata is not None

    def fetch(self, ctx: Context) -> Metadata:
        raw = self.raw_metadata if self.raw_metadata is not None else guestinfo(ctx, "metadata")
        if raw is None:
            raise MetadataError(SOURCE, "guestinfo.metadata", "not set")
        meta_bytes = decode(raw, guestinfo(ctx, "metadata.encoding"), "metadata")
        user_raw = guestinfo(ctx, "userdata")
        user_data = None
        if user_raw is not None:
            user_data = decode(user_raw, guestinfo(ctx, "userdata.encoding"), "userdata")
        return parse(meta_bytes, user_data)


KEY_FIELDS = ("public-keys-data", "public_keys_data", "public-keys", "public_keys")
META = "guestinfo.metadata"


def parse(meta_bytes: bytes, user_data: bytes | None) -> Metadata:
    """Metadata from decoded guestinfo.metadata and guestinfo.userdata; pure.

    Only a metadata document that is not JSON/YAML or not a mapping is refused; any field
    the agent cannot use is a warning and is skipped (providers/items.py).
    """
    try:
        meta = nocloud.load_document(meta_bytes, "metadata")
    except MetadataError as e:
        raise MetadataError(SOURCE, META, e.problem) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise MetadataError(SOURCE, META, "must be a mapping")
    items = Items(SOURCE)
    provenance: dict[str, str] = {}
    instance_id = nocloud._optional_str(meta, "instance-id", items, int, prefix=META)
    hostname_key = "local-hostname" if "local-hostname" in meta else "hostname"
    hostname = nocloud._optional_str(meta, hostname_key, items, prefix=META)
    keys: tuple[str, ...] = ()
    # cloud-init's DataSourceVMware.get_public_ssh_keys: the first of these present wins.
    for key_field in KEY_FIELDS:
        if key_field in meta:
            keys = nocloud.public_keys(meta[key_field], items, f"{META} {key_field}")
            provenance["ssh_keys"] = f"{META} {key_field}"
            break
    for model_field, key, present in (("instance_id", "instance-id", instance_id),
                                      ("hostname", hostname_key, hostname)):
        if present:
            provenance[model_field] = f"{META} {key}"
    network: dict[str, Any] | None = None
    with items.guard("DHCP on the first link"):
        doc = _network_document(meta)
        if doc is not None:
            network = parse_network_config(doc, items, field=f"{META} network")
            provenance["nics"] = f"{META} network"
    if network is None:
        network = {"nics": (Nic(mac=None, dhcp4=True, primary=True),)}
        provenance["nics"] = "(no usable network: DHCP on the first link)"
    if network.get("network_skip"):
        provenance["network_skip"] = f"{META} network config: disabled"
    # A script, or #cloud-config (providers/cloudconfig.py, as NoCloud's user-data): its
    # `ssh_authorized_keys` go to the default user (root unless [users] default names one),
    # its `fqdn`/`hostname` win over the metadata's name, as in cloud-init.
    config, script, warnings = cloudconfig.from_documents(user_data, None, SOURCE)
    if script is not None:
        provenance["user_script"] = "guestinfo.userdata"
    if config is not None and (config.fqdn or config.hostname):
        hostname = config.fqdn or config.hostname
        provenance["hostname"] = f"guestinfo.userdata {'fqdn' if config.fqdn else 'hostname'}"
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname,
                    ssh_keys=keys, user_script=script, provenance=provenance,
                    cloud_config=config, warnings=items.tuple() + tuple(warnings), **network)


def _network_document(meta: dict[str, Any]) -> Any:
    """`network` as a mapping, or as a string in `network.encoding` (cloud-init's form)."""
    network = meta.get("network")
    if network is None or isinstance(network, dict):
        return network
    if not isinstance(network, str):
        raise MetadataError(SOURCE, f"{META} network", "must be a mapping or an encoded string")
    data = decode(network, meta.get("network.encoding"), "metadata network")
    try:
        return nocloud.load_document(data, "network-config")
    except MetadataError as e:
        raise MetadataError(SOURCE, f"{META} network", e.problem) from None
