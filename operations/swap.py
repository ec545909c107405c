"""Swap on a ZFS volume: `rpool/swap`, in /etc/vfstab once, and active.

Sized from memory (`prtconf -m`, in MB) and the pool's free space: the smaller of memory,
a quarter of what the pool has available, and SWAP_CAP_BYTES, rounded down to whole MiB;
below SWAP_MIN_BYTES it is not worth a volume and the step only warns. Each of the three
parts is checked before it is done, so a run interrupted between them finishes on resume
without repeating anything: the volume (`zfs create -V`, which refuses an existing name),
the vfstab line (the whole file rewritten atomically, duplicates of our line removed,
other lines kept), and activation (`swap -a`, only when `swap -l` does not list it).
A swap area the image or the operator set up on another block device (another volume, a
disk slice, listed by `swap -l` or in vfstab) is left alone and no volume is added.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError, ParseError
from fsm.record import record
from fsm.steps import Context, Outcome
from fsm.system import System
from operations import rootdisk

log = logging.getLogger(__name__)

ZFS = "/usr/sbin/zfs"
SWAP = "/usr/sbin/swap"
PRTCONF = "/usr/sbin/prtconf"
VFSTAB = "/etc/vfstab"
SWAP_VOLUME = f"{rootdisk.ROOT_POOL}/swap"
SWAP_DEVICE = f"/dev/zvol/dsk/{SWAP_VOLUME}"
VFSTAB_LINE = f"{SWAP_DEVICE}\t-\t\t-\t\tswap\t-\tno\t-"
MIB = 1 << 20
SWAP_CAP_BYTES = 4 << 30
SWAP_MIN_BYTES = 256 * MIB
POOL_SHARE = 4     # at most 1/POOL_SHARE of the pool's available space


class SwapError(AgentError):
    """`rpool/swap` exists but is not a volume."""


@record(frozen=True)
class SwapPlan:
    memory_bytes: int
    available_bytes: int
    size_bytes: int


def active_swap(system: System) -> list[str]:
    """Paths `swap -l` lists; none when it says "No swap devices configured" (exit 1)."""
    result = system.run([SWAP, "-l"], check=False)
    if result.returncode != 0:
        if "No swap devices configured" in result.stderr:
            return []
        system.run([SWAP, "-l"])  # raises the CommandError with its message
    lines = result.stdout.splitlines()
    if not lines or not lines[0].startswith("swapfile"):
        raise ParseError("swap -l", lines[0] if lines else "", "expected the swapfile header")
    return [ln.split()[0] for ln in lines[1:] if ln.strip()]


def vfstab_swap_devices(text: str) -> list[str]:
    """Devices of vfstab lines whose FS type (fourth field) is swap."""
    devices = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#") and fields[3] == "swap":
            devices.append(fields[0])
    return devices


def with_one_swap_line(text: str) -> str:
    """vfstab with exactly one line for our volume (the first kept as the admin wrote it)."""
    out: list[str] = []
    seen = False
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == [SWAP_DEVICE] and fields[3:4] == ["swap"]:
            if seen:
                continue
            seen = True
        out.append(line)
    if not seen:
        out.append(VFSTAB_LINE)
    return "\n".join(out) + "\n"


def volume_type(system: System) -> str | None:
    """The type of rpool/swap, or None when it does not exist."""
    result = system.run([ZFS, "list", "-Hp", "-o", "name,type", SWAP_VOLUME], check=False)
    if result.returncode != 0:
        if "dataset does not exist" in result.stderr:
            return None
        system.run([ZFS, "list", "-Hp", "-o", "name,type", SWAP_VOLUME])
    fields = result.stdout.strip().split("\t")
    if len(fields) != 2 or fields[0] != SWAP_VOLUME:
        raise ParseError(f"zfs list {SWAP_VOLUME}", result.stdout.strip(), "expected name<TAB>type")
    return fields[1]


def plan_size(system: System) -> SwapPlan:
    memory = system.run([PRTCONF, "-m"]).stdout.strip()
    if not memory.isdigit():
        raise ParseError("prtconf -m", memory, "expected the memory size in megabytes")
    avail = system.run([ZFS, "list", "-Hp", "-o", "avail", rootdisk.ROOT_POOL]).stdout.strip()
    if not avail.isdigit():
        raise ParseError(f"zfs list -o avail {rootdisk.ROOT_POOL}", avail, "expected bytes")
    memory_bytes, available = int(memory) * MIB, int(avail)
    size = min(memory_bytes, available // POOL_SHARE, SWAP_CAP_BYTES) // MIB * MIB
    return SwapPlan(memory_bytes, available, size)


def ensure_swap(ctx: Context) -> Outcome:
    system = ctx.system
    outcome = Outcome()
    active = active_swap(system)
    vfstab = system.read_text(VFSTAB, default="")
    others = sorted({d for d in active + vfstab_swap_devices(vfstab)
                     if d != SWAP_DEVICE and d.startswith("/dev/")})
    kind = volume_type(system)
    if others and kind is None:
        log.info("swap already configured on %s: left alone", ", ".join(others))
        return outcome
    if kind is None:
        plan = plan_size(system)
        if plan.size_bytes < SWAP_MIN_BYTES:
            outcome.warnings.append(
                f"no swap volume: {plan.size_bytes // MIB} MiB (memory {plan.memory_bytes // MIB} "
                f"MiB, pool available {plan.available_bytes // MIB} MiB) is below "
                f"{SWAP_MIN_BYTES // MIB} MiB")
            return outcome
        system.apply([ZFS, "create", "-V", str(plan.size_bytes), SWAP_VOLUME])
        outcome.changed(f"created volume {SWAP_VOLUME} of {plan.size_bytes // MIB} MiB")
        outcome.record["swap_bytes"] = plan.size_bytes
    elif kind != "volume":
        raise SwapError(f"{SWAP_VOLUME} exists but is a {kind}, not a volume: no swap added")
    wanted = with_one_swap_line(vfstab)
    if wanted != vfstab:
        system.write_file(VFSTAB, wanted, mode=0o644)
        outcome.changed(f"{VFSTAB}: one swap line for {SWAP_DEVICE}")
    if SWAP_DEVICE not in active:
        system.apply([SWAP, "-a", SWAP_DEVICE])
        outcome.changed(f"swap activated on {SWAP_DEVICE}")
    return outcome
