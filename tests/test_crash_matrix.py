"""The crash matrix (issue 5): SIGKILL the agent at every point of every step, restart it
until DONE, and demand the guest an uninterrupted boot leaves.

Points, for a step S:
- `before`        just before S runs (`METADATA_AGENT_CRASH_AT=before:S`);
- `mid`           in the middle of S: a command S calls blocks after its effect (or S is
                  half way through writing a file) and the agent's process group is killed;
- `mid-pre`       (one-shot steps) the same, before the command's effect;
- `after`         S finished, its done record not yet written (`after:S`);
- `intent-write`  (one-shot steps) half way through writing S's `started` record;
- `write-mid`     half way through writing S's `done` record to the checkpoint;
- `write-rename`  the new checkpoint complete and fsynced, not yet renamed into place;
and at each phase boundary, half way through the checkpoint write of the transition.

Every point of every step runs on qemu (the richest guest: every phase does work). Each
other platform runs a reduced set: its metadata fetch killed mid-way, one NETWORK step, one
phase boundary, and one point of each one-shot step, the points rotated across platforms so
that together they cover every (one-shot step, point) pair. `MATRIX=full` runs every
point on every platform.

Each case checks (crashkit.assert_like_baseline): DONE reached; `sim show` equal to the
uninterrupted boot's; the same step records; one-shot commands (`zpool reguid`, `zfs
create`, `swap -a`, `svcadm enable`, `hostname NAME`) run exactly as often; no temp file of
an atomic write left anywhere; no checkpoint moved aside as damaged, both generations
decode; every file the agent writes byte-identical to the uninterrupted boot's.
"""

from __future__ import annotations

import os
import re

import pytest
from crashkit import (
    POOL_PLATFORMS,
    assert_like_baseline,
    baseline,
    boot_until_done,
    change_steps,
    crash_guest,
    gather_steps,
    kill_while_blocked,
    kill_while_fetching,
    one_shot_steps,
    resume_until_done,
)

from fsm.checkpoint import CHECKPOINT_PATH, STARTED
from fsm.settings import SCHEMA
from fsm.steps import PHASE_NAMES
from sim.hardware import PLATFORMS

FULL = os.environ.get("MATRIX", "").lower() == "full"
RICHEST = "qemu"

# How to stop each step in its middle: ("call", KEY) blocks the stand-in after its effect,
# ("hang", KEY) before it, ("write", PATH) kills half way through writing PATH, ("emulator",
# "") holds the metadata service's answer. The command or file must be one the step itself
# is the first to touch in an uninterrupted boot (checked against the traced boot).
MID = {
    "DETECT/smbios": ("call", "smbios"),
    "NETWORK/interfaces": ("call", "ipadm create-if"),
    "NETWORK/addresses": ("call", "ipadm create-addr"),
    "NETWORK/routes": ("call", "route"),
    "NETWORK/dns": ("write", "/etc/resolv.conf"),
    "IDENTITY/hostname": ("write", "/etc/inet/hosts"),
    "IDENTITY/ssh-keys": ("write", "/root/.ssh/authorized_keys"),
    "IDENTITY/host-keys": ("call", "ssh-keygen"),
    "STORAGE/expand-pool": ("call", "fmthard"),
    "STORAGE/reguid": ("call", "zpool reguid"),
    "STORAGE/swap": ("call", "zfs create"),
    "STORAGE/pools": ("call", "zpool create"),
    "USERSCRIPT/install": ("call", "svcadm enable"),
    # cloud-config steps: they do work only where the metadata has a cloud-config
    # (CLOUD_CONFIG_PLATFORMS); the Tribblix zone's user-data uses every module.
    "IDENTITY/bootcmd": ("write", "/var/metadata/bootcmd"),
    "IDENTITY/users": ("call", "useradd"),
    "IDENTITY/passwords": ("write", "/etc/shadow"),
    "IDENTITY/timezone": ("write", "/etc/default/init"),
    "USERSCRIPT/packages": ("call", "pkg install"),
    "USERSCRIPT/write-files": ("write", "/etc/motd"),
    "USERSCRIPT/runcmd": ("write", "/var/metadata/runcmd"),
}
MID_PRE = {
    "IDENTITY/hostname": ("hang", "hostname"),
    "IDENTITY/ssh-keys": ("write", "/var/metadata/authorized_keys.managed"),
    "IDENTITY/host-keys": ("hang", "ssh-keygen"),
    "STORAGE/reguid": ("hang", "zpool reguid"),
    "STORAGE/swap": ("hang", "zfs create"),
    "STORAGE/pools": ("hang", "zpool create"),
    "USERSCRIPT/install": ("hang", "svcadm enable"),
    "IDENTITY/users": ("hang", "useradd"),
    "USERSCRIPT/packages": ("hang", "pkg install"),
}
CLOUD_CONFIG_PLATFORMS = {"omnios-zone", "tribblix-zone", "proxmox", "smartos-nocloud"}
CLOUD_CONFIG_STEPS = {"IDENTITY/bootcmd", "IDENTITY/users", "IDENTITY/passwords",
                      "IDENTITY/timezone", "USERSCRIPT/packages", "USERSCRIPT/write-files",
                      "USERSCRIPT/runcmd"}
