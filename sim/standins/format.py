"""format(8) stand-in: `format [-f command-file] [-l log-file] [-x data-file] [-d disk-name]
[-t disk-type] [-p partition-name] [-s] [-m] [-M] [-e] [disk-list]`, EFI-labelled disks only.

Non-interactive use as the man page describes it: `-d DISK` makes the disk current and the
command file holds the keystrokes. The menus modelled are the main menu (`partition`,
`label`, `verify`, `current`, `quit`) and the partition menu (`expand`, `print`, `label`,
`quit`). `expand` does what illumos p_expand() does: when the backup GPT header is short of
the device's last LBA, it moves the last slice (the reserved slice 8) and the last usable LBA
up by the difference, otherwise it warns "No expanded capacity is found."; `label` writes
the result. Messages follow usr/src/cmd/format (startup.c, menu_partition.c).
"""

from __future__ import annotations

import copy
import os

from sim.standins.base import Invocation, parse_opts

MAIN_COMMANDS = {"partition", "label", "verify", "current", "quit", "q"}
PARTITION_COMMANDS = {"expand", "print", "label", "quit", "q"}


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
            disk["label"] = copy.deepcopy(working)
        elif command in ("quit", "q"):
            menu = "main"
    return 0
