"""Start-up: a boot imports only what it uses (issue 17).

The agent runs on every boot of every VM, before the network is up, so what it imports is
its start-up cost. These tests run the real agent process on simulated guests through a
small launcher that writes the process's `sys.modules` when it exits (or reaches the crash
point it is told to stop at), and fail when a module that boot has no use for is imported:
nothing here measures time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
from guest import PROJECT_DIR, make_guest

from fsm.checkpoint import Checkpoint
from fsm.cli import build_parser, fast_args
from fsm.phases import PHASES
from fsm.settings import Settings
from fsm.steps import PHASE_NAMES, Context, Ref
from fsm.system import System
from providers import smbios
from providers.registry import PROVIDERS
from sim.hardware import PLATFORMS
from sim.serve import serving

# Runs `python -m fsm ARGS` unchanged, then writes every module the process imported (and
# `<gc-enabled>` when the cyclic garbage collector is on at the end). A placeholder that
# fsm/lazymodule.py registered and nothing read is not an import: it is left out. It imports nothing
# before the agent does, except `fsm.crashpoints` when a crash point is set, to write the
# list before the point kills the process.
LAUNCHER = r"""
import atexit, gc, os, runpy, sys
out = os.environ.pop("STARTUP_TEST_MODULES")
def dump():
    loaded = [n for n, m in sys.modules.items() if type(m).__name__ != "Deferred"]
    names = "\n".join(sorted(loaded) + ["<gc-enabled>"] * gc.isenabled())
    with open(out, "w") as f:
        f.write(names)
atexit.register(dump)
if os.environ.get("METADATA_AGENT_CRASH_AT"):
    from fsm import crashpoints
    reached = crashpoints.reached
    def at_point(point):
        if os.environ["METADATA_AGENT_CRASH_AT"].partition("#")[0] == point:
            dump()
        reached(point)
    crashpoints.reached = at_point
sys.argv = ["metadata"] + sys.argv[1:]
runpy.run_module("fsm", run_name="__main__", alter_sys=True)
"""
THIRD_PARTY_HTTP = {"requests", "urllib3", "idna", "charset_normalizer", "certifi"}
# The provider modules each platform's first boot may import: the one DETECT chooses and
# those it asks before (their hints allow them there), with the modules they import.
LOCAL = {"providers.cpio", "providers.cpioarchive", "providers.seedfiles",
         "providers.localdisk"}
CLOUDCONFIG = {"providers.cloudconfig", "providers.cloudconfig_users",
               "providers.cloudconfig_disks", "providers.yamlload"}
NOCLOUD = {"providers.nocloud", "providers.localdisk", "providers.netconfig", "providers.eni",
           "providers.dsserial", "providers.nocloudnet", "providers.netlinkcfg"} | CLOUDCONFIG
# OpenStack's config drive (and Proxmox VE's configdrive2): ENI for Proxmox's network file.
OPENSTACK = {"providers.openstack", "providers.openstack_network", "providers.localdisk",
             "providers.eni"} | NOCLOUD
PROVIDER_MODULES = {
    "qemu": LOCAL, "bhyve": LOCAL, "oxide": LOCAL | NOCLOUD,
    "omnios-zone": LOCAL | NOCLOUD, "proxmox": LOCAL | NOCLOUD,
    "tribblix-zone": LOCAL | NOCLOUD | {"providers.http", "providers.httpwire"},
    "nocloud": LOCAL | NOCLOUD,
    "vmware": {"providers.vmware"} | NOCLOUD | LOCAL,
    "smartos": {"providers.smartos", "providers.smartos_protocol", "providers.smartosnocloud",
                "providers.localdisk", "providers.netlinkcfg"} | CLOUDCONFIG,
    "smartos-nocloud": {"providers.smartosnocloud"} | NOCLOUD,
    "digitalocean": {"providers.digitalocean", "providers.localdisk", "providers.iso9660",
                     "providers.http", "providers.httpwire"},
    "ec2": {"providers.ec2", "providers.http", "providers.httpwire"},
    "azure": {"providers.azure", "providers.azure_ovf", "providers.localdisk",
              "providers.http", "providers.httpwire"} | CLOUDCONFIG,
    "none": LOCAL | NOCLOUD | OPENSTACK | {"providers.smartos", "providers.smartos_protocol",
                                           "providers.nometadata"},
    "openstack": OPENSTACK,
    "openstack-http": OPENSTACK | {"providers.http", "providers.httpwire"},
    "proxmox-configdrive2": LOCAL | NOCLOUD | OPENSTACK,
}
ALWAYS = {"providers", "providers.smbios", "providers.registry", "providers.base",
          "providers.model", "providers.items",
          # The data model's cloud-config part and its item rules.
          "providers.cloudconfig_model", "providers.cloudconfig_items"}


def imported(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """(exit code, every module imported) of `python -m fsm ARGS`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "modules")
        done = subprocess.run([sys.executable, "-c", LAUNCHER, *args], capture_output=True,
                              text=True, cwd=PROJECT_DIR, timeout=300,
                              env={**os.environ, "PYTHONPATH": PROJECT_DIR,
                                   "STARTUP_TEST_MODULES": out, **(env or {})})
        assert os.path.exists(out), done.stdout[-2000:] + done.stderr[-2000:]
        with open(out, encoding="utf-8") as f:
            return done.returncode, set(f.read().split())