PLATFORM_MID = {
    "vmware": {"DETECT/provider": ("call", "vmware-rpctool")},
    "nocloud": {"DETECT/provider": ("call", "fstyp"), "FETCH/metadata": ("call", "mount")},
    "none": {"DETECT/provider": ("call", "fstyp")},
    "digitalocean": {"FETCH/metadata": ("call", "mount")},
    "ec2": {"FETCH/metadata": ("call", "ipadm create-addr")},
    "smartos": {"FETCH/metadata": ("emulator", ""),
                "NETWORK/datalinks": ("call", "dladm set-linkprop")},
    # Killed half way through the witness write: the wireserver has accepted Ready, so
    # the resumed run sends it again (at least once; tests/test_azure.py counts reports).
    "azure": {"FETCH/metadata": ("call", "mount"),
              "USERSCRIPT/azure-ready": ("write", "/var/metadata/azure-ready")},
}
# Steps that touch no command or file of their own on a platform: no middle to kill in.
NO_MID = {
    "qemu": {"NETWORK/routes"}, "bhyve": {"NETWORK/routes"},
    # EC2 brings its link and DHCP up in FETCH; NETWORK only finds them done.
    "ec2": {"NETWORK/interfaces", "NETWORK/addresses", "NETWORK/routes"},
    # Azure too (for IMDS); its keys go to the admin user, its CustomData is no script.
    "azure": {"NETWORK/interfaces", "NETWORK/addresses", "NETWORK/routes",
              "IDENTITY/ssh-keys", "USERSCRIPT/install"},
    # No metadata: no name, keys or script to install.
    "none": {"NETWORK/routes", "IDENTITY/hostname", "IDENTITY/ssh-keys", "IDENTITY/host-keys",
             "USERSCRIPT/install"},
    # The OmniOS zone sets root's password and sshd; Proxmox VE makes its default user.
    # (/etc/shadow is first written by the users step wherever it creates a user).
    "omnios-zone": CLOUD_CONFIG_STEPS - {"IDENTITY/passwords"} | {"USERSCRIPT/install"},
    "proxmox": CLOUD_CONFIG_STEPS - {"IDENTITY/users"} | {"USERSCRIPT/install",
                                                         "IDENTITY/ssh-keys"},
    # nocloud-net: FETCH made the IP interface to reach the seed URL.
    "tribblix-zone": {"USERSCRIPT/install", "IDENTITY/passwords", "NETWORK/interfaces"},
    # SmartOS's CIDATA disk: cloud-config with users, no bootcmd, packages or user-script
    # (runcmd enables the userscript service).
    "smartos-nocloud": {"IDENTITY/bootcmd", "IDENTITY/passwords", "USERSCRIPT/packages",
                        "USERSCRIPT/install"},
    # OpenStack's and Proxmox VE's config drives carry no user script (and Proxmox no key
    # for root); the metadata service's DHCP in FETCH already made the IP interface.
    "openstack": {"USERSCRIPT/install"},
    "openstack-http": {"USERSCRIPT/install", "NETWORK/interfaces"},
    "proxmox-configdrive2": {"USERSCRIPT/install", "IDENTITY/ssh-keys"},
}
# NETWORK/datalinks changes links only where the metadata asks: Proxmox's v1 `name: eth0`
# renames the link, SmartOS's jumbo-frame net1 (`mtu: 8500`) sets an MTU. Elsewhere it only
# looks (no MID entry: no middle to kill in).
PLATFORM_MID.update({
    "omnios-zone": {"FETCH/metadata": ("call", "mount")},
    "proxmox": {"FETCH/metadata": ("call", "mount"),
                "NETWORK/datalinks": ("call", "dladm rename-link")},
    "smartos-nocloud": {"DETECT/provider": ("call", "fstyp"),
                        "FETCH/metadata": ("call", "mount")},
    # nocloud-net brings DHCP up in FETCH; NETWORK first deletes that address object.
    "tribblix-zone": {"NETWORK/addresses": ("call", "ipadm delete-addr")},
    "openstack": {"FETCH/metadata": ("call", "mount")},
    "proxmox-configdrive2": {"FETCH/metadata": ("call", "mount")},
    # The metadata service is reached through DHCP brought up in FETCH.
    "openstack-http": {"FETCH/metadata": ("call", "ipadm create-addr"),
                       "NETWORK/addresses": ("call", "ipadm delete-addr")},
})

