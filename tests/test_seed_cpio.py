"""`metadata seed cpio`: archives listed by GNU cpio and bsdcpio, read by the agent on a
simulated QEMU guest, reproducible, and bad inputs refused with the agent's own messages."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG
from providers import cpioarchive, seedfiles
from providers.cpiowriter import write_archive
from sim.emulators import cpio as cpio_emulator
from tests.guest import PROJECT_DIR, make_guest

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN admin@seed"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPrzJpUTZsgcpMyvdkExNa5nlWLNxg6tq4uHAys1Odxn deploy@seed"
SCRIPT = b"#!/bin/sh\necho 'first boot from a built seed' > /var/tmp/firstboot.txt\n"
NAMES = ["nodename", "authorized_keys", "config.toml", "firstboot.sh"]


def metadata(*args: str, cwd: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": PROJECT_DIR, **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=60)


def attach(root: str, image: bytes, platform: str = "qemu") -> None:
    """The image at offset 0 of the guest's seed disk, replacing the emulator's own seed."""
    disk = cpio_emulator.seed_disk(platform)
    for kind in ("dsk", "rdsk"):
        os.truncate(os.path.join(root, "dev", kind, f"{disk}p0"), 0)
    cpio_emulator.write_seed(root, disk, image)


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "keys").write_text(f"# the team\n{KEY1}\n\n{KEY2}\n")
    (tmp_path / "first.sh").write_bytes(SCRIPT)
    return tmp_path


def build(inputs, fmt: str, name: str = "seed.img", *extra: str) -> bytes:
    out = inputs / name
    r = metadata("seed", "cpio", "-o", str(out), "--hostname", "web-1.example.com",
                 "--authorized-keys", str(inputs / "keys"), "--firstboot",
                 str(inputs / "first.sh"), "--network-skip", "--format", fmt, *extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"wrote {out} (8192 bytes)\n"
    return out.read_bytes()


@pytest.mark.parametrize("fmt", ["bin", "odc", "newc"])
def test_third_party_cpio_tools_list_and_extract_the_seed(inputs, fmt):
    image = build(inputs, fmt)
    assert len(image) % 8192 == 0
    assert cpioarchive.archive_format(image) == {"bin": "bin-le"}.get(fmt, fmt)
    seed = str(inputs / "seed.img")
    if shutil.which("cpio"):
        listed = subprocess.run(["cpio", "-it", "--quiet", "-F", seed], capture_output=True,
                                text=True, check=True)
        assert listed.stdout.split() == NAMES
        out = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "firstboot.sh"],
                             input=image, capture_output=True, check=True)
        assert out.stdout == SCRIPT
    if shutil.which("bsdcpio"):
        listed = subprocess.run(["bsdcpio", "-it", "--quiet", "-F", seed],
                                capture_output=True, text=True, check=True)
        assert listed.stdout.split() == NAMES
        verbose = subprocess.run(["bsdcpio", "-itv", "-F", seed], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        assert verbose[3].startswith("-rwxr-xr-x") and verbose[0].startswith("-rw-r--r--")
    files = cpioarchive.read_archive(image, seedfiles.SEED_FILES)
    assert files == {"nodename": b"web-1.example.com\n",
                     "authorized_keys": (inputs / "keys").read_bytes(),
                     "config.toml": b"[network]\nskip = true\n", "firstboot.sh": SCRIPT}
    assert seedfiles.read_seed(files).metadata.network_skip


def test_gnu_cpio_reads_the_bin_format_in_either_byte_order(inputs):
    """We write little-endian (x86 illumos); a big-endian writer's archive reads the same."""
    image = build(inputs, "bin")
    swapped = inputs / "swapped.img"
    swapped.write_bytes(cpio_emulator.swap_bin(image))
    assert swapped.read_bytes()[:2] == b"\x71\xc7"
    for seed in (inputs / "seed.img", swapped):
        listed = subprocess.run(["cpio", "-it", "--quiet", "-F", str(seed)],
                                capture_output=True, text=True, check=True)
        assert listed.stdout.split() == NAMES