def providers_of(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("providers")} - ALWAYS


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    """A qemu guest after its first boot: what every later boot of it starts from."""
    guest = make_guest(tmp_path_factory.mktemp("booted"), "qemu")
    assert guest.run().returncode == 0
    return guest


def test_a_second_boot_imports_no_code_it_does_not_run(booted):
    code, modules = imported("run", "--root", booted.root)
    assert code == 0
    assert booted.checkpoint().phase == "DONE" and booted.checkpoint().boot == 2
    unused = {
        # No HTTP, YAML or serial source on this guest, and no command-line parser.
        *THIRD_PARTY_HTTP, "http.client", "yaml", "serial", "argparse",
        # Providers DETECT neither asks nor chooses here.
        "providers.smartos", "providers.digitalocean", "providers.ec2", "providers.vmware",
        "providers.nocloud", "providers.http", "providers.nometadata", "providers.iso9660",
        # Per-instance steps done on the first boot: their code is not loaded again.
        # (operations.validate is not listed: NETWORK's per-boot steps check addresses,
        # gateways and resolvers with it on every boot.)
        "operations.hostname", "operations.sshkeys",
        "operations.reguid", "operations.swap",
        # The data pools' settings (STORAGE/pools, per instance): grow-pools needs none.
        "operations.poolspec",
        # Other commands' modules.
        "fsm.status", "fsm.statesdoc", "fsm.plan", "fsm.seed",
        # No settings file or seed config.toml here; no key line to decode; no HTTP.
        "tomllib", "tomli", "base64", "ssl", "email",
        # Issue 17: none of these on any boot (test_a_first_boot_imports_only...).
        "dataclasses", "typing", "crypt", "inspect",
    }
    assert modules & unused == set()
    # What it does run is loaded (the check above would pass on a run that did nothing).
    assert {"fsm.machine", "providers.cpio", "operations.network", "operations.expand",
            "msgpack", "transitions"} <= modules
    # A boot runs without the cyclic garbage collector (fsm/cli.py: _one_pass_gc).
    assert "<gc-enabled>" not in modules


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_a_first_boot_imports_only_the_providers_detect_asks(tmp_path, platform):
    guest = make_guest(tmp_path, platform)
    with serving(guest.root):
        settings_file = os.path.exists(os.path.join(guest.root, "etc", "metadata-agent.toml"))
        code, modules = imported("run", "--root", guest.root)
    assert code == 0
    assert providers_of(modules) <= PROVIDER_MODULES[platform], sorted(providers_of(modules))
    # TOML only for a guest with a settings file: an emulator's endpoint, which a served
    # zone seed does not need (its URL is in the SMBIOS serial, as on the real zones), nor
    # SmartOS's serial service (the guest's /dev/term/b leads to it, as on SmartOS).
    assert ("tomllib" in modules) == settings_file
    assert settings_file <= (platform not in ("tribblix-zone", "qemu", "nocloud", "smartos",
                                              "smartos-nocloud"))
    assert modules & THIRD_PARTY_HTTP == set()  # HTTP is http.client, on HTTP platforms
    # YAML only where a document may be YAML; HTTP only where the metadata was not on a
    # local drive (DigitalOcean's guest has its config drive, read first).
    yaml_seeds = ("nocloud", "vmware", "omnios-zone", "tribblix-zone", "proxmox", "oxide",
                  "smartos-nocloud", "azure", "openstack", "openstack-http",
                  "proxmox-configdrive2")
    assert ("yaml" in modules) <= (platform in yaml_seeds)
    assert ("yaml" in modules) >= (platform == "nocloud")
    # Plain-HTTP metadata is read through providers/httpwire.py: neither http.client nor
    # what it imports (ssl, the email package, the idna codec) is loaded by any boot.
    assert ("providers.httpwire" in modules) == (platform in ("ec2", "tribblix-zone", "azure",
                                                              "openstack-http"))
    assert {"http.client", "ssl", "email", "encodings.idna", "stringprep"} & modules == set()
    # Issue 17's costs gone from every boot: dataclasses (inspect, ~0.5 ms a class: records
    # in fsm/record.py instead), typing (annotations only; but the standard library's
    # tomllib imports it, for a guest with a settings file) and crypt (a test hash per
    # method at import: operations/passhash.py calls _crypt.crypt).
    assert {"dataclasses", "crypt"} & modules == set()
    assert ("typing" in modules) <= bool({"tomllib", "tomli"} & modules)
    # transitions imports inspect for a call our model never makes (fsm/lazymodule.py);
    # digests come from CPython's own SHA-2, not OpenSSL (fsm/digests.py); a salt and a
    # retry's jitter from os.urandom, not the secrets or random modules.
    assert "inspect" not in modules and "transitions" in modules
    assert {"hashlib", "_hashlib", "secrets", "random"} & modules == set()
    # Plain HTTP connects through _socket, the C module under socket.py (httpwire.connect).
    assert {"socket", "selectors", "signal"} & modules == set()


