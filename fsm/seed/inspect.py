"""`metadata seed inspect FILE`: what the agent would read from a seed, and whether it would
accept it.

FILE is a CPIO seed image (read as providers/cpio.py reads the seed disk: the same head
size, the same strict archive reader), an ISO 9660 NoCloud image (read as hsfs would show
it, then through the same file checks as providers/localdisk.py), a FAT NoCloud image (its
files copied out by mtools, then the same checks), or a directory holding NoCloud files or
CPIO seed files (as a mounted volume, or the directory `cpio -o` is about to archive). A
qcow2 image is named and refused with what to do instead.
"""

from __future__ import annotations

import os
import stat
import tempfile

from fsm.errors import AgentError, ConfigError
from fsm.record import record
from fsm.seed import isoreader
from fsm.seed.evaluate import Evaluation, evaluate_cpio, evaluate_nocloud
from fsm.seed.render import report
from providers import cpio, cpioarchive, nocloud, seedfiles

HEAD_BYTES = 64 * 1024
MAX_ISO_BYTES = 64 << 20
QCOW_MAGIC = b"QFI\xfb"


class NotASeed(ConfigError):
    """FILE is nothing the agent would read as a seed (exit 96, as a refused seed)."""

    def __init__(self, path: str, problem: str):
        super().__init__(path, "(seed)", problem)


@record
class Inspection:
    title: list[str]
    evaluation: Evaluation

    def text(self) -> str:
        return report(self.title, self.evaluation)


def _title(path: str, what: str) -> str:
    return f"{'seed:':<15}{path}: {what}"


