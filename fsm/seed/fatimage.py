"""A FAT (pcfs) volume holding a few files at its root, made by the system's own tools.

NoCloud seeds on FAT are what `cloud-localds -f vfat` (mkfs.vfat, then `mcopy -oi IMG FILES
::`), Oxide's rack and SmartOS's vmadm (`mkfs -F pcfs -o b=CIDATA,nofdisk,fat=16`, then
files copied onto a lofi mount) make. FAT is a file system with enough corners (cluster
sizes, long names, FAT12/16/32 bounds) that we do not write it ourselves: Debian's
dosfstools and mtools make it here, as cloud-localds does. illumos's own `mkfs -F pcfs`
needs a lofi device and a mount, that is root on the build host; the error names the
packages to install instead (mtools and dosfstools are packaged for illumos too).

The bytes are reproducible: `mkfs.fat --invariant` fixes the volume id and the boot
sector's times (dosfstools 4.2), and each file is copied with `mcopy -m` from a file whose
time is the one given, so the same inputs give the same image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

SECTOR = 512
TOOL_TIMEOUT_S = 60.0


class FatToolError(Exception):
    """A tool is missing or failed; the message names it and its stderr."""


def tool(name: str) -> str:
    """The path of mkfs.fat/mkfs.vfat/mcopy, also where Debian keeps them off a user's PATH."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if found is None:
        raise FatToolError(f"{name} is needed to make a FAT volume: install dosfstools "
                           "(mkfs.fat) and mtools (mcopy), e.g. apt-get install dosfstools "
                           "mtools")
    return found


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FatToolError(f"{os.path.basename(argv[0])} did not finish within "
                           f"{TOOL_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise FatToolError(f"{os.path.basename(argv[0])} failed (exit {done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")


def size_for(files: dict[str, bytes], minimum_kib: int) -> int:
    """KiB of a volume with room for `files` (a cluster's slack each, and the FATs)."""
    needed = sum(len(data) + 8192 for data in files.values())
    return max(minimum_kib, -(-needed * 5 // 4 // 1024) + 256)


def fat_image(label: str, files: dict[str, bytes], size_kib: int, fat_bits: int | None = None,
              mtime: float | None = None) -> bytes:
    """A FAT volume of `size_kib` KiB labelled `label` holding `files` (names relative to
    its root; `a/b` in directory `a`).

    `fat_bits` (12, 16, 32) forces the FAT type, as `mkfs -F pcfs -o fat=16` does; None lets
    mkfs.fat choose from the size. The volume has no partition table (mkfs_pcfs `nofdisk`):
    it starts at sector 0 of the disk, where fstyp and `mount -F pcfs DISKp0` find it.
    """
    argv = [tool("mkfs.fat"), "-C", "--invariant", "-n", label]
    if fat_bits is not None:
        argv += ["-F", str(fat_bits)]
    # FAT keeps local times: UTC, so the stamp does not depend on the builder's zone.
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}
    with tempfile.TemporaryDirectory(prefix="metadata-fat-") as tmp:
        image = os.path.join(tmp, "volume.img")
        _run([*argv, image, str(size_kib)])
        # A name with `/` goes into its directories, made first with mmd (an OpenStack
        # config drive's `openstack/latest/meta_data.json`).
        dirs = sorted({"/".join(name.split("/")[:i]) for name in files
                       for i in range(1, name.count("/") + 1)}, key=lambda d: (d.count("/"), d))
        for directory in dirs:
            _run([tool("mmd"), "-i", image, "::/" + directory], env=env)
        for number, (name, data) in enumerate(files.items()):
            path = os.path.join(tmp, f"file{number}")
            with open(path, "wb") as f:
                f.write(data)
            if mtime is not None:
                os.utime(path, (mtime, mtime))
            _run([tool("mcopy"), "-m", "-i", image, path, "::/" + name], env=env)
        with open(image, "rb") as f:
            return f.read()


def boot_sector_label(head: bytes) -> tuple[str, str]:
    """(FAT type string, volume label) from a FAT boot sector's extended BPB, as mkfs.fat
    and mkfs_pcfs write them (FAT12/16 at offset 38, FAT32 at 66); ("FAT", "") without one."""
    for sig, label_at in ((38, 43), (66, 71)):
        if len(head) >= label_at + 19 and head[sig] == 0x29 and \
                head[label_at + 11:label_at + 14] == b"FAT":
            text = head[label_at:label_at + 19].decode("ascii", "replace")
            return text[11:].strip(), text[:11].strip()
    return "FAT", ""


def extract(image: str, directory: str) -> None:
    """Copy every file of the FAT volume in `image` into `directory` (mcopy -s), names as
    mtools shows them (the long names)."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}
    _run([tool("mcopy"), "-s", "-n", "-i", image, "::/*", directory.rstrip("/") + "/"],
         env=env)
