"""The SMF side of a simulated guest: a stand-in `smf_include.sh` and our method scripts
and manifests installed where an image builder puts them.

`SMF_INCLUDE` stands in for illumos `/lib/svc/share/smf_include.sh` (illumos-gate
usr/src/cmd/svc/shell/smf_include.sh; exit codes documented in smf_method(7)). It
defines the same exit codes and the helpers a method script can use off illumos; the
helpers that only make sense on a live illumos (zones, contracts, netstrategy) are left
out, so a method that called one would fail loudly here rather than pass by accident.
`SMF_EXIT_ERR_OTHER` is deliberately absent: illumos documents it in a comment ("all
non-zero exit status values") but never defines it, so a method that used it would exit
with an empty status on illumos. `SMF_EXIT_NODAEMON` (94) is in current illumos-gate.
"""

from __future__ import annotations

import os

# Not imported from sim.guest: guest.create() calls lay_out(), so that would be circular.
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMF_INCLUDE_PATH = "lib/svc/share/smf_include.sh"
USERSCRIPT_METHOD_PATH = "usr/lib/userscript.sh"
MANIFEST_DIR = "lib/svc/manifest/system"

SMF_INCLUDE = """\
#!/bin/sh
#
# Stand-in for illumos /lib/svc/share/smf_include.sh, written for the simulated guest
# (see sim/smffiles.py). Same exit codes and names as illumos.
#

# True when the SMF repository daemon is reachable (never, off illumos).
smf_present () {
	[ -r /etc/svc/volatile/repository_door ] && \\
		[ ! -f /etc/svc/volatile/repository_door ]
}

# Drop the variables svc.startd sets for a method, before starting something that must
# not believe it is a method itself.
smf_clear_env () {
	unset SMF_FMRI SMF_METHOD SMF_RESTARTER SMF_ZONENAME
}

# Copy standard input to the console (use as: echo message 2>&1 | smf_console).
smf_console () {
	/usr/bin/tee ${SMF_MSGLOG_REDIRECT:-/dev/msglog}
}

# Method exit codes, smf_method(7). Any other non-zero status is an ordinary failure:
# svc.startd retries the method a few times, then puts the instance in maintenance.
SMF_EXIT_OK=0
SMF_EXIT_NODAEMON=94
SMF_EXIT_ERR_FATAL=95
SMF_EXIT_ERR_CONFIG=96
SMF_EXIT_MON_DEGRADE=97
SMF_EXIT_MON_OFFLINE=98
SMF_EXIT_ERR_NOSMF=99
SMF_EXIT_ERR_PERM=100
"""


def _install(root: str, rel: str, data: bytes, mode: int) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _project_file(rel: str) -> bytes:
    with open(os.path.join(PROJECT_DIR, rel), "rb") as f:
        return f.read()


def lay_out(root: str) -> None:
    """Install smf_include.sh, /usr/lib/userscript.sh and both manifests under `root`,
    as an image built per the README has them."""
    _install(root, SMF_INCLUDE_PATH, SMF_INCLUDE.encode(), 0o644)
    _install(root, USERSCRIPT_METHOD_PATH, _project_file("smf/userscript.sh"), 0o755)
    for manifest in ("metadata.xml", "userscript.xml"):
        _install(root, f"{MANIFEST_DIR}/{manifest}", _project_file(f"smf/{manifest}"), 0o644)