BOUNDARIES = ["begin", *[f"to-{p}" for p in PHASE_NAMES[1:]], "final"]
ONE_SHOT_POINTS = ["before", "mid-pre", "mid", "intent-write", "after", "write-mid",
                   "write-rename"]


def other_platforms() -> list[str]:
    """The reduced platforms in rotation order: the two zones first, so that the rotated
    points land on platforms where each one-shot step has a middle to kill in."""
    first = [p for p in ("omnios-zone", "tribblix-zone") if p in PLATFORMS]
    return first + [p for p in PLATFORMS if p != RICHEST and p not in first]


def mid_of(platform: str, step: str, point: str = "mid") -> tuple[str, str] | None:
    if step in NO_MID.get(platform, set()):
        return None
    if step == "STORAGE/pools" and platform not in POOL_PLATFORMS:
        return None   # only the richest guest has a data pool to make (crashkit)
    if step in CLOUD_CONFIG_STEPS and platform not in CLOUD_CONFIG_PLATFORMS:
        return None
    if point == "mid-pre":
        return MID_PRE.get(step)
    return PLATFORM_MID.get(platform, {}).get(step) or MID.get(step)


def every_case(platform: str) -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    for step in gather_steps():
        cases += [(step, "before"), (step, "after")]
        if mid_of(platform, step):
            cases.append((step, "mid"))
    for step in change_steps():
        for point in ONE_SHOT_POINTS:
            if point in ("mid-pre", "intent-write") and step not in one_shot_steps():
                continue
            if point.startswith("mid") and not mid_of(platform, step, point):
                continue
            cases.append((step, point))
    cases += [(boundary, "write-mid") for boundary in BOUNDARIES]
    return cases


def _rotation(step: str, j: int) -> int:
    """The first rotation from `j` on that gives no platform a middle its step lacks there
    (a step with nothing to do on a platform, such as host keys without an instance id)."""
    others = [p for p in PLATFORMS if p != RICHEST]
    n = len(ONE_SHOT_POINTS)
    for c in range(j, j + n):
        points = [ONE_SHOT_POINTS[(i + c) % n] for i in range(len(others))]
        if all(not pt.startswith("mid") or mid_of(p, step, pt) for p, pt in zip(others, points)):
            return c
    return j


def reduced_cases(platform: str, index: int) -> list[tuple[str, str]]:
    """A platform's share of the matrix: see the module docstring."""
    cases: list[tuple[str, str]] = []
    for j, step in enumerate(one_shot_steps()):
        point = ONE_SHOT_POINTS[(index + _rotation(step, j)) % len(ONE_SHOT_POINTS)]
        if point.startswith("mid") and not mid_of(platform, step, point):
            point = "after"
        cases.append((step, point))
    fetch = next((s for s in ("FETCH/metadata", "DETECT/provider") if mid_of(platform, s)), None)
    cases.append((fetch, "mid") if fetch else ("FETCH/metadata", "before"))
    network = [s for s in change_steps() if s.startswith("NETWORK/")]
    step = network[index % len(network)]
    point = ["after", "mid", "write-mid", "before"][index % 4]
    cases.append((step, point if mid_of(platform, step) or point != "mid" else "after"))
    cases.append((BOUNDARIES[index % len(BOUNDARIES)], "write-mid"))
    if mid_of(platform, "NETWORK/datalinks") and ("NETWORK/datalinks", "mid") not in cases:
        cases.append(("NETWORK/datalinks", "mid"))   # it does work only on a few platforms
    if platform == "azure" and ("USERSCRIPT/azure-ready", "mid") not in cases:
        cases.append(("USERSCRIPT/azure-ready", "mid"))   # the report step's only middle
    if platform in CLOUD_CONFIG_PLATFORMS:
        # The cloud-config steps do work only here: kill each in its middle too.
        for step in (s for s in change_steps() if s in CLOUD_CONFIG_STEPS):
            for point in ("mid-pre", "mid"):
                if mid_of(platform, step, point) and (step, point) not in cases:
                    cases.append((step, point))
    return cases


