"""Data pools (issue 15, Storage): made on blank disks, imported, refused on disks in use,
grown when their disks grow; asserted on the simulated guest's resulting state."""

from __future__ import annotations

import subprocess
import sys

import pytest
from crashkit import kill_while_blocked, resume_until_done
from guest import PROJECT_DIR, make_guest, without_calls

from operations import poolspec
from sim import guest as sim_guest
from sim import hardware
from sim import state as sim_state

SETTINGS = """[storage]
pools = [
  {name = "tank", disks = ["size>=8G"], vdev = "mirror", autoexpand = true},
  {name = "old"},
  {name = "scratch", disks = ["c7t0d0"]},
  {name = "data", disks = ["c8t0d0"], mountpoint = "/var/data"},
  {name = "c0t0d0", disks = ["c9t0d0"]},
  {name = "seed", disks = ["c2t0d0"]},
]
"""
DISKS = ("c5t0d0:10G", "c6t0d0:10G:pool=old", "c7t0d0:4G:label", "c8t0d0:4G:ufs",
         "c9t0d0:12G")


def pool_guest(tmp_path, settings: str = SETTINGS, disks=DISKS, name: str = "guest"):
    g = make_guest(tmp_path, "qemu", name=name)
    with sim_state.locked(g.root) as st:
        for spec in disks:
            sim_guest.attach_disk(g.root, st, spec)
    g.write("/etc/metadata-agent.toml", settings)
    return g


def warnings_of(g) -> list[str]:
    return [w["message"] if isinstance(w, dict) else str(w) for w in g.checkpoint().warnings]


def test_pools_are_made_imported_and_refused_and_a_second_boot_changes_nothing(tmp_path):
    g = pool_guest(tmp_path)
    assert g.run().returncode == 0
    shown = g.show()
    pools = shown["pools"]
    # The mirror took the two blank disks of 8G or more; the exported pool was imported.
    assert pools["tank"]["disks"] == ["c5t0d0", "c9t0d0"] and pools["tank"]["vdev"] == "mirror"
    assert pools["tank"]["autoexpand"] == "on" and pools["tank"]["mountpoint"] == "/tank"
    assert pools["old"]["disks"] == ["c6t0d0"] and shown["exported_pools"] == []
    # A foreign label, a file system, a bad name and the seed disk: refused, named, the rest made.
    assert set(pools) == {"tank", "old"}
    text = "\n".join(warnings_of(g))
    assert "pool scratch not made: disk c7t0d0 carries a partition table" in text
    assert "pool data not made: disk c8t0d0 contains a ufs file system" in text
    assert "field name: 'c0t0d0' looks like a disk name" in text
    assert "pool seed not made: disk c2t0d0" in text
    st = g.state()
    assert st["disks"]["c7t0d0"]["label"]["parts"].get("8") is None   # left as it was
    assert st["disks"]["c8t0d0"].get("fstype") == "ufs"
    assert g.calls()["zpool create"] == 1 and g.calls()["zpool import"] >= 2
    assert g.checkpoint().phase == "DONE"

    before = without_calls(g.show())
    calls = g.calls()
    assert g.run().returncode == 0
    assert without_calls(g.show()) == before
    assert g.calls().get("zpool create") == calls["zpool create"] == 1
    assert g.calls().get("zpool set", 0) == calls.get("zpool set", 0)


def test_an_imported_pool_gets_autoexpand_and_a_pool_on_other_disks_is_reported(tmp_path):
    settings = """[storage]
pools = [{name = "old", autoexpand = true}, {name = "rpool", disks = ["c5t0d0"]}]
"""
    g = pool_guest(tmp_path, settings, disks=("c5t0d0:10G", "c6t0d0:10G:pool=old"))
    assert g.run().returncode == 0
    assert g.show()["pools"]["old"]["autoexpand"] == "on"
    assert g.calls()["zpool set"] == 1
    assert "zpool create" not in g.calls()
    assert any("pool rpool exists on c1t0d0, not on c5t0d0" in w for w in warnings_of(g))
    assert g.state()["disks"]["c5t0d0"]["label"] is None