def test_version_and_status_load_no_boot_code(booted):
    code, modules = imported("--version")
    assert code == 0
    assert {m for m in modules if m.startswith(("fsm", "providers", "operations"))} == \
        {"fsm", "fsm.cli", "fsm.errors"}
    assert {"argparse", "msgpack", "logging", "transitions"} & modules == set()
    for argv in (["status"], ["status", "--json"], ["status", "--wait", "--timeout", "60"]):
        code, modules = imported(*argv, "--root", booted.root)
        assert code == 0 and {"fsm.status", "fsm.cpfile", "msgpack"} <= modules, argv
        assert not [m for m in modules if m.startswith(("providers", "operations"))]
        # (json is read: the start history and the query record are JSON documents.)
        assert {"transitions", "fsm.machine", "fsm.phases", "argparse"} & modules == set()
        # Status reads the checkpoint through fsm/cpfile.py and fsm/guestfiles.py alone,
        # not the machine's modules and what they import (the bulk of its cost before).
        assert {"fsm.checkpoint", "fsm.system", "fsm.steps", "fsm.lock", "fsm.settings",
                "logging", "subprocess", "threading", "dataclasses", "typing", "tomllib",
                "tomli"} & modules == set(), argv
        assert "<gc-enabled>" in modules   # only `run` turns the collector off


def test_status_names_the_paths_of_the_modules_it_does_not_import():
    from fsm import lock, settings, status

    assert (status.LOCK_PATH, status.SETTINGS_PATH) == (lock.LOCK_PATH, settings.SETTINGS_PATH)


def test_detect_with_no_metadata_does_not_wait_for_the_later_phases_code(tmp_path):
    """The none platform stops in DETECT when told to: by then no operation is loaded."""
    guest = make_guest(tmp_path, "none")
    code, modules = imported("run", "--root", guest.root,
                             env={"METADATA_AGENT_CRASH_AT": "after:DETECT/provider"})
    assert code == -9 and guest.checkpoint().phase == "DETECT"
    assert not [m for m in modules if m.startswith("operations")]
    assert "providers.nometadata" in modules


# ---- the lazy declarations and the registry ---------------------------------------------

