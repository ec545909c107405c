"""dist/metadata, the single-file artefact: what it holds, that it builds the same bytes
twice, and that it runs a real boot of the simulated guest on a Python with nothing but its
standard library (no virtual environment, no site-packages, an empty environment)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest
from crashkit import comparable
from guest import PROJECT_DIR, make_guest

from fsm import __version__
from fsm.status import status_data
from sim.serve import serving

BUILDER = os.path.join(PROJECT_DIR, "tools", "build_dist.py")
SYSTEM_PYTHON = "/usr/bin/python3"
THIRD_PARTY = ("transitions", "six", "serial", "msgpack", "tomli", "yaml")


def _clean_python() -> list[str]:
    """A Python that sees only its standard library: -I (no PYTHON* variables, no user
    site, no script directory) and -S (no site-packages: neither the venv's nor the
    distribution's, so a missing dependency cannot hide behind an installed one)."""
    python = SYSTEM_PYTHON if os.access(SYSTEM_PYTHON, os.X_OK) else sys.executable
    return [python, "-I", "-S"]


def _build(target: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, BUILDER, "--output", target],
                          capture_output=True, text=True, timeout=300, check=True)


@pytest.fixture(scope="session")
def artefact(tmp_path_factory) -> str:
    target = str(tmp_path_factory.mktemp("dist") / "metadata")
    _build(target)
    return target


def run_clean(artefact: str, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*_clean_python(), artefact, *args], capture_output=True, text=True,
                          env=env or {}, cwd="/", timeout=timeout)


def test_archive_holds_the_agent_and_pure_python_dependencies_only(artefact):
    with open(artefact, "rb") as f:
        assert f.readline() == b"#!/usr/bin/python3\n"
    assert os.stat(artefact).st_mode & 0o111 == 0o111
    with zipfile.ZipFile(artefact) as zf:
        names = zf.namelist()
        main = zf.read("__main__.py").decode()
    tops = {n.split("/", 1)[0] for n in names}
    assert {"fsm", "providers", "operations", "__main__.py", "six.py"} <= tops
    assert {"transitions", "serial", "msgpack", "tomli", "yaml"} <= tops
    # The agent speaks HTTP with http.client: requests and its stack are not shipped.
    assert not {"requests", "urllib3", "idna", "certifi", "charset_normalizer"} & tops
    # Bytecode is stored, not deflated: zipimport reads it on every start.
    with zipfile.ZipFile(artefact) as zf:
        assert {i.compress_type for i in zf.infolist() if i.filename.endswith(".pyc")} == \
            {zipfile.ZIP_STORED}
    assert not {"sim", "tests", "tools", "_pytest", "pytest", "hypothesis"} & tops
    assert not [n for n in names if n.endswith((".so", ".pyd")) or "__pycache__" in n]
    assert "fsm/cli.py" in names and "msgpack/fallback.py" in names
    assert "sys.exit(main())" in main  # the exit code reaches SMF
    assert names == sorted(names)


def test_build_is_reproducible(artefact, tmp_path):
    again = str(tmp_path / "metadata")
    _build(again)
    digest = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (artefact, again)]
    assert digest[0] == digest[1]


