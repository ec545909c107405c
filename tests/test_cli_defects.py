"""The defects found trying the CLI as an operator and an image builder would (issue 13),
each reproduced against a real process and a simulated guest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from guest import PROJECT_DIR, make_guest

from fsm.statesdoc import mermaid
from operations.validate import parse_authorized_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN a@seed"
ENV = {**os.environ, "PYTHONPATH": PROJECT_DIR}


def cli(*args: str, cwd=None, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, cwd=cwd, timeout=300, **kwargs)


# ---- plan ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["plan", "status"])
def test_a_closed_pipe_is_no_traceback(tmp_path, command):
    """`metadata plan | head -1`: the reader is gone before the report is written."""
    g = make_guest(tmp_path, "qemu")
    proc = subprocess.Popen([sys.executable, "-m", "fsm", command, "--root", g.root],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()   # as head does once it has its line
    _, err = proc.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 1


def test_plan_logs_only_warnings_unless_verbose(tmp_path):
    g = make_guest(tmp_path, "qemu")
    quiet = cli("plan", "--root", g.root)
    assert quiet.returncode == 0 and "NETWORK" in quiet.stdout
    assert " INFO " not in quiet.stderr and " INFO " not in quiet.stdout
    loud = cli("plan", "-v", "--root", g.root)
    assert " INFO " in loud.stderr and " INFO " not in loud.stdout


def test_plan_seed_lists_each_action_once(tmp_path):
    (tmp_path / "keys").write_text(KEY + "\n")
    assert cli("seed", "cpio", "-o", "seed.img", "--hostname", "web-1", "--authorized-keys",
               "keys", cwd=tmp_path).returncode == 0
    r = cli("plan", "--seed", "seed.img", cwd=tmp_path, env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("run: /usr/sbin/ipadm create-if") == 1
    assert r.stdout.count("write: /var/metadata/authorized_keys.managed") == 1


def test_plan_on_a_booted_guest_applies_the_done_records(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run().returncode == 0
    r = cli("plan", "--root", g.root)
    assert r.returncode == 0
    assert "would get a new GUID" not in r.stdout
    assert "reguid: nothing to do: already done for instance" in r.stdout
    assert "zpool reguid" not in r.stdout and "ssh-keygen" not in r.stdout


def test_plan_of_a_fresh_guest_still_plans_reguid_and_host_keys(tmp_path):
    g = make_guest(tmp_path, "qemu")
    r = cli("plan", "--root", g.root)
    assert "run: /usr/sbin/zpool reguid rpool" in r.stdout
    assert "run: /usr/bin/ssh-keygen -A" in r.stdout


# ---- a missing root -----------------------------------------------------------------------
@pytest.mark.parametrize(("command", "code"), [("run", 96), ("status", 1), ("reset", 96),
                                                ("plan", 96)])
def test_a_missing_root_is_an_error(tmp_path, command, code):
    r = cli(command, "--root", str(tmp_path / "nonexistent"))
    assert r.returncode == code
    assert "no such directory" in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "nonexistent").exists()


# ---- key material -------------------------------------------------------------------------
@pytest.fixture
def private_key(tmp_path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
                   check=True)
    return (tmp_path / "id").read_text()


def _secret_parts(private: str) -> list[str]:
    body = [ln for ln in private.splitlines() if ln and not ln.startswith("-----")]
    return [ln[i:i + 8] for ln in body for i in range(0, len(ln) - 8, 8)]


def test_a_private_key_given_as_keys_is_named_and_never_echoed(private_key):
    valid, problems = parse_authorized_keys(private_key + KEY + "\n", "test:keys")
    assert valid == [KEY]
    assert len(problems) == 1 and "this looks like a private key" in problems[0]
    assert ".pub" in problems[0]
    assert not any(part in problems[0] for part in _secret_parts(private_key))


def test_a_line_of_key_material_is_not_quoted_as_a_key_type(private_key):
    line = private_key.splitlines()[2]
    _, problems = parse_authorized_keys(line, "test:keys")
    assert problems and "not shown" in problems[0]
    assert line[:8] not in problems[0]
    _, named = parse_authorized_keys("ssh-foo AAAA x", "test:keys")
    assert "unknown key type 'ssh-foo'" in named[0]


def test_seed_cpio_refuses_a_private_key_without_echoing_it(tmp_path, private_key):
    (tmp_path / "keys").write_text(private_key)
    r = cli("seed", "cpio", "-o", "seed.img", "--authorized-keys", "keys", cwd=tmp_path)
    assert r.returncode == 96 and not (tmp_path / "seed.img").exists()
    assert "private key" in r.stderr
    assert not any(part in r.stderr + r.stdout for part in _secret_parts(private_key))


# ---- argument parsing ---------------------------------------------------------------------
def test_a_mistyped_option_prints_the_subcommands_usage(tmp_path):
    r = cli("status", "--jsn", "--root", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith("usage: metadata status ")
    assert "metadata status: error: unrecognized arguments: --jsn" in r.stderr
    r = cli("seed", "cpio", "-o", "x.img", "--hostnam", "web-1", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("usage: metadata seed cpio ")
    assert not (tmp_path / "x.img").exists()


def test_long_options_are_never_abbreviated(tmp_path):
    r = cli("seed", "cpio", "-o", "x.img", "--host", "web-1", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "x.img").exists()
    r = cli("status", "--js", "--root", str(tmp_path))
    assert r.returncode == 2 and "--js" in r.stderr


# ---- seeds --------------------------------------------------------------------------------
def test_seed_nocloud_refuses_user_data_nobody_can_use_and_writes_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("remember to rotate the logs\n")
    r = cli("seed", "nocloud", "-o", "seed.iso", "--user-data", "notes.txt", cwd=tmp_path)
    assert r.returncode == 96
    assert "neither a script" in r.stderr and "nothing written to seed.iso" in r.stderr
    assert not (tmp_path / "seed.iso").exists()
    (tmp_path / "cc.yaml").write_text("#cloud-config\nsnap: {commands: [x]}\n")
    r = cli("seed", "nocloud", "-o", "seed.iso", "--user-data", "cc.yaml", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "seed.iso").exists()
    assert "warning" in r.stderr and "snap" in r.stderr  # written, naming what is skipped


# ---- the state diagram --------------------------------------------------------------------
def test_the_diagram_ends_a_held_or_stopped_start():
    text = mermaid()
    assert "USERSCRIPT --> NETWORK" not in text   # a hold does not go back to run NETWORK
    for phase in ("NETWORK", "IDENTITY", "STORAGE", "USERSCRIPT"):
        assert f"USERSCRIPT --> held_{phase}: hold" in text
        assert f"held_{phase} --> [*]: exit 95/96" in text
    for phase in ("DETECT", "FETCH"):
        assert f"{phase} --> stopped_{phase}: stop" in text
        assert f"stopped_{phase} --> [*]: exit 95/96" in text
    assert "DONE --> [*]: exit 0" in text


# ---- the demo, CI and packaging -----------------------------------------------------------
def test_demo_hint_names_real_paths_and_each_run_replaces_the_last(tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    (workdir / "left-by-an-earlier-demo").write_text("x")
    r = subprocess.run([sys.executable, "-m", "sim.demo"], capture_output=True, text=True,
                       cwd=PROJECT_DIR, env={**ENV, "METADATA_DEMO_DIR": str(workdir)},
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (workdir / "left-by-an-earlier-demo").exists()
    hint = [ln.split()[-1] for ln in r.stdout.splitlines() if "metadata status --root" in ln]
    assert hint == [str(workdir / "smartos")] and os.path.isdir(hint[0])
    assert "DIR/" not in r.stdout


def test_ci_refuses_to_run_without_the_smf_dtd(tmp_path):
    r = subprocess.run(["bash", os.path.join(PROJECT_DIR, ".ci", "run")], capture_output=True,
                       text=True, env={**os.environ, "SMF_DTD": str(tmp_path / "missing.dtd")},
                       timeout=60)
    assert r.returncode == 1
    assert "SMF DTD is missing" in r.stderr and "service_bundle.dtd.1" in r.stderr


def test_pyproject_licence_is_an_spdx_string():
    """The table form made setuptools print a deprecation block on every install."""
    with open(os.path.join(PROJECT_DIR, "pyproject.toml"), "rb") as f:
        doc = tomllib.load(f)
    assert doc["project"]["license"] == "MPL-2.0"
    assert not any(c.startswith("License ::") for c in doc["project"].get("classifiers", []))
    assert any(r.replace(" ", "").startswith("setuptools>=77")
               for r in doc["build-system"]["requires"])
