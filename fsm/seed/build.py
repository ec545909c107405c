"""`metadata seed cpio|nocloud`: write a seed image an image builder can attach as a disk.

Every input is checked before a byte is written, by the agent's own parsers and validators
(fsm/seed/evaluate.py), and a refusal carries the agent's own message: the builder learns
on the build host what the guest would otherwise tell them on first boot. A key line the
agent would skip is refused too (a key that silently never arrives is a locked-out guest),
while a NoCloud user-data in one of cloud-init's formats (not a script) is written with a
warning: it may be cloud-config meant for cloud-init on other guests. A user-data that is
neither is refused.

Output is reproducible: the same inputs give the same bytes. Timestamps are 0 (CPIO) and
2024-01-01 (ISO, FAT) unless SOURCE_DATE_EPOCH (reproducible-builds.org) sets them. A NoCloud
seed is an ISO 9660 volume (providers/iso9660.py) or, with `--filesystem vfat`, a FAT one
made by dosfstools and mtools as cloud-localds makes it (fsm/seed/fatimage.py). The image is
written to a temporary file beside the target and renamed over it, so a refused or failed
run leaves nothing behind and never a half-written seed.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import tempfile

from fsm.errors import SMF_EXIT_ERR_CONFIG, AgentError
from fsm.record import field, record
from fsm.seed.evaluate import Evaluation, evaluate_cpio, evaluate_nocloud
from operations.validate import validate_hostname, validate_script
from providers import cpioarchive, cpiowriter, iso9660, nocloud, seedfiles

DEFAULT_INSTANCE_ID = "iid-local01"      # what cloud-localds writes when given none
# How user-data the agent runs (`#!`) or cloud-init reads begins (cloud-init's
# user-data formats: cloudinit/handlers/__init__.py INCLUSION_TYPES_MAP, MIME, gzip).
USER_DATA_KINDS = (b"#!", b"#cloud-config", b"#include", b"#cloud-boothook",
                   b"#part-handler", b"#cloud-config-archive", b"#cloud-config-jsonp",
                   b"## template: jinja", b"Content-Type: multipart", b"MIME-Version:",
                   b"\x1f\x8b")
# Warnings about user-data and vendor-data (providers/cloudconfig.py's `nocloud:user-data:`,
# `nocloud:vendor-data:`, `nocloud:cloud-config:`): the seed is still written.
USER_DATA_WARNINGS = ("nocloud: user-data", "nocloud:user-data", "nocloud:vendor-data",
                      "nocloud:cloud-config")
NETWORK_SKIP_TOML = b"[network]\nskip = true\n"
# cloud-localds -f: an ISO 9660 volume (the default) or a FAT one (`iso` is its alias).
FILESYSTEMS = ("iso9660", "vfat")
FAT_MIN_KIB = 1024
MAX_INPUT_BYTES = max(cpioarchive.SIZE_CAP, nocloud.FILE_CAP)


class SeedRefused(Exception):
    """Inputs the agent would refuse: every problem, in the agent's words."""

    exit_code = SMF_EXIT_ERR_CONFIG

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@record
class Written:
    path: str
    size: int
    evaluation: Evaluation
    warnings: list[str] = field(default_factory=list)