def test_every_module_comes_from_the_archive(artefact):
    """Import everything the agent can use on a clean Python and say where it came from:
    the archive for ours and the dependencies, the standard library for the rest (HTTP
    included); msgpack and PyYAML on their pure-Python code, since zipimport cannot load
    extensions."""
    probe = (
        "import json, sys, sysconfig\n"
        f"sys.path.insert(0, {artefact!r})\n"
        f"for name in {THIRD_PARTY!r} + ('fsm.cli', 'fsm.machine', 'providers.registry',"
        " 'operations.storage'):\n"
        "    __import__(name)\n"
        "from providers.registry import provider_classes\n"
        "provider_classes()\n"  # the registry imports its providers lazily: all of them
        "import providers.http, http.client\n"
        "import msgpack, yaml\n"
        "print(json.dumps({'files': {n: getattr(m, '__file__', None) for n, m in"
        " sys.modules.items()}, 'packer': msgpack.Packer.__module__,"
        " 'libyaml': yaml.__with_libyaml__,"
        " 'stdlib': [sysconfig.get_path('stdlib'), sysconfig.get_path('platstdlib')]}))\n"
    )
    done = subprocess.run([*_clean_python(), "-c", probe], capture_output=True, text=True,
                          env={}, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["packer"] == "msgpack.fallback"
    assert report["libyaml"] is False
    ours = {n: f for n, f in report["files"].items()
            if n.split(".")[0] in THIRD_PARTY + ("fsm", "providers", "operations")}
    assert ours and all(f.startswith(artefact + os.sep) for f in ours.values()), ours
    allowed = tuple([artefact + os.sep] + [d + os.sep for d in report["stdlib"]])
    strays = {n: f for n, f in report["files"].items()
              if f and not f.startswith(allowed)}
    assert not strays, f"imported from outside the archive and the standard library: {strays}"


def test_version_and_states_on_a_clean_python(artefact):
    done = run_clean(artefact, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"metadata {__version__}")
    states = run_clean(artefact, "states", "--format", "json")
    assert states.returncode == 0, states.stderr
    venv = subprocess.run([sys.executable, "-m", "fsm", "states", "--format", "json"],
                          capture_output=True, text=True, cwd=PROJECT_DIR, check=True)
    assert json.loads(states.stdout) == json.loads(venv.stdout)


@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason="no /usr/bin/python3")
def test_runs_through_its_shebang_with_an_empty_environment(artefact):
    done = subprocess.run([artefact, "--version"], capture_output=True, text=True, env={},
                          cwd="/", timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, f"metadata {__version__}")


def test_refuses_the_running_machine_outside_smf(artefact):
    done = run_clean(artefact, "run")
    assert done.returncode == 96
    assert "outside SMF" in done.stderr


@pytest.mark.parametrize("platform", ["qemu", "ec2"])
def test_full_boot_matches_the_venv_agent(artefact, tmp_path, platform):
    """A first boot by the archive on a clean Python, and one by the agent from the source
    tree, leave two identical guests (the pool GUID is random by design: both changed)."""
    packed = make_guest(tmp_path, platform, name="packed")
    reference = make_guest(tmp_path, platform, name="reference")
    with serving(packed.root):
        done = run_clean(artefact, "run", "--root", packed.root)
    assert done.returncode == 0, done.stdout + done.stderr
    with serving(reference.root):
        assert reference.run().returncode == 0
    status = status_data(packed.root)
    assert status["done"] and status["phase"] == "DONE"
    assert status["provider"] == status_data(reference.root)["provider"]
    assert comparable(packed) == comparable(reference)
    assert packed.calls() == reference.calls()


def _oldest_python() -> str | None:
    """Python 3.9, the oldest the illumos distributions ship, where this machine has it."""
    for candidate in ("/root/.pyenv/versions/3.9.18/bin/python3.9", "/usr/bin/python3.9"):
        if os.access(candidate, os.X_OK):
            return candidate
    import shutil

    return shutil.which("python3.9")


@pytest.mark.skipif(_oldest_python() is None, reason="no Python 3.9 on this machine")
@pytest.mark.parametrize("platform", ["smartos", "ec2", "nocloud"])
def test_full_boot_on_python_3_9(artefact, tmp_path, platform):
    """The archive on the oldest supported Python: serial, HTTP and YAML sources, each to
    DONE with the same guest as the source-tree agent leaves."""
    packed = make_guest(tmp_path, platform, name="packed")
    reference = make_guest(tmp_path, platform, name="reference")
    with serving(packed.root):
        done = subprocess.run([_oldest_python(), "-I", "-S", artefact, "run", "--root",
                               packed.root], capture_output=True, text=True, env={},
                              timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with serving(reference.root):
        assert reference.run().returncode == 0
    assert comparable(packed) == comparable(reference)


def test_a_drip_feeding_service_cannot_hold_the_archive_either(artefact, tmp_path):
    """dist/metadata carries its own requests/urllib3: the wall-clock deadline per request
    must hold there too (issue 12): one byte every half second, FETCH still ends."""
    import time

    from test_hardening import drip_guest

    g = drip_guest(tmp_path, "ec2")
    started = time.monotonic()
    with serving(g.root):
        done = run_clean(artefact, "run", "--root", g.root, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 95, out[-2000:]
    assert "the answer was still arriving" in out
    assert time.monotonic() - started < 120
