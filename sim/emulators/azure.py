"""Emulator of Azure's provisioning interfaces: the DVD, IMDS and the wireserver.

- The provisioning DVD: a UDF 2.60 volume (as Hyper-V attaches it) holding `ovf-env.xml`,
  written with pycdlib (a maintained pure-Python ISO 9660/UDF writer; a bridge disc, with
  the same file in the ISO 9660 tree as `OVF_ENV.XML`), in the VM's CD-ROM drive.
- IMDS (Microsoft's "Azure Instance Metadata Service"): `GET /metadata/instance` with an
  `api-version` query and the `Metadata: true` header answers the instance document as
  JSON; without the header (or with `X-Forwarded-For`, a proxied request) 400 and
  `{"error": "Bad request. ..."}`, without `api-version` 400, another path 404, another
  method 405.
- The wireserver (Microsoft's no-agent provisioning page and cloud-init's Azure helper):
  `GET /machine/?comp=goalstate` with `x-ms-version` answers the GoalState XML
  (Incarnation, Container/ContainerId, RoleInstanceList/RoleInstance/InstanceId);
  `POST /machine?comp=health` (or `/machine/?comp=health`) takes a Health document whose
  incarnation, container id and instance id match the goal state and whose State is
  `Ready` or `NotReady`: 200, and the report is appended to `<root>/var/sim/
  wireserver-reports.json` (tests read it with `reports(root)`), surviving the agent's
  kills and the emulator's restarts; anything else (no `x-ms-version`, not XML, a DTD,
  wrong ids, another state) is 400 and not recorded.

Metadata JSON (for `sim create --metadata`): `ovf` (the fields of `ovf_env()`), `imds` (the
instance document), `goalstate` ({incarnation, container_id, instance_id}), and the faults
of sim/httpserve.py under `_emulator`, plus `imds_status` (IMDS alone answers every
request with that status: 404, 410, 500...).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import threading
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sim.httpserve import Answer, Faults, HttpServer, Request

REPORTS = "var/sim/wireserver-reports.json"
VM_ID = "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
CUSTOM_DATA = ('#cloud-config\ntimezone: UTC\nwrite_files:\n  - path: /etc/motd\n'
               '    content: "Provisioned on Azure\\n"\n')
DVD_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAmeFkgadcLsKOqZJk5aqI2qmUsYtEDji4ATBoC9Gyzk "
           "azureuser@example")
IMDS_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDupwlf23WaiaILkKysovd4TyyDthpgCTjassDiHWFd4 "
            "ops@example")
CERT_FINGERPRINTS = ("6BE7A7C3C8A8F4B123CCA5D0C2F1BE4CA7B63ED7",
                     "D6A9B2E1F0C3E4D5A6B7C8D9E0F1A2B3C4D5E6F7")
_LOCK = threading.Lock()


def default_ovf() -> dict[str, Any]:
    return {"hostname": "examplevmname", "username": "azureuser",
            "password": "Example-Passw0rd!", "disable_password_auth": True,
            "keys": [[CERT_FINGERPRINTS[0], DVD_KEY], [CERT_FINGERPRINTS[1], None]],
            "custom_data": CUSTOM_DATA}


def default_imds() -> dict[str, Any]:
    """Microsoft's IMDS sample (tests/corpus/azure/imds-instance.json)."""
    rid = ("/subscriptions/xxxxxxxx-xxxxx-xxx-xxx-xxxx/resourceGroups/macikgo-test-may-23/"
           "providers/Microsoft.Compute/virtualMachines/examplevmname")
    return {
        "compute": {
            "azEnvironment": "AzurePublicCloud", "location": "westus", "name": "examplevmname",
            "offer": "",
            "osProfile": {"adminUsername": "azureuser", "computerName": "examplevmname",
                          "disablePasswordAuthentication": "true"},
            "osType": "Linux", "provider": "Microsoft.Compute",
            "publicKeys": [{"keyData": IMDS_KEY,
                            "path": "/home/azureuser/.ssh/authorized_keys"}],
            "resourceGroupName": "macikgo-test-may-23", "resourceId": rid,
            "subscriptionId": "xxxxxxxx-xxxxx-xxx-xxx-xxxx", "vmId": VM_ID,
            "vmSize": "Standard_A3"},
        "network": {"interface": [{
            "ipv4": {"ipAddress": [{"privateIpAddress": "10.144.133.132", "publicIpAddress": ""},
                                   {"privateIpAddress": "10.144.133.133", "publicIpAddress": ""}],
                     "subnet": [{"address": "10.144.133.128", "prefix": "26"}]},
            "ipv6": {"ipAddress": []},
            "macAddress": "000D3AF806EC"}]},
    }


