"""`make dist`: build `dist/metadata`, one executable zipapp holding the agent and its
pure-Python dependencies, to be installed as `/usr/lib/metadata` on an illumos image.

Which dependency versions: those pip resolves for the OLDEST Python the agent supports
(3.9, what illumos distributions ship: `pip install --target --python-version 3.9
--only-binary=:all:`), since one archive must run on every target and newer releases of a
dependency may no longer import on 3.9. `--from-venv` copies the builder's
own installed distributions instead (offline; right only when the builder is the oldest
Python). Either way each distribution's own RECORD says which files are its, and the
wheels of msgpack and PyYAML are binary, so extension modules are stripped.

Why the stripped extensions are safe: zipimport cannot load extension modules, and every
dependency that has one ships a pure-Python twin and falls back to it on ImportError
(msgpack -> msgpack.fallback, PyYAML -> yaml without `_yaml`, charset_normalizer's mypyc
`md`/`cd` -> `md.py`/`cd.py`). `tests/test_dist.py` checks that each module is loaded
from the archive.

The archive is reproducible: entries sorted, fixed timestamps and modes, and bytecode
compiled as unchecked-hash `.pyc` next to each `.py` (zipimport uses them when the target
Python has the same magic number as the builder's, and compiles the source otherwise).

Lives in `tools/` because it is build tooling: not part of the agent (fsm/, providers/,
operations/ are what the archive ships) nor of the simulated guest (sim/), and not a
package, so it is installed nowhere.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as importlib_metadata
import importlib.util
import io
import marshal
import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIST = "illumos-metadata-agent"
AGENT_PACKAGES = ("fsm", "providers", "operations")  # never sim/ or tests/
INTERPRETER = "/usr/bin/python3"
OLDEST_PYTHON = "3.9"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
MAIN = (
    "# The entry point of dist/metadata (written by tools/build_dist.py).\n"
    "import sys\n"
    "from fsm.cli import main\n"
    "sys.exit(main())\n"
)
# Files a dependency may carry that have no place in a pure-Python archive.
SKIPPED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".pyc", ".pyo", ".c", ".h", ".pyx",
                    ".pxd")
KEPT_DIST_INFO = re.compile(r"^(METADATA|LICEN[CS]E.*|COPYING.*|NOTICE.*|AUTHORS.*)$|"
                            r"^licenses/", re.IGNORECASE)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str | None:
    """The distribution a `Requires-Dist` line names, or None for an optional extra's.

    Markers other than `extra` (e.g. tomli's `python_version < '3.11'`) are kept on
    purpose: the archive must run on whatever Python the image has, the oldest included.
    """
    spec, _, marker = requirement.partition(";")
    if "extra" in marker:
        return None
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return _normalise(m.group(1)) if m else None


def resolved_for(python_version: str, into: str) -> list[importlib_metadata.Distribution]:
    """The agent's runtime requirements as pip resolves them for `python_version`,
    installed (as wheels, markers evaluated for that version) into the directory `into`."""
    from packaging.requirements import Requirement  # pytest's dependency: in every dev venv

    # pip's --python-version picks wheels for that version but evaluates the markers of the
    # requirements it is given against the running Python: evaluate them here instead.
    env = {"python_version": python_version, "python_full_version": python_version + ".0",
           "extra": ""}
    wanted = []
    for text in importlib_metadata.distribution(PROJECT_DIST).requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            wanted.append(f"{req.name}{req.specifier}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", into, "--python-version", python_version, "--implementation", "cp",
                    "--only-binary=:all:", "--no-compile", *wanted], check=True)
    dists = {_normalise(d.metadata["Name"]): d for d in importlib_metadata.distributions(path=[into])}
    return [dists[n] for n in sorted(dists)]


def runtime_distributions(root_dist: str = PROJECT_DIST) -> list[importlib_metadata.Distribution]:
    """Every installed distribution the agent needs at run time: the closure of its
    requirements in the builder's environment (`--from-venv`)."""
    seen: dict[str, importlib_metadata.Distribution] = {}
    pending = [n for n in map(_requirement_name,
                              importlib_metadata.distribution(root_dist).requires or [])
               if n]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            raise SystemExit(f"build_dist: {name} is required but not installed; "
                             f"run `make` to create the environment") from None
        seen[name] = dist
        pending += [n for n in map(_requirement_name, dist.requires or []) if n]
    return [seen[n] for n in sorted(seen)]


def _dependency_files(dist: importlib_metadata.Distribution) -> Iterator[tuple[str, str]]:
    """(archive name, file on disk) for a distribution's importable files and licences."""
    for rel in dist.files or []:
        name = rel.as_posix()
        top = name.split("/", 1)[0]
        if name.startswith("../") or "__pycache__" in name or name.endswith(SKIPPED_SUFFIXES):
            continue  # scripts in bin/, bytecode of the builder's Python, extensions
        if top.endswith(".dist-info"):
            if not KEPT_DIST_INFO.match(name.split("/", 1)[1]):
                continue
        path = str(rel.locate())
        if os.path.isfile(path):
            yield name, path


def _agent_files() -> Iterator[tuple[str, str]]:
    for package in AGENT_PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(PROJECT_DIR, package)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for filename in filenames:
                if filename.endswith(".py"):
                    path = os.path.join(dirpath, filename)
                    yield os.path.relpath(path, PROJECT_DIR).replace(os.sep, "/"), path


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
    info.external_attr = (stat.S_IFREG | mode) << 16
    # Bytecode is stored: zipimport reads it on every start, and inflating it cost a boot
    # about 10 ms of CPU (8% of a first boot); sources, read only for tracebacks, and the
    # rest are deflated.
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".pyc") else zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, whatever the build host
    return info


