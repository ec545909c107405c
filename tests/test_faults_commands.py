"""Commands that misbehave under the whole agent: exit non-zero, hang, or print garbage.

The stand-in dispatcher (sim/standins/__main__.py) injects the faults from the guest state:
`fail` (exit 1 with a message on stderr), `hang` (block until killed, before any effect) and
`garbage` (print the given text, exit 0). The agent must name the command and go on with
every step that does not need it; a hang is bounded by `[timeouts] command`; a parser meeting
output it does not expect raises fsm.errors.ParseError naming the command and the line,
never a traceback. Each fault ends with the machine holding at the failed phase, and the next
start (fault gone) resumes there and completes the boot.

To keep the suite fast, one run injects garbage into several commands, each read by a
different step, so that every parser is reached in some run. `zpool status` is not among
them: operations/rootdisk.py runs it only so that libzfs refreshes a stale device name and
never reads its output.
"""

from __future__ import annotations

import time

import pytest
from guest import Guest, make_guest

from sim.guest import METADATA_FMRI
from sim.serve import serving

# Looks like output, is not: control characters, separators in odd places, a colon-laden
# line and an escaped colon at the end of a line.
GARBAGE = "\x1b[2Jwarning: something odd\n::::\\:\n%%% 12 x\t-\t?\nrpool\tONLINE\tbogus\n"


def run_with_faults(guest: Guest, env: dict[str, str] | None = None, **faults) -> tuple[int, str, float]:
    guest.set_state(faults=faults)
    with serving(guest.root):
        started = time.monotonic()
        result = guest.run(env=env)
        took_s = time.monotonic() - started
    return result.returncode, result.stdout + result.stderr, took_s


def clear_faults_and_resume(guest: Guest, phase: str) -> str:
    code, out, _ = run_with_faults(guest)
    assert code == 0, out[-3000:]
    assert f"resuming boot 1, stopped in {phase}" in out
    assert "USERSCRIPT -> DONE" in out or "-> DONE" in out
    return out


def error_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if " ERROR " in ln]


# ---- garbage: every parsed command, through the real agent ------------------------------

# (platform, garbage commands, SMF_FMRI set?, what each must produce in the log)
GARBAGE_RUNS = {
    "links-vtoc-swap": ("qemu", ["dladm show-phys", "prtvtoc", "swap"], {
        "dladm show-phys": "dladm show-phys -m -p -o link,address: unexpected output",
        "prtvtoc": "prtvtoc /dev/rdsk/c1t0d0: unexpected output",
        "swap": "swap -l: unexpected output",
    }),
    "addrs-pool-memory": ("qemu", ["ipadm show-addr", "zpool list", "prtconf"], {
        "ipadm show-addr": "ipadm show-addr -p -o addrobj,type,state,addr: unexpected output",
        "zpool list": "zpool list -Hpv -o name,size,expandsize rpool: unexpected output",
        "prtconf": "prtconf -m: unexpected output",
    }),
    "lease-volume": ("qemu", ["dhcpinfo", "zfs list"], {
        # The lease's DNS servers are garbage: blamed on the lease, not on the seed.
        "dhcpinfo": "dhcp lease on vioif0: DNSserv: '\\x1b[2Jwarning: something odd' is not "
                    "an IP address",
        "zfs list": "zfs list rpool/swap: unexpected output",
    }),
}


@pytest.mark.parametrize("name", sorted(GARBAGE_RUNS))
def test_garbage_output_is_a_named_error_never_a_traceback(tmp_path, name):
    platform, commands, wanted = GARBAGE_RUNS[name]
    guest = make_guest(tmp_path, platform)
    code, out, _ = run_with_faults(guest, garbage={c: GARBAGE for c in commands})
    assert "Traceback" not in out and "internal error" not in out, out[-4000:]
    assert code == 95, out[-4000:]
    errors = error_lines(out)
    for command, needle in wanted.items():
        assert any(needle in ln for ln in errors), f"{command}: {needle!r} not in {errors}"
    # The garbage never becomes configuration: no address or key taken from it.
    assert "rpool\tONLINE\tbogus" not in guest.read("/etc/vfstab")
    # Every step that does not read the garbage still ran: the keys are installed.
    assert guest.show()["ssh"]["authorized_keys"]


def test_garbage_from_svcprop_in_the_smf_settings_is_a_named_error(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    code, out, _ = run_with_faults(guest, env={"SMF_FMRI": METADATA_FMRI},
                                   garbage={"svcprop": GARBAGE})
    assert "Traceback" not in out, out[-3000:]
    assert "svcprop: unexpected output" in out
    assert code == 95


def test_garbage_from_smbios_and_fstyp_is_no_source_or_a_named_error(tmp_path):
    """smbios(8) output is searched for known fields: garbage is simply no SMBIOS table. The
    NoCloud volume is found with fstyp(8): its garbage is a ParseError naming the device."""
    guest = make_guest(tmp_path, "nocloud")
    code, out, _ = run_with_faults(guest, garbage={"smbios": GARBAGE, "fstyp": GARBAGE})
    assert "Traceback" not in out, out[-3000:]
    assert any("fstyp -a /dev/" in ln and "unexpected output" in ln for ln in error_lines(out)), \
        out[-3000:]
    assert code == 95


# ---- a command that fails or hangs ------------------------------------------------------

def test_a_failing_command_names_itself_and_the_phase_is_resumed(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    code, out, _ = run_with_faults(
        guest, fail={"zpool list": "internal error: out of memory"})
    assert code == 95 and "Traceback" not in out, out[-3000:]
    assert any("/usr/sbin/zpool list" in ln and "exit code 1: internal error: out of memory" in ln
               for ln in error_lines(out)), out[-3000:]
    assert "Holding at STORAGE (exit 95)" in out
    assert guest.show()["hostname"]["nodename"] == "cpio-seed-guest"   # IDENTITY still ran
    assert guest.checkpoint().resume_from == "STORAGE"
    clear_faults_and_resume(guest, "STORAGE")
    assert guest.state()["pools"]["rpool"]["size_bytes"] > 8 << 30    # expanded this time


def test_a_hanging_command_is_bounded_by_the_command_timeout(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.write("/etc/metadata-agent.toml", "[timeouts]\ncommand = 1\n")
    code, out, took_s = run_with_faults(guest, hang=["swap"])
    assert code == 95 and "Traceback" not in out, out[-3000:]
    assert any("/usr/sbin/swap -l: timed out after 1 s" in ln for ln in error_lines(out)), \
        out[-3000:]
    assert took_s < 60, f"took {took_s:.1f} s"  # bounded, with slack for a loaded CI
    assert "Holding at STORAGE" in out
    clear_faults_and_resume(guest, "STORAGE")
    assert guest.show()["swap"]