def _matrix() -> list:
    params = []
    others = other_platforms()
    for platform in [RICHEST, *others]:
        cases = every_case(platform) if FULL or platform == RICHEST else \
            reduced_cases(platform, others.index(platform))
        params += [pytest.param(platform, step, point, id=f"{platform}-{step}-{point}",
                                marks=pytest.mark.crash_matrix) for step, point in cases]
    return params


def crash_and_resume(g, base, step: str, point: str) -> list[int]:
    """Kill the first run at (step, point), then restart until DONE; the exit codes."""
    if point in ("before", "after"):
        return boot_until_done(g, f"{point}:{step}")
    if step in BOUNDARIES:
        n = base.transition_saves()[step]
        return boot_until_done(g, f"write-mid:{CHECKPOINT_PATH}#{n}")
    if point in ("write-mid", "write-rename", "intent-write"):
        n = base.save_index(step, STARTED) if point == "intent-write" else base.save_index(step)
        where = "write-mid" if point == "intent-write" else point
        return boot_until_done(g, f"{where}:{CHECKPOINT_PATH}#{n}")
    kind, target = mid_of(base.platform, step, point)
    if kind == "emulator":
        assert step == "FETCH/metadata" and base.platform == "smartos"
        return resume_until_done(g, [kill_while_fetching(g)])
    first = base.first_step_of("write" if kind == "write" else "call", target)
    assert first == step, f"the matrix's table is stale: {target} is first touched by {first}"
    if kind == "write":
        return boot_until_done(g, f"write-mid:{target}")
    return resume_until_done(g, [kill_while_blocked(g, target, after_effect=kind == "call")])


@pytest.mark.parametrize(("platform", "step", "point"), _matrix())
def test_crash_matrix(tmp_path, platform, step, point):
    base = baseline(platform)
    g = crash_guest(tmp_path, platform)
    codes = crash_and_resume(g, base, step, point)
    assert codes[0] == -9, f"the first run was not killed: exit codes {codes}"
    # Killed while writing the final save the boot was already recorded DONE: the restart
    # is a new boot (per-boot steps re-check and change nothing).
    assert_like_baseline(g, base, codes, boots=(1, 2) if step == "final" else (1,))


def test_matrix_covers_every_step_and_point():
    """The reduced platforms together hit every (one-shot step, point) pair, and qemu runs
    every point of every step."""
    others = other_platforms()
    covered = {case for i, p in enumerate(others) for case in reduced_cases(p, i)}
    wanted = {(s, pt) for s in one_shot_steps() for pt in ONE_SHOT_POINTS
              if not pt.startswith("mid") or any(mid_of(p, s, pt) for p in others)}
    assert wanted - covered == set()
    full = set(every_case(RICHEST))
    for step in change_steps():
        for point in ("before", "after", "write-mid", "write-rename"):
            assert (step, point) in full
    # A middle only the richest guest has (its data pool) is run there.
    assert {(s, pt) for s in one_shot_steps() for pt in ONE_SHOT_POINTS
            if mid_of(RICHEST, s, pt)} <= full


# ---- docs/reliability.md says what this file runs ----------------------------------------
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "docs", "reliability.md")


def _doc() -> str:
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def test_reliability_doc_names_tests_that_exist():
    """Every `file::test` the doc cites is a test in that file."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)(?:\[[^\]]*\])?`", _doc())
    assert len(cited) > 40
    for file, name in cited:
        path = os.path.join(tests_dir, file)
        assert os.path.exists(path), f"{file} is cited but missing"
        with open(path, encoding="utf-8") as f:
            assert re.search(rf"^def {name}\(", f.read(), re.M), f"{file}::{name} not found"


def test_reliability_doc_bounds_are_the_settings_defaults():
    rows = dict(re.findall(r"^\| `timeouts\.(\w+)` \| ([\d.]+) s \|", _doc(), re.M))
    assert {k: float(v) for k, v in rows.items()} == \
        {k: spec[1] for k, spec in SCHEMA["timeouts"].items()}


def test_reliability_doc_states_the_matrix_size():
    others = other_platforms()
    per_other = {len(reduced_cases(p, i)) for i, p in enumerate(others)}
    total = len(every_case(RICHEST)) + sum(len(reduced_cases(p, i)) for i, p in enumerate(others))
    doc = " ".join(_doc().split())
    assert f"runs every point of every step: {len(every_case(RICHEST))} cases" in doc
    plain = len(one_shot_steps()) + 3
    assert min(per_other) == plain and f"Each other platform runs {plain}" in doc
    assert f"{total} cases in all" in doc
    full = sum(len(every_case(p)) for p in PLATFORMS)
    assert f"`MATRIX=full` makes it about {round(full, -2)}" in doc, full
