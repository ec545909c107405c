"""The guest's name: /etc/nodename, the loopback lines of /etc/inet/hosts, the live name.

The name comes from the metadata, else from the DHCP lease the NETWORK phase recorded in
`ctx.facts["dhcp"]["hostname"]` (re-read with dhcpinfo when a start resumed past NETWORK);
with neither, nothing changes. It is validated before
anything is written (operations/validate.py), so a hostile name changes nothing at all: it
is skipped with a warning naming the source field and the value, and the boot goes on.

/etc/nodename and the live name (`hostname NAME`, what `uname -n` prints) get the node
name, the first label: that is what svc:/system/identity:node sets from /etc/nodename on
the next boot, so live and persistent names agree. In /etc/inet/hosts only the first
`127.0.0.1` line and the first `::1` line are the agent's; they become

    ::1         FQDN NODE localhost
    127.0.0.1   FQDN NODE localhost loghost

(FQDN only when the name has a domain; `loghost` only where the line had it, as illumos
ships it on 127.0.0.1 for syslog). Any other name on those two lines is dropped: in
practice it is a previous instance's name, which must not keep resolving to this host.
Every other line, comment and trailing comment is kept as it was, further loopback lines
included: an operator's own aliases for 127.0.0.1 belong on a line of their own.
"""

from __future__ import annotations

import logging
import os

from fsm.errors import AgentError, MetadataError, shown
from fsm.steps import Context, Outcome
from operations.dhcp import lease_facts
from operations.sshkeys import read_regular_file
from operations.validate import node_name, validate_hostname

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

NODENAME_PATH = "/etc/nodename"
HOSTS_PATH = "/etc/inet/hosts"
HOSTNAME_CMD = "/usr/bin/hostname"
LOOPBACKS = ("::1", "127.0.0.1")
KEPT_ALIASES = ("localhost", "loghost")
MAX_ETC_BYTES = 1024 * 1024


def wanted_name(ctx: Context) -> tuple[str, str] | None:
    """(raw name, origin) from the metadata, else the DHCP lease, else None."""
    md = ctx.metadata
    if md is not None and md.cloud_config is not None and md.cloud_config.preserve_hostname:
        log.info("cloud-config says preserve_hostname: the name is left as it is")
        return None
    if md is not None and md.hostname is not None:
        return md.hostname, md.origin("hostname")
    try:
        # This run's lease, or (a start resumed past NETWORK) the lease already bound.
        lease = lease_facts(ctx) or {}
    except AgentError as e:
        log.warning("cannot read the DHCP lease for a hostname: %s", e)
        lease = {}
    leased = lease.get("hostname")
    if leased is not None:
        return leased, "dhcp:Hostname"
    return None


def loopback_line(addr: str, fqdn: str, old_names: list[str]) -> str:
    node = node_name(fqdn)
    names = [fqdn] if fqdn == node else [fqdn, node]
    names.append("localhost")
    if "loghost" in old_names:
        names.append("loghost")
    return f"{addr}\t{' '.join(names)}"


def rewrite_hosts(text: str, fqdn: str) -> str:
    """The hosts file with its first 127.0.0.1 and ::1 lines naming `fqdn` (pure)."""
    lines = text.split("\n")
    trailing_newline = bool(lines) and lines[-1] == ""
    if trailing_newline:
        lines.pop()
    done: set[str] = set()
    for i, line in enumerate(lines):
        body, hash_, comment = line.partition("#")
        fields = body.split()
        if not fields or fields[0] not in LOOPBACKS or fields[0] in done:
            continue
        done.add(fields[0])
        new = loopback_line(fields[0], fqdn, fields[1:])
        lines[i] = f"{new}\t{hash_}{comment}" if hash_ else new
    for addr in LOOPBACKS:
        if addr not in done:
            lines.append(loopback_line(addr, fqdn, ["loghost"] if addr == "127.0.0.1" else []))
    return "\n".join(lines) + "\n"


SYS_GID = 3   # illumos group `sys`


def _keep_mode(st: os.stat_result | None) -> dict[str, Any]:
    """A rewritten /etc file is root's, mode 0644, as SUNWcs.mf ships /etc/inet/hosts
    (`group=sys`, the default mode): a user-owned 0666 file is not kept that way, or its
    owner could rewrite the name resolution root relies on. The group is kept when root
    owned the file, else `sys`."""
    if st is None:
        return {"mode": 0o644, "owner": (0, 0)}
    return {"mode": 0o644, "owner": (0, st.st_gid if st.st_uid == 0 else SYS_GID)}


def set_hostname(ctx: Context) -> Outcome:
    """IDENTITY/hostname: validate, then /etc/nodename, /etc/inet/hosts, the live name."""
    outcome = Outcome()
    found = wanted_name(ctx)
    if found is None:
        log.info("no hostname in the metadata nor from DHCP: the name is left as it is")
        return outcome
    raw, origin = found
    try:
        fqdn = validate_hostname(raw, origin)   # before anything is written
    except MetadataError as e:
        # One bad item is skipped, not a failed boot (the blast-radius rule): the name
        # stays as it is and every other step still applies.
        outcome.warnings.append(f"{e.source}: {e.field}: hostname {shown(raw)} skipped: "
                                f"{e.problem}; the name is left as it is")
        return outcome
    node = node_name(fqdn)
    system = ctx.system

    nodename_text, nodename_st = read_regular_file(system, NODENAME_PATH, MAX_ETC_BYTES)
    hosts_text, hosts_st = read_regular_file(system, HOSTS_PATH, MAX_ETC_BYTES)
    new_hosts = rewrite_hosts(hosts_text or "", fqdn)

    if nodename_text != node + "\n":
        system.write_file(NODENAME_PATH, node + "\n", **_keep_mode(nodename_st))
        outcome.changed(f"{NODENAME_PATH}: {node}")
    if hosts_text != new_hosts:
        system.write_file(HOSTS_PATH, new_hosts.encode("utf-8", "surrogateescape"),
                          **_keep_mode(hosts_st))
        outcome.changed(f"{HOSTS_PATH}: 127.0.0.1 and ::1 name {fqdn}")
    live = system.run([HOSTNAME_CMD]).stdout.strip()
    if live != node:
        system.apply([HOSTNAME_CMD, node])
        outcome.changed(f"live hostname: {node} (was {live or 'unset'})")
    if not outcome.changes:
        log.info("hostname already %s (from %s)", fqdn, origin)
    return outcome