def _read_input(path: str, origin: str) -> bytes:
    """An input file, at most one byte over the largest the agent accepts (the agent's
    readers then refuse it by size, in their words)."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        raise SeedRefused([f"{origin}: {path}: cannot be read: {e.strerror}"]) from None


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise SeedRefused([f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds"])
    return int(value)


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with `data` via a temporary file in the same directory."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise SeedRefused([f"{path}: not a regular file; write the image to a file, then "
                           "copy it to a device with dd"])
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".seed-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _require_keys(data: bytes, origin: str, problems: list[str]) -> None:
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        problems.append(f"{origin}: the keys file holds no key line")


def build_cpio(output: str, hostname: str | None = None, keys_file: str | None = None,
               firstboot_file: str | None = None, network_skip: bool = False,
               fmt: str = "bin") -> Written:
    problems: list[str] = []
    files: dict[str, bytes] = {}
    if hostname is not None:
        try:
            validate_hostname(hostname, "cpio:nodename")
        except AgentError as e:
            problems.append(str(e))
        files["nodename"] = hostname.encode("utf-8", "surrogateescape") + b"\n"
    if keys_file is not None:
        files["authorized_keys"] = _read_input(keys_file, "cpio: authorized_keys")
        _require_keys(files["authorized_keys"], "cpio: authorized_keys", problems)
    if network_skip:
        files["config.toml"] = NETWORK_SKIP_TOML
    if firstboot_file is not None:
        script = _read_input(firstboot_file, "cpio: firstboot.sh")
        if not script.strip():
            try:
                validate_script(b"", "cpio:firstboot.sh")
            except AgentError as e:
                problems.append(str(e))
        files["firstboot.sh"] = script
    evaluation = evaluate_cpio(files)
    _refuse_unless_clean(problems, evaluation, refuse_warnings=True)
    image = cpiowriter.write_archive(files, fmt, mtime=source_date_epoch() or 0)
    try:  # the agent's own reader, on the very bytes we are about to write
        cpioarchive.read_archive(image, seedfiles.SEED_FILES, source="cpio")
    except AgentError as e:
        raise SeedRefused([str(e)]) from None
    write_atomically(output, image)
    return Written(output, len(image), evaluation)


def _refuse_unless_clean(problems: list[str], evaluation: Evaluation,
                         refuse_warnings: bool) -> None:
    everything = list(dict.fromkeys([*problems, *evaluation.problems]))
    if refuse_warnings:
        everything += [w for w in evaluation.warnings if w not in everything]
    if everything:
        raise SeedRefused(everything)


def meta_data(instance_id: str, hostname: str | None, keys: list[str]) -> bytes:
    """meta-data as JSON (a subset of YAML), the form cloud-localds writes."""
    doc: dict[str, object] = {"instance-id": instance_id}
    if hostname is not None:
        doc["local-hostname"] = hostname
    if keys:
        doc["public-keys"] = keys
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def cloud_config_user_data(keys: list[str], users: list[str], password_hash: str | None,
                           problems: list[str]) -> bytes:
    """#cloud-config giving root (and each named user, made with the Primary Administrator
    profile) the keys and the password hash; YAML written as JSON flow, which YAML reads."""
    from providers.cloudconfig_items import HASH, NAME

    doc: dict[str, object] = {"disable_root": False}
    if password_hash is not None:
        if not HASH.match(password_hash):
            problems.append("nocloud: user-data password: not a crypt(3C) hash "
                            "(`$id$salt$hash`, e.g. from `openssl passwd -6`)")
        doc.update({"password": password_hash, "chpasswd": {"expire": False}})
    entries = []
    for name in users:
        if not NAME.match(name):
            problems.append(f"nocloud: user-data users: {name!r} is not a valid login name")
            continue
        entry: dict[str, object] = {"name": name, "profiles": ["Primary Administrator"]}
        if keys:
            entry["ssh_authorized_keys"] = keys
        if password_hash is not None:
            entry.update({"lock_passwd": False, "passwd": password_hash})
        entries.append(entry)
    if entries:
        doc["users"] = entries
    lines = [f"{key}: {json.dumps(value)}" for key, value in doc.items()]
    return ("#cloud-config\n" + "\n".join(lines) + "\n").encode("utf-8")


def _fat_volume(files: dict[str, bytes], when: datetime.datetime) -> bytes:
    """The NoCloud files on a FAT volume labelled cidata, as `cloud-localds -f vfat` makes
    (mkfs.vfat -n cidata, mcopy), sized for the files (fsm/seed/fatimage.py)."""
    from fsm.seed import fatimage

    try:
        return fatimage.fat_image(nocloud.LABEL, files,
                                  fatimage.size_for(files, FAT_MIN_KIB), mtime=when.timestamp())
    except fatimage.FatToolError as e:
        raise SeedRefused([f"nocloud: vfat: {e}"]) from None


def build_nocloud(output: str, instance_id: str | None = None, hostname: str | None = None,
                  keys_file: str | None = None, user_data_file: str | None = None,
                  network_config_file: str | None = None, users: list[str] | None = None,
                  password_hash_file: str | None = None,
                  filesystem: str = "iso9660") -> Written:
    problems: list[str] = []
    if filesystem not in FILESYSTEMS:
        problems.append(f"nocloud: --filesystem {filesystem!r}: expected one of "
                        f"{', '.join(FILESYSTEMS)}")
    if hostname is not None:
        try:
            validate_hostname(hostname, "nocloud:meta-data local-hostname")
        except AgentError as e:
            problems.append(str(e))
    if instance_id is not None and (not instance_id.strip() or not instance_id.isprintable()):
        problems.append("nocloud: meta-data instance-id: must be printable text, not empty")
    keys: list[str] = []
    if keys_file is not None:
        raw = _read_input(keys_file, "nocloud: meta-data public-keys")
        _require_keys(raw, "nocloud: meta-data public-keys", problems)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"nocloud: meta-data public-keys: {keys_file} is not UTF-8 text "
                            f"(byte {e.start})")
            text = ""
        keys = [ln.strip() for ln in text.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    files = {"user-data": b"",
             "meta-data": meta_data(instance_id or DEFAULT_INSTANCE_ID, hostname, keys)}
    if user_data_file is not None:
        files["user-data"] = _read_input(user_data_file, "nocloud: user-data")
        if files["user-data"].strip() and not files["user-data"].startswith(USER_DATA_KINDS):
            problems.append(f"nocloud: user-data: {user_data_file} is neither a script (#!) "
                            "nor a cloud-init format (#cloud-config, #include, MIME, gzip...): "
                            "the agent would not run it and cloud-init would not read it")
    if users or password_hash_file is not None:
        if user_data_file is not None:
            problems.append("nocloud: user-data: --user and --password-hash-file write a "
                            "#cloud-config user-data; give them or --user-data, not both")
        password_hash = None
        if password_hash_file is not None:
            password_hash = _read_input(password_hash_file, "nocloud: user-data password") \
                .decode("utf-8", "replace").strip()
        files["user-data"] = cloud_config_user_data(keys, users or [], password_hash, problems)
    if network_config_file is not None:
        files["network-config"] = _read_input(network_config_file, "nocloud: network-config")
    for name, data in files.items():
        if len(data) > nocloud.FILE_CAP:   # what localdisk.read_files refuses on the guest
            problems.append(f"nocloud: {name}: larger than {nocloud.FILE_CAP} bytes")
    evaluation = evaluate_nocloud(files)
    # Whatever the agent would skip is refused; user-data's (a non-script, a cloud-config
    # module the agent does not apply: cloud-init may still use them) only warned about.
    key_warnings = [w for w in evaluation.warnings if not w.startswith(USER_DATA_WARNINGS)]
    _refuse_unless_clean(problems + key_warnings, evaluation, refuse_warnings=False)
    epoch = source_date_epoch()
    when = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch is not None
            else iso9660.DEFAULT_TIME)
    if filesystem == "vfat":
        image = _fat_volume(files, when)
    else:
        image = iso9660.iso_image(nocloud.LABEL, files, when=when)
    write_atomically(output, image)
    return Written(output, len(image), evaluation,
                   warnings=[w for w in evaluation.warnings if w not in key_warnings])
