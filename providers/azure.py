"""Microsoft Azure: the provisioning DVD's ovf-env.xml, then the Instance Metadata Service.

DETECT is SMBIOS only: `Microsoft Corporation` / `Virtual Machine` with Azure's chassis
asset tag `7783-7084-3265-9085-8269-3286-77` (on-premises Hyper-V has the first two but
not the tag; providers/smbios.py), so no network is waited on to decide.

FETCH reads `ovf-env.xml` from the provisioning DVD (UDF, `mount -F udfs`; an ISO 9660
one is read too), found as the NoCloud and config-drive volumes are (fstyp on every disk
and CD-ROM, providers/localdisk.py), and parses it (providers/azure_ovf.py). It then brings
up DHCP on the primary link (`hv_netvsc*`, else the first) and reads IMDS,
`GET /metadata/instance?api-version=2021-02-01` with `Metadata: true` (Microsoft's "Azure
Instance Metadata Service" document): `compute.vmId` (the instance id),
`compute.osProfile.computerName`, `compute.publicKeys[].keyData`, and
`network.interface[]` (the first is the primary; `macAddress` is 12 hex digits without
separators; `ipv4.ipAddress[].privateIpAddress` with `ipv4.subnet[].prefix`;
`ipv6.ipAddress[]`). The primary NIC's first IPv4 address comes by DHCP, the others are
static with their subnet's prefix (as on EC2: a DHCP client on every NIC would fight over
the default route); a NIC with IPv6 addresses gets IPv6 autoconfiguration.

IMDS failing (no lease, no answer, not JSON) costs the network details, not the
provisioning: a warning says so, the DVD's user, name and keys are applied, the primary
link gets DHCP, and the instance id is the SMBIOS UUID as printed from the table, which on
Hyper-V is vmId (its table stores the UUID big-endian, so the endian-corrected line shows
the first three groups byte-swapped). A guest that recorded the byte-swapped form of the
same id (an earlier agent or cloud-init) keeps it: a re-deployed VM is not a new instance.

The admin user (`UserName`) is created with the DVD's and IMDS's keys, the password (hashed
before it is written; never logged, checkpointed or put in argv) and the `Primary
Administrator` profile, through the cloud-config users machinery; `CustomData` is user-data
(a script or #cloud-config) as on every platform, and a cloud-config `users` entry of the
same name wins. `DisableSshPasswordAuthentication` becomes `ssh_pwauth` unless CustomData
sets it. The Ready report is a step of its own (operations/azureready.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging

from fsm.errors import AgentError, MetadataError, ServiceError
from fsm.record import replace
from providers import cloudconfig, localdisk, smbios
from providers.azure_ovf import OVF_CAP, OVF_FILE, SOURCE, OvfEnv, parse_ovf_env
from providers.base import Provider, primary_link
from providers.items import Items
from providers.model import Metadata, Nic, normalise_mac

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context

log = logging.getLogger(__name__)

IMDS_PATH = "/metadata/instance?api-version=2021-02-01"
ADMIN_PROFILES = ("Primary Administrator",)
DVD_FSTYPES = ("udfs", "hsfs")
PRIMARY_LINK_PREFIXES = ("hv_netvsc", "hn")


class AzureProvider(Provider):
    name = SOURCE
    uses_network = True

    def detect(self, ctx: Context) -> bool:
        return smbios.platform(ctx.smbios) == "azure"

    def fetch(self, ctx: Context) -> Metadata:
        raw = read_ovf_env(ctx)
        ovf = parse_ovf_env(raw) if raw is not None else None
        items = Items(SOURCE)
        doc = None
        link, mac = primary_link(ctx, SOURCE, PRIMARY_LINK_PREFIXES)
        try:
            _bring_up_dhcp(ctx, link)
            doc = read_imds(ctx)
        except AgentError as e:
            if ovf is None:
                raise MetadataError(SOURCE, OVF_FILE, f"no provisioning DVD holds it, and "
                                    f"IMDS was not read either ({e})") from None
            items.note("IMDS", f"not read ({e}); provisioning from {OVF_FILE} alone, "
                               f"DHCP on {link}, the SMBIOS UUID as the instance id")
        if ovf is None:
            # The DVD is gone once provisioned (cloud-init ejects it; an operator may
            # detach it): a later boot is configured from IMDS, its admin user kept.
            ovf = ovf_from_imds(doc or {})
            items.note(OVF_FILE, "no provisioning DVD (ejected after provisioning?): the "
                                 "host name and admin user from IMDS compute.osProfile")
        recorded = ctx.checkpoint.instance_id
        return build_metadata(ovf, doc, items, smbios_uuid=(ctx.smbios.uuid if ctx.smbios
                                                            else ""),
                              recorded=recorded, primary_mac=mac)


def read_ovf_env(ctx: Context) -> bytes | None:
    """ovf-env.xml from the first DVD (udfs or hsfs volume) holding it; None without one."""
    volumes = [v for v in localdisk.find_volumes(ctx.system) if v.fstype in DVD_FSTYPES]
    for volume in volumes:
        files = localdisk.read_files(ctx.system, volume, (OVF_FILE,), OVF_CAP)
        if OVF_FILE in files:
            log.info("%s: %s on %s (%s)", SOURCE, OVF_FILE, volume.device, volume.fstype)
            return files[OVF_FILE]
    log.info("%s: no provisioning DVD holds %s (%d UDF/ISO 9660 volumes)", SOURCE, OVF_FILE,
             len(volumes))
    return None


def ovf_from_imds(doc: dict[str, Any]) -> OvfEnv:
    """The DVD's settings as far as IMDS repeats them (no password, no CustomData)."""
    compute = doc.get("compute") if isinstance(doc.get("compute"), dict) else {}
    profile = compute.get("osProfile") if isinstance(compute.get("osProfile"), dict) else {}
    name, user = profile.get("computerName"), profile.get("adminUsername")
    if not (isinstance(name, str) and name and isinstance(user, str) and user):
        raise MetadataError(SOURCE, "IMDS compute.osProfile", "no computerName and "
                            "adminUsername, and no provisioning DVD")
    return OvfEnv(hostname=name, username=user)


