"""STORAGE steps on the simulated guest: each asserted by the guest's resulting state, run
twice (the second run changes nothing), and under kill-and-resume."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from guest import make_guest

from fsm.checkpoint import Checkpoint
from fsm.settings import Settings, defaults
from fsm.steps import Context
from fsm.system import System
from operations import expand, reguid, rootdisk, swap
from providers.model import Metadata
from sim import hardware
from sim import state as sim_state
from sim.guest import storage_state

CHANGING = ("format", "fmthard", "zpool online", "zfs create", "swap", "zpool reguid")


def context(g, devlinks_s: float = 2.0) -> Context:
    values = defaults()
    values["timeouts"]["devlinks"] = devlinks_s
    return Context(system=System(g.root), settings=Settings(values), checkpoint=Checkpoint(),
                   metadata=Metadata(source="test"))


def full_pool_bytes(g, disk: str) -> int:
    """The pool size once label, slice and pool fill the disk as it is now."""
    st = g.state()
    d = st["disks"][disk]
    total = d["size_bytes"] // d["sector_size"]
    resv = hardware.RESERVED_BYTES // d["sector_size"]
    data = d["label"]["parts"][st["pools"]["rpool"]["slice"][1:]]
    end = hardware.last_usable_lba(total, d["sector_size"]) + 1 - resv
    aligned_gap = (d["label"]["parts"]["8"]["start"] - data["start"] - data["size"])
    return hardware.vdev_asize((end - aligned_gap - data["start"]) * d["sector_size"])


def changing_calls(g) -> dict[str, int]:
    return {k: v for k, v in g.calls().items() if k.split(" ")[0] in ("format", "fmthard", "swap")
            or k in CHANGING}


# ---- the renamed root disk ----------------------------------------------------------------
def test_renamed_root_disk_is_found_by_its_label_and_expanded(tmp_path):
    g = make_guest(tmp_path, "digitalocean")
    assert not os.path.exists(g.path("/dev/dsk/c1t0d0s1"))   # the reported failure's premise
    outcome = expand.expand_pool(context(g))
    pool = g.show()["pool"]
    assert pool["disk"] == "c3t0d0" and pool["label_disk"] == "c1t0d0"   # zpool still stale
    assert pool["size_bytes"] == full_pool_bytes(g, "c3t0d0") > 20 * hardware.GIB
    assert outcome.record["found_by"] == "ZFS label carries the pool guid"
    assert any("c1t0d0 (stale)" in w for w in outcome.warnings)
    label = g.state()["disks"]["c3t0d0"]["label"]
    assert label["last_u_lba"] == 25 * hardware.GIB // 512 - 34
    assert label["parts"]["1"]["start"] + label["parts"]["1"]["size"] == label["parts"]["8"]["start"]
    assert g.state()["disks"]["c4t0d0"]["label"] is None                  # the config drive untouched
    first = changing_calls(g)
    assert first == {"format": 1, "fmthard": 1, "zpool online": 1}

    again = expand.expand_pool(context(g))
    assert again.changes == []
    assert changing_calls(g) == first
    assert g.show()["pool"]["size_bytes"] == pool["size_bytes"]


def test_renamed_disk_boots_to_done_with_the_pool_expanded(tmp_path):
    g = make_guest(tmp_path, "digitalocean")
    result = g.run()
    assert result.returncode == 0, result.stderr[-3000:]
    cp = g.checkpoint()
    assert cp.phase == "DONE" and cp.last_error is None
    shown = g.show()
    assert shown["pool"]["size_bytes"] == full_pool_bytes(g, "c3t0d0")
    assert shown["pool"]["guid"] != hardware.POOL_GUID
    assert [a["path"] for a in shown["swap"]] == ["/dev/zvol/dsk/rpool/swap"]
    assert shown["vfstab_swap"] == [swap.VFSTAB_LINE]
    assert "failed to open device" not in result.stderr
    first = changing_calls(g)

    second = g.run()
    assert second.returncode == 0, second.stderr[-3000:]
    assert changing_calls(g) == first          # no format, fmthard, online, create, swap -a, reguid
    assert g.show()["pool"] == shown["pool"] and g.show()["vfstab_swap"] == [swap.VFSTAB_LINE]
    assert first["zpool reguid"] == 1          # once per instance
    reguid_rec = dict(g.checkpoint().completed_steps())["STORAGE/reguid"]
    assert reguid_rec["intent"]["guid_before"] == hardware.POOL_GUID
    assert reguid_rec["record"]["guid_after"] == shown["pool"]["guid"]


def test_a_stale_name_that_now_belongs_to_another_disk_is_not_trusted(tmp_path):
    g = make_guest(tmp_path, "digitalocean")
    g.set_state(**storage_state("digitalocean", label_disk="c4t0d0"))   # the config drive's name
    root = rootdisk.find_root_disk(System(g.root), wait_s=0)
    assert (root.disk, root.vdev_name, root.data_slice, root.renamed) == ("c3t0d0", "c4t0d0", "s1", True)


def test_when_libzfs_refreshes_the_stale_name_it_is_used_directly(tmp_path):
    # zpool list/status as root refresh a stale path whose devid resolves (zpool_vdev_name).
    g = make_guest(tmp_path, "digitalocean")
    st = storage_state("digitalocean")
    st["pools"]["rpool"]["refresh_on_status"] = True
    g.set_state(**st)
    root = rootdisk.find_root_disk(System(g.root), wait_s=0)
    assert (root.disk, root.vdev_name, root.renamed) == ("c3t0d0", "c3t0d0", False)
    assert g.calls().get("zdb") == 2          # c3t0d0s0 (the EFI system partition), then s1
    assert g.state()["pools"]["rpool"]["label_disk"] == "c3t0d0"


def test_waits_a_bounded_time_for_dev_links_that_appear_late(tmp_path):
    g = make_guest(tmp_path, "qemu")
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in os.listdir(g.path("/dev/dsk")):
        if name.startswith("c1t0d0"):
            shutil.move(g.path(f"/dev/dsk/{name}"), hidden / name)
    naps: list[float] = []

    def devfsadm_finishes(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            for name in os.listdir(hidden):
                shutil.move(hidden / name, g.path(f"/dev/dsk/{name}"))

    now = [0.0]
    root = rootdisk.find_root_disk(System(g.root), wait_s=10, clock=lambda: now[0],
                                   sleep=lambda s: (devfsadm_finishes(s), now.__setitem__(0, now[0] + s)))
    assert root.disk == "c1t0d0" and len(naps) == 2


def test_no_disk_with_the_pool_label_is_a_clear_error_after_the_wait(tmp_path):
    g = make_guest(tmp_path, "digitalocean")
    for name in os.listdir(g.path("/dev/dsk")):
        if name.startswith("c3t0d0"):
            os.remove(g.path(f"/dev/dsk/{name}"))
    with pytest.raises(rootdisk.RootDiskError, match=r"zpool reports c1t0d0.*disks present: c4t0d0"):
        expand.expand_pool(context(g, devlinks_s=0))
    assert g.calls().get("format") is None and g.calls().get("zpool online") is None


def test_storage_failure_never_stops_the_other_phases(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.set_state(faults={"fail": {"zpool list": "internal error: Bad file number"}})
    result = g.run()
    assert result.returncode == 95
    cp = g.checkpoint()
    assert cp.last_error["phase"] == "STORAGE"
    assert cp.phase == "STORAGE"                 # held there for `svcadm clear`
    done = {k for k, r in cp.completed_steps() if r["status"] == "done"}
    assert {"STORAGE/reguid", "STORAGE/swap", "USERSCRIPT/install"} <= done
    assert "STORAGE/expand-pool" not in done
    assert g.show()["swap"] and g.calls().get("zpool reguid") == 1

    g.set_state(faults={})
    retried = g.run()
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert g.show()["pool"]["size_bytes"] == full_pool_bytes(g, "c1t0d0")
    assert g.calls().get("zpool reguid") == 1 and g.calls().get("zfs create") == 1


# ---- expansion variants ----------------------------------------------------------------------
def test_a_disk_grown_after_first_boot_is_expanded_on_the_next_boot(tmp_path):
    g = make_guest(tmp_path, "qemu")
    expand.expand_pool(context(g))
    at_20 = g.show()["pool"]["size_bytes"]
    assert at_20 == full_pool_bytes(g, "c1t0d0")
    with sim_state.locked(g.root) as st:
        st["disks"]["c1t0d0"]["size_bytes"] = 30 * hardware.GIB
    outcome = expand.expand_pool(context(g))
    assert g.show()["pool"]["size_bytes"] == full_pool_bytes(g, "c1t0d0") > at_20
    assert len(outcome.changes) == 3
    assert changing_calls(g) == {"format": 2, "fmthard": 2, "zpool online": 2}


def test_an_enlarged_disk_grows_its_pool_only_because_the_in_use_check_is_skipped(tmp_path):
    """format refuses to label a disk the active root pool uses (libdiskmgt's in-use check)
    unless NOINUSE_CHECK is set; the agent sets it, so the boot grows the pool."""
    g = make_guest(tmp_path, "qemu")
    g.write("/tmp/cmd", expand.FORMAT_EXPAND_COMMANDS)
    system = System(g.root)
    label_before = g.state()["disks"]["c1t0d0"]["label"]
    refused = system.apply(["/usr/sbin/format", "-d", "c1t0d0", "-f", "/tmp/cmd"], check=False)
    assert refused.returncode == 1
    assert "Cannot label disk when partitions are in use as described." in refused.stderr
    assert g.state()["disks"]["c1t0d0"]["label"] == label_before
    g.set_state(calls={})

    result = g.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert g.checkpoint().last_error is None
    assert g.state()["disks"]["c1t0d0"]["label"] != label_before
    assert g.show()["pool"]["size_bytes"] == full_pool_bytes(g, "c1t0d0") > 19 * hardware.GIB
    assert g.calls()["format"] == 1 and g.calls()["zpool online"] == 1


@pytest.mark.parametrize("checkpoint_column", [True, False])
def test_the_pool_grows_whatever_the_zpool_list_column_positions(tmp_path, checkpoint_column):
    """Builds before 2018 print no CKPOINT column: the agent names columns with -o."""
    g = make_guest(tmp_path, "qemu")
    g.set_state(illumos={"zpool_checkpoint": checkpoint_column})
    expand.expand_pool(context(g))
    full = g.show()["pool"]["size_bytes"]
    with sim_state.locked(g.root) as st:   # label and slice fill the disk; only EXPANDSZ says grow
        st["pools"]["rpool"]["size_bytes"] -= hardware.GIB
    g.set_state(calls={})
    result = g.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert g.checkpoint().last_error is None
    assert g.show()["pool"]["size_bytes"] == full == full_pool_bytes(g, "c1t0d0")
    assert g.calls()["zpool online"] == 1 and "format" not in g.calls()


def test_a_pool_already_expanded_is_left_alone(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.set_state(**storage_state("qemu", expanded=True))
    before = g.show()["pool"]
    outcome = expand.expand_pool(context(g))
    assert outcome.changes == [] and outcome.warnings == []
    assert g.show()["pool"] == before
    assert changing_calls(g) == {}


@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("platform, data_slice", [("qemu", "1"), ("smartos", "0")])
def test_sector_sizes_with_and_without_an_efi_system_partition(tmp_path, sector_size, platform,
                                                                data_slice):
    g = make_guest(tmp_path, platform)
    g.set_state(**storage_state(platform, sector_size=sector_size))
    expand.expand_pool(context(g))
    disk = g.state()["disks"]["c1t0d0"]
    total = disk["size_bytes"] // sector_size
    assert disk["label"]["last_u_lba"] == total - (34 if sector_size == 512 else 6)
    assert disk["label"]["parts"]["8"]["size"] == hardware.RESERVED_BYTES // sector_size
    data = disk["label"]["parts"][data_slice]
    assert data["start"] + data["size"] == disk["label"]["parts"]["8"]["start"]
    assert g.show()["pool"]["size_bytes"] == full_pool_bytes(g, "c1t0d0")
    assert expand.expand_pool(context(g)).changes == []


def test_resumes_after_the_label_was_expanded_but_not_the_slice(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.write("/tmp/cmd", expand.FORMAT_EXPAND_COMMANDS)
    System(g.root).apply(["/usr/sbin/format", "-d", "c1t0d0", "-f", "/tmp/cmd"],
                         env=expand.FORMAT_ENV)
    outcome = expand.expand_pool(context(g))
    assert [c.split(" ")[0] for c in outcome.changes] == ["slice", "pool"]
    assert g.calls()["format"] == 1                       # the one made before the "crash"
    assert g.show()["pool"]["size_bytes"] == full_pool_bytes(g, "c1t0d0")


def test_prtvtoc_parser_rejects_unexpected_rows():
    from fsm.errors import ParseError
    with pytest.raises(ParseError, match="expected a slice row"):
        expand.parse_prtvtoc("* Dimensions:\n*         512 bytes/sector\n*  100 sectors\n"
                             "       0      4    00   x\n", "/dev/rdsk/c1t0d0")


# ---- reguid ---------------------------------------------------------------------------------
def test_reguid_killed_after_it_took_effect_is_not_repeated(tmp_path):
    g = make_guest(tmp_path, "qemu")
    killed = g.run(env={"METADATA_AGENT_CRASH_AT": "after:STORAGE/reguid"})
    assert killed.returncode == -signal.SIGKILL
    assert g.calls()["zpool reguid"] == 1
    resumed = g.run()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert g.calls()["zpool reguid"] == 1
    rec = dict(g.checkpoint().completed_steps())["STORAGE/reguid"]
    assert rec["status"] == "done" and rec.get("recovered") is True
    assert g.checkpoint().phase == "DONE"


def test_reguid_killed_before_it_ran_runs_once_on_resume(tmp_path):
    g = make_guest(tmp_path, "qemu")
    killed = g.run(env={"METADATA_AGENT_CRASH_AT": "before:STORAGE/reguid"})
    assert killed.returncode == -signal.SIGKILL and "zpool reguid" not in g.calls()
    assert g.run().returncode == 0
    assert g.calls()["zpool reguid"] == 1 and g.show()["pool"]["guid"] != hardware.POOL_GUID


def test_reguid_took_effect_compares_with_the_recorded_guid(tmp_path):
    g = make_guest(tmp_path, "qemu")
    ctx = context(g)
    recorded = reguid.intent(ctx)
    assert recorded == {"pool": "rpool", "guid_before": hardware.POOL_GUID}
    assert reguid.took_effect(ctx, recorded) is False
    assert reguid.took_effect(ctx, {}) is False
    reguid.reguid(ctx)
    assert reguid.took_effect(ctx, recorded) is True


# ---- swap -----------------------------------------------------------------------------------
def test_swap_volume_sized_from_memory_and_pool_added_once(tmp_path):
    g = make_guest(tmp_path, "qemu")
    expand.expand_pool(context(g))               # as in the phase: the pool is grown first
    outcome = swap.ensure_swap(context(g))
    ds = g.state()["datasets"]["rpool/swap"]
    assert ds["type"] == "volume" and ds["volsize"] == hardware.MEMORY_MB << 20
    assert outcome.record["swap_bytes"] == ds["volsize"]
    shown = g.show()
    assert [a["path"] for a in shown["swap"]] == [swap.SWAP_DEVICE]
    assert shown["vfstab_swap"] == [swap.VFSTAB_LINE]
    assert "swap\t\t-\t\t/tmp\t\ttmpfs" in g.read("/etc/vfstab")           # other lines kept
    assert swap.ensure_swap(context(g)).changes == []
    assert g.calls()["zfs create"] == 1 and g.show()["vfstab_swap"] == [swap.VFSTAB_LINE]


def test_swap_capped_by_pool_space(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.set_state(memory_mb=65536)
    swap.ensure_swap(context(g))
    pool = g.state()["pools"]["rpool"]
    avail = pool["size_bytes"] - pool["size_bytes"] // 32 - pool["alloc_bytes"]
    assert g.state()["datasets"]["rpool/swap"]["volsize"] == avail // 4 // (1 << 20) * (1 << 20)


def test_existing_swap_volume_is_left_alone_and_duplicate_lines_removed(tmp_path):
    g = make_guest(tmp_path, "qemu")
    system = System(g.root)
    system.apply(["/usr/sbin/zfs", "create", "-V", "1G", "rpool/swap"])
    system.apply(["/usr/sbin/swap", "-a", swap.SWAP_DEVICE])
    g.write("/etc/vfstab", g.read("/etc/vfstab") + f"{swap.SWAP_DEVICE} - - swap - no -\n" * 2)
    outcome = swap.ensure_swap(context(g))
    assert outcome.changes == ["/etc/vfstab: one swap line for /dev/zvol/dsk/rpool/swap"]
    assert g.show()["vfstab_swap"] == [f"{swap.SWAP_DEVICE} - - swap - no -"]
    assert g.calls()["zfs create"] == 1 and g.calls()["swap"] == 2   # ours: -a, then -l
    assert g.state()["datasets"]["rpool/swap"]["volsize"] == hardware.GIB


def test_swap_on_another_block_device_is_left_alone(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.write("/etc/vfstab", g.read("/etc/vfstab") + "/dev/dsk/c1t0d0s3\t-\t-\tswap\t-\tno\t-\n")
    before = g.read("/etc/vfstab")
    assert swap.ensure_swap(context(g)).changes == []
    assert "rpool/swap" not in g.state()["datasets"] and g.read("/etc/vfstab") == before


def test_rpool_swap_that_is_a_filesystem_is_an_error(tmp_path):
    g = make_guest(tmp_path, "qemu")
    System(g.root).apply(["/usr/sbin/zfs", "create", "rpool/swap"])
    with pytest.raises(swap.SwapError, match="is a filesystem"):
        swap.ensure_swap(context(g))
    assert g.show()["vfstab_swap"] == [] and g.show()["swap"] == []


def test_a_plan_lists_every_expansion_command_and_changes_nothing(tmp_path):
    g = make_guest(tmp_path, "qemu")
    before = g.state()["disks"]["c1t0d0"]["label"]
    ctx = context(g)
    ctx.system = System(g.root, dry_run=True)
    expand.expand_pool(ctx)
    planned = [p.split()[1] for p in ctx.system.planned if p.startswith("run:")]
    assert planned == ["/usr/sbin/format", "/usr/sbin/fmthard", "/usr/sbin/zpool"]
    assert ctx.system.planned[[p.startswith("run: /usr/sbin/format") for p in
                               ctx.system.planned].index(True)].endswith(
        "(with NOINUSE_CHECK=1 _LIBDISKMGT_INSTALL=1)")
    assert g.state()["disks"]["c1t0d0"]["label"] == before
    assert "format" not in g.calls() and "zpool online" not in g.calls()
