"""`metadata clean` (image capture), `metadata query` and `metadata collect-logs`, against
simulated guests booted for real."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile

from guest import PROJECT_DIR, make_guest

from fsm.collectlogs import redact
from fsm.lock import agent_lock
from fsm.system import System
from sim import state as sim_state
from sim.emulators.cpio import DEFAULT_KEYS

ENV = {**os.environ, "PYTHONPATH": PROJECT_DIR}
OPERATOR_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPrzJpUTZsgcpMyvdkExNa5nlWLNxg6tq4uHAys1"
                "Odxq operator@site")
NEW_UUID = "0C0FFEE0-1111-4222-8333-444455556666"


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


def tree(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if "/var/sim" not in path and not os.path.islink(path):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, root)] = f.read()
    return out


def booted(tmp_path, platform="qemu", **kwargs):
    g = make_guest(tmp_path, platform, **kwargs)
    assert g.run().returncode == 0
    # What dhcpagent and SMF leave on a real guest, which the simulator does not write.
    g.write("/etc/dhcp/vioif0.dhc", "lease")
    g.write("/etc/dhcp/duid", "duid")
    g.write("/etc/dhcp/inittab", "kept: not a lease")
    g.write("/var/svc/log/system-illumos-metadata:default.log", "log\n")
    g.write("/var/svc/log/system-illumos-metadata:default.log.0", "older log\n")
    g.write("/var/svc/log/network-ssh:default.log", "not ours\n")
    with open(g.path("/root/.ssh/authorized_keys"), "a") as f:
        f.write(OPERATOR_KEY + "\n")
    return g


# ---- clean --------------------------------------------------------------------------------
def test_clean_dry_run_lists_and_changes_nothing(tmp_path):
    g = booted(tmp_path)
    before = tree(g.root)
    r = cli("clean", "--dry-run", "--host-keys", "--nodename", "--root", g.root)
    assert r.returncode == 0, r.stderr
    assert tree(g.root) == before
    listed = [ln.split(": ", 1)[1].split(" (")[0] for ln in r.stdout.splitlines()]
    assert {"/var/metadata/state.msgpack", "/var/metadata/state.msgpack.prev",
            "/var/metadata/history.json", "/var/metadata/query.json",
            "/var/metadata/authorized_keys.managed", "/root/.ssh/authorized_keys",
            "/var/metadata/userscript", "/etc/dhcp/vioif0.dhc", "/etc/dhcp/duid",
            "/var/svc/log/system-illumos-metadata:default.log",
            "/var/svc/log/system-illumos-metadata:default.log.0",
            "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/metadata-agent.instance",
            "/etc/nodename", "/etc/inet/hosts"} <= set(listed)
    assert "/etc/dhcp/inittab" not in listed
    assert "/var/svc/log/network-ssh:default.log" not in listed
    assert all(ln.startswith(("would remove: ", "would rewrite: "))
               for ln in r.stdout.splitlines())


def test_clean_makes_the_next_boot_a_first_boot_and_keeps_the_operators_key(tmp_path):
    g = booted(tmp_path)
    keys_before = g.show()["ssh"]["host_keys"]
    r = cli("clean", "--root", g.root)
    assert r.returncode == 0, r.stderr
    for gone in ("/var/metadata/state.msgpack", "/var/metadata/history.json",
                 "/var/metadata/query.json", "/var/metadata/authorized_keys.managed",
                 "/var/metadata/userscript", "/etc/dhcp/vioif0.dhc", "/etc/dhcp/duid",
                 "/var/svc/log/system-illumos-metadata:default.log.0"):
        assert not os.path.exists(g.path(gone)), gone
    assert os.path.exists(g.path("/etc/dhcp/inittab"))
    assert os.path.exists(g.path("/var/svc/log/network-ssh:default.log"))
    assert g.read("/root/.ssh/authorized_keys") == OPERATOR_KEY + "\n"
    assert g.show()["ssh"]["host_keys"] == keys_before   # without --host-keys: kept
    # Captured and booted as a new instance: a first boot, new keys of every kind.
    with sim_state.locked(g.root) as st:
        st["smbios"]["uuid"] = NEW_UUID
    assert g.run().returncode == 0
    cp = g.checkpoint()
    assert cp.boot == 1 and cp.instance_id == NEW_UUID.lower()
    assert g.read("/root/.ssh/authorized_keys").splitlines() == [OPERATOR_KEY, *DEFAULT_KEYS]
    assert not set(g.show()["ssh"]["host_keys"].values()) & set(keys_before.values())


def test_clean_host_keys_and_nodename(tmp_path):
    g = booted(tmp_path)
    r = cli("clean", "--host-keys", "--nodename", "--root", g.root)
    assert r.returncode == 0, r.stderr
    assert not [n for n in os.listdir(g.path("/etc/ssh")) if n.startswith("ssh_host_")]
    assert not os.path.exists(g.path("/etc/ssh/metadata-agent.instance"))
    assert g.read("/etc/nodename") == "unknown\n"
    loopback = [ln for ln in g.read("/etc/inet/hosts").splitlines()
                if ln.split()[:1] in (["127.0.0.1"], ["::1"])]
    assert loopback == ["::1\tlocalhost", "127.0.0.1\tlocalhost loghost"]
    assert "cpio-seed-guest" not in g.read("/etc/inet/hosts")


def test_clean_refuses_a_bad_nodename_and_changes_nothing(tmp_path):
    g = booted(tmp_path)
    before = tree(g.root)
    r = cli("clean", "--nodename", "bad name#", "--root", g.root)
    assert r.returncode == 96 and "clean --nodename" in r.stderr
    assert tree(g.root) == before


def test_clean_refuses_this_machine_without_force_and_a_running_agent(tmp_path):
    r = cli("clean")
    assert r.returncode == 96 and "refusing to clean this machine" in r.stderr
    g = booted(tmp_path)
    before = tree(g.root)
    with agent_lock(System(g.root)):
        r = cli("clean", "--root", g.root)
    assert r.returncode == 95 and "the agent is running" in r.stderr
    assert tree(g.root) == before


# ---- query --------------------------------------------------------------------------------
def test_query_prints_the_normalised_metadata_and_single_values(tmp_path):
    g = make_guest(tmp_path, "smartos")
    from crashkit import boot_until_done
    assert boot_until_done(g)[-1] == 0
    doc = json.loads(cli("query", "--root", g.root).stdout)
    assert doc["platform"] == "smartos" and doc["hostname"] == "web01"
    assert doc["instance_id"] == g.checkpoint().instance_id
    assert doc["nics"][0]["mac"] == "90:b8:d0:01:02:03"
    assert doc["resolvers"] and doc["routes"]
    assert all(fp.split()[1].startswith("SHA256:") for fp in doc["ssh_key_fingerprints"])
    assert doc["host_key_fingerprints"] == g.show()["ssh"]["host_keys"]
    assert cli("query", "hostname", "--root", g.root).stdout == "web01\n"
    assert cli("query", "nics.0.mac", "--root", g.root).stdout == "90:b8:d0:01:02:03\n"
    bad = cli("query", "nope", "--root", g.root)
    assert bad.returncode == 1 and "no key 'nope'" in bad.stderr
    st = os.stat(g.path("/var/metadata/query.json"))
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_query_never_holds_secrets(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run().returncode == 0
    text = g.read("/var/metadata/query.json")
    script = g.read("/var/metadata/userscript")
    assert script.splitlines()[1] not in text     # the first-boot script's body
    for key in DEFAULT_KEYS:
        assert key.split()[1] not in text          # key material: fingerprints only
    assert json.loads(text)["user_script"] is True


def test_query_before_any_fetch_is_an_error(tmp_path):
    g = make_guest(tmp_path, "qemu")
    r = cli("query", "--root", g.root)
    assert r.returncode == 1 and "no metadata recorded yet" in r.stderr


# ---- collect-logs -------------------------------------------------------------------------
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u\n"
           "-----END OPENSSH PRIVATE KEY-----\n")


def test_collect_logs_writes_a_redacted_tarball(tmp_path):
    g = booted(tmp_path)
    g.write("/etc/metadata-agent.toml",
            '[ec2]\nendpoint = "http://admin:hunter2@169.254.169.254"\n')
    g.write("/var/svc/log/system-illumos-metadata:default.log",
            "pasted by someone:\n" + PRIVATE + DEFAULT_KEYS[0] + "\npassword=hunter3\n")
    out = tmp_path / "report.tar.gz"
    r = cli("collect-logs", "-o", str(out), "--root", g.root)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with tarfile.open(out) as tar:
        texts = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar}
    assert {"status.json", "checkpoint.json", "history.json", "query.json",
            "metadata-agent.toml", "smf-properties.txt",
            "logs/system-illumos-metadata:default.log"} <= set(texts)
    assert json.loads(texts["status.json"])["status"] == "done"
    assert json.loads(texts["checkpoint.json"])["phase"] == "DONE"
    everything = "".join(texts.values())
    for secret in ("hunter2", "hunter3", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u",
                   DEFAULT_KEYS[0].split()[1]):
        assert secret not in everything, secret
    assert "[redacted: private key]" in texts["logs/system-illumos-metadata:default.log"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".collect-logs-")]


def test_redact_keeps_what_helps_and_drops_what_does_not():
    text = redact("boot 1 done; key ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSm x\n"
                  "GET http://u:p@host/x token: abc\n")
    assert "boot 1 done" in text and "ssh-ed25519 [redacted: key]" in text
    assert "u:p@" not in text and "abc" not in text and "http://[redacted]@host/x" in text
    assert redact(io.StringIO("plain").read()) == "plain"