def default_metadata() -> dict[str, Any]:
    return {"ovf": default_ovf(), "imds": default_imds(),
            "goalstate": {"incarnation": "1",
                          "container_id": "f5940043-dbed-419c-9122-d77a4ac854b7",
                          "instance_id": f"{VM_ID}.examplevmname"}}


def ovf_env(fields: dict[str, Any]) -> bytes:
    """An ovf-env.xml in the layout Azure writes (tests/corpus/azure/ovf-env.xml)."""
    def element(name: str, value: Any) -> str:
        return "" if value is None else f"      <{name}>{escape(str(value))}</{name}>\n"

    keys = ""
    for fingerprint, value in fields.get("keys") or []:
        keys += ("          <PublicKey>\n"
                 f"            <Fingerprint>{escape(fingerprint)}</Fingerprint>\n"
                 f"            <Path>/home/{escape(fields['username'])}/.ssh/authorized_keys"
                 "</Path>\n" + (f"            <Value>{escape(value)}</Value>\n" if value else "")
                 + "          </PublicKey>\n")
    disable = fields.get("disable_password_auth")
    custom = fields.get("custom_data")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
            'xmlns:wa="http://schemas.microsoft.com/windowsazure" '
            'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
            '  <wa:ProvisioningSection>\n    <wa:Version>1.0</wa:Version>\n'
            '    <LinuxProvisioningConfigurationSet '
            'xmlns="http://schemas.microsoft.com/windowsazure">\n'
            '      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>\n'
            + element("HostName", fields.get("hostname"))
            + element("UserName", fields.get("username"))
            + element("UserPassword", fields.get("password"))
            + element("DisableSshPasswordAuthentication",
                      None if disable is None else str(bool(disable)).lower())
            + f"      <SSH>\n        <PublicKeys>\n{keys}        </PublicKeys>\n      </SSH>\n"
            + element("CustomData", base64.b64encode(custom.encode()).decode() if custom
                      else None)
            + "    </LinuxProvisioningConfigurationSet>\n  </wa:ProvisioningSection>\n"
            '  <wa:PlatformSettingsSection>\n    <wa:Version>1.0</wa:Version>\n'
            '    <wa:PlatformSettings>\n      <wa:ProvisionGuestAgent>false'
            '</wa:ProvisionGuestAgent>\n      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>\n'
            '    </wa:PlatformSettings>\n  </wa:PlatformSettingsSection>\n'
            '</Environment>\n').encode()