def test_every_step_reference_resolves_and_states_sees_every_step():
    for phase in PHASE_NAMES:
        for step in PHASES[phase]:
            for func in (step.run, step.intent, step.took_effect):
                if isinstance(func, Ref):
                    assert callable(func.resolve()), func
    keys = [s.key for p in PHASE_NAMES for s in PHASES[p]]
    out = subprocess.run([sys.executable, "-m", "fsm", "states", "--format", "json"],
                         capture_output=True, text=True, cwd=PROJECT_DIR, check=True).stdout
    for key in keys:
        assert f'"{key.split("/")[1]}"' in out, key
    assert len(keys) == len(set(keys)) >= 13


def test_a_bad_reference_is_refused_when_declared():
    with pytest.raises(ValueError, match="module:function"):
        Ref("operations.network.configure_interfaces")


def test_the_identity_texts_name_the_paths_the_code_uses():
    from operations import hostkeys, identity, sshkeys

    assert (identity.SSH_DIR, identity.AUTHORIZED_KEYS, identity.MANAGED_PATH) == \
        (sshkeys.SSH_DIR, sshkeys.AUTHORIZED_KEYS, sshkeys.MANAGED_PATH)
    assert (identity.HOST_KEY_DIR, identity.HOST_KEY_PREFIX, identity.HOST_KEY_RECORD,
            identity.SSH_KEYGEN) == (hostkeys.SSH_DIR, hostkeys.KEY_PREFIX,
                                     hostkeys.RECORD_PATH, hostkeys.SSH_KEYGEN)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_a_provider_hint_never_skips_a_provider_that_would_detect(tmp_path, platform):
    """Where a hint says "not here", the provider's own detect says no too."""
    guest = make_guest(tmp_path, platform)
    ctx = Context(system=System(guest.root), settings=Settings(), checkpoint=Checkpoint())
    ctx.smbios = smbios.read(ctx.system)
    here = smbios.platform(ctx.smbios)
    skipped = [entry for entry in PROVIDERS if not entry.may_detect(here)]
    assert skipped  # every platform skips some (else this test checks nothing)
    for entry in skipped:
        assert entry.load()().detect(ctx) is False, (platform, entry.name)
    assert PROVIDERS[-1].may_detect(here) and PROVIDERS[-1].load()().detect(ctx)


# ---- the command lines read without argparse --------------------------------------------

@pytest.mark.parametrize("argv", [
    ["run"], ["run", "--root", "/a"], ["run", "--force"], ["run", "--root=/a", "--force"],
    ["run", "--force", "--root", "/a b"], ["status"], ["status", "--json"],
    ["status", "--root", "/a", "--json"], ["status", "--json", "--root=/x"],
    ["status", "--wait"], ["status", "--wait", "--timeout", "5"], ["status", "--timeout=0.5"],
    ["status", "--timeout=2.5", "--json", "--wait", "--root=/x"], ["status", "--timeout", "inf"],
])
def test_the_fast_forms_read_as_argparse_reads_them(argv):
    fast = fast_args(argv)
    assert fast is not None
    slow = vars(build_parser().parse_args(argv))
    assert vars(fast) == slow


@pytest.mark.parametrize("argv", [
    [], ["states"], ["run", "--root"], ["run", "--root", "-x"], ["run", "--force", "--force"],
    ["run", "--ro", "/a"], ["run", "--json"], ["status", "--force"], ["run", "--root="],
    ["run", "extra"], ["--version", "run"], ["status", "--timeout"],
    ["status", "--timeout", "x"], ["status", "--timeout", "-1"], ["run", "--timeout", "1"],
    ["status", "--wait", "--wait"], ["status", "--timeout=", "--wait"], ["status", "--json=1"],
])
def test_any_other_command_line_goes_to_argparse(argv):
    assert fast_args(argv) is None


def test_the_cloud_config_texts_name_the_paths_the_code_uses():
    from operations import cloudcmds, cloudsteps, passwords, sysconf, users

    assert (cloudsteps.BOOTCMD_PATH, cloudsteps.RUNCMD_PATH, cloudsteps.SSHD_CONFIG,
            cloudsteps.INIT_DEFAULTS, cloudsteps.HOME_BASE) == \
        (cloudcmds.BOOTCMD_PATH, cloudcmds.RUNCMD_PATH, passwords.SSHD_CONFIG,
         sysconf.INIT_DEFAULTS, users.HOME_BASE)


def test_the_cli_names_the_query_path_query_writes():
    from fsm import cli, query

    assert cli.QUERY_PATH == query.QUERY_PATH
