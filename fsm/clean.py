"""`metadata clean`: make a configured guest ready to be captured as an image, so that its
next boot is the first boot of a new instance (what `cloud-init clean` and Triton's
`prepare-image` do, for illumos).

Removed: the checkpoint and its generations, the agent's history and query files, the
managed-key record and the key lines it names in root's authorized_keys (an operator's own
lines stay), the userscript and its run records, the DHCP lease files and DHCPv6
identifiers dhcpagent keeps in /etc/dhcp (dhcpagent(8); libdhcputil dhcp_stable.c: the
DUID must differ between VMs), and the SMF logs of the agent's two services. With
`--host-keys`, the SSH host keys and the record of the instance they were made for; with
`--nodename`, /etc/nodename and the loopback lines of /etc/inet/hosts back to a neutral
name. Nothing else: `--dry-run` prints exactly this list and changes nothing.
"""

from __future__ import annotations

import os

from fsm.checkpoint import CHECKPOINT_PATH
from fsm.record import record
from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Callable

METADATA_DIR = "/var/metadata"
DHCP_DIR = "/etc/dhcp"
DHCP_FILES = ("duid", "iaid")
DHCP_SUFFIXES = (".dhc", ".dh6")
SMF_LOGS = ("/var/svc/log/system-illumos-metadata:default.log",
            "/var/svc/log/system-illumos-userscript:default.log")
NEUTRAL_NODENAME = "unknown"   # what a fresh OmniOS image's /etc/nodename holds
HOSTS = "/etc/inet/hosts"
LOOPBACKS = ("127.0.0.1", "::1")


@record
class Action:
    what: str                       # "remove", "rewrite"
    path: str
    why: str
    apply: Callable[[], None]

    def line(self, dry_run: bool) -> str:
        verb = {"remove": "would remove" if dry_run else "removed",
                "rewrite": "would rewrite" if dry_run else "rewrote"}[self.what]
        return f"{verb}: {self.path} ({self.why})"


def _regular_files(system: System, directory: str, match: Callable[[str], bool]) -> list[str]:
    out = []
    for name in system.listdir(directory):
        path = f"{directory}/{name}"
        try:
            if match(name) and not os.path.isdir(system.path(path)):
                out.append(path)
        except OSError:
            continue
    return out


def _log_or_rotated(base: str) -> Callable[[str], bool]:
    """`name.log` and the copies logadm rotates it to (`name.log.0`, ...)."""
    return lambda n: n == base or n.startswith(base + ".")


def _remove(system: System, path: str, why: str) -> Action:
    return Action("remove", path, why, lambda: system.remove(path))


def plan(system: System, host_keys: bool = False,
         nodename: str | None = None) -> list[Action]:
    """Every change `clean` makes on this guest, in order; nothing is changed here."""
    from fsm.history import HISTORY_PATH
    from fsm.query import QUERY_PATH
    from operations import hostkeys, userscript
    from operations.sshkeys import MANAGED_PATH

    actions: list[Action] = []
    cp_name = CHECKPOINT_PATH.rsplit("/", 1)[1]
    for path in _regular_files(system, METADATA_DIR, lambda n: n.startswith(cp_name)):
        actions.append(_remove(system, path, "checkpoint" if path == CHECKPOINT_PATH
                               else "a checkpoint generation"))
    for path, why in ((HISTORY_PATH, "the agent's history"), (QUERY_PATH, "the query file")):
        if system.exists(path):
            actions.append(_remove(system, path, why))
    actions += _managed_keys(system, MANAGED_PATH)
    for path in (userscript.SCRIPT_PATH, *userscript.RUN_RECORDS):
        if system.exists(path) or system.is_symlink(path):
            actions.append(_remove(system, path, "the first-boot script and its run records"))
    for path in _regular_files(system, DHCP_DIR, lambda n: n in DHCP_FILES
                               or n.endswith(DHCP_SUFFIXES)):
        actions.append(_remove(system, path, "DHCP lease or identifier"))
    for log in SMF_LOGS:
        log_dir, base = log.rsplit("/", 1)
        for path in _regular_files(system, log_dir, _log_or_rotated(base)):
            actions.append(_remove(system, path, "SMF log of the agent's services"))
    if host_keys:
        for path in hostkeys.key_files(system):
            actions.append(_remove(system, path, "SSH host key"))
        if system.exists(hostkeys.RECORD_PATH):
            actions.append(_remove(system, hostkeys.RECORD_PATH,
                                   "the instance the host keys were made for"))
    if nodename is not None:
        actions += _neutral_name(system, nodename)
    return actions


def _managed_keys(system: System, managed_path: str) -> list[Action]:
    """The key lines the agent installed (its record) out of root's authorized_keys."""
    from operations.sshkeys import AUTHORIZED_KEYS, MAX_PRESENT_BYTES, read_regular_file

    actions: list[Action] = []
    try:
        record, _ = read_regular_file(system, managed_path, MAX_PRESENT_BYTES)
        present, st = read_regular_file(system, AUTHORIZED_KEYS, MAX_PRESENT_BYTES)
    except OSError:
        return actions
    if record is None:
        return actions
    ours = {ln.strip(" \t") for ln in record.split("\n")
            if ln.strip() and not ln.startswith("#")}
    if present is not None:
        lines = present.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        kept = [ln for ln in lines if ln.strip(" \t") not in ours]
        dropped = len(lines) - len(kept)
        if dropped:
            data = "".join(ln + "\n" for ln in kept).encode("utf-8", "surrogateescape")
            mode = (st.st_mode & 0o777) if st else 0o600
            actions.append(Action("rewrite", AUTHORIZED_KEYS,
                                  f"{dropped} key line(s) the agent installed removed; "
                                  f"{len(kept)} of the operator's kept",
                                  lambda: system.write_file(AUTHORIZED_KEYS, data, mode=mode)))
    actions.append(_remove(system, managed_path, "the agent's record of the keys it installed"))
    return actions


def _neutral_name(system: System, name: str) -> list[Action]:
    from operations.validate import validate_hostname

    validate_hostname(name, "clean --nodename")
    actions = [Action("rewrite", "/etc/nodename", f"node name {name}",
                      lambda: system.write_file("/etc/nodename", name + "\n", mode=0o644))]
    try:
        text = system.read_text(HOSTS, limit=1 << 20)
    except OSError:
        return actions
    new = neutral_hosts(text)
    if new != text:
        actions.append(Action("rewrite", HOSTS, "loopback lines name only localhost",
                              lambda: system.write_file(HOSTS, new, mode=0o644)))
    return actions


def neutral_hosts(text: str) -> str:
    """The first 127.0.0.1 and ::1 lines as a fresh image has them (pure)."""
    out, done = [], set()
    for line in text.split("\n"):
        fields = line.partition("#")[0].split()
        if fields and fields[0] in LOOPBACKS and fields[0] not in done:
            done.add(fields[0])
            names = ["localhost"] + (["loghost"] if "loghost" in fields[1:] else [])
            line = f"{fields[0]}\t{' '.join(names)}"
        out.append(line)
    return "\n".join(out)


def run(system: System, actions: list[Action], dry_run: bool) -> list[str]:
    lines = []
    for action in actions:
        if not dry_run:
            action.apply()
        lines.append(action.line(dry_run))
    return lines
