"""Repeated boots of one guest, and a new instance made from the same image (issue 5).

The same guest booted five times runs its per-boot steps five times (each boot's records,
and the stand-ins' counts of what they read) and its per-instance steps once (counts of
`zpool reguid`, `zfs create`, `swap -a`, `svcadm enable`, `hostname NAME`). A guest whose
instance id changes (the image booted as a new VM: a new SMBIOS UUID on qemu, a new
instance id in EC2's metadata) runs the per-instance steps again, reguid included, and
drops the keys the agent had installed for the old instance that the new metadata no
longer lists, keeping an operator's own lines (IDENTITY/ssh-keys).
"""

from __future__ import annotations

import base64

from crashkit import (
    CLOUD_CONFIG_CALLS,
    boot_until_done,
    comparable,
    crash_guest,
    done_steps,
    one_shot_counts,
    stray_temp_files,
)

from fsm.steps import Frequency
from sim import guest as sim_guest
from sim import hardware
from sim.standins.smbios import raw_uuid

BOOTS = 5
PER_BOOT_READS = ("prtvtoc", "zpool list", "dladm show-phys", "ipadm show-addr")


def _ed25519_line(seed: bytes, comment: str) -> str:
    """A well-formed ssh-ed25519 line (the blob is the type name and 32 bytes of key)."""
    def field(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data
    blob = field(b"ssh-ed25519") + field((seed * 32)[:32])
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def _records(g):
    cp = g.checkpoint()
    return cp, cp.instances[cp.instance_id], cp.boot_steps


def test_five_boots_run_per_boot_steps_five_times_and_per_instance_steps_once(tmp_path):
    g = crash_guest(tmp_path, "qemu")
    reads: list[dict[str, int]] = []
    after_first = None
    for n in range(1, BOOTS + 1):
        if n == 3:
            # The disk grown between boots: the per-boot expansion has work again.
            with sim_guest.state.locked(g.root) as st:
                st["disks"]["c1t0d0"]["size_bytes"] += 10 * hardware.GIB
        assert boot_until_done(g) == [0], f"boot {n}"
        cp, per_instance, per_boot = _records(g)
        assert cp.boot == n and cp.phase == "DONE"
        assert per_boot and all(r["boot"] == n and r["status"] == "done"
                                for r in per_boot.values()), per_boot
        assert per_instance and all(r["boot"] == 1 and r["status"] == "done"
                                    for r in per_instance.values()), per_instance
        calls = g.calls()
        reads.append({k: calls.get(k, 0) for k in PER_BOOT_READS})
        if n == 1:
            after_first = one_shot_counts(g)
            # (qemu's seed has no cloud-config: useradd and groupadd never run there)
            assert all(v == 1 for k, v in after_first.items()
                       if k not in CLOUD_CONFIG_CALLS), after_first
            first_state = comparable(g)
        else:
            assert one_shot_counts(g) == after_first, f"a one-shot command ran again in boot {n}"
            if n != 3:
                shown = comparable(g)
                assert {k: v for k, v in shown.items() if k != "pool"} == \
                    {k: v for k, v in first_state.items() if k != "pool"}
    # Every boot read the disks, pools, links and addresses again.
    for before, after in zip(reads, reads[1:]):
        assert all(after[k] > before[k] for k in PER_BOOT_READS), (before, after)
    # `zpool online -e` ran in boot 1 and again in boot 3, after the disk grew: only then.
    assert g.calls().get("zpool online") == 2
    assert stray_temp_files(g) == []


def test_a_new_smbios_uuid_is_a_new_instance_and_reguids_again(tmp_path):
    g = crash_guest(tmp_path, "qemu")
    assert boot_until_done(g) == [0]
    old_id = g.checkpoint().instance_id
    guid_after_first = g.state()["pools"]["rpool"]["guid"]
    with sim_guest.state.locked(g.root) as st:
        st["smbios"]["uuid"] = "0C0FFEE0-1111-4222-8333-444455556666"
    assert boot_until_done(g) == [0]
    cp = g.checkpoint()
    assert cp.instance_id == "0c0ffee0-1111-4222-8333-444455556666" != old_id
    assert set(cp.instances) == {old_id, cp.instance_id}, "the old instance's records stay"
    per_instance = {s for s, st in done_steps(g).items()
                    if cp.instances[cp.instance_id].get(s)}
    assert per_instance == set(cp.instances[old_id]), "every per-instance step ran again"
    assert all(r["boot"] == 2 for r in cp.instances[cp.instance_id].values())
    counts = one_shot_counts(g)
    assert counts["zpool reguid"] == 2
    assert g.state()["pools"]["rpool"]["guid"] not in (guid_after_first,
                                                        hardware.POOL_GUID)
    # The re-run steps found their work done: no second volume, activation, name or enable.
    assert counts["zfs create"] == counts["swap -a"] == counts["svcadm enable"] == 1
    assert counts["hostname NAME"] == 1


def test_the_smbios_uuid_instance_id_is_the_endian_corrected_form(tmp_path):
    """The id the hypervisor reports (`UUID (Endian-corrected):`), not the raw bytes."""
    g = crash_guest(tmp_path, "qemu")
    assert boot_until_done(g) == [0]
    reported = g.state()["smbios"]["uuid"].lower()
    assert g.checkpoint().instance_id == reported
    assert g.checkpoint().instance_id != raw_uuid(reported)


def test_an_os_update_that_adds_the_corrected_uuid_is_not_a_new_instance(tmp_path):
    """Booted first on a build printing only the raw `UUID:`, which became its instance id;
    updated to a build that also prints the endian-corrected form, then rolled back."""
    g = crash_guest(tmp_path, "qemu")
    g.set_state(illumos={"smbios_endian_corrected": False})
    assert boot_until_done(g) == [0]
    raw = g.checkpoint().instance_id
    assert raw == raw_uuid(g.state()["smbios"]["uuid"])
    after_first = one_shot_counts(g)
    for corrected in (True, False):
        g.set_state(illumos={"smbios_endian_corrected": corrected})
        assert boot_until_done(g) == [0]
        cp = g.checkpoint()
        assert cp.instance_id == raw and set(cp.instances) == {raw}, corrected
        assert one_shot_counts(g) == after_first, "a per-instance step ran again"
    assert g.calls()["zpool reguid"] == 1


def test_a_new_instance_id_in_the_metadata_drops_the_old_instance_keys(tmp_path):
    g = crash_guest(tmp_path, "ec2")
    assert boot_until_done(g) == [0]
    old_keys = g.read("/root/.ssh/authorized_keys")
    assert "admin@ec2" in old_keys and "deploy@ec2" in old_keys
    operator = _ed25519_line(b"o", "ops@workstation")
    g.write("/root/.ssh/authorized_keys", old_keys + operator + "\n", mode=0o600)

    md = sim_guest.load_metadata(g.root)
    md["meta-data/instance-id"] = "i-0ffffffffffffffff"
    md["dynamic/instance-identity/document"]["instanceId"] = "i-0ffffffffffffffff"
    md["meta-data/public-keys"] = {
        "admin": md["meta-data/public-keys"]["admin"],
        "newcomer": _ed25519_line(b"n", "newcomer@ec2"),
    }
    sim_guest.save_metadata(g.root, md)
    assert boot_until_done(g) == [0]

    cp = g.checkpoint()
    assert cp.instance_id == "i-0ffffffffffffffff"
    keys = g.read("/root/.ssh/authorized_keys")
    assert "admin@ec2" in keys and "newcomer@ec2" in keys
    assert "deploy@ec2" not in keys, "a key only the old instance listed survived"
    assert operator in keys, "the operator's own line was touched"
    managed = g.read("/var/metadata/authorized_keys.managed")
    assert "newcomer@ec2" in managed and "deploy@ec2" not in managed and operator not in managed
    assert one_shot_counts(g)["zpool reguid"] == 2
    assert {s.split("/")[0] for s, r in cp.instances[cp.instance_id].items()} >= \
        {"IDENTITY", "STORAGE", "USERSCRIPT"}
    assert all(r["frequency"] == Frequency.PER_INSTANCE.value
               for r in cp.instances[cp.instance_id].values())
