"""The storage stand-ins behave as the illumos commands do: formats, failures, state."""

from __future__ import annotations

import os
import subprocess

import pytest
from guest import make_guest

from fsm.system import System
from operations import rootdisk
from operations import swap as swap_op
from sim import hardware
from sim import state as sim_state
from sim.guest import storage_state

NOINUSE = {"NOINUSE_CHECK": "1"}


def run(g, command: str, *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = {"zdb": "usr/sbin/zdb", "hostname": "usr/bin/hostname"}.get(command, f"usr/sbin/{command}")
    clean = {k: v for k, v in os.environ.items() if k not in ("NOINUSE_CHECK", "_LIBDISKMGT_INSTALL")}
    return subprocess.run([g.path("/" + path), *args], capture_output=True, text=True,
                          cwd=g.root, input=stdin, timeout=30, env={**clean, **(env or {})})


@pytest.fixture
def do_guest(tmp_path):
    return make_guest(tmp_path, "digitalocean")


def test_prtvtoc_on_the_stale_name_fails_as_illumos_does(do_guest):
    result = run(do_guest, "prtvtoc", "/dev/rdsk/c1t0d0")
    assert result.returncode == 1
    assert result.stderr == ("prtvtoc: /dev/rdsk/c1t0d0: failed to open device: "
                             "No such file or directory\n")
    assert run(do_guest, "prtvtoc", "/dev/dsk/c1t0d0").stderr.startswith("prtvtoc: /dev/dsk/c1t0d0:")


def test_prtvtoc_prints_the_efi_label_with_the_grown_capacity(do_guest):
    out = run(do_guest, "prtvtoc", "/dev/rdsk/c3t0d0").stdout.splitlines()
    assert out[0] == "* /dev/rdsk/c3t0d0 partition map"
    assert "*         512 bytes/sector" in out
    assert f"* {25 * hardware.GIB // 512:11d} sectors" in out
    rows = [ln.split() for ln in out if not ln.startswith("*")]
    assert [r[:2] for r in rows] == [["0", "12"], ["1", "4"], ["8", "11"]]
    assert all(int(r[3]) + int(r[4]) - 1 == int(r[5]) for r in rows)
    free = run(do_guest, "prtvtoc", "-f", "/dev/rdsk/c3t0d0").stdout
    assert free == "FREE_START=34 FREE_SIZE=222 FREE_COUNT=2 FREE_PART=34567\n"


def test_zpool_prints_the_name_recorded_in_the_label(do_guest):
    listing = run(do_guest, "zpool", "list", "-Hpv", "rpool").stdout.splitlines()
    assert listing[0].split("\t")[0] == "rpool"
    assert listing[1].split("\t")[:2] == ["", "c1t0d0"]
    assert len(listing[0].split("\t")) == 11        # default_props
    assert len(listing[1].split("\t")) == 9         # print_list_stats(): name and 7 columns
    status = run(do_guest, "zpool", "status", "rpool").stdout
    assert "\t  c1t0d0" in status and "c3t0d0" not in status
    assert do_guest.state()["pools"]["rpool"]["label_disk"] == "c1t0d0"


def test_zpool_status_refreshes_the_name_when_the_devid_resolves(do_guest):
    with_refresh = storage_state("digitalocean")
    with_refresh["pools"]["rpool"]["refresh_on_status"] = True
    do_guest.set_state(**with_refresh)
    assert "\t  c3t0d0" in run(do_guest, "zpool", "status", "rpool").stdout
    assert do_guest.state()["pools"]["rpool"]["label_disk"] == "c3t0d0"


def test_zpool_online_knows_the_vdev_by_its_zpool_name_only(do_guest):
    bad = run(do_guest, "zpool", "online", "-e", "rpool", "c3t0d0")
    assert (bad.returncode, bad.stderr) == (1, "cannot expand c3t0d0: no such device in pool\n")
    assert run(do_guest, "zpool", "online", "-e", "rpool", "c1t0d0").returncode == 0
    missing = run(do_guest, "zpool", "list", "tank")
    assert (missing.returncode, missing.stderr) == (1, "cannot open 'tank': no such pool\n")


def test_zpool_list_names_its_columns_and_refuses_unknown_ones(do_guest):
    named = run(do_guest, "zpool", "list", "-Hp", "-o", "name,ckpoint,expandsz,size", "rpool")
    pool = do_guest.state()["pools"]["rpool"]
    assert named.stdout == f"rpool\t-\t-\t{pool['size_bytes']}\n"   # 0 is "-" even with -p
    bad = run(do_guest, "zpool", "list", "-o", "name,bogus", "rpool")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("bad property list: invalid property 'bogus'\nusage:\n"
                                 "\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...\n")
    late = run(do_guest, "zpool", "list", "rpool", "-H")          # options before the pools
    assert (late.returncode, late.stderr) == (1, "cannot open '-H': no such pool\n")


def test_an_older_zpool_has_no_checkpoint_column_so_positions_shift(do_guest):
    with sim_state.locked(do_guest.root) as st:
        st["pools"]["rpool"]["size_bytes"] -= hardware.GIB      # room to grow: EXPANDSZ 1G
    current = run(do_guest, "zpool", "list", "-Hpv", "rpool").stdout.splitlines()
    do_guest.set_state(illumos={"zpool_checkpoint": False})
    older = run(do_guest, "zpool", "list", "-Hpv", "rpool").stdout.splitlines()
    assert len(older[0].split("\t")) == len(current[0].split("\t")) - 1 == 10
    assert current[1].split("\t")[6] != "0%" and older[1].split("\t")[6] == "0%"   # FRAG
    refused = run(do_guest, "zpool", "list", "-o", "name,checkpoint", "rpool")
    assert refused.returncode == 2 and "invalid property 'checkpoint'" in refused.stderr
    # The agent names its columns, so both builds read the same.
    do_guest.set_state(illumos={"zpool_checkpoint": True})
    on_current = rootdisk.list_pool(System(do_guest.root))
    do_guest.set_state(illumos={"zpool_checkpoint": False})
    assert rootdisk.list_pool(System(do_guest.root)) == on_current
    assert on_current.expand_bytes == hardware.GIB and on_current.vdevs[0].name == "c1t0d0"


def test_zpool_reguid_changes_the_guid_in_every_label(do_guest):
    before = run(do_guest, "zpool", "get", "-Hp", "-o", "value", "guid", "rpool").stdout.strip()
    assert run(do_guest, "zpool", "reguid", "rpool").returncode == 0
    after = run(do_guest, "zpool", "get", "-Hp", "-o", "value", "guid", "rpool").stdout.strip()
    assert after.isdigit() and after != before
    assert f"    pool_guid: {after}\n" in run(do_guest, "zdb", "-l", "/dev/dsk/c3t0d0s1").stdout


def test_zdb_label_exit_codes(do_guest):
    assert run(do_guest, "zdb", "-l", "/dev/dsk/c3t0d0s1").returncode == 0
    none = run(do_guest, "zdb", "-l", "/dev/dsk/c3t0d0s0")   # the EFI system partition
    assert none.returncode == 2 and "failed to unpack label 0" in none.stdout
    gone = run(do_guest, "zdb", "-l", "/dev/dsk/c1t0d0s1")
    # dump_label(): the raw node is opened, and the error goes to standard error.
    assert (gone.returncode, gone.stdout) == (1, "")
    assert gone.stderr == "cannot open '/dev/rdsk/c1t0d0s1': No such file or directory\n"
    bare = run(do_guest, "zdb", "-l", "c9t0d0")
    assert bare.stderr == "cannot open '/dev/rdsk/c9t0d0s0': No such file or directory\n"
    full = run(do_guest, "zdb", "-l", "c3t0d0s1").stdout
    assert [ln for ln in full.splitlines() if ln.startswith("LABEL")] == \
        ["LABEL 0", "LABEL 1", "LABEL 2", "LABEL 3"]
    assert run(do_guest, "zdb", "-lq", "/dev/dsk/c3t0d0s1").stdout == ""
    for argv in (["-l"], ["-l", "a", "b"], ["-Z", "-l", "x"]):
        bad = run(do_guest, "zdb", *argv)
        assert bad.returncode == 1 and "\tzdb -l [-Aqu] <device>\n" in bad.stderr, argv


def test_format_expand_and_fmthard_grow_the_slice_then_online_grows_the_pool(do_guest, tmp_path):
    do_guest.write("/tmp/cmd", "partition\nexpand\nlabel\nquit\nquit\n")
    out = run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd", env=NOINUSE)
    assert out.returncode == 0
    assert "The expanded capacity is added to the unallocated space." in out.stdout
    label = do_guest.state()["disks"]["c3t0d0"]["label"]
    total = 25 * hardware.GIB // 512
    assert label["last_u_lba"] == total - 34 and label["altern_lba"] == total - 1
    assert label["parts"]["8"]["start"] + label["parts"]["8"]["size"] - 1 <= total - 34
    again = run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd", env=NOINUSE)
    assert "Warning: No expanded capacity is found." in again.stderr
    data, resv = label["parts"]["1"], label["parts"]["8"]
    size = resv["start"] - data["start"]
    too_big = run(do_guest, "fmthard", "-d", f"1:4:00:{data['start']}:{size + 1}",
                  "/dev/rdsk/c3t0d0s1")
    assert too_big.returncode == 1 and "invalid entry exists in vtoc" in too_big.stderr
    assert run(do_guest, "fmthard", "-d", f"1:4:00:{data['start']}:{size}",
               "/dev/rdsk/c3t0d0s1").returncode == 0
    esize = run(do_guest, "zpool", "list", "-Hp", "-o", "expandsize", "rpool").stdout.strip()
    assert int(esize) > 0
    assert run(do_guest, "zpool", "online", "-e", "rpool", "c1t0d0").returncode == 0
    pool = do_guest.state()["pools"]["rpool"]
    assert pool["size_bytes"] == hardware.vdev_asize(size * 512)
    assert run(do_guest, "fmthard", "-d", "1:4:00:0:1", "/dev/rdsk/c1t0d0s1").stderr == \
        "fmthard:  Cannot stat device /dev/rdsk/c1t0d0s1\n"
    assert run(do_guest, "format", "-d", "c1t0d0", "-f", "/tmp/cmd").stderr == \
        "Unable to find specified disk 'c1t0d0'.\n"


def test_format_refuses_to_label_a_disk_the_active_pool_uses_unless_noinuse_check(do_guest):
    do_guest.write("/tmp/cmd", "partition\nexpand\nlabel\nquit\nquit\n")
    before = do_guest.state()["disks"]["c3t0d0"]["label"]
    refused = run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd")
    assert refused.returncode == 1
    assert refused.stderr == (
        "/dev/dsk/c3t0d0s1 is part of active ZFS pool rpool. Please see zpool(1M).\n"
        "Unable to get current partition map.\n"
        "Cannot label disk when partitions are in use as described.\n")
    assert refused.stdout.endswith("The expanded capacity is added to the unallocated space.\n\n")
    assert do_guest.state()["disks"]["c3t0d0"]["label"] == before       # nothing written
    # Any value counts (NOINUSE_SET is getenv() != NULL), even an empty one.
    assert run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd",
               env={"NOINUSE_CHECK": ""}).returncode == 0
    assert do_guest.state()["disks"]["c3t0d0"]["label"] != before