def test_a_grown_data_disk_grows_its_pool_on_the_next_boot(tmp_path):
    settings = '[storage]\npools = [{name = "tank", disks = ["c5t0d0"]}]\n'
    g = pool_guest(tmp_path, settings, disks=("c5t0d0:10G",))
    assert g.run().returncode == 0
    before = g.show()["pools"]["tank"]["size_bytes"]
    assert before == hardware.data_disk_asize(g.state()["disks"]["c5t0d0"])
    onlines = g.calls()["zpool online"]   # the root pool's, growing to its disk
    with sim_state.locked(g.root) as st:
        st["disks"]["c5t0d0"]["size_bytes"] = 16 * hardware.GIB
    assert g.run().returncode == 0
    after = g.show()["pools"]["tank"]["size_bytes"]
    disk = g.state()["disks"]["c5t0d0"]
    assert after == hardware.data_disk_asize(disk) > before + 5 * hardware.GIB
    assert disk["label"]["last_u_lba"] == hardware.last_usable_lba(
        16 * hardware.GIB // 512, 512)
    assert g.calls()["zpool online"] == onlines + 1
    # A third boot: nothing left to grow.
    assert g.run().returncode == 0
    assert g.calls()["zpool online"] == onlines + 1
    assert g.show()["pools"]["tank"]["size_bytes"] == after


@pytest.mark.parametrize("after_effect", [True, False], ids=["after-create", "before-create"])
def test_killed_around_zpool_create_resumes_without_a_second_create(tmp_path, after_effect):
    settings = '[storage]\npools = [{name = "tank", disks = ["c5t0d0"], autoexpand = true}]\n'
    g = pool_guest(tmp_path, settings, disks=("c5t0d0:10G",))
    codes = resume_until_done(g, [kill_while_blocked(g, "zpool create", after_effect)])
    assert codes[0] == -9 and codes[-1] == 0
    assert g.show()["pools"]["tank"]["disks"] == ["c5t0d0"]
    assert g.show()["pools"]["tank"]["autoexpand"] == "on"
    # Killed after its effect, the pool is found by name; before it, made by the rerun: one
    # `zpool create` that took effect either way (a hung one is killed before it counts).
    assert g.calls()["zpool create"] == 1
    assert g.state()["pools"]["tank"]["guid"] == \
        g.state()["disks"]["c5t0d0"]["zfs_label"]["pool_guid"]


def test_pool_settings_are_checked_entry_by_entry():
    specs, warnings = poolspec.parse_specs([
        {"name": "tank", "disks": ["c2t0d0", "c3t0d0"], "vdev": "mirror"},
        {"name": "1st", "disks": ["c4t0d0"]},
        {"name": "mirrored", "disks": ["c4t0d0"]},
        {"name": "a/b", "disks": ["c4t0d0"]},
        {"name": "ok", "disks": ["sda"]},
        {"name": "ok", "disks": ["c4t0d0"], "vdev": "raid5"},
        {"name": "ok", "disks": ["c4t0d0"], "mountpoint": "data"},
        {"name": "ok", "disks": ["c4t0d0"], "autoexpand": "yes"},
        {"name": "ok", "disks": ["c4t0d0"], "size": 3},
        {"name": "pair", "disks": ["c4t0d0"], "vdev": "mirror"},
        {"name": "big", "disks": ["size >= 1.5T", "all-blank"], "vdev": "raidz2"},
        {"name": "tank", "disks": ["c5t0d0"]},
        "tank",
    ], "settings storage.pools")
    assert [s.name for s in specs] == ["tank", "big"]
    assert specs[0].devices == ("c2t0d0", "c3t0d0")
    assert specs[1].rules == (poolspec.SizeRule(">=", int(1.5 * (1 << 40))),)
    assert specs[1].all_blank and specs[1].min_disks == 3
    expected = [
        "[1]: field name: '1st' does not begin with a letter",
        "[2]: field name: 'mirrored' begins with a reserved word",
        "[3]: field name: 'a/b' has the character '/'",
        "[4] (ok): field disks: 'sda' is not a disk name",
        "[5] (ok): field vdev: 'raid5' is not one of",
        "[6] (ok): field mountpoint: 'data' is not an absolute path",
        "[7] (ok): field autoexpand: 'yes' is not true or false",
        "[8]: unknown field 'size'",
        "[9] (pair): field disks: a mirror needs at least 2 disks, 1 named",
        "[11]: pool 'tank' is already wanted by an earlier entry",
        "[12]: 'tank' is not a table",
    ]
    assert len(warnings) == len(expected)
    for warning, part in zip(warnings, expected):
        assert f"settings storage.pools{part}" in warning, warning


@pytest.mark.parametrize("name,refusal", [
    ("tank", None), ("Tank-1.a:b", None), ("1tank", "name must begin with a letter"),
    ("mirror", "name is reserved"), ("logs", "name is reserved"),
    ("c1d0", "pool name is reserved"), ("ta/nk", "invalid character '/' in pool name"),
    ("ta$nk", "invalid character '$' in pool name"),
])
def test_the_agent_and_the_zpool_standin_agree_on_pool_names(name, refusal):
    from sim.standins.zpoolcreate import name_error

    assert name_error(name) == refusal
    assert (poolspec.pool_name_error(name) is None) == (refusal is None)


def test_sim_create_attaches_data_disks(tmp_path):
    root = str(tmp_path / "g")
    out = subprocess.run([sys.executable, "-m", "sim", "create", root, "--platform", "qemu",
                          "--disk", "c5t0d0:10G", "--disk", "c6t0d0:2G:pool=old"],
                         capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120)
    assert out.returncode == 0, out.stderr
    st = sim_state.load(root)
    assert st["disks"]["c5t0d0"]["size_bytes"] == 10 * hardware.GIB
    assert st["exported_pools"]["old"]["disks"] == ["c6t0d0"]
    bad = subprocess.run([sys.executable, "-m", "sim", "create", str(tmp_path / "h"),
                          "--platform", "qemu", "--disk", "c5t0d0:lots"],
                         capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120)
    assert bad.returncode == 2 and "not a size" in bad.stderr


CLOUD_CONFIG = """#cloud-config
disk_setup:
  c5t0d0: {table_type: gpt, layout: true, overwrite: false}
  /dev/sdb: {table_type: gpt, layout: true}
fs_setup:
  - {label: tank, filesystem: zfs, device: c5t0d0, partition: auto}
  - {label: data, filesystem: ext4, device: /dev/sdb}
  - {label: scratch, filesystem: zfs, device: /dev/dsk/c6t0d0, overwrite: true}
"""


def test_cloud_config_fs_setup_makes_a_zfs_pool_and_warns_once_per_other_entry(tmp_path):
    metadata = {"meta-data": {"instance-id": "iid-pools-1"}, "user-data": CLOUD_CONFIG}
    g = make_guest(tmp_path, "nocloud", metadata)
    with sim_state.locked(g.root) as st:
        for spec in ("c5t0d0:10G", "c6t0d0:10G"):
            sim_guest.attach_disk(g.root, st, spec)
    assert g.run().returncode == 0
    assert g.show()["pools"] == {"tank": {"disks": ["c5t0d0"], "vdev": "stripe",
                                          "size_bytes": hardware.data_disk_asize(
                                              g.state()["disks"]["c5t0d0"]),
                                          "autoexpand": "off", "mountpoint": "/tank"}}
    assert g.state()["disks"]["c6t0d0"]["label"] is None   # overwrite: not honoured
    warnings = warnings_of(g)
    assert sum("disk_setup.'/dev/sdb': not an illumos disk name" in w for w in warnings) == 1
    assert sum("fs_setup[1]: filesystem 'ext4' is not supported" in w for w in warnings) == 1
    assert sum("fs_setup[2]: overwrite is not supported" in w for w in warnings) == 1
    assert not any("c5t0d0" in w for w in warnings)


def test_pools_can_be_set_as_an_smf_property_holding_a_toml_array():
    from fsm.errors import ConfigError
    from fsm.smfprops import parse_smf_settings

    # svcprop escapes the value's spaces and quotes with backslashes.
    line = r'config/storage_pools astring [{name\ =\ \"tank\",\ disks\ =\ [\"c2t0d0\"]}]'
    got = parse_smf_settings(line + "\n", "svc:/system/illumos/metadata:default")
    assert got == {"storage": {"pools": [{"name": "tank", "disks": ["c2t0d0"]}]}}
    with pytest.raises(ConfigError, match="config/storage_pools.*TOML array"):
        parse_smf_settings(r"config/storage_pools astring tank\ c2t0d0" + "\n", "svc:/x")


def test_the_root_disk_is_never_chosen_and_says_why(tmp_path):
    from fsm.system import System
    from operations import diskprobe

    g = pool_guest(tmp_path, "", disks=("c5t0d0:10G", "c6t0d0:10G:pool=old"))
    probe = diskprobe.Probe(System(g.root)).load()
    assert probe.not_blank("c1t0d0") == "carries a ZFS label of pool rpool"
    assert probe.not_blank("c6t0d0") == "carries a ZFS label of pool old"
    assert probe.not_blank("c2t0d0").startswith("has 1048576 bytes, below")
    assert probe.not_blank("c9t9d9") == "is not attached (diskinfo does not list it)"
    assert probe.not_blank("c5t0d0") is None
    assert probe.importable["old"].disks == ("c6t0d0",) and probe.active == {"rpool"}


# ---- the stand-ins, as illumos words their refusals ----------------------------------------
def standin(g, path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([g.path(path), *args], capture_output=True, text=True, cwd=g.root,
                          timeout=30)


def test_zpool_create_refuses_disks_in_use_as_libdiskmgt_words_it(tmp_path):
    g = pool_guest(tmp_path, "", disks=("c5t0d0:10G", "c6t0d0:10G:pool=old", "c7t0d0:4G:label",
                                        "c8t0d0:4G:ufs", "c9t0d0:32M"))
    zpool = "/usr/sbin/zpool"
    active = standin(g, zpool, "create", "-f", "tank", "c1t0d0")
    assert active.returncode == 1 and active.stderr.splitlines() == [
        "invalid vdev specification", "the following errors must be manually repaired:",
        "/dev/dsk/c1t0d0s1 is part of active ZFS pool rpool. Please see zpool(1M)."]
    exported = standin(g, zpool, "create", "tank", "c6t0d0")
    assert exported.returncode == 1 and exported.stderr.splitlines()[1:] == [
        "use '-f' to override the following errors:",
        "/dev/dsk/c6t0d0s0 is part of exported or potentially active ZFS pool old. "
        "Please see zpool(1M)."]
    ufs = standin(g, zpool, "create", "tank", "c8t0d0")
    assert ufs.returncode == 1 and "/dev/dsk/c8t0d0s0 contains a ufs filesystem." in ufs.stderr
    small = standin(g, zpool, "create", "tank", "c9t0d0")
    assert small.stderr.strip() == ("cannot create 'tank': one or more devices is less than "
                                    "the minimum size (64M)")
    missing = standin(g, zpool, "create", "tank", "c4t4d4")
    assert missing.returncode == 1 and "cannot open 'c4t4d4': no such device in /dev/dsk" \
        in missing.stderr
    assert standin(g, zpool, "create", "tank").returncode == 2
    assert standin(g, zpool, "create", "-x", "tank", "c5t0d0").stderr.startswith(
        "invalid option 'x'")
    bad_name = standin(g, zpool, "create", "mirrored", "c5t0d0")
    assert bad_name.stderr.strip() == "cannot create 'mirrored': name is reserved"
    # A label nobody uses is no refusal to zpool: it relabels the disk. Hence the agent's
    # own checks.
    assert standin(g, zpool, "create", "-m", "/data", "tank", "c7t0d0").returncode == 0
    assert g.state()["disks"]["c7t0d0"]["zfs_label"]["pool"] == "tank"
    again = standin(g, zpool, "create", "tank", "c5t0d0")
    assert again.stderr.strip() == "cannot create 'tank': pool already exists"
    assert standin(g, zpool, "get", "-Hp", "-o", "value", "autoexpand", "tank").stdout == "off\n"
    assert standin(g, zpool, "set", "autoexpand=on", "tank").returncode == 0
    assert standin(g, zpool, "get", "-H", "-o", "value,source", "autoexpand",
                   "tank").stdout == "on\tlocal\n"
    assert standin(g, zpool, "set", "autoexpand=maybe", "tank").returncode == 1


def test_zpool_import_lists_then_imports_an_exported_pool(tmp_path):
    g = pool_guest(tmp_path, "", disks=("c6t0d0:10G:pool=old",))
    zpool = "/usr/sbin/zpool"
    listing = standin(g, zpool, "import")
    guid = g.state()["exported_pools"]["old"]["guid"]
    assert listing.returncode == 0 and listing.stdout.splitlines()[:4] == [
        "   pool: old", f"     id: {guid}", "  state: ONLINE",
        " action: The pool can be imported using its name or numeric identifier."]
    assert "\t  c6t0d0    ONLINE" in listing.stdout.splitlines()
    assert standin(g, zpool, "import", "new").stderr.strip() == \
        "cannot import 'new': no such pool available"
    assert standin(g, zpool, "import", guid).returncode == 0
    assert "old" in g.state()["pools"] and not g.state()["exported_pools"]
    none = standin(g, zpool, "import")
    assert none.returncode == 0 and none.stdout == "" and \
        none.stderr.strip() == "no pools available to import"
    label = standin(g, "/usr/sbin/zdb", "-l", "/dev/dsk/c6t0d0s0").stdout
    assert "    name: 'old'" in label and "    state: 0" in label


def test_metadata_cannot_ask_for_unbounded_pools():
    entries = [{"name": f"p{i}", "disks": ["c2t0d0"]} for i in range(1000)]
    specs, warnings = poolspec.parse_specs(entries, "nocloud: cloud-config fs_setup pools")
    assert len(specs) == poolspec.MAX_POOLS and len(warnings) == 1
    assert "1000 pools, more than 32" in warnings[0]
    _, too_many = poolspec.parse_specs([{"name": "t", "disks": ["c2t0d0"] * 100}], "s")
    assert "100 entries, more than 64" in too_many[0]
