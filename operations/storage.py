"""STORAGE phase: grow the root pool, give a cloned pool its own GUID, add swap, make or
import the data pools the settings ask for, and grow the data pools.

A failure in any of these is logged and recorded by the machine, and never stops the
other phases (the original agent made pool expansion fatal, so a renamed root disk left the
guest without network, hostname or keys). The root disk is found fresh on every boot
(operations/rootdisk.py); no device name is ever read back from the checkpoint.
"""

from __future__ import annotations

from fsm.steps import Frequency, Step

# Declarations only: each step's code is imported when it runs (a boot where reguid and
# swap are done never imports them).

STEPS: tuple[Step, ...] = (
    Step("STORAGE", "expand-pool", Frequency.PER_BOOT, "operations.expand:expand_pool",
         changes="the root disk's EFI label (`format -d DISK -f CMDFILE`: partition, expand, "
                 "label), the pool's slice grown up to reserved slice 8 (`fmthard -d`), and "
                 "the pool itself (`zpool online -e rpool VDEV`); nothing when the pool already "
                 "fills the disk. The disk is the one whose ZFS label carries the pool's GUID, "
                 "even when zpool still prints the name it had when the image was built",
         fails_when="no disk under /dev/dsk carries the pool's label within the /dev link wait "
                    "(timeouts.devlinks, default 10 s), a disk tool exits non-zero, or format "
                    "leaves the label short. A mirrored or multi-vdev root pool, or a disk without "
                    "an EFI label, is left alone with a warning, not a failure",
         on_failure="recorded with the command's message; NETWORK, IDENTITY and USERSCRIPT are "
                    "not affected; retried on the next boot or `svcadm clear` (each part is "
                    "re-checked, so nothing is done twice)",
         checkpointed="done record for this boot, with the pool size and how the disk was found "
                      "(never its device name)"),
    Step("STORAGE", "reguid", Frequency.PER_INSTANCE, "operations.reguid:reguid",
         changes="the root pool's GUID (`zpool reguid rpool`), so pools of VMs cloned from one "
                 "image do not share it",
         fails_when="zpool reguid exits non-zero, or exits 0 leaving the GUID unchanged",
         on_failure="recorded; other phases run; tried again on the next start for this instance",
         checkpointed="started record with the GUID before (intent) ahead of the command, done "
                      "record with the GUIDs before and after; on resume after a kill, a GUID "
                      "different from the recorded one counts as done and reguid is not repeated",
         intent="operations.reguid:intent", took_effect="operations.reguid:took_effect"),
    Step("STORAGE", "swap", Frequency.PER_INSTANCE, "operations.swap:ensure_swap",
         changes="volume rpool/swap (`zfs create -V SIZE`, SIZE = min(memory from `prtconf -m`, "
                 "1/4 of the pool's free space, 4 GiB)), one `/dev/zvol/dsk/rpool/swap - - swap "
                 "- no -` line in /etc/vfstab (file rewritten atomically, duplicates removed), and "
                 "`swap -a`; an existing swap area on another block device is left alone",
         fails_when="rpool/swap exists but is not a volume, zfs create or swap -a exits non-zero",
         on_failure="recorded; other phases run; tried again on the next start for this instance "
                    "(volume, vfstab line and activation are each re-checked)"),
    Step("STORAGE", "pools", Frequency.PER_INSTANCE, "operations.datapools:ensure_pools",
         changes="the data pools of `[storage] pools` (settings or SMF config/storage_pools) "
                 "and of cloud-config `fs_setup` entries with `filesystem: zfs` on a whole disk "
                 "(every other disk_setup/fs_setup entry is one warning): "
                 "an exported pool of that name on an attached disk is imported (`zpool import "
                 "NAME`); otherwise the pool is made on blank disks (`zpool create [-o "
                 "autoexpand=on] [-m MOUNTPOINT] NAME [mirror|raidz|raidz2] DISK...`, never "
                 "`-f`), the disks named (c2t0d0) or chosen by size (size>=10G, all-blank) among "
                 "those `diskinfo -Hp` lists that are not removable and on which `zdb -l`, the "
                 "`zpool import` listing, `fstyp` and `prtvtoc` find nothing; `zpool set "
                 "autoexpand=on|off` where asked. Nothing when no pool is wanted (no command "
                 "runs)",
         fails_when="diskinfo, zpool list or zpool import cannot be run or read. A bad entry, a "
                    "disk that is not blank (label, pool, file system, removable, too small), "
                    "too few blank disks, or a zpool refusal is a warning naming the pool and "
                    "the disk, not a failure: the other pools are still made",
         on_failure="recorded; other phases run; tried again on the next start for this instance",
         checkpointed="started record with the intent (each pool: create, import, exists or "
                      "refused, and its disks) ahead of any zpool command, done record with the "
                      "action per pool; on resume after a kill, a pool made by the killed run is "
                      "found by its name and only finished (autoexpand), never created twice, "
                      "and one found on other disks than the settings name is reported",
         intent="operations.datapools:intent", took_effect="operations.datapools:took_effect"),
    Step("STORAGE", "grow-pools", Frequency.PER_BOOT, "operations.growpools:grow_pools",
         changes="every imported pool but rpool whose disks grew, as expand-pool grows rpool: "
                 "each disk's EFI label (`format -d DISK -f CMDFILE`), its slice 0 (`fmthard "
                 "-d`), then `zpool online -e POOL DISK...`; nothing when the pools fill their "
                 "disks (one `zpool list -H -o name`)",
         fails_when="zpool list cannot be run or read; a pool whose disk lacks its ZFS label or "
                    "an EFI label, or whose disk tool fails, is a warning and the other pools "
                    "are still grown",
         on_failure="recorded; other phases run; retried on the next boot (each part is "
                    "re-checked, so nothing is done twice)",
         checkpointed="done record for this boot, with each pool's size"),
)