def test_format_refuses_a_swap_or_mounted_slice_even_with_noinuse_check(do_guest):
    do_guest.write("/tmp/cmd", "label\nquit\n")
    with_swap = storage_state("digitalocean")
    with_swap["swap"] = [{"path": "/dev/dsk/c3t0d0s0", "dev": "27,1", "swaplo": 8,
                          "blocks": 1024, "free": 1024}]
    do_guest.set_state(**with_swap)
    swapping = run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd", env=NOINUSE)
    assert (swapping.returncode, swapping.stderr) == (
        1, "Operation on disks being used for swapping must be interactive.\n")
    do_guest.set_state(swap=[], mounts=[{"special": "/dev/dsk/c3t0d0s0", "mount_point": "/mnt",
                                         "fstype": "pcfs"}])
    mounted = run(do_guest, "format", "-d", "c3t0d0", "-f", "/tmp/cmd", env=NOINUSE)
    assert (mounted.returncode, mounted.stderr) == (
        1, "Operation on mounted disks must be interactive.\n")


def test_zfs_create_volume_and_its_failures(do_guest):
    assert run(do_guest, "zfs", "create", "-V", "1G", "rpool/swap").returncode == 0
    assert do_guest.state()["datasets"]["rpool/swap"]["volsize"] == hardware.GIB
    dup = run(do_guest, "zfs", "create", "-V", "1G", "rpool/swap")
    assert (dup.returncode, dup.stderr) == (1, "cannot create 'rpool/swap': dataset already exists\n")
    assert "parent does not exist" in run(do_guest, "zfs", "create", "-V", "1G", "rpool/a/b").stderr
    assert "out of space" in run(do_guest, "zfs", "create", "-V", "100G", "rpool/big").stderr
    listed = run(do_guest, "zfs", "list", "-Hp", "-o", "name,type,volsize", "rpool/swap").stdout
    assert listed == f"rpool/swap\tvolume\t{hardware.GIB}\n"
    gone = run(do_guest, "zfs", "list", "rpool/nope")
    assert gone.stderr == "cannot open 'rpool/nope': dataset does not exist\n"