def test_same_inputs_give_the_same_bytes(inputs):
    first = build(inputs, "newc", "a.img")
    assert build(inputs, "newc", "b.img") == first
    dated = build(inputs, "newc", "c.img")
    assert dated == first
    r = metadata("seed", "cpio", "-o", str(inputs / "d.img"), "--hostname", "h",
                 env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0
    entry = next(cpioarchive.iter_entries((inputs / "d.img").read_bytes()))
    assert entry.mtime == 1700000000
    assert write_archive({"nodename": b"h\n"}, "newc") == write_archive({"nodename": b"h\n"}, "newc")


def test_the_agent_applies_a_built_seed(tmp_path, inputs):
    image = build(inputs, "bin")
    guest = make_guest(tmp_path, "qemu")
    attach(guest.root, image)
    r = guest.run()
    assert r.returncode == 0, r.stdout + r.stderr
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "web-1"
    assert "web-1.example.com" in shown["hostname"]["hosts"][0]
    assert shown["ssh"]["authorized_keys"] == [KEY1, KEY2]
    assert shown["userscript"]["file"]["sha256"] == hashlib.sha256(SCRIPT).hexdigest()
    assert shown["interfaces"] == []       # --network-skip: no interface configured


def _refused(tmp_path, *args: str) -> subprocess.CompletedProcess:
    out = tmp_path / "refused.img"
    r = metadata("seed", "cpio", "-o", str(out), *args)
    assert r.returncode == SMF_EXIT_ERR_CONFIG, r.stderr
    assert not out.exists()
    assert r.stderr.endswith(f"metadata: nothing written to {out}\n")
    return r


def test_bad_hostname_refused_with_the_message_the_agent_logs(tmp_path):
    r = _refused(tmp_path, "--hostname", "db_1")
    guest = make_guest(tmp_path, "qemu", {"nodename": "db_1"})
    run = guest.run()
    assert run.returncode == 0      # on the guest, a bad name is a skipped item, a warning
    message = r.stderr.splitlines()[0].removeprefix("metadata: ")
    assert message == ("cpio: nodename: hostname 'db_1' contains '_' at position 2; only "
                       "letters, digits, hyphens and dots are allowed")
    problem = message.removeprefix("cpio: nodename: ")
    assert f"cpio: nodename: hostname 'db_1' skipped: {problem}; the name is left as it is" \
        in [w["message"] for w in guest.checkpoint().warnings]


def test_script_without_interpreter_line_refused_as_the_agent_refuses_it(tmp_path):
    (tmp_path / "s.sh").write_text("echo hi\n")
    r = _refused(tmp_path, "--firstboot", str(tmp_path / "s.sh"))
    guest = make_guest(tmp_path, "qemu", {"firstboot.sh": "echo hi\n"})
    run = guest.run()
    message = r.stderr.splitlines()[0].removeprefix("metadata: ")
    assert message == ("cpio: firstboot.sh: must begin with an interpreter line such as "
                       "#!/bin/sh: not installed, not run; skipped")
    # The agent skips the script with that warning and applies the rest of the seed.
    assert run.returncode == 0 and message in run.stdout + run.stderr
    assert message in [w["message"] for w in guest.checkpoint().warnings]


@pytest.mark.parametrize("content,expected", [
    (b"#!/bin/sh\r\necho hi\r\n", "cpio: firstboot.sh: user script's #! line ends with CR-LF"),
    (b"#!sh\necho\n", "must name an interpreter by absolute path"),
    (b"\n\n", "cpio: firstboot.sh: user script is empty"),
])
def test_scripts_the_agent_would_not_run_are_refused(tmp_path, content, expected):
    (tmp_path / "s.sh").write_bytes(content)
    r = _refused(tmp_path, "--firstboot", str(tmp_path / "s.sh"))
    assert expected in r.stderr


def test_every_bad_input_is_reported_at_once(tmp_path):
    (tmp_path / "keys").write_text(f"{KEY1}\nssh-rsa AAAA broken\nnot-a-key\n")
    (tmp_path / "s.sh").write_text("echo\n")
    r = _refused(tmp_path, "--hostname=-bad", "--authorized-keys", str(tmp_path / "keys"),
                 "--firstboot", str(tmp_path / "s.sh"))
    assert r.stderr.splitlines()[:-1] == [
        "metadata: cpio: nodename: hostname label '-bad' starts or ends with a hyphen",
        "metadata: cpio: firstboot.sh: must begin with an interpreter line such as #!/bin/sh: "
        "not installed, not run; skipped",
        "metadata: cpio:authorized_keys: line 2: key data is truncated; line skipped",
        "metadata: cpio:authorized_keys: line 3: unknown key type 'not-a-key'; line skipped",
    ]


def test_missing_or_empty_inputs_and_a_kept_existing_image(tmp_path):
    r = _refused(tmp_path, "--authorized-keys", str(tmp_path / "absent"))
    assert "cannot be read: No such file or directory" in r.stderr
    (tmp_path / "empty").write_text("# only a comment\n")
    r = _refused(tmp_path, "--authorized-keys", str(tmp_path / "empty"))
    assert "holds no key line" in r.stderr
    # A refusal leaves an existing image exactly as it was.
    kept = tmp_path / "kept.img"
    kept.write_bytes(b"previous")
    r = metadata("seed", "cpio", "-o", str(kept), "--hostname", "a b")
    assert r.returncode == SMF_EXIT_ERR_CONFIG and kept.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".seed-")] == []