def read_imds(ctx: Context) -> dict[str, Any]:
    from providers.http import HttpClient

    url = ctx.settings.get("azure.endpoint").rstrip("/") + IMDS_PATH
    with HttpClient.from_settings(SOURCE, ctx.settings) as client:
        reply = client.request("GET", url, {"Metadata": "true"})
    if reply.status != 200:
        raise ServiceError(f"{SOURCE}: GET {url}: unexpected HTTP {reply.status}")
    try:
        doc = json.loads(reply.body)
    except (ValueError, RecursionError):
        raise MetadataError(SOURCE, "IMDS instance", "is not JSON") from None
    if not isinstance(doc, dict):
        raise MetadataError(SOURCE, "IMDS instance", "must be a JSON object")
    return doc


def build_metadata(ovf: OvfEnv, doc: dict[str, Any] | None, items: Items,
                   smbios_uuid: str = "", recorded: str | None = None,
                   primary_mac: str | None = None) -> Metadata:
    """The model from the DVD's settings and the IMDS document (None: not read); pure."""
    compute = _section(doc, "compute", items)
    provenance = {"hostname": f"{OVF_FILE} HostName", "cloud_config": f"{OVF_FILE}"}
    vm_id = compute.get("vmId") if compute else None
    if vm_id is not None and not _is_uuid(vm_id):
        items.skip("compute.vmId", vm_id, "not a UUID")
        vm_id = None
    if vm_id:
        provenance["instance_id"] = "IMDS compute.vmId"
    elif smbios_uuid and _is_uuid(smbios_uuid):
        vm_id = smbios_uuid
        provenance["instance_id"] = "(SMBIOS UUID as the table stores it: vmId on Hyper-V)"
    instance_id = vm_id.lower() if vm_id else None
    if instance_id and recorded and recorded.lower() == smbios.byte_swapped(instance_id):
        instance_id = recorded   # the same VM, its id recorded in the other byte order
    hostname = ovf.hostname   # required on the DVD, and taken from osProfile without one
    keys = list(ovf.ssh_keys)
    for index, entry in enumerate(_list(compute, "publicKeys", items)):
        data = entry.get("keyData") if isinstance(entry, dict) else None
        if not isinstance(data, str) or not data.strip():
            items.skip(f"compute.publicKeys[{index}].keyData", data, "not a key line")
        elif " ".join(data.split()) not in keys:
            keys.append(" ".join(data.split()))
    nics = _nics(doc, items) if doc is not None else ()
    if not nics:
        nics = (Nic(mac=primary_mac, dhcp4=True, primary=True, name="primary"),)
        provenance["nics"] = "(no IMDS interfaces: DHCP on the primary link)"
    else:
        provenance["nics"] = "IMDS network.interface"
    config, script, warnings = cloudconfig.from_documents(ovf.custom_data, None, SOURCE)
    if script is not None:
        provenance["user_script"] = f"{OVF_FILE} CustomData"
    config = with_admin(config, ovf, tuple(keys))
    if config.fqdn or config.hostname:
        hostname = config.fqdn or config.hostname
        provenance["hostname"] = f"CustomData {'fqdn' if config.fqdn else 'hostname'}"
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname, nics=nics,
                    user_script=script, cloud_config=config, provenance=provenance,
                    warnings=ovf.warnings + items.tuple() + tuple(warnings))