def test_swap_list_add_and_overlap(do_guest):
    empty = run(do_guest, "swap", "-l")
    assert (empty.returncode, empty.stderr) == (1, "No swap devices configured\n")
    run(do_guest, "zfs", "create", "-V", "1G", "rpool/swap")
    assert run(do_guest, "swap", "-a", "/dev/zvol/dsk/rpool/swap").returncode == 0
    lines = run(do_guest, "swap", "-l").stdout.splitlines()
    # swap.c list(): the header, then "%-19s %2lu,%-2lu" and " %8lu %8lu %8lu".
    assert lines == ["swapfile             dev    swaplo   blocks     free",
                     "/dev/zvol/dsk/rpool/swap 256,1         8  2097144  2097144"]
    assert run(do_guest, "swap", "-lk").stdout.splitlines()[1] == \
        "/dev/zvol/dsk/rpool/swap 256,1        4K 1048572K 1048572K"
    assert swap_op.active_swap(System(do_guest.root)) == ["/dev/zvol/dsk/rpool/swap"]
    dup = run(do_guest, "swap", "-a", "/dev/zvol/dsk/rpool/swap")
    assert (dup.returncode, dup.stderr) == (
        2, "/dev/zvol/dsk/rpool/swap: Overlapping swap files are not allowed\n")


