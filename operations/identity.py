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
# The host-keys step's paths as operations/hostkeys.py defines them (the same test checks).
HOST_KEY_DIR = "/etc/ssh"
HOST_KEY_PREFIX = "ssh_host_"
HOST_KEY_RECORD = "/etc/ssh/metadata-agent.instance"
SSH_KEYGEN = "/usr/bin/ssh-keygen"

STEPS: tuple[Step, ...] = (
    Step("IDENTITY", "hostname", Frequency.PER_INSTANCE,
         "operations.hostname:set_hostname",
         changes="/etc/nodename (the node name: the first label), the first `127.0.0.1` and "
                 "`::1` lines of /etc/inet/hosts (`FQDN NODE localhost`, plus `loghost` where "
                 "the line had it; other names on those two lines, such as a previous "
                 "instance's, are dropped; every other line and comment is kept), and the "
                 "live name (`hostname NODE`). The name comes from the metadata, else from "
                 "the DHCP lease; with neither, nothing changes. A name that is not an RFC "
                 "1123 host name (letters, digits, hyphens; labels of 1-63 characters not "
                 "starting or ending with a hyphen; 255 in all; no spaces, `#`, control "
                 "characters or non-ASCII) is skipped with a warning naming the source "
                 "field and the value, nothing written, and the rest of the boot applied. "
                 "Files are rewritten whole and atomically, only when they differ, keeping "
                 "their mode and owner",
         fails_when="a link or non-regular file at /etc/nodename or /etc/inet/hosts; "
                    "`hostname` fails",
         on_failure="recorded; the ssh-keys step still runs (a bad name must not lock the "
                    "operator out); the machine holds at IDENTITY for `svcadm clear`"),
    Step("IDENTITY", "ssh-keys", Frequency.PER_INSTANCE,
         "operations.sshkeys:install_keys",
         changes=f"{SSH_DIR} (0700, root) and {AUTHORIZED_KEYS} (0600, root): the "
                 "metadata's keys are merged in, never replacing the file: a key already "
                 "present in any line (same type and data) is not added again, and lines an "
                 f"operator added are never touched. The lines the agent added are listed in "
                 f"{MANAGED_PATH}. Keys are removed only when the metadata lists at least "
                 "one valid key: then the lines the agent had added that it no longer lists "
                 "go (on a new instance, an image captured and booted as a new VM, the "
                 "previous instance's keys do not survive). Metadata with no valid key (an "
                 "empty seed, a source without keys, every line invalid) removes nothing. "
                 "Invalid key lines are skipped with a warning naming the source and line "
                 "number (never the key)",
         fails_when=f"a symbolic link or non-directory at {SSH_DIR}, or a link, hard link "
                    f"or non-regular file at {AUTHORIZED_KEYS} (exit 95, nothing written, "
                    "nothing followed); the keys are over 1 MiB or not UTF-8 (exit 96, none "
                    "taken)",
         on_failure="recorded; later phases run; the machine holds at IDENTITY for "
                    "`svcadm clear`"),
    Step("IDENTITY", "host-keys", Frequency.PER_INSTANCE, "operations.hostkeys:regenerate",
         changes=f"on a new instance, every {HOST_KEY_DIR}/{HOST_KEY_PREFIX}* file is "
                 f"removed and new keys made (`{SSH_KEYGEN} -A`) before "
                 "svc:/network/ssh starts (a dependent of this service); then "
                 f"{HOST_KEY_RECORD} names the instance they were made for. Keys that "
                 "record names for this instance are kept whatever the checkpoint says (a "
                 "lost checkpoint never rotates them); keys without a record on an instance "
                 "the checkpoint knows from an earlier boot are kept and recorded. Nothing "
                 "without an instance id or with `ssh.regenerate_host_keys = false`. The "
                 "keys' SHA256 fingerprints go to the log and `metadata status`",
         fails_when=f"a symbolic link at {HOST_KEY_DIR} or the record, or a key file "
                    "cannot be removed (a missing or failing ssh-keygen is a warning: sshd's "
                    "start method makes missing keys; no /etc/ssh at all: nothing to do)",
         on_failure="recorded; later phases run; tried again on the next start for this "
                    "instance; the machine holds at IDENTITY for `svcadm clear`",
         checkpointed="started record with the record's instance and the old keys' "
                      "fingerprints (intent); done record with the new fingerprints. On "
                      "resume after a kill, the record naming this instance counts as done, "
                      "and keys that are not the old ones are kept, not made again",
         intent="operations.hostkeys:intent", took_effect="operations.hostkeys:took_effect"),
)
