"""Security properties of a whole boot, each proved on the guest a real agent run leaves.

- /root/.ssh is 0700 and authorized_keys 0600, both owned by root; a symbolic link planted
  at either is neither followed nor written through.
- Nothing is written outside the root directory given (`--root`): the parent directory is
  snapshotted before and after.
- Secrets (DigitalOcean's auth_key, user scripts, user-data) never appear in the log (the
  agent's stdout and stderr) nor in the checkpoint (decoded, every string searched), for
  each source that carries them.
- Metadata never reaches a shell: no module of the agent can start one (checked on the
  syntax tree), and shell syntax planted in every metadata field creates nothing. The agent
  runs no metadata at all: the first-boot script is installed for the userscript service
  (smf/userscript.sh runs it, see test_userscript_method.py), never by the agent.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from guest import PROJECT_DIR, Guest, make_guest

from sim import guest as sim_guest
from sim.commands import COMMAND_PATHS
from sim.serve import serving

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID5PsmJg1T8Ua/HbVdurgy8w/wypA71iiWG1qH3Qmm7f admin@do"
AUTH_KEY_MARKER = "authkey-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SCRIPT_MARKER = "SECRET-USERSCRIPT-5b1c0e7d"
USERDATA_MARKER = "SECRET-USERDATA-a3f09d21"
VENDORDATA_MARKER = "SECRET-VENDORDATA-64e2aa07"


def snapshot(directory: Path, skip: Path) -> dict[str, tuple]:
    """Every path under `directory` but `skip`, with its type, mode, size and content hash."""
    seen: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[str(path.relative_to(directory))] = (stat.S_IFMT(st.st_mode), st.st_mode,
                                                      st.st_size, digest)
    return seen


def strings_in(obj: Any) -> list[str]:
    """Every string (keys included) in a decoded checkpoint."""
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in strings_in(v)]
    if isinstance(obj, bytes):
        return [obj.decode("latin-1")]
    return [obj] if isinstance(obj, str) else []


def checkpoint_strings(guest: Guest) -> list[str]:
    import msgpack

    found = []
    for name in ("state.msgpack", "state.msgpack.prev"):
        path = guest.path(f"/var/metadata/{name}")
        if os.path.exists(path):
            with open(path, "rb") as f:
                found += strings_in(msgpack.unpackb(f.read(), raw=False))
    assert found, "no checkpoint was written"
    return found


# ---- one DigitalOcean boot over its HTTP service, carrying secrets and shell syntax ------

@pytest.fixture(scope="module")
def do_boot(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("do")
    pwned = tmp_path / "pwned"
    payload = f"$(touch {pwned})"
    guest = make_guest(tmp_path, "digitalocean", {
        "_emulator": {"config_drive": False},
        "auth_key": AUTH_KEY_MARKER,
        "hostname": payload,
        "region": f"`touch {pwned}`",
        "tags": [payload, f"; touch {pwned}"],
        "public_keys": [f"{KEY} {payload}"],
        "vendor_data": f"#!/bin/sh\n# {VENDORDATA_MARKER}\ntouch {pwned}\n",
        "user_data": f"#!/bin/sh\n# {SCRIPT_MARKER}\ntouch {tmp_path}/script-ran\n",
    })
    # Neighbours of the root that a stray write could hit: a look-alike guest tree.
    for rel in ("etc/nodename", "root/.ssh/authorized_keys", "var/metadata/userscript"):
        (tmp_path / "neighbour" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "neighbour" / rel).write_text("untouched\n")
    before = snapshot(tmp_path, Path(guest.root))
    with serving(guest.root):
        result = guest.run()
    after = snapshot(tmp_path, Path(guest.root))
    return {"guest": guest, "result": result, "out": result.stdout + result.stderr,
            "before": before, "after": after, "tmp_path": tmp_path, "pwned": pwned}


def test_the_boot_configured_the_guest_and_refused_only_the_hostname(do_boot):
    out = do_boot["out"]
    assert do_boot["result"].returncode == 0, out[-3000:]
    assert "Traceback" not in out
    warnings = [w["message"] for w in do_boot["guest"].checkpoint().warnings]
    assert any(w.startswith("digitalocean: hostname: hostname '$(touch") for w in warnings)
    assert do_boot["guest"].read("/etc/nodename") == "unknown\n"
    assert "USERSCRIPT -> " in out


def test_ssh_directory_and_file_modes_and_owner(do_boot):
    guest = do_boot["guest"]
    d = os.lstat(guest.path("/root/.ssh"))
    f = os.lstat(guest.path("/root/.ssh/authorized_keys"))
    assert stat.S_ISDIR(d.st_mode) and stat.S_IMODE(d.st_mode) == 0o700
    assert stat.S_ISREG(f.st_mode) and stat.S_IMODE(f.st_mode) == 0o600
    assert (d.st_uid, d.st_gid) == (0, 0) and (f.st_uid, f.st_gid) == (0, 0)


def test_nothing_is_written_outside_the_root(do_boot):
    assert len(do_boot["before"]) >= 9
    assert do_boot["after"] == do_boot["before"]


def test_shell_syntax_in_metadata_creates_nothing(do_boot):
    guest = do_boot["guest"]
    assert not do_boot["pwned"].exists()
    assert not (do_boot["tmp_path"] / "script-ran").exists()    # installed, never run
    assert "hostname" not in guest.calls()                       # the name never got that far
    # The key's comment is data in authorized_keys, written as given, never interpreted.
    assert guest.show()["ssh"]["authorized_keys"] == [f"{KEY} $(touch {do_boot['pwned']})"]


def test_only_the_known_commands_ran_and_no_script(do_boot):
    guest = do_boot["guest"]
    ran = {key.split(" ")[0] for key in guest.calls()}
    assert ran <= set(COMMAND_PATHS), ran - set(COMMAND_PATHS)
    script = guest.path("/var/metadata/userscript")
    assert stat.S_IMODE(os.lstat(script).st_mode) == 0o700
    with open(script, "rb") as f:
        assert SCRIPT_MARKER.encode() in f.read()   # the one place the script may be


def test_secrets_are_in_neither_the_log_nor_the_checkpoint(do_boot):
    guest = do_boot["guest"]
    for marker in (AUTH_KEY_MARKER, SCRIPT_MARKER, VENDORDATA_MARKER, "script-ran"):
        assert marker not in do_boot["out"]
        assert not any(marker in s for s in checkpoint_strings(guest)), marker


# ---- other sources' secrets -------------------------------------------------------------

SECRET_METADATA = {
    "smartos": {"user-script": f"#!/bin/sh\n# {SCRIPT_MARKER}\n",
                "user-data": f"password: {USERDATA_MARKER}\n"},
    "nocloud": {"user-data": f"#cloud-config\npassword: {USERDATA_MARKER}\n"},
    "qemu": {"firstboot.sh": f"#!/bin/sh\n# {SCRIPT_MARKER}\n"},
}


@pytest.mark.parametrize("platform", sorted(SECRET_METADATA))
def test_user_scripts_and_user_data_stay_out_of_log_and_checkpoint(tmp_path, platform):
    guest = make_guest(tmp_path, platform, SECRET_METADATA[platform])
    with serving(guest.root):
        result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    for marker in (SCRIPT_MARKER, USERDATA_MARKER):
        assert marker not in out
        assert not any(marker in s for s in checkpoint_strings(guest)), marker


# ---- planted symbolic links, under the whole agent --------------------------------------

def test_a_symlink_at_root_ssh_is_not_followed(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), guest.path("/root/.ssh"))
    result = guest.run()
    out = result.stdout + result.stderr
    assert "[IDENTITY/ssh-keys] failed: /root/.ssh: is a symbolic link" in out, out[-3000:]
    assert "Traceback" not in out and result.returncode == 95
    assert os.listdir(outside) == []
    assert os.path.islink(guest.path("/root/.ssh"))
    assert guest.read("/etc/nodename") == "cpio-seed-guest\n"   # the rest was configured


def test_a_symlink_at_authorized_keys_is_not_written_through(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    target = tmp_path / "shadow"
    target.write_text("root:secret-hash:::\n")
    os.makedirs(guest.path("/root/.ssh"), mode=0o700, exist_ok=True)
    os.symlink(str(target), guest.path("/root/.ssh/authorized_keys"))
    result = guest.run()
    out = result.stdout + result.stderr
    assert "authorized_keys: is a symbolic link" in out, out[-3000:]
    assert "Traceback" not in out and result.returncode == 95
    assert target.read_text() == "root:secret-hash:::\n"
    assert os.path.islink(guest.path("/root/.ssh/authorized_keys"))


# ---- no shell anywhere in the agent ----------------------------------------------------

AGENT_PACKAGES = ("fsm", "providers", "operations")
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"),
               ("subprocess", "getstatusoutput"), ("pty", "spawn"), ("os", "execl"),
               ("os", "execlp"), ("os", "execv"), ("os", "execvp"), ("os", "execve"),
               ("os", "spawnl"), ("os", "spawnv"), ("os", "posix_spawn")}
SHELLS = ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "sh", "bash", "ksh")


def agent_modules() -> list[Path]:
    return sorted(p for pkg in AGENT_PACKAGES for p in Path(PROJECT_DIR, pkg).rglob("*.py"))


def shell_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                (func.value.id, func.attr) in SHELL_CALLS:
            found.append(f"{func.value.id}.{func.attr}() at line {node.lineno}")
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                          and kw.value.value is False):
                found.append(f"shell= at line {node.lineno}")
        if node.args and isinstance(node.args[0], (ast.List, ast.Tuple)) and node.args[0].elts:
            first = node.args[0].elts[0]
            if isinstance(first, ast.Constant) and first.value in SHELLS:
                found.append(f"a shell as argv[0] at line {node.lineno}")
    return found


# The system layer's own process start (fsm/spawn.py, issue 17): one posix_spawn of the
# argv list System._execute hands it, whose argv[0] must be an absolute guest path.
SPAWNER = "fsm/spawn.py"


def test_no_agent_module_can_start_a_shell():
    modules = agent_modules()
    assert len(modules) > 30
    offenders = {str(p.relative_to(PROJECT_DIR)): uses for p in modules
                 if (uses := shell_uses(ast.parse(p.read_text(), str(p))))}
    spawner = offenders.pop(SPAWNER, [])
    assert offenders == {}
    assert len(spawner) == 1 and spawner[0].startswith("os.posix_spawn() at line"), spawner
    # ... and only the system layer calls it.
    callers = [str(p.relative_to(PROJECT_DIR)) for p in modules
               if "spawn.run(" in p.read_text() and str(p.relative_to(PROJECT_DIR)) != SPAWNER]
    assert callers == ["fsm/system.py"]


def test_the_shell_check_would_catch_each_form():
    code = ("import os, subprocess\nos.system('x')\nos.popen('x')\n"
            "subprocess.run('x', shell=True)\nsubprocess.run(['/bin/sh', '-c', 'x'])\n")
    assert len(shell_uses(ast.parse(code))) == 4


def test_the_system_layer_runs_argv_lists_only(tmp_path):
    from fsm.system import System

    with pytest.raises(ValueError, match="absolute guest path"):
        System(str(tmp_path)).run(["sh", "-c", "touch x"])
    assert json.dumps(sim_guest.load_metadata(str(tmp_path))) == "{}"