def dvd_image(ovf: bytes) -> bytes:
    """A UDF 2.60 provisioning DVD holding ovf-env.xml, written by pycdlib."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(udf="2.60", vol_ident="rd_rdfe_stable")
    iso.add_fp(io.BytesIO(ovf), len(ovf), "/OVF_ENV.XML;1", udf_path="/ovf-env.xml")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


# Azure's DHCP answer on the sample's subnet, with option 245 (the wireserver); an image
# prepared for Azure names the option in /etc/dhcp/inittab so dhcpinfo(1) knows it.
LEASE = {"address": "10.144.133.132/26", "router": "10.144.133.129", "dns": ["168.63.129.16"],
         "hostname": None, "domain": "internal.cloudapp.net",
         "options": {"245": "168.63.129.16"}}
INITTAB_SITE = "AzureWS\tSITE, 245, IP, 1, 1, i\n"


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state
    from sim.emulators.zoneseed import cdrom, insert_cd

    raw = metadata.get("ovf-env.xml")
    ovf = raw.encode() if isinstance(raw, str) else ovf_env(metadata.get("ovf") or {})
    insert_cd(root, cdrom("azure"), dvd_image(ovf))
    with state.locked(root) as st:
        link = st["links"][0]["link"]
        st["dhcp"]["leases"].setdefault(link, dict(LEASE))
    inittab = os.path.join(root, "etc", "dhcp", "inittab")
    os.makedirs(os.path.dirname(inittab), exist_ok=True)
    with open(inittab, "a", encoding="utf-8") as f:
        f.write("# Azure: the wireserver's address (DHCP option 245)\n" + INITTAB_SITE)


def reports(root: str) -> list[dict[str, Any]]:
    """The health reports the wireserver accepted, oldest first."""
    try:
        with open(os.path.join(root, REPORTS), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def _record(root: str, report: dict[str, Any]) -> None:
    with _LOCK:
        found = reports(root) + [report]
        path = os.path.join(root, REPORTS)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(found, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)


class AzureService:
    def __init__(self, root: str, metadata: dict[str, Any]):
        self.root = root
        self.imds = copy.deepcopy(metadata.get("imds") or {})
        self.goal = dict(metadata.get("goalstate") or default_metadata()["goalstate"])
        faults = Faults.from_metadata(metadata, own_keys=frozenset({"imds_status"}),
                                      emulator="azure")
        self.imds_status = (metadata.get("_emulator") or {}).get("imds_status")
        self.imds_server = HttpServer(self.answer_imds, faults)
        self.wire_server = HttpServer(self.answer_wire, faults)
        self.endpoint = {"azure": {"endpoint": self.imds_server.url,
                                   "wireserver": self.wire_server.url}}

    def close(self) -> None:
        self.imds_server.close()
        self.wire_server.close()

    def answer_imds(self, request: Request) -> Answer:
        path, query = request.path, request.query
        if path != "/metadata/instance":
            return Answer(404, b'{"error": "Not found"}')
        if request.method != "GET":
            return Answer(405, b'{"error": "Method not allowed"}')
        if self.imds_status:
            return Answer(int(self.imds_status), b'{"error": "injected"}')
        if request.headers.get("Metadata") != "true" or request.headers.get("X-Forwarded-For"):
            return Answer(400, b'{"error": "Bad request. Required metadata header not '
                               b'specified"}')
        if "api-version=" not in query:
            return Answer(400, b'{"error": "Bad request. api-version was not specified in '
                               b'the request."}')
        return Answer(200, json.dumps(self.imds).encode(), content_type="application/json")

    def answer_wire(self, request: Request) -> Answer:
        path, query = request.path, request.query
        if path != "/machine":
            return Answer(404, b"Not Found\n")
        if not request.headers.get("x-ms-version"):
            return Answer(400, b"Bad Request: x-ms-version required\n")
        if request.method == "GET" and query == "comp=goalstate":
            return Answer(200, self._goal_state(), content_type="text/xml; charset=utf-8")
        if request.method == "POST" and query == "comp=health":
            report = self._parse_health(request.body)
            if report is None:
                return Answer(400, b"Bad Request: malformed health report\n")
            _record(self.root, report)
            return Answer(200, b"", headers={"x-ms-latest-goal-state-incarnation-number":
                                             self.goal["incarnation"]})
        return Answer(405 if query in ("comp=goalstate", "comp=health") else 400,
                      b"Bad Request\n")

    def _goal_state(self) -> bytes:
        g = {k: escape(str(v)) for k, v in self.goal.items()}
        return ('<?xml version="1.0" encoding="utf-8"?>\n<GoalState '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xsi:noNamespaceSchemaLocation="goalstate10.xsd">\n'
                '  <Version>2012-11-30</Version>\n'
                f'  <Incarnation>{g["incarnation"]}</Incarnation>\n'
                '  <Machine>\n    <ExpectedState>Started</ExpectedState>\n'
                '    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>\n  </Machine>\n'
                f'  <Container>\n    <ContainerId>{g["container_id"]}</ContainerId>\n'
                '    <RoleInstanceList>\n      <RoleInstance>\n'
                f'        <InstanceId>{g["instance_id"]}</InstanceId>\n'
                '        <State>Started</State>\n      </RoleInstance>\n'
                '    </RoleInstanceList>\n  </Container>\n</GoalState>\n').encode()

    def _parse_health(self, body: bytes) -> dict[str, Any] | None:
        if b"<!doctype" in body.lower() or len(body) > 65536:
            return None
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return None

        def text(path: str) -> str | None:
            element = root.find(path)
            return None if element is None else (element.text or "").strip()

        role = "./Container/RoleInstanceList/Role"
        report = {"incarnation": text("./GoalStateIncarnation"),
                  "container_id": text("./Container/ContainerId"),
                  "instance_id": text(f"{role}/InstanceId"),
                  "state": text(f"{role}/Health/State"),
                  "substatus": text(f"{role}/Health/Details/SubStatus"),
                  "description": text(f"{role}/Health/Details/Description")}
        if root.tag != "Health" or report["state"] not in ("Ready", "NotReady"):
            return None
        if any(report[k] != str(self.goal[k]) for k in ("incarnation", "container_id",
                                                       "instance_id")):
            return None
        return report


def serve(root: str, metadata: dict[str, Any]) -> AzureService:
    return AzureService(root, metadata)