def _read_head(path: str, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise NotASeed(path, f"cannot be read: {e.strerror}") from None


def inspect_cpio(path: str) -> Inspection:
    data = _read_head(path, cpio.ARCHIVE_READ_LIMIT)
    fmt = cpioarchive.archive_format(data)
    names = {"bin-le": "bin (little-endian)", "bin-be": "bin (big-endian)"}
    title = [_title(path, f"CPIO archive, {names.get(fmt or '', fmt)} format")]
    source = f"cpio {path}"
    try:
        entries = list(cpioarchive.iter_entries(data, source))
        files = cpioarchive.read_archive(data, seedfiles.SEED_FILES, source)
    except AgentError as e:
        return Inspection(title, Evaluation("cpio", {}, problems=[str(e)]))
    evaluation = evaluate_cpio(files)
    for entry in entries:
        if entry.name not in seedfiles.SEED_FILES and stat.S_ISREG(entry.mode):
            evaluation.warnings.append(
                f"{source}: {entry.name!r} is not a seed file "
                f"({', '.join(seedfiles.SEED_FILES)}); the agent ignores it")
    return Inspection(title, evaluation)


def _nocloud_files(volume: isoreader.IsoVolume, device: str, problems: list[str]) -> dict[str, bytes]:
    """The NoCloud files, with the checks localdisk.read_files makes on a mounted volume."""
    files = {}
    for name in nocloud.FILES:
        entry = volume.entries.get(name)
        if entry is None:
            continue
        if entry.kind != "regular file":
            problems.append(f"{device}: {name}: is not a regular file; refusing to read it")
        elif entry.size > nocloud.FILE_CAP:
            problems.append(f"{device}: {name}: larger than {nocloud.FILE_CAP} bytes")
        else:
            try:
                files[name] = volume.read(name)
            except isoreader.IsoReadError as e:   # a truncated or forged image
                problems.append(f"{device}: {e}")
    return files


def inspect_iso(path: str) -> Inspection:
    size = os.path.getsize(path)
    if size > MAX_ISO_BYTES:
        raise NotASeed(path, f"an ISO image of {size} bytes is far larger than any seed")
    try:
        volume = isoreader.read_volume(_read_head(path, MAX_ISO_BYTES))
    except isoreader.IsoReadError as e:
        raise NotASeed(path, f"not a readable ISO 9660 volume: {e}") from None
    title = [_title(path, f"ISO 9660 volume {volume.label!r}, {volume.naming} names")]
    problems: list[str] = []
    if volume.label.lower() != nocloud.LABEL:
        problems.append(f"{path}: volume label is {volume.label!r}, not {nocloud.LABEL!r}: "
                        "the agent would not find this volume")
    files = _nocloud_files(volume, path, problems)
    evaluation = evaluate_nocloud(files)
    evaluation.problems[:0] = problems
    return Inspection(title, evaluation)


def _directory_files(path: str, names: tuple[str, ...], cap: int,
                     problems: list[str], shown: str | None = None) -> dict[str, bytes]:
    files = {}
    shown = shown or path
    for name in names:
        full = os.path.join(path, name)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{shown}: {name}: is not a regular file; refusing to read it")
        elif st.st_size > cap:
            problems.append(f"{shown}: {name}: larger than {cap} bytes")
        else:
            with open(full, "rb") as f:
                files[name] = f.read()
    return files


def inspect_directory(path: str) -> Inspection:
    present = set(os.listdir(path))
    problems: list[str] = []
    if present & set(nocloud.FILES):
        title = [_title(path, "NoCloud directory")]
        evaluation = evaluate_nocloud(_directory_files(path, nocloud.FILES, nocloud.FILE_CAP,
                                                       problems))
    elif present & set(seedfiles.SEED_FILES):
        title = [_title(path, "CPIO seed files (a directory to archive with cpio -o)")]
        evaluation = evaluate_cpio(_directory_files(path, seedfiles.SEED_FILES,
                                                    cpioarchive.SIZE_CAP, problems))
    else:
        raise NotASeed(path, f"holds neither NoCloud files ({', '.join(nocloud.FILES)}) "
                             f"nor CPIO seed files ({', '.join(seedfiles.SEED_FILES)})")
    evaluation.problems[:0] = problems
    return Inspection(title, evaluation)


def inspect_fat(path: str) -> Inspection:
    """A FAT (pcfs) NoCloud volume: its files copied out with mtools, then checked as a
    mounted volume's are (providers/localdisk.py)."""
    from fsm.seed import fatimage

    size = os.path.getsize(path)
    if size > MAX_ISO_BYTES:
        raise NotASeed(path, f"a FAT volume of {size} bytes is far larger than any seed")
    kind, label = fatimage.boot_sector_label(_read_head(path, 512))
    title = [_title(path, f"{kind} (pcfs) volume {label!r}")]
    problems: list[str] = []
    if label.lower() != nocloud.LABEL:
        problems.append(f"{path}: volume label is {label!r}, not {nocloud.LABEL!r}: "
                        "the agent would not find this volume")
    with tempfile.TemporaryDirectory(prefix="metadata-inspect-") as tmp:
        try:
            fatimage.extract(path, tmp)
        except fatimage.FatToolError as e:
            raise NotASeed(path, f"a FAT (pcfs) volume that could not be read: {e}") from None
        files = _directory_files(tmp, nocloud.FILES, nocloud.FILE_CAP, problems, shown=path)
    evaluation = evaluate_nocloud(files)
    evaluation.problems[:0] = problems
    return Inspection(title, evaluation)


def _is_fat(head: bytes) -> bool:
    return len(head) >= 512 and head[510:512] == b"\x55\xaa" and (
        head[54:57] == b"FAT" or head[82:87] == b"FAT32")


def inspect_seed(path: str) -> Inspection:
    """Classify FILE and read it as the agent would; NotASeed when it is no seed at all."""
    if os.path.isdir(path):
        return inspect_directory(path)
    head = _read_head(path, HEAD_BYTES)
    if cpioarchive.archive_format(head):
        return inspect_cpio(path)
    if isoreader.is_iso(head):
        return inspect_iso(path)
    if head.startswith(QCOW_MAGIC):
        raise NotASeed(path, "a qcow2 image: the agent reads raw disks; inspect "
                             "`qemu-img convert -O raw FILE seed.img` instead")
    if _is_fat(head):
        return inspect_fat(path)
    raise NotASeed(path, "not a seed: no CPIO archive at offset 0 and no ISO 9660 volume "
                         "at sector 16")


def attachable_image(path: str) -> tuple[str, bytes]:
    """(what it is, the bytes to write at offset 0 of a seed disk) for `plan --seed`.

    An image file is attached as it is, whatever it holds: deciding is the agent's job. A
    directory is first made into the image the seed tools would write from it.
    """
    if os.path.isdir(path):
        from providers import cpiowriter, iso9660

        inspection = inspect_directory(path)
        files = inspection.evaluation.files
        if inspection.evaluation.kind == "nocloud":
            return "NoCloud ISO made from the directory", iso9660.iso_image(nocloud.LABEL, files)
        return "CPIO image made from the directory", cpiowriter.write_archive(files)
    size = os.path.getsize(path)
    if size > MAX_ISO_BYTES:
        raise NotASeed(path, f"{size} bytes is far larger than any seed")
    return "image", _read_head(path, MAX_ISO_BYTES)
