"""Azure's `ovf-env.xml` (the provisioning DVD): the admin user, host name, keys, CustomData.

What is read, as Microsoft's provisioning documents it and cloud-init's OvfEnvXml reads
it (namespaces `http://schemas.dmtf.org/ovf/environment/1` and
`http://schemas.microsoft.com/windowsazure`): `ProvisioningSection /
LinuxProvisioningConfigurationSet` with `HostName` and `UserName` (both required),
`UserPassword`, `DisableSshPasswordAuthentication` (true/false), `SSH/PublicKeys/PublicKey`
(`Value`: an OpenSSH key line; `Fingerprint` + `Path` only: a key the platform delivers as a
certificate through the wireserver, which this agent does not fetch: a warning naming the
fingerprint), and `CustomData` (base64; the user-data every platform has).

Parsing is safe by construction: the document is capped in size, anything with a DTD
(`<!DOCTYPE`, hence no entity of any kind) is refused before parsing, and the parser is
the standard library's expat, which never fetches external entities. The password is
kept in a `repr=False` field and is never quoted in a warning or an error.
"""

from __future__ import annotations

import base64
import binascii
from xml.etree import ElementTree

from fsm.errors import MetadataError, shown
from fsm.record import field, record

SOURCE = "azure"
OVF_FILE = "ovf-env.xml"
# CustomData is at most 64 KiB before base64; the rest of the document is small.
OVF_CAP = 256 << 10
NS_WA = "{http://schemas.microsoft.com/windowsazure}"
WHERE = f"{OVF_FILE} LinuxProvisioningConfigurationSet"


@record(frozen=True)
class OvfEnv:
    hostname: str
    username: str
    password: str | None = field(default=None, repr=False)
    disable_password_auth: bool | None = None
    ssh_keys: tuple[str, ...] = field(default=(), repr=False)
    custom_data: bytes | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()


def _refuse(what: str, why: str) -> MetadataError:
    return MetadataError(SOURCE, f"{OVF_FILE} {what}".strip(), why)


def parse_ovf_env(data: bytes) -> OvfEnv:
    """The provisioning settings of an `ovf-env.xml`; MetadataError when it is not one."""
    if len(data) > OVF_CAP:
        raise _refuse("", f"larger than {OVF_CAP} bytes")
    if b"<!doctype" in data.lower() or b"<!entity" in data.lower():
        raise _refuse("", "has a DTD or entity declaration; refused (Azure sends none)")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise _refuse("", f"is not well-formed XML ({e})") from None
    section = _one(root, "ProvisioningSection", required=True)
    config = _one(section, "LinuxProvisioningConfigurationSet", required=True)
    warnings: list[str] = []
    hostname = _text(config, "HostName", required=True)
    username = _text(config, "UserName", required=True)
    password = _text(config, "UserPassword", secret=True)
    disable = _text(config, "DisableSshPasswordAuthentication")
    disable_auth: bool | None = None
    if disable is not None:
        if disable.strip().lower() not in ("true", "false"):
            warnings.append(f"{SOURCE}:{WHERE} DisableSshPasswordAuthentication: "
                            f"{shown(disable)} is not true or false; ignored")
        else:
            disable_auth = disable.strip().lower() == "true"
    custom = _text(config, "CustomData", secret=True)
    custom_data = None
    if custom:
        try:
            custom_data = base64.b64decode("".join(custom.split()), validate=True)
        except (binascii.Error, ValueError):
            # Never quoted: CustomData can carry anything (a password, a token).
            warnings.append(f"{SOURCE}:{WHERE} CustomData: not valid base64 "
                            f"({len(custom)} characters, not shown); ignored")
    return OvfEnv(hostname=hostname or "", username=username or "", password=password or None,
                  disable_password_auth=disable_auth, ssh_keys=_keys(config, warnings),
                  custom_data=custom_data or None, warnings=tuple(warnings))


def _one(node: ElementTree.Element, name: str, required: bool = False
         ) -> ElementTree.Element | None:
    found = node.findall(NS_WA + name)
    if len(found) > 1:
        raise _refuse(name, f"appears {len(found)} times; expected once")
    if not found and required:
        raise _refuse(name, "missing")
    return found[0] if found else None


def _text(node: ElementTree.Element, name: str, required: bool = False,
          secret: bool = False) -> str | None:
    element = _one(node, name)
    text = (element.text or "") if element is not None else None
    if required and not (text or "").strip():
        raise _refuse(f"LinuxProvisioningConfigurationSet {name}", "missing or empty")
    if text is not None and not secret:
        text = text.strip()
    return text


def _keys(config: ElementTree.Element, warnings: list[str]) -> tuple[str, ...]:
    ssh = _one(config, "SSH")
    public = _one(ssh, "PublicKeys") if ssh is not None else None
    if public is None:
        return ()
    keys: list[str] = []
    for index, key in enumerate(public.findall(NS_WA + "PublicKey")):
        value = _text(key, "Value") or ""
        fingerprint = _text(key, "Fingerprint") or ""
        if value.strip():
            keys.append(" ".join(value.split()))
        elif fingerprint:
            warnings.append(f"{SOURCE}:{WHERE} SSH PublicKey {index}: only a Fingerprint "
                            f"({shown(fingerprint)}), a key delivered as a certificate "
                            f"through the wireserver, which the agent does not fetch; skipped")
        else:
            warnings.append(f"{SOURCE}:{WHERE} SSH PublicKey {index}: no Value; skipped")
    return tuple(keys)
