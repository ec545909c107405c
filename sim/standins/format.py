"""format(8) stand-in: `format [-f command-file] [-l log-file] [-x data-file] [-d disk-name]
[-t disk-type] [-p partition-name] [-s] [-m] [-M] [-e] [disk-list]`, EFI-labelled disks only.

Non-interactive use as the man page describes it: `-d DISK` makes the disk current and the
command file holds the keystrokes. The menus modelled are the main menu (`partition`,
`label`, `verify`, `current`, `quit`) and the partition menu (`expand`, `print`, `label`,
`quit`). `expand` does what illumos p_expand() does: when the backup GPT header is short of
the device's last LBA, it moves the last slice (the reserved slice 8) and the last usable LBA
up by the difference, otherwise it warns "No expanded capacity is found."; `label` writes
the result. Messages follow usr/src/cmd/format (startup.c, menu_partition.c).

The in-use checks `label` makes before writing (menu_command.c c_label(), label.c
write_label(), checkdev.c), in the order format makes them:
- checkmount(): a slice of this disk in the mount table; from a command file (`-f`):
  `Operation on mounted disks must be interactive.` and exit 1 (cmdabort() -> fullabort());
- checkswap(): a slice of this disk in the swap table: `Operation on disks being used for
  swapping must be interactive.`, exit 1;
- checkdevinuse(..., check_label=1): libdiskmgt dm_inuse(DM_WHO_FORMAT) finds a slice of an
  active pool (libdiskmgt entry.c); on an EFI-labelled disk the current map cannot be read
  (DKIOCGAPART), so checkpartitions() prints `Unable to get current partition map.` and the
  label is refused: `Cannot label disk when partitions are in use as described.`; a failed
  command from a command file ends format (menu.c run_menu() -> fullabort(): a newline on
  standard output, exit 1). The label is not written.
Only this last check honours `NOINUSE_CHECK` in the environment (libdiskmgt.h NOINUSE_SET:
any value, even empty); the mount and swap checks do not. When a disk is selected without
it, each in-use slice is reported on standard error as dm_get_usage_string() words it
(`/dev/dsk/c1t0d0s1 is part of active ZFS pool rpool. Please see zpool(1M).`).
`_LIBDISKMGT_INSTALL` only keeps libdiskmgt from starting its sysevent threads (cache.c
initialize()): no visible effect, not modelled. Everything format prints with err_print()
goes to standard error, fmt_print() to standard output.
"""

from __future__ import annotations

import copy
import os

from sim.standins.base import Exit, Invocation, parse_opts

MAIN_COMMANDS = {"partition", "label", "verify", "current", "quit", "q"}
PARTITION_COMMANDS = {"expand", "print", "label", "quit", "q"}


def _slices_of(disk: str, paths: list[str]) -> list[str]:
    """The slices of `disk` among these device paths (`/dev/dsk/c1t0d0s1` -> `s1`)."""
    prefix = f"/dev/dsk/{disk}s"
    return [p[len(prefix) - 1:] for p in paths if p.startswith(prefix) and p[len(prefix):].isdigit()]


def pool_uses(inv: Invocation, disk: str) -> list[str]:
    """dm_inuse() usage lines for the slices of `disk` that an imported pool uses."""
    return [f"/dev/dsk/{disk}{pool['slice']} is part of active ZFS pool {name}. "
            "Please see zpool(1M)."
            for name, pool in sorted(inv.state.get("pools", {}).items())
            if disk in (pool.get("disks") or [pool.get("disk")])]


def check_label(inv: Invocation, disk: str) -> None:
    """c_label()'s refusals before a label is written (see the module docstring)."""
    mounted = _slices_of(disk, [m.get("special", "") for m in inv.state.get("mounts", [])])
    if mounted:
        _abort(inv, "Operation on mounted disks must be interactive.")
    swapping = _slices_of(disk, [a.get("path", "") for a in inv.state.get("swap", [])])
    if swapping:
        _abort(inv, "Operation on disks being used for swapping must be interactive.")
    if "NOINUSE_CHECK" not in os.environ and pool_uses(inv, disk):
        inv.err("Unable to get current partition map.")
        _abort(inv, "Cannot label disk when partitions are in use as described.")


def _abort(inv: Invocation, message: str) -> None:
    """err_print() then fullabort(): a newline on standard output, exit 1."""
    inv.err(message)
    inv.out("")
    raise Exit(1)


def main(inv: Invocation) -> int:
    opts, disk_list = parse_opts(inv, inv.argv, "smMe", "flxdtp")
    silent = bool(opts.get("s"))

    def say(text: str) -> None:
        if not silent:
            inv.out(text)

    disks = inv.state.get("disks", {})
    name = opts.get("d") or (disk_list[0] if len(disk_list) == 1 else None)
    if name is None:
        inv.usage("the simulation needs -d disk-name (or one disk in the disk list)")
    if "f" not in opts:
        inv.usage("the simulation needs -f command-file (no interactive input)")
    if name not in disks or not os.path.exists(os.path.join(inv.root, "dev/rdsk", name + "p0")):
        inv.fail(f"Unable to find specified disk '{name}'.")
    disk = disks[name]
    if not disk.get("label"):
        inv.fail(f"Error: can't open selected disk '{name}'.")
    try:
        # Paths name files of the guest, whose root the stand-in runs in.
        with open(os.path.join(inv.root, opts["f"].lstrip("/")), encoding="utf-8") as f:
            commands = [ln.strip() for ln in f if ln.strip()]
    except OSError as e:
        inv.fail(f"Unable to open command file '{opts['f']}'. {e.strerror}")
    total = disk["size_bytes"] // disk["sector_size"]
    working = copy.deepcopy(disk["label"])
    say(f"selecting {name}")
    say("[disk formatted]")
    if "NOINUSE_CHECK" not in os.environ:
        for line in pool_uses(inv, name):
            inv.err(line)
    if working["altern_lba"] != 1 and working["altern_lba"] < total - 1:
        say("Note: capacity in disk label is smaller than the real disk capacity.\n"
            "Select <partition> <expand> to adjust the label capacity. ")
    menu = "main"
    for command in commands:
        if menu == "main":
            if command not in MAIN_COMMANDS:
                inv.fail(f"`{command}' is not expected.")
            if command == "partition":
                menu = "partition"
            elif command == "label":
                check_label(inv, name)
                disk["label"] = copy.deepcopy(working)
            elif command in ("quit", "q"):
                return 0
            continue
        if command not in PARTITION_COMMANDS:
            inv.fail(f"`{command}' is not expected.")
        if command == "expand":
            if working["altern_lba"] == 1 or working["altern_lba"] >= total - 1:
                inv.err("Warning: No expanded capacity is found.")
                continue
            delta = total - 1 - working["altern_lba"]
            last = str(working["nparts"] - 1)
            if last in working["parts"]:
                working["parts"][last]["start"] += delta
            working["last_u_lba"] += delta
            working["altern_lba"] = total - 1
            say("The expanded capacity is added to the unallocated space.")
        elif command == "label":
            check_label(inv, name)
            disk["label"] = copy.deepcopy(working)
        elif command in ("quit", "q"):
            menu = "main"
    return 0
