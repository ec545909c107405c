"""A Tribblix bhyve zone whose cloud-init attribute is a URL: `ds=nocloud-net;s=URL;i=`,
the seed files served over HTTP (zoneseed.py). The user-data is one the operator supplied
(the zone attribute may name any user-data file), using every module the agent applies:
a named user with RBAC profiles and a password hash, a group, files, bootcmd, runcmd,
the time zone and a package."""

from __future__ import annotations

from typing import Any

from sim.emulators.zoneseed import OPERATOR_KEY, ZONE_HASH, lay_out, serve, zone_metadata

__all__ = ["default_metadata", "lay_out", "serve"]

USER_DATA = f"""#cloud-config
hostname: trib-1
ssh_authorized_keys:
  - {OPERATOR_KEY}
groups:
  - ops: []
users:
  - name: ptribble
    gecos: Zone operator
    shell: /bin/sh
    groups: [ops]
    profiles: [Primary Administrator]
    lock_passwd: false
    passwd: '{ZONE_HASH}'
    ssh_authorized_keys:
      - {OPERATOR_KEY}
timezone: Europe/Berlin
packages:
  - TRIBblix-tools
write_files:
  - path: /etc/motd
    content: |
      Tribblix zone trib-1, configured by the metadata agent.
  - path: /export/home/ptribble/.profile
    owner: ptribble:ops
    permissions: '0600'
    encoding: b64
    content: UFMxPSdcaCQgJwo=
    defer: true
bootcmd:
  - mkdir -p var/tmp && touch var/tmp/bootcmd-ran
runcmd:
  - [svcadm, enable, network/ntp]
"""


def default_metadata() -> dict[str, Any]:
    md = zone_metadata("tribblix-zone", "trib-1", OPERATOR_KEY, None, "10.0.7.30/24",
                       "10.0.7.1")
    uuid = md["serial"].split("i=", 1)[1]
    return {**md, "user-data": USER_DATA, "serial": f"ds=nocloud-net;s={{url}};i={uuid}",
            "served": True}
