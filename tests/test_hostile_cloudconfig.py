"""Hostile #cloud-config, through the real agent on a simulated guest: every bad item is a
warning naming it, nothing is written outside the rules, and the rest is applied."""

from __future__ import annotations

import base64
import gzip
import os

import pytest
from guest import make_guest
from test_cloudconfig_parse import KEY


def boot_with(tmp_path, user_data: str, prepare=None, name: str = "guest"):
    g = make_guest(tmp_path, "nocloud", {"meta-data": {"instance-id": "iid-hostile"},
                                         "user-data": user_data}, name=name)
    if prepare:
        prepare(g)
    proc = g.run()
    warnings = [w["message"] for w in g.checkpoint().warnings]
    return g, proc, warnings


def test_symlinks_in_write_files_targets_write_nothing_through_them(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()

    def plant(g):
        os.symlink(str(outside), g.path("/opt"))                      # a directory link
        os.symlink(str(outside / "passwd"), g.path("/etc/motd"))      # a file link
    g, proc, warnings = boot_with(tmp_path, """#cloud-config
write_files:
  - path: /opt/app/evil.conf
    content: through a directory link
  - path: /etc/motd
    content: through a file link
  - path: /etc/ok.conf
    content: fine
""", plant)
    assert proc.returncode == 0, proc.stdout
    assert list(outside.iterdir()) == []
    assert os.path.islink(g.path("/etc/motd"))
    assert g.read("/etc/ok.conf") == "fine"
    text = "\n".join(warnings)
    assert "/opt/app/evil.conf: not written: /opt: is a symbolic link" in text
    assert "/etc/motd: not written: /etc/motd: is a symbolic link" in text


def test_paths_outside_the_rules_are_refused_before_anything_is_written(tmp_path):
    bomb = base64.b64encode(gzip.compress(b"\0" * (17 << 20))).decode()
    g, proc, warnings = boot_with(tmp_path, """#cloud-config
write_files:
  - {path: ../../etc/escape, content: x}
  - {path: relative/file, content: x}
  - {path: /var/metadata/state.msgpack, content: x}
  - {path: /dev/dsk/c1t0d0p0, content: x}
  - {path: "/etc/nul\\0byte", content: x}
  - {path: /etc/bad-owner, content: x, owner: "root;id"}
  - {path: /etc/bad-mode, content: x, permissions: "0999"}
  - {path: /etc/bomb, content: "BOMB", encoding: gz+b64}
""".replace("BOMB", bomb))
    assert proc.returncode == 0
    assert not os.path.exists(os.path.join(os.path.dirname(g.root), "etc", "escape"))
    assert g.checkpoint().phase == "DONE"    # the checkpoint was not overwritten
    for path in ("/relative/file", "/etc/bad-owner", "/etc/bad-mode", "/etc/bomb"):
        assert not os.path.exists(g.path(path))
    assert len(warnings) >= 7
    text = "\n".join(warnings)
    for expected in ("'../../etc/escape'", "'relative/file'", "/var/metadata/state.msgpack",
                     "/dev/dsk/c1t0d0p0", "'root;id'", "'0999'", "more than 16777216 bytes"):
        assert expected in text, expected


def test_shell_metacharacters_in_user_names_create_no_user_and_run_nothing(tmp_path):
    g, proc, warnings = boot_with(tmp_path, f"""#cloud-config
users:
  - name: "x; touch /tmp/pwned-by-name"
  - name: "$(id)"
  - name: "a:b"
  - name: "-o"
  - name: good
    ssh_authorized_keys: ["{KEY}"]
    groups: ["wheel;rm"]
groups: ["g`id`"]
chpasswd:
  users:
    - {{name: "root;x", password: secret, type: text}}
""")
    assert proc.returncode == 0, proc.stdout
    users = g.show()["users"]
    assert set(users) == {"root", "good"}
    assert users["good"]["groups"] == []
    assert not os.path.exists("/tmp/pwned-by-name")
    text = "\n".join(warnings)
    for expected in ("'x; touch /tmp/pwned-by-name'", "'$(id)'", "'a:b'", "'-o'",
                     "'wheel;rm'", "'g`id`'", "chpasswd.users[0]"):
        assert expected in text, expected
    assert "secret" not in text


def test_wrong_types_each_a_warning_the_rest_applied(tmp_path):
    g, proc, warnings = boot_with(tmp_path, """#cloud-config
hostname: [not, a, string]
timezone: 5
ssh_pwauth: sometimes
users: {name: not-a-list-but-a-mapping-form}
write_files: "not a list"
runcmd: {a: 1}
packages: [[], "ok-pkg", "--evil-option"]
chpasswd: [x]
disable_root: maybe
apt: {sources: {}}
""")
    assert proc.returncode == 0, proc.stdout
    assert g.show()["hostname"]["nodename"] == "unknown"     # nothing from the bad hostname
    text = "\n".join(warnings)
    for expected in ("hostname: must be text", "timezone: must be text",
                     "ssh_pwauth: must be true or false", "write_files: must be a list",
                     "runcmd: must be a list", "packages[0]", "'--evil-option'",
                     "chpasswd: must be a mapping", "disable_root", "'apt' is not a cloud-config"):
        assert expected in text, expected


@pytest.mark.parametrize(("name", "user_data", "expected"), [
    ("deep", "#cloud-config\nruncmd: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than"),
    ("wide", "#cloud-config\nruncmd: [" + ",".join(["x"] * 120_000) + "]\n", "more than 100000"),
    ("huge", "#cloud-config\nruncmd: ['" + "x" * (2 << 20) + "']\n", "larger than"),
])
def test_huge_and_deep_documents_are_one_warning_and_the_boot_completes(tmp_path, name,
                                                                          user_data, expected):
    g, proc, warnings = boot_with(tmp_path, user_data, name=name)
    assert proc.returncode in (0, 96), proc.stdout
    if proc.returncode == 0:
        assert any(expected in w for w in warnings), warnings
        assert g.checkpoint().phase == "DONE"
    else:   # over the NoCloud file cap: the seed itself is refused, as for any file
        assert "larger than" in proc.stdout + proc.stderr


def test_a_new_users_home_cannot_be_roots_or_anothers(tmp_path):
    g, proc, warnings = boot_with(tmp_path, f"""#cloud-config
users:
  - name: mallory
    homedir: /root
    ssh_authorized_keys: ["{KEY}"]
  - name: trudy
    homedir: /export/home/../../etc
""")
    assert proc.returncode == 0, proc.stdout
    users = g.show()["users"]
    assert users["mallory"]["home"] == "/export/home/mallory"
    assert users["mallory"]["ssh"]["authorized_keys"] == [KEY]
    assert g.show()["ssh"]["file"] is None or KEY not in g.show()["ssh"]["authorized_keys"]
    assert os.stat(g.path("/root")).st_uid == 0
    text = "\n".join(warnings)
    assert "mallory: homedir '/root' is not a home of its own" in text
    assert "users[1].homedir" in text and users["trudy"]["home"] == "/export/home/trudy"