def test_swap_usage_errors_exit_1_and_refuse_a_pool_slice(do_guest):
    for argv in ([], ["-x"], ["-h"], ["-s", "-l"], ["-a", "/dev/zvol/dsk/rpool/swap", "8", "16", "1"]):
        bad = run(do_guest, "swap", *argv)
        assert bad.returncode == 1 and "\tswap -a <file name> [low block] [nbr of blocks]\n" in \
            bad.stderr, argv
        assert bad.stderr.startswith(("Usage:\tswap -l\n", "swap: illegal option -- x\nUsage:")), argv
    relative = run(do_guest, "swap", "-a", "dev/zvol/dsk/rpool/swap")
    assert (relative.returncode, relative.stderr) == (1, "swap: path must be absolute\n")
    in_pool = run(do_guest, "swap", "-a", "/dev/dsk/c3t0d0s1")
    assert (in_pool.returncode, in_pool.stderr) == (
        1, "/dev/dsk/c3t0d0s1 is part of active ZFS pool rpool. Please see zpool(1M).\n")
    assert do_guest.state()["swap"] == []


def test_undocumented_forms_are_usage_errors(do_guest):
    bad = run(do_guest, "prtvtoc", "-Z", "/dev/rdsk/c3t0d0")      # prtvtoc.c usage(): exit 1
    assert (bad.returncode, bad.stderr) == (1, "prtvtoc: illegal option -- Z\nUsage:\tprtvtoc "
                                                "[ -fhs ] [ -t fstab ] [ -m mnttab ] rawdisk ...\n")
    assert run(do_guest, "zpool", "frobnicate").returncode == 2
    assert run(do_guest, "prtconf", "-m").stdout == f"{hardware.MEMORY_MB}\n"
    bad = run(do_guest, "prtconf", "-Z")                  # prtconf.c: usage, return (1)
    assert bad.returncode == 1 and bad.stderr.startswith("prtconf: illegal option -- Z\n")
    assert run(do_guest, "prtconf", "/nowhere").stderr == "prtconf: invalid path specified\n"


def test_umount_of_what_is_not_mounted_and_its_usage(do_guest):
    gone = run(do_guest, "umount", "/var/run/metadata-agent/volume")
    assert (gone.returncode, gone.stderr) == (
        1, "umount: warning: no entries found in /etc/mnttab\n"
           "umount: /var/run/metadata-agent/volume not mounted\n")
    bad = run(do_guest, "umount")                       # umount.c usage(): exit 1, not 2
    assert bad.returncode == 1 and bad.stderr.startswith("Usage:\numount [-f] [-V]")


def test_diskinfo_unknown_option_prints_usage_with_argv0_and_exits_1(tmp_path):
    """diskinfo.c: usage(argv[0]) then errx(1, "unknown option -%c"), both on stderr."""
    from guest import make_guest

    guest = make_guest(tmp_path, "qemu")
    done = subprocess.run([guest.path("/usr/bin/diskinfo"), "-x"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == ["Usage: /usr/bin/diskinfo [-Hp] [{-c|-P}]",
                                        "diskinfo: unknown option -x"]
