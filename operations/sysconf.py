"""cloud-config `timezone` and `packages` / `package_update` / `package_upgrade`.

IDENTITY/timezone: the `TZ=` line of /etc/default/init (init(8) reads it at boot; what
OmniOS's cloud-init port edits), other lines kept, the file rewritten atomically with its
mode and owner. A zone with no file under /usr/share/lib/zoneinfo is a warning: a TZ that
names nothing would silently mean UTC.

USERSCRIPT/packages: only where the image has pkg(1) (/usr/bin/pkg; IPS: OmniOS,
OpenIndiana). `package_update` is `pkg refresh`; `packages` is `pkg install --accept
NAMES`; `package_upgrade` is `pkg update --accept`. pkg exits 4 when there is nothing to
do, which is success here. When pkg says it created a boot environment, a warning says
the changes take effect after a reboot into it (the agent never reboots). Packages are
installed before write_files and the first-boot script, as cloud-init orders them.
"""

from __future__ import annotations

import logging
import re
import stat

from fsm.errors import CommandError
from fsm.steps import Context, Outcome
from operations import accounts
from operations.sshkeys import read_regular_file

log = logging.getLogger(__name__)

INIT_DEFAULTS = "/etc/default/init"
ZONEINFO = "/usr/share/lib/zoneinfo"
PKG = "/usr/bin/pkg"
PKG_NOTHING_TO_DO = 4
PKG_TIMEOUT_S = 1800.0   # a package install downloads; still bounded
NEW_BE = re.compile(r"(Create boot environment:\s+Yes|A clone of \S+ exists and has been)")


def apply_timezone(ctx: Context) -> Outcome:
    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None or cc.timezone is None:
        return outcome
    zone = cc.timezone
    if not ctx.system.exists(f"{ZONEINFO}/{zone}"):
        outcome.warnings.append(f"cloud-config timezone: {zone!r} is not a zone in {ZONEINFO}; "
                                f"the time zone is left as it is")
        return outcome
    text, st = read_regular_file(ctx.system, INIT_DEFAULTS, 1 << 20)
    lines = (text or "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    wanted = f"TZ={zone}"
    kept = [ln for ln in lines if not ln.startswith("TZ=")]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("TZ=")), len(kept))
    new = kept[:at] + [wanted] + kept[at:]
    new_text = "\n".join(new) + "\n"
    if new_text != text:
        ctx.system.write_file(INIT_DEFAULTS, new_text,
                              mode=stat.S_IMODE(st.st_mode) if st else 0o644,
                              owner=(st.st_uid, st.st_gid) if st else (0, 3))
        outcome.changed(f"{INIT_DEFAULTS}: {wanted} (takes effect at the next boot)")
    return outcome


def _pkg(ctx: Context, argv: list[str], outcome: Outcome) -> str:
    result = ctx.system.apply([PKG, *argv], timeout_s=PKG_TIMEOUT_S, check=False)
    if result.returncode not in (0, PKG_NOTHING_TO_DO):
        raise CommandError([PKG, *argv], result.returncode, result.stderr)
    if result.returncode == 0:
        outcome.changed(f"pkg {argv[0]} {' '.join(a for a in argv[1:] if not a.startswith('-'))}"
                        .rstrip())
    if NEW_BE.search(result.stdout):
        outcome.warnings.append(f"pkg {argv[0]} created a new boot environment: the changes "
                                f"take effect after a reboot into it")
    return result.stdout


def apply_packages(ctx: Context) -> Outcome:
    outcome = Outcome()
    cc = accounts.config(ctx)
    if cc is None or not (cc.packages or cc.package_update or cc.package_upgrade):
        return outcome
    if not ctx.system.exists(PKG):
        outcome.warnings.append(f"cloud-config packages: this image has no pkg(1) ({PKG}); "
                                f"{len(cc.packages)} package(s) not installed")
        return outcome
    if cc.package_update:
        _pkg(ctx, ["refresh"], outcome)
    if cc.packages:
        _pkg(ctx, ["install", "--accept", *cc.packages], outcome)
    if cc.package_upgrade:
        _pkg(ctx, ["update", "--accept"], outcome)
    return outcome