def _bytecode(source: bytes, name: str) -> bytes | None:
    """An unchecked-hash .pyc of `source` (PEP 552), as `py_compile` would write it; None
    if the source does not compile on the builder's Python (the target compiles it then).
    Unchecked is right here: the source beside it in the archive can never change."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except SyntaxError:
        return None
    flags = (0b01).to_bytes(4, "little")  # hash-based, check_source off
    return (importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source)
            + marshal.dumps(code))


def collect(dists: list[importlib_metadata.Distribution],
            with_bytecode: bool = True) -> dict[str, bytes]:
    """Archive name -> contents, for everything dist/metadata holds."""
    files: dict[str, bytes] = {}
    sources = list(_agent_files())
    for dist in dists:
        sources += list(_dependency_files(dist))
    for name, path in sources:
        with open(path, "rb") as f:
            files[name] = f.read()
    files["__main__.py"] = MAIN.encode()
    if with_bytecode:
        for name in [n for n in files if n.endswith(".py")]:
            pyc = _bytecode(files[name], name)
            if pyc is not None:
                files[name + "c"] = pyc
    return files


def write_archive(target: str, files: dict[str, bytes], interpreter: str = INTERPRETER) -> None:
    """Shebang + zip, written to a temporary file and renamed, so a failed build never
    leaves a half-written artefact where an image builder would pick it up."""
    buf = io.BytesIO()
    buf.write(b"#!" + interpreter.encode() + b"\n")
    with zipfile.ZipFile(buf, "w") as zf:  # offsets then count the shebang, as zipapp's do
        for name in sorted(files):
            zf.writestr(_entry(name, 0o644), files[name], compresslevel=9)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=os.path.join(PROJECT_DIR, "dist", "metadata"),
                        help="where to write the archive (default: dist/metadata)")
    parser.add_argument("--interpreter", default=INTERPRETER,
                        help=f"the shebang's interpreter (default: {INTERPRETER})")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="ship sources only (smaller; the target compiles at each start)")
    parser.add_argument("--python-version", default=OLDEST_PYTHON,
                        help=f"resolve dependencies for this Python (default: {OLDEST_PYTHON}, "
                             f"the oldest supported)")
    parser.add_argument("--from-venv", action="store_true",
                        help="copy the builder's installed dependencies (offline)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.from_venv:
            dists = runtime_distributions()
        else:
            into = stack.enter_context(tempfile.TemporaryDirectory(prefix="metadata-dist-"))
            dists = resolved_for(args.python_version, into)
        files = collect(dists, with_bytecode=not args.no_bytecode)
        names = ", ".join(f"{d.metadata['Name']} {d.version}" for d in dists)
    write_archive(args.output, files, args.interpreter)
    print(f"{args.output}: {os.path.getsize(args.output)} bytes, {len(files)} files; {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
