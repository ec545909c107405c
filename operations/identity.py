"""IDENTITY phase: the guest's name, then root's SSH keys.

Two steps rather than one so that a rejected hostname (recorded as this phase's failure)
never costs the operator their keys: the machine runs later steps after a failure.
"""

from __future__ import annotations

from fsm.steps import Frequency, Step

# Declarations only: the steps' code (operations/hostname.py, operations/sshkeys.py) is
# imported when a step runs. The paths as operations/sshkeys.py defines them (a test checks).
SSH_DIR = "/root/.ssh"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
MANAGED_PATH = "/var/metadata/authorized_keys.managed"

STEPS: tuple[Step, ...] = (
    Step("IDENTITY", "hostname", Frequency.PER_INSTANCE,
         "operations.hostname:set_hostname",
         changes="/etc/nodename (the node name: the first label), the first `127.0.0.1` and "
                 "`::1` lines of /etc/inet/hosts (`FQDN NODE localhost`, plus `loghost` where "
                 "the line had it; other names on those two lines, such as a previous "
                 "instance's, are dropped; every other line and comment is kept), and the "
                 "live name (`hostname NODE`). The name comes from the metadata, else from "
                 "the DHCP lease; with neither, nothing changes. Files are rewritten whole "
                 "and atomically, only when they differ, keeping their mode and owner",
         fails_when="the name is not an RFC 1123 host name (letters, digits, hyphens; labels "
                    "of 1-63 characters not starting or ending with a hyphen; 255 in all; "
                    "no spaces, `#`, control characters or non-ASCII): exit 96, naming the "
                    "source field, with nothing written; a link or non-regular file at "
                    "/etc/nodename or /etc/inet/hosts; `hostname` fails",
         on_failure="recorded; the ssh-keys step still runs (a bad name must not lock the "
                    "operator out); the machine holds at IDENTITY for `svcadm clear`"),
    Step("IDENTITY", "ssh-keys", Frequency.PER_INSTANCE,
         "operations.sshkeys:install_keys",
         changes=f"{SSH_DIR} (0700, root) and {AUTHORIZED_KEYS} (0600, root): the "
                 "metadata's keys are merged in, never replacing the file: a key already "
                 "present in any line (same type and data) is not added again, and lines an "
                 f"operator added are never touched. The lines the agent added are listed in "
                 f"{MANAGED_PATH}; on a new instance (an image captured and booted as a new "
                 "VM) the agent removes the lines it had added that the new metadata no "
                 "longer lists, so the previous instance's keys do not survive. Invalid key "
                 "lines are skipped with a warning naming the source and line number (never "
                 "the key). No keys in the metadata and none installed before: nothing",
         fails_when=f"a symbolic link or non-directory at {SSH_DIR}, or a link, hard link "
                    f"or non-regular file at {AUTHORIZED_KEYS} (exit 95, nothing written, "
                    "nothing followed); the keys are over 1 MiB or not UTF-8 (exit 96, none "
                    "taken)",
         on_failure="recorded; later phases run; the machine holds at IDENTITY for "
                    "`svcadm clear`"),
)
