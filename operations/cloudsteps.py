"""The cloud-config steps, declared as data: where each runs, how often, what it changes.

fsm/phases.py places them: `bootcmd` first in IDENTITY (every boot, as cloud-init runs it
first), `users`, `passwords` and `timezone` after root's keys; in USERSCRIPT, `packages`
and `write-files` before the first-boot script is installed, `runcmd` after it. Each does
nothing when the metadata has no cloud-config, or not its module.
"""

from __future__ import annotations

from fsm.steps import Frequency, Step

# Declarations only: each step's code is imported when it runs ("module:function"). The
# paths as the implementing modules define them (tests/test_startup.py checks).
BOOTCMD_PATH = "/var/metadata/bootcmd"
RUNCMD_PATH = "/var/metadata/runcmd"
SSHD_CONFIG = "/etc/ssh/sshd_config"
INIT_DEFAULTS = "/etc/default/init"
HOME_BASE = "/export/home"

_ONE_SHOT_RETRY = "recorded; later steps and phases run; the machine holds at {phase} for " \
                  "`svcadm clear`, which runs it again (what it already did is found done)"

BOOT: tuple[Step, ...] = (
    Step("IDENTITY", "bootcmd", Frequency.PER_BOOT, "operations.cloudcmds:run_bootcmd",
         changes=f"writes cloud-config `bootcmd` to {BOOTCMD_PATH} (0700, root; `/bin/sh`, "
                 "INSTANCE_ID exported) and runs it, bounded by `timeouts.command`; its "
                 "output is not logged. No bootcmd: nothing",
         fails_when="the script exits non-zero or times out; a link at its path (exit 95)",
         on_failure="recorded; the other steps run; the next start runs it again"),
)

IDENTITY: tuple[Step, ...] = (
    Step("IDENTITY", "users", Frequency.PER_INSTANCE, "operations.users:apply_users",
         changes="cloud-config `groups` (`groupadd`) and `users`: the default user "
                 "(`[users] default` or `user:`; none by default, then `default` is a "
                 "warning), root, named users. A missing user is created with `useradd -m -d "
                 f"{HOME_BASE}/NAME` and its gecos, shell, groups (missing ones created), "
                 "RBAC profiles (-P, e.g. `Primary Administrator`) and roles (-R); its "
                 "/etc/shadow field becomes `NP` (key login only; useradd leaves `*LK*`, "
                 "which refuses keys too) or, with `lock_passwd: false`, its `passwd` hash. "
                 "Existing users are not modified except their keys (and a hash given with "
                 "`lock_passwd: false`). Keys are merged into HOME/.ssh/authorized_keys "
                 "(0700/0600, owned by the user); members of `groups` are added with `usermod "
                 "-G`. Hashes never reach a command's argv",
         fails_when="useradd or groupadd fails for a user (the others are still made); "
                    "a link at a user's .ssh or authorized_keys. Refused names (shell "
                    "characters, over 32 characters) and unknown keys are warnings",
         on_failure=_ONE_SHOT_RETRY.format(phase="IDENTITY"),
         checkpointed="started record with the names of the users it is to create "
                      "(intent), done record after; a run resumed after a kill between "
                      "useradd and /etc/shadow still unlocks the users it made",
         intent="operations.users:users_intent"),
    Step("IDENTITY", "passwords", Frequency.PER_INSTANCE, "operations.passwords:apply_passwords",
         changes="cloud-config `password` (the default user's; root's when none is "
                 "configured, unless `disable_root: true`) and `chpasswd` `users`/`list`: "
                 "the hash in /etc/shadow (plain passwords hashed first, `$6$` SHA-512 "
                 "crypt; a present hash that matches is kept), rewritten whole and "
                 "atomically, mode and owner kept; `expire` (default true) sets lastchg 0. "
                 f"`ssh_pwauth`: `PasswordAuthentication yes|no` in {SSHD_CONFIG}, then "
                 "`svcadm refresh svc:/network/ssh:default` only if it is online. Passwords "
                 "are never logged, checkpointed or put in argv",
         fails_when="/etc/shadow is missing, a link or not a regular file (exit 95); an "
                    "unknown user or RANDOM password is a warning",
         on_failure=_ONE_SHOT_RETRY.format(phase="IDENTITY")),
    Step("IDENTITY", "timezone", Frequency.PER_INSTANCE, "operations.sysconf:apply_timezone",
         changes=f"the `TZ=` line of {INIT_DEFAULTS} (other lines kept), from cloud-config "
                 "`timezone`, when /usr/share/lib/zoneinfo has it (else a warning)",
         fails_when=f"a link or non-regular file at {INIT_DEFAULTS}",
         on_failure=_ONE_SHOT_RETRY.format(phase="IDENTITY")),
)

BEFORE_SCRIPT: tuple[Step, ...] = (
    Step("USERSCRIPT", "packages", Frequency.PER_INSTANCE, "operations.sysconf:apply_packages",
         changes="where the image has pkg(1): `pkg refresh` (package_update), `pkg install "
                 "--accept NAMES` (packages), `pkg update --accept` (package_upgrade); exit "
                 "4 (nothing to do) is success; a warning when pkg made a new boot "
                 "environment (reboot to use it). No pkg: a warning",
         fails_when="pkg exits other than 0 or 4, or runs over 30 minutes",
         on_failure=_ONE_SHOT_RETRY.format(phase="USERSCRIPT")),
    Step("USERSCRIPT", "write-files", Frequency.PER_INSTANCE, "operations.writefiles:apply_write_files",
         changes="cloud-config `write_files`: each file (content decoded from b64/gzip, "
                 "owner `user:group`, octal permissions) written atomically, never through "
                 "a link (a link at or above the path skips the file with a warning); "
                 "`append` adds the content unless the file already ends with it; "
                 "`defer` files last. Nothing under /var/metadata, /proc, /dev, /devices, "
                 "/system; no `..`",
         fails_when="never as a whole: a file that cannot be written is a warning naming it",
         on_failure="-"),
)

AFTER_SCRIPT: tuple[Step, ...] = (
    Step("USERSCRIPT", "runcmd", Frequency.PER_INSTANCE, "operations.cloudcmds:install_runcmd",
         changes=f"writes cloud-config `runcmd` to {RUNCMD_PATH} (0700, root) and enables "
                 "svc:/system/illumos/userscript:default, which runs it once per instance "
                 "after the first-boot script (records runcmd.started/.done/.failed, keyed "
                 "by checksum and the instance tag in userscript.instance, so a lost "
                 "checkpoint never runs it twice); an earlier instance's records are "
                 "removed. No runcmd: nothing",
         fails_when=f"a link or non-regular file at {RUNCMD_PATH}; svcadm fails",
         on_failure=_ONE_SHOT_RETRY.format(phase="USERSCRIPT"),
         checkpointed="started record before it runs, done record after (per instance; "
                      "never the commands)"),
)
