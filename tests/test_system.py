"""The one system layer: paths stay under the root, writes are atomic and never follow a
planted symlink, commands are bounded and their failures name the command."""

from __future__ import annotations

import os
import stat

import pytest

from fsm.errors import CommandError
from fsm.system import System, UnsafePathError


@pytest.fixture
def system(tmp_path):
    (tmp_path / "root").mkdir()
    return System(str(tmp_path / "root"))


def test_paths_resolve_under_the_root_and_cannot_climb_out(system):
    assert system.path("/etc/nodename") == os.path.join(system.root, "etc", "nodename")
    with pytest.raises(UnsafePathError):
        system.path("/etc/../../outside")
    with pytest.raises(UnsafePathError):
        system.path("relative/path")


def test_write_file_is_atomic_with_mode_and_creates_parents(system):
    system.write_file("/var/metadata/x", "hello\n", mode=0o600)
    path = system.path("/var/metadata/x")
    assert open(path).read() == "hello\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(os.path.dirname(path)) == ["x"]  # no temp file left behind


def test_write_never_follows_a_symlinked_directory(system, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(system.path("/root"))
    os.symlink(str(outside), system.path("/root/.ssh"))
    with pytest.raises(UnsafePathError):
        system.write_file("/root/.ssh/authorized_keys", "key\n")
    with pytest.raises(UnsafePathError):
        system.ensure_dir("/root/.ssh", 0o700)
    assert list(outside.iterdir()) == []


def test_write_replaces_a_planted_symlink_instead_of_writing_through_it(system, tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    os.makedirs(system.path("/etc"))
    os.symlink(str(target), system.path("/etc/nodename"))
    system.write_file("/etc/nodename", "guest\n")
    assert target.read_text() == "precious\n"
    assert not os.path.islink(system.path("/etc/nodename"))
    assert open(system.path("/etc/nodename")).read() == "guest\n"


def test_keep_previous_links_the_old_generation(system):
    system.write_file("/var/f", "one")
    system.write_file("/var/f", "two", keep_previous=".prev")
    assert open(system.path("/var/f.prev")).read() == "one"
    assert open(system.path("/var/f")).read() == "two"


def test_dry_run_records_instead_of_changing(system):
    dry = System(system.root, dry_run=True)
    dry.write_file("/etc/nodename", "x\n")
    dry.apply(["/usr/sbin/ipadm", "create-if", "net0"])
    assert not os.path.exists(system.path("/etc/nodename"))
    assert dry.planned == ["write: /etc/nodename (2 bytes, mode 0644)",
                           "run: /usr/sbin/ipadm create-if net0"]


def _script(system: System, guest_path: str, body: str) -> None:
    system.write_file(guest_path, "#!/bin/sh\n" + body, mode=0o755)


def test_commands_run_under_the_root_with_a_clean_environment(system, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "leak")
    _script(system, "/usr/bin/envdump", 'echo "$SECRET_TOKEN|$LANG|$PATH"\n')
    out = system.run(["/usr/bin/envdump"]).stdout
    assert out.strip() == "|C|/usr/sbin:/usr/bin:/sbin:/bin"


def test_a_failing_command_names_itself_and_its_stderr(system):
    _script(system, "/usr/sbin/ipadm", 'echo "ipadm: Could not create address: exists" >&2; exit 1\n')
    with pytest.raises(CommandError) as e:
        system.apply(["/usr/sbin/ipadm", "create-addr", "x"])
    assert "ipadm create-addr x" in str(e.value) and "Could not create address" in str(e.value)
    assert e.value.returncode == 1


def test_a_hanging_command_is_bounded(system):
    _script(system, "/usr/sbin/hang", "exec sleep 30\n")
    with pytest.raises(CommandError) as e:
        system.run(["/usr/sbin/hang"], timeout_s=0.3)
    assert "timed out after 0.3 s" in str(e.value)


def test_a_missing_command_is_a_command_error(system):
    with pytest.raises(CommandError) as e:
        system.run(["/usr/sbin/nothere"])
    assert "could not start" in str(e.value)
