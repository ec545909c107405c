"""The few cloud-config fields the agent honours in a NoCloud or VMware user-data.

Seed generators put the login keys and the name in user-data rather than meta-data:
Proxmox VE writes `#cloud-config` with `hostname`, `fqdn` and `ssh_authorized_keys`
(PVE/QemuServer/Cloudinit.pm: cloudinit_userdata) and a meta-data holding only the instance
id. Ignoring them locks the user out, so the agent takes, as cloud-init does:

- `ssh_authorized_keys` (top level: cloud-init's default user; here root, the agent's only
  login), appended to meta-data's keys;
- `fqdn`, else `hostname` (cc_set_hostname: cloud-config wins over meta-data's name).

Everything else in cloud-config is cloud-init's business and is not applied (one warning
naming the keys, never their values: user-data holds passwords). Keys given per user
(`users[N].ssh_authorized_keys`) are warned about: the agent installs root's keys only.
A cloud-config that is not YAML is a warning, never a refusal of the seed.
"""

from __future__ import annotations

from typing import Any

from fsm.errors import MetadataError
from providers.items import Items

HEADER = b"#cloud-config"
USED = ("ssh_authorized_keys", "fqdn", "hostname")


def is_cloud_config(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf").startswith(HEADER)


def read(data: bytes, items: Items, field: str, load: Any) -> dict[str, Any]:
    """{"ssh_keys": (...), "hostname": str|None, "hostname_key": str} from cloud-config;
    `load(data, name)` is the provider's capped safe YAML loader."""
    out: dict[str, Any] = {"ssh_keys": (), "hostname": None, "hostname_key": None}
    try:
        doc = load(data, field)
    except MetadataError as e:
        items.note(field, f"cloud-config that cannot be parsed ({e.problem}): not used")
        return out
    if not isinstance(doc, dict):
        items.note(field, "cloud-config that is not a mapping: not used")
        return out
    keys = doc.get("ssh_authorized_keys")
    if keys is not None:
        if isinstance(keys, str):
            keys = [keys]
        if isinstance(keys, list):
            good = [k.strip() for k in keys if isinstance(k, str) and k.strip()]
            if len(good) != len(keys):
                items.note(f"{field} ssh_authorized_keys", "an entry that is not text is "
                                                            "skipped")
            out["ssh_keys"] = tuple(good)
        else:
            items.note(f"{field} ssh_authorized_keys", "must be a list of keys; not used")
    for key in ("fqdn", "hostname"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            out["hostname"], out["hostname_key"] = value.strip(), key
            break
        if value is not None:
            items.skip(f"{field} {key}", value, "must be text")
    users = doc.get("users")
    if isinstance(users, list):
        for i, user in enumerate(users):
            if isinstance(user, dict) and user.get("ssh_authorized_keys"):
                items.note(f"{field} users[{i}].ssh_authorized_keys",
                           "keys for another user are not installed (the agent installs "
                           "root's keys only, from ssh_authorized_keys at the top level)")
    rest = sorted(str(k) for k in doc if k not in USED)
    if rest:
        items.note(field, f"cloud-config: only {', '.join(USED)} are used; "
                          f"{', '.join(rest)} left to cloud-init")
    return out
