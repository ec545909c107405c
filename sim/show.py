"""`python -m sim show DIR`: the guest's resulting state as JSON, for tests and people.

Everything an operator would check after boot, read from the files under the root and the
stand-ins' state. `calls` (per-command call counts) is the one key that differs between an
uninterrupted run and a resumed one, so comparisons leave it out.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

from sim import hostkeys, showusers
from sim import state as guest_state
from sim.standins import linkstate


def _read(root: str, rel: str) -> str | None:
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _meta(root: str, rel: str) -> dict[str, Any] | None:
    path = os.path.join(root, rel)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": f"{st.st_uid}:{st.st_gid}",
            "type": "symlink" if stat.S_ISLNK(st.st_mode) else
                    "dir" if stat.S_ISDIR(st.st_mode) else "file"}


def _lines(text: str | None) -> list[str]:
    return [] if text is None else text.splitlines()


def _resolv(text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"nameservers": [], "search": [], "domain": None}
    for line in _lines(text):
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            out["nameservers"].append(words[1])
        elif words[0] == "search":
            out["search"] = words[1:]
        elif words[0] == "domain" and len(words) > 1:
            out["domain"] = words[1]
    return out


def _nsswitch(text: str | None, db: str) -> str | None:
    for line in _lines(text):
        if line.startswith(db + ":"):
            return " ".join(line.split(":", 1)[1].split())
    return None


def show(root: str) -> dict[str, Any]:
    st = guest_state.load(root)
    hosts = _read(root, "etc/inet/hosts")
    keys = _read(root, "root/.ssh/authorized_keys")
    script_meta = _meta(root, "var/metadata/userscript")
    script = None
    if script_meta and script_meta["type"] == "file":
        with open(os.path.join(root, "var/metadata/userscript"), "rb") as f:
            script = {**script_meta, "sha256": hashlib.sha256(f.read()).hexdigest()}
    pool = st.get("pools", {}).get("rpool")
    return {
        "platform": st.get("platform"),
        "hostname": {
            "live": st.get("hostname"),
            "nodename": (_read(root, "etc/nodename") or "").strip() or None,
            "hosts": [ln for ln in _lines(hosts) if ln.split()[:1] in (["127.0.0.1"], ["::1"])],
            "hosts_other": [ln for ln in _lines(hosts)
                            if ln.split()[:1] not in (["127.0.0.1"], ["::1"])],
        },
        # Every datalink (sim/standins/linkstate.py): physical, aggregations, VLANs.
        "links": [{"link": name, "class": linkstate.link_class(st, name),
                   "mtu": linkstate.mtu_of(st, name), "over": linkstate.over(st, name)}
                  for name in linkstate.all_names(st)],
        "vlans": st.get("vlans", []),
        "aggrs": st.get("aggrs", []),
        "interfaces": sorted(i for i in st.get("interfaces", []) if i != "lo0"),
        "addresses": sorted((a for a in st.get("addresses", []) if not a["addrobj"].startswith("lo0/")),
                            key=lambda a: a["addrobj"]),
        "routes": sorted(st.get("routes", []), key=lambda r: json.dumps(r, sort_keys=True)),
        "defaultrouter": _lines(_read(root, "etc/defaultrouter")),
        "dns": {**_resolv(_read(root, "etc/resolv.conf")),
                "nsswitch_hosts": _nsswitch(_read(root, "etc/nsswitch.conf"), "hosts"),
                "nsswitch_ipnodes": _nsswitch(_read(root, "etc/nsswitch.conf"), "ipnodes")},
        "pool": None if pool is None else {
            "size_bytes": pool.get("size_bytes"), "guid": pool.get("guid"),
            "disk": pool.get("disk"), "label_disk": pool.get("label_disk")},
        # Data pools (not the root pool): what `zpool create`/`import` left.
        "pools": {name: {"disks": p.get("disks"), "vdev": p.get("vdev"),
                         "size_bytes": p.get("size_bytes"), "autoexpand": p.get("autoexpand"),
                         "mountpoint": p.get("mountpoint")}
                  for name, p in sorted(st.get("pools", {}).items()) if name != "rpool"},
        "exported_pools": sorted(st.get("exported_pools", {})),
        "swap": st.get("swap", []),
        "vfstab_swap": [ln for ln in _lines(_read(root, "etc/vfstab"))
                        if not ln.startswith("#") and "swap" in ln.split()[3:4]],
        "ssh": {"dir": _meta(root, "root/.ssh"), "file": _meta(root, "root/.ssh/authorized_keys"),
                "authorized_keys": _lines(keys),
                # Key type -> fingerprint of /etc/ssh/ssh_host_TYPE_key.pub, and the
                # instance the agent recorded them as made for.
                "host_keys": hostkeys.present(root),
                "host_keys_for": (_read(root, "etc/ssh/metadata-agent.instance") or "").split(
                    "\n", 1)[-1].strip() or None},
        "userscript": {"file": script,
                       "service": st.get("services", {}).get(
                           "svc:/system/illumos/userscript:default", {}).get("state"),
                       # The userscript method's own records of its runs (smf/userscript.sh).
                       "runs": {rec: (_read(root, f"var/metadata/userscript.{rec}") or "").split()
                                for rec in ("started", "done", "failed")
                                if _read(root, f"var/metadata/userscript.{rec}") is not None}},
        "users": showusers.users(root),
        "files": {rel: {**meta, "sha256": _sha256(root, rel)}
                  for rel in ("etc/default/init", "etc/ssh/sshd_config", "var/metadata/runcmd",
                              "var/metadata/bootcmd")
                  if (meta := _meta(root, rel)) is not None},
        "packages": st.get("packages", {}),
        "calls": dict(sorted(st.get("calls", {}).items())),
    }


def _sha256(root: str, rel: str) -> str | None:
    try:
        with open(os.path.join(root, rel), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
