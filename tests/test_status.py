"""`metadata status` as an operator and an image pipeline use it: exit codes, every failure
and warning with what to do next, the provider DETECT chose, steps in the order they ran
with their changes, recent starts, `--wait`, against simulated guests booted for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from guest import PROJECT_DIR, make_guest

from fsm import history
from fsm.checkpoint import Checkpoint
from fsm.lock import agent_lock
from fsm.system import System
from sim import state as sim_state


def status(g, *args):
    proc = g.metadata("status", *args)
    data = json.loads(proc.stdout) if "--json" in args else None
    return proc, data


def test_done_is_exit_0_with_steps_in_run_order_changes_and_history(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run().returncode == 0
    proc, data = status(g, "--json")
    assert proc.returncode == 0
    assert data["status"] == "done" and data["exit_code"] == 0 and data["running"] is False
    steps = [s["step"] for s in data["steps"]]
    assert steps.index("NETWORK/interfaces") < steps.index("IDENTITY/hostname") < \
        steps.index("STORAGE/reguid") < steps.index("USERSCRIPT/install")
    hostname = next(s for s in data["steps"] if s["step"] == "IDENTITY/hostname")
    assert "/etc/nodename: cpio-seed-guest" in hostname["changed"]
    assert hostname["changes"] == len(hostname["changed"])
    assert len(data["history"]) == 1
    h = data["history"][0]
    assert (h["result"], h["exit_code"], h["boot"], h["provider"]) == ("done", 0, 1, "cpio")
    assert [p["phase"] for p in h["phases"]] == ["DETECT", "FETCH", "NETWORK", "IDENTITY",
                                                 "STORAGE", "USERSCRIPT"]
    assert all(p["duration_s"] >= 0 for p in h["phases"])
    text = g.metadata("status").stdout
    assert "status:   done\n" in text and "    changed: /etc/nodename: cpio-seed-guest" in text
    assert "recent starts" in text


def test_a_held_boot_is_exit_1_and_says_svcadm_clear(tmp_path):
    g = make_guest(tmp_path, "qemu")
    with sim_state.locked(g.root) as st:
        st["faults"] = {"fail": {"zpool reguid": "cannot reguid 'rpool': I/O error"}}
    assert g.run().returncode == 95
    proc, data = status(g, "--json")
    assert proc.returncode == 1 and data["status"] == "error"
    assert [(f["phase"], f["step"], f["exit_code"]) for f in data["failures"]] == \
        [("STORAGE", "reguid", 95)]
    assert any("svcadm clear metadata" in n and "resumes from STORAGE" in n
               for n in data["next"]), data["next"]
    text = g.metadata("status").stdout
    assert "failed:   STORAGE/reguid: " in text and "next:     STORAGE/reguid: " in text
    assert data["history"][0]["result"] == "held"
    assert data["history"][0]["failed_steps"] == ["STORAGE/reguid"]


def test_bad_metadata_says_which_field_to_fix(tmp_path):
    # (A bad host name no longer fails a step: it is a skipped item, a warning. A
    # network-config that is no document at all still stops the boot at FETCH.)
    g = make_guest(tmp_path, "nocloud", {"network-config": "version: 2\nethernets: " +
                                          "[" * 5000 + "\n"})
    assert g.run().returncode == 96
    proc, data = status(g, "--json")
    assert proc.returncode == 1
    failure = next(f for f in data["failures"] if f["step"] == "metadata")
    assert failure["exit_code"] == 96
    assert "network-config" in failure["message"]
    assert any(n.startswith("FETCH/metadata: fix the metadata field") for n in data["next"])


def test_a_bad_hostname_is_a_warning_status_names(tmp_path):
    g = make_guest(tmp_path, "qemu", {"nodename": "bad name#"})
    assert g.run().returncode == 0
    proc, data = status(g, "--json")
    assert data["failures"] == []
    assert any("cpio: nodename: hostname 'bad name#' skipped" in w["message"]
               for w in data["warnings"]), data["warnings"]


def test_a_settings_error_before_any_checkpoint_is_shown_not_never_run(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.write("/etc/metadata-agent.toml", "[timeouts]\ndhcp = \"soon\"\n")
    assert g.run().returncode == 96
    assert not os.path.exists(g.path("/var/metadata/state.msgpack"))
    proc, data = status(g, "--json")
    assert proc.returncode == 1 and data["status"] == "error"
    assert "timeouts.dhcp" in data["settings_error"]["message"]
    text = g.metadata("status").stdout
    assert "never run" not in text and "not run" not in text
    assert "error:    settings: " in text and "next:     settings: fix the setting" in text
    # Fixed: the next start's outcome replaces it.
    os.remove(g.path("/etc/metadata-agent.toml"))
    assert g.run().returncode == 0
    assert status(g, "--json")[1]["settings_error"] is None


def test_warnings_are_exit_2_and_listed(tmp_path):
    from sim.emulators.cpio import DEFAULT_KEYS

    g = make_guest(tmp_path, "qemu", {"authorized_keys": ["not a key", *DEFAULT_KEYS]})
    assert g.run().returncode == 0
    proc, data = status(g, "--json")
    assert proc.returncode == 2 and data["status"] == "done with warnings"
    assert [w["step"] for w in data["warnings"]] == ["IDENTITY/ssh-keys"]
    assert "line 1" in data["warnings"][0]["message"]
    text = g.metadata("status").stdout
    assert "warning:  " in text


def test_the_provider_detect_chose_is_shown_when_fetch_fails(tmp_path):
    g = make_guest(tmp_path, "ec2")
    g.write("/etc/metadata-agent.toml", "[timeouts]\nfetch = 0.5\nhttp = 0.2\n")
    code = g.run().returncode           # no emulator serving: FETCH cannot read anything
    assert code == 95
    proc, data = status(g, "--json")
    assert proc.returncode == 1
    assert data["detected_provider"] == "ec2"
    assert data["failures"][0]["phase"] in ("FETCH", "NETWORK")
    assert "provider: ec2" in g.metadata("status").stdout


def test_a_killed_start_shows_as_interrupted(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run(env={"METADATA_AGENT_CRASH_AT": "before:STORAGE/swap"}).returncode == -9
    proc, data = status(g, "--json")
    assert proc.returncode == 1
    assert data["history"][0]["result"] == "interrupted"
    assert any("resumes there" in n for n in data["next"])


def test_wait_blocks_until_the_boot_finishes(tmp_path):
    g = make_guest(tmp_path, "qemu")
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR}
    waiter = subprocess.Popen([sys.executable, "-m", "fsm", "status", "--root", g.root,
                               "--wait", "--timeout", "300", "--json"],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert g.run().returncode == 0
        out, _ = waiter.communicate(timeout=300)
    finally:
        waiter.kill()
    assert waiter.returncode == 0
    assert json.loads(out)["status"] == "done"


def test_wait_gives_up_after_its_timeout_while_the_agent_runs(tmp_path):
    g = make_guest(tmp_path, "qemu")
    with agent_lock(System(g.root)):
        started = time.monotonic()
        proc = g.metadata("status", "--wait", "--timeout", "0.5")
        took = time.monotonic() - started
    assert proc.returncode == 1
    assert "not finished within --timeout 0.5 s" in proc.stderr
    assert "status:   running" in proc.stdout
    assert took < 60


def test_history_is_bounded(tmp_path):
    system = System(str(tmp_path))
    cp = Checkpoint(phase="DONE", boot=1, instance_id="i-1")
    for _ in range(history.MAX_ENTRIES + 15):
        history.finish(system, history.begin(system), cp, "ec2", 0)
    history.settings_error(system, "x" * 10_000, 96)
    entries = history.load(system)
    assert len(entries) == history.MAX_ENTRIES
    assert len(entries[-1]["error"]["message"]) < history.MAX_TEXT + 20
    assert os.path.getsize(tmp_path / "var/metadata/history.json") < 64 << 10


def test_status_of_a_missing_root_is_an_error(tmp_path):
    g = make_guest(tmp_path, "qemu")
    proc = subprocess.run([sys.executable, "-m", "fsm", "status", "--root",
                           str(tmp_path / "nonexistent")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PROJECT_DIR})
    assert proc.returncode == 1 and "no such directory" in proc.stderr
    assert g.metadata("status").returncode == 0   # not run yet: fine


def test_advice_tells_a_setting_from_a_metadata_field():
    from fsm.status import advice

    setting = advice({"phase": "FETCH", "step": "metadata", "exit_code": 96, "kind": None,
                      "message": "/etc/metadata-agent.toml: ec2.endpoint: must be a str"}, None)
    assert setting.startswith("fix the setting named in the message")
    smf = advice({"step": "settings", "exit_code": 96,
                  "message": "svc:/system/illumos/metadata:default: config/x: unknown"}, None)
    assert smf.startswith("fix the setting")
    seed = advice({"phase": "FETCH", "step": "metadata", "exit_code": 96, "kind": None,
                   "message": "cpio:config.toml: network.skip: must be a bool"}, None)
    assert seed.startswith("fix the metadata field")
    held = advice({"phase": "STORAGE", "step": "swap", "exit_code": 95,
                   "kind": "CommandError", "message": "zfs create: exit 1"}, "STORAGE")
    assert held.endswith("`svcadm clear metadata` resumes from STORAGE")
