"""Emulator of the CPIO seed device: an archive made by the real `cpio -o`, written raw at
offset 0 of the seed disk (`<root>/dev/rdsk/<disk>p0` and the matching `/dev/dsk` node), the
way a QEMU, bhyve or VMware Fusion user attaches one.

The seed disk is the platform's second disk in sim/hardware.py (c2t0d0 on qemu and bhyve,
c1t1d0 on vmware). The archive is GNU cpio's `-H bin` by default (the old binary format
illumos `cpio -o` writes, native byte order) padded to 8192 bytes as illumos pads it.

Metadata (JSON for `sim create --metadata`), every key optional:
- `nodename`, `firstboot.sh`: strings; `authorized_keys`: a string or a list of lines;
- `config.toml`: a string (written verbatim) or `{"network": {"skip": true}}`;
- `format`: `bin` (default), `odc`, `newc`, `crc`, or `bin-swapped` (a `bin` archive in the
  other byte order, as a big-endian host would write it).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

from sim.hardware import hardware

SEED_NAMES = ("nodename", "authorized_keys", "config.toml", "firstboot.sh")
ILLUMOS_PAD = 8192
DEFAULT_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN admin@seed",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPrzJpUTZsgcpMyvdkExNa5nlWLNxg6tq4uHAys1Odxn deploy@seed",
)


def default_metadata() -> dict[str, Any]:
    return {
        "nodename": "cpio-seed-guest",
        "authorized_keys": list(DEFAULT_KEYS),
        "firstboot.sh": "#!/bin/sh\necho 'first boot from the cpio seed' > /var/tmp/firstboot.txt\n",
        "format": "bin",
    }


def seed_files(metadata: dict[str, Any]) -> dict[str, bytes]:
    files = {}
    for name in SEED_NAMES:
        value = metadata.get(name)
        if value is None:
            continue
        if name == "authorized_keys" and isinstance(value, list):
            value = "".join(line + "\n" for line in value)
        elif name == "config.toml" and isinstance(value, dict):
            value = "".join(f"[{section}]\n" + "".join(
                f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}\n"
                for k, v in table.items()) for section, table in value.items())
        elif name == "nodename" and not value.endswith("\n"):
            value += "\n"
        files[name] = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return files


def make_archive(files: dict[str, bytes], fmt: str = "bin") -> bytes:
    """An archive of `files` made by the real GNU `cpio -o -H FMT`, padded as illumos pads."""
    swap = fmt == "bin-swapped"
    with tempfile.TemporaryDirectory(prefix="sim-cpio-") as tmp:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(tmp, name), 0o755 if name.endswith(".sh") else 0o644)
        proc = subprocess.run(["cpio", "-o", "--quiet", "-H", "bin" if swap else fmt],
                              input="".join(n + "\n" for n in files).encode(), cwd=tmp,
                              capture_output=True, check=True)
    archive = swap_bin(proc.stdout) if swap else proc.stdout
    return archive + bytes(-len(archive) % ILLUMOS_PAD)


def swap_bin(archive: bytes) -> bytes:
    """A `bin` archive rewritten in the other byte order: every 16-bit header word swapped.

    Names and data are bytes, not words, so only the 26-byte headers change.
    """
    out, pos = bytearray(), 0
    while pos + 26 <= len(archive):
        header = archive[pos:pos + 26]
        order = "little" if header[:2] == b"\xc7\x71" else "big"
        if order == "big" and header[:2] != b"\x71\xc7":
            break
        words = [int.from_bytes(header[i:i + 2], order) for i in range(0, 26, 2)]
        namesize, filesize = words[10], (words[11] << 16) | words[12]
        other = "big" if order == "little" else "little"
        out += b"".join(w.to_bytes(2, other) for w in words)
        body = 26 + namesize + (namesize % 2)
        body += filesize + (filesize % 2)
        out += archive[pos + 26:pos + body]
        name = archive[pos + 26:pos + 26 + namesize - 1]
        pos += body
        if name == b"TRAILER!!!":
            break
    return bytes(out) + archive[pos:]


def seed_disk(platform: str) -> str:
    """The second disk of the platform's hardware: where a seed is attached."""
    return list(hardware(platform)["disks"])[1]


def write_seed(root: str, disk: str, image: bytes) -> None:
    """Write `image` raw at offset 0 of the disk's block and raw whole-disk nodes."""
    for kind in ("dsk", "rdsk"):
        path = os.path.join(root, "dev", kind, f"{disk}p0")
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            f.write(image)


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state

    platform = state.load(root)["platform"]
    archive = make_archive(seed_files(metadata), metadata.get("format", "bin"))
    write_seed(root, seed_disk(platform), archive)
