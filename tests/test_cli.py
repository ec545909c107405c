"""The `metadata` command as an operator and SMF use it, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from guest import PROJECT_DIR, make_guest

from fsm import __version__
from fsm.statesdoc import render


def metadata(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "SMF_FMRI"}
    full.update(PYTHONPATH=PROJECT_DIR, **(env or {}))
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True,
                          text=True, env=full, timeout=60)


def test_version():
    r = metadata("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"metadata {__version__}"


@pytest.mark.parametrize("sub", ["run", "status", "states", "plan", "reset"])
def test_every_subcommand_has_help(sub):
    r = metadata(sub, "--help")
    assert r.returncode == 0 and f"usage: metadata {sub}" in r.stdout


def test_run_on_this_machine_is_refused_outside_smf():
    r = metadata("run")
    assert r.returncode == 96
    assert "refusing to change this machine outside SMF" in r.stderr


def test_docs_states_md_is_exactly_the_generated_markdown():
    with open(os.path.join(PROJECT_DIR, "docs", "states.md"), encoding="utf-8") as f:
        checked_in = f.read()
    assert checked_in == render("markdown"), (
        "docs/states.md drifted from the machine: run `make docs` and commit it")


def test_states_formats():
    r = metadata("states", "--format", "mermaid")
    assert r.stdout.startswith("stateDiagram-v2\n    [*] --> DETECT\n")
    data = json.loads(metadata("states", "--format", "json").stdout)
    assert data["states"] == ["DETECT", "FETCH", "NETWORK", "IDENTITY", "STORAGE",
                              "USERSCRIPT", "DONE"]
    assert all(s["frequency"] in ("per-boot", "per-instance", "once")
               for p in data["phases"] for s in p["steps"])


def test_bad_settings_file_is_a_config_error_naming_the_key(tmp_path):
    g = make_guest(tmp_path)
    g.write("/etc/metadata-agent.toml", "[timeouts]\ndhcp = \"soon\"\n")
    r = g.run()
    assert r.returncode == 96
    assert "timeouts.dhcp" in r.stdout and "must be a float" in r.stdout
    g.write("/etc/metadata-agent.toml", "[ec2]\nendpiont = \"http://x\"\n")
    r = g.run()
    assert r.returncode == 96 and "ec2.endpiont: unknown key" in r.stdout


def test_run_then_status_text_and_json(tmp_path):
    g = make_guest(tmp_path)
    r = g.run()
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(" [" in ln and ln[:4].isdigit() for ln in lines)
    assert any("[DETECT/provider]" in ln for ln in lines)
    text = g.metadata("status").stdout
    assert "status:   done" in text and "DETECT" in text and "USERSCRIPT" in text
    data = json.loads(g.metadata("status", "--json").stdout)
    assert data["done"] is True and data["phase"] == "DONE" and data["boot"] == 1
    assert data["instance_id"] == "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8"
    assert [p["phase"] for p in data["phases"]] == ["DETECT", "FETCH", "NETWORK", "IDENTITY",
                                                    "STORAGE", "USERSCRIPT"]
    # Stable: every key of schema 1 stays, with its meaning; new keys are only added.
    assert {"schema", "checkpoint", "phase", "boot", "instance_id", "provider", "done",
            "last_error", "phases", "steps", "problems"} <= set(data)


def test_status_before_any_run(tmp_path):
    g = make_guest(tmp_path)
    r = g.metadata("status")
    assert r.returncode == 0 and "status:   not run (no checkpoint" in r.stdout


def test_plan_changes_nothing(tmp_path):
    g = make_guest(tmp_path)
    before = g.show()
    r = g.metadata("plan")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NETWORK" in r.stdout and "IDENTITY" in r.stdout
    after = g.show()
    assert {k: v for k, v in after.items() if k != "calls"} == \
           {k: v for k, v in before.items() if k != "calls"}
    assert not os.path.exists(g.path("/var/metadata/state.msgpack"))


def test_reset_makes_the_next_run_a_first_boot(tmp_path):
    g = make_guest(tmp_path)
    g.run()
    g.run()
    assert g.checkpoint().boot == 2
    r = g.metadata("reset")
    assert "moved aside" in r.stdout
    g.run()
    assert g.checkpoint().boot == 1