def with_admin(config: Any, ovf: OvfEnv, keys: tuple[str, ...]) -> Any:
    """The cloud-config with the ovf-env admin user added (a CustomData user of the same
    name wins) and `ssh_pwauth` from DisableSshPasswordAuthentication unless it is set."""
    from providers.cloudconfig_model import CloudConfig, UserSpec

    config = config or CloudConfig(users_given=False)
    users = config.users
    if not any(u.name == ovf.username for u in users):
        admin = UserSpec(name=ovf.username, ssh_authorized_keys=keys,
                         plain_passwd=ovf.password,
                         lock_passwd=False if ovf.password else None,
                         profiles=ADMIN_PROFILES)
        users = (*users, admin)
    pwauth = config.ssh_pwauth
    if pwauth is None and ovf.disable_password_auth is not None:
        pwauth = not ovf.disable_password_auth
    modules = ("users",) + (("ssh_pwauth",) if pwauth is not None else ())
    # `users_given` and `default` stay CustomData's: the admin user is one more named user.
    return replace(config, users=users, ssh_pwauth=pwauth,
                   modules=tuple(dict.fromkeys((*config.modules, *modules))))


def _section(doc: dict[str, Any] | None, key: str, items: Items) -> dict[str, Any]:
    if doc is None:
        return {}
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        items.skip(key, value, "expected an object")
        return {}
    return value


def _list(section: dict[str, Any], key: str, items: Items) -> list[Any]:
    value = section.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        items.skip(key, value, "expected a list")
        return []
    return value


def _is_uuid(value: Any) -> bool:
    parts = value.split("-") if isinstance(value, str) else []
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdefABCDEF" for p in parts for c in p)


def azure_mac(value: Any) -> str:
    """`000D3AF806EC` (IMDS's form) -> `00:0d:3a:f8:06:ec`; ValueError if not a MAC."""
    if not isinstance(value, str):
        raise ValueError(f"not a MAC address: {value!r}")
    text = value.strip()
    if len(text) == 12 and all(c in "0123456789abcdefABCDEF" for c in text):
        text = ":".join(text[i:i + 2] for i in range(0, 12, 2))
    return normalise_mac(text)


def _nics(doc: dict[str, Any], items: Items) -> tuple[Nic, ...]:
    network = _section(doc, "network", items)
    found: list[Nic] = []
    for index, iface in enumerate(_list(network, "interface", items)):
        where = f"network.interface[{index}]"
        if not isinstance(iface, dict):
            items.skip(where, iface, "expected an object")
            continue
        try:
            mac = azure_mac(iface.get("macAddress"))
        except ValueError:
            items.skip(f"{where}.macAddress", iface.get("macAddress"), "not a MAC address")
            continue
        primary = not found
        v4 = _addresses(iface, "ipv4", 4, where, items)
        v6 = _addresses(iface, "ipv6", 6, where, items)
        static = v4[1:] if primary else v4
        found.append(Nic(mac=mac, addresses=tuple(static), dhcp4=primary,
                         addrconf=bool(v6), primary=primary, name=f"interface-{index}"))
    return tuple(found)


def _addresses(iface: dict[str, Any], key: str, version: int, where: str,
               items: Items) -> list[str]:
    """`ADDRESS/PREFIX` of each private address, the prefix that of the first subnet
    (a host prefix without one: never a guessed subnet)."""
    section = iface.get(key)
    if section is None:
        return []
    if not isinstance(section, dict):
        items.skip(f"{where}.{key}", section, "expected an object")
        return []
    subnets = section.get("subnet") or []
    host = 32 if version == 4 else 128
    prefix = host
    first = subnets[0] if isinstance(subnets, list) and subnets else None
    if isinstance(first, dict):
        text = str(first.get("prefix", ""))
        if text.isdigit() and int(text) <= host:
            prefix = int(text)
        else:
            items.skip(f"{where}.{key}.subnet[0].prefix", first.get("prefix"),
                       f"not a prefix length; the addresses get /{host}")
    found = []
    listed = section.get("ipAddress") or []
    for n, entry in enumerate(listed if isinstance(listed, list) else []):
        address = entry.get("privateIpAddress") if isinstance(entry, dict) else None
        try:
            ip = ipaddress.ip_address(str(address))
            if ip.version != version:
                raise ValueError
        except ValueError:
            items.skip(f"{where}.{key}.ipAddress[{n}].privateIpAddress", address,
                       f"not an IPv{version} address")
            continue
        found.append(f"{ip}/{prefix}")
    return found


def _bring_up_dhcp(ctx: Context, link: str) -> None:
    """DHCP on the primary link: IMDS (and the wireserver) are reachable only through it."""
    from operations.dhcp import ensure_dhcp

    if ctx.system.dry_run:
        log.info("%s: plan: would bring up DHCP on %s; reading IMDS without it", SOURCE, link)
        return
    log.info("%s: DHCP on %s to reach the metadata service", SOURCE, link)
    ensure_dhcp(ctx, link, primary=True)

