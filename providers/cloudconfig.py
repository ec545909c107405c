"""`#cloud-config` user-data and vendor-data, parsed into the one data model.

What cloud-init calls user-data can be many things; the agent takes two of them: a script
(`#!`, installed for the userscript service as before) and `#cloud-config` YAML, whose
modules the steps in operations/ apply (see `cloudconfig_model.py` for the subset). Anything
else (multipart MIME, `#include`, `#cloud-boothook`, part handlers, Jinja templates) is
a warning that names the kind, never a crash and never the content. gzip-compressed
user-data is decompressed first, bounded.

vendor-data is merged the way cloud-init merges the two documents by default: the
top-level keys of user-data replace vendor-data's (`vendor_data: {enabled: false}` in
user-data drops vendor-data altogether). Then every top-level key is either taken, or
named in one warning line. Wrong types and unsafe values are per-item warnings naming
the document, the key and (cut with `shown`) the value: the rest is still applied.

The YAML goes through a safe loader that counts what it builds: a document nested deeper
than MAX_DEPTH or with more than MAX_NODES nodes is refused with a warning before any of
it is used (a YAML alias is one node, so "billion laughs" documents stay small here, and
every list we take is also capped in items and bytes).
"""

from __future__ import annotations

import logging
import zlib

from fsm.errors import shown
from providers import cloudconfig_disks as disks
from providers import cloudconfig_items as items
from providers import cloudconfig_users as users
from providers.cloudconfig_model import CloudConfig

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any, Callable

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1 << 20      # as every NoCloud file
MAX_DEPTH = 32
MAX_NODES = 100_000
CLOUD_CONFIG = "#cloud-config"
# First lines cloud-init gives a meaning we do not implement: a clear warning each.
OTHER_KINDS = (
    ("#include-once", "an #include-once list of URLs"),
    ("#include", "an #include list of URLs"),
    ("#cloud-config-archive", "a #cloud-config-archive"),
    ("#cloud-boothook", "a #cloud-boothook"),
    ("#part-handler", "a #part-handler"),
    ("#upstart-job", "an #upstart-job"),
    ("## template:", "a Jinja template"),
    ("content-type:", "multipart MIME"),
    ("mime-version:", "multipart MIME"),
)


HANDLERS: dict[str, Callable[[Any, str, dict, list], None]] = {
    "hostname": items._hostname("hostname"),
    "fqdn": items._hostname("fqdn"),
    "preserve_hostname": items._flag("preserve_hostname"),
    "ssh_authorized_keys": items._ssh_authorized_keys,
    "disable_root": items._flag("disable_root"),
    "users": users._users,
    "user": users._default_user,
    "manage_etc_hosts": users._manage_etc_hosts,
    "groups": users._groups,
    "password": users._password,
    "chpasswd": users._chpasswd,
    "ssh_pwauth": items._ssh_pwauth,
    "write_files": items._write_files,
    "runcmd": items._commands("runcmd"),
    "bootcmd": items._commands("bootcmd"),
    "timezone": items._timezone,
    "packages": items._packages,
    "package_update": items._flag("package_update"),
    "package_upgrade": items._flag("package_upgrade"),
    "disk_setup": disks._disk_setup,
    "fs_setup": disks._fs_setup,
}


class Classified:
    """What one user-data or vendor-data document is."""

    def __init__(self, script: bytes | None = None, config: dict[str, Any] | None = None,
                 warnings: list[str] | None = None):
        self.script = script
        self.config = config
        self.warnings = warnings or []


def classify(data: bytes, where: str) -> Classified:
    """A script, a cloud-config mapping, or warnings; `where` is e.g. `nocloud:user-data`."""
    if data[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_DOCUMENT_BYTES + 1)
        except zlib.error as e:
            return Classified(warnings=[f"{where}: gzip-compressed but unreadable ({e}); ignored"])
        if len(data) > MAX_DOCUMENT_BYTES:
            return Classified(warnings=[f"{where}: decompresses to more than "
                                        f"{MAX_DOCUMENT_BYTES} bytes; ignored"])
    if not data.strip():
        return Classified()
    if data.startswith(b"#!"):
        return Classified(script=data)
    first = data.lstrip().split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    if first.rstrip() == CLOUD_CONFIG or first.startswith(CLOUD_CONFIG + " "):
        return load(data, where)
    for prefix, kind in OTHER_KINDS:
        if first.lower().startswith(prefix):
            return Classified(warnings=[f"{where}: {kind} is not supported (only a #! script "
                                        f"or #cloud-config); ignored"])
    # Never quoted: user-data that is neither can hold anything (a password, a token).
    return Classified(warnings=[f"{where}: neither a script (#!) nor #cloud-config "
                                f"({len(data)} bytes, not shown); ignored"])


def load(data: bytes, where: str) -> Classified:
    """The YAML mapping of a #cloud-config document, or a warning saying why not."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return Classified(warnings=[f"{where}: larger than {MAX_DOCUMENT_BYTES} bytes; ignored"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Classified(warnings=[f"{where}: #cloud-config is not UTF-8 text; ignored"])
    from providers import yamlload  # only guests with cloud-config pay for PyYAML's import

    yaml = yamlload.import_yaml()
    try:
        doc = yaml.load(text, Loader=_counting_loader())  # noqa: S506 - a SafeLoader
    except _TooComplex as e:
        return Classified(warnings=[f"{where}: #cloud-config {e}; ignored"])
    except RecursionError:
        return Classified(warnings=[f"{where}: #cloud-config nested too deeply; ignored"])
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return Classified(warnings=[f"{where}: #cloud-config is not valid YAML{at}: "
                                    f"{getattr(e, 'problem', None) or 'parse error'}; ignored"])
    if doc is None:
        return Classified(config={})
    if not isinstance(doc, dict):
        return Classified(warnings=[f"{where}: #cloud-config must be a mapping, not "
                                    f"{type(doc).__name__}; ignored"])
    return Classified(config=doc)


class _TooComplex(Exception):
    pass


def _counting_loader() -> type:
    from providers import yamlload

    class CountingLoader(yamlload.safe_loader()):
        """SafeLoader that refuses deep or huge documents while composing them."""

        nodes = 0
        depth = 0

        def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _TooComplex(f"has more than {MAX_NODES} YAML nodes")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _TooComplex(f"is nested more than {MAX_DEPTH} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return CountingLoader


def merge(user: dict[str, Any] | None, vendor: dict[str, Any] | None,
          warnings: list[str], source: str) -> dict[str, Any] | None:
    """cloud-init's default merge of the two documents: user-data's top-level keys win."""
    if vendor is not None and user is not None:
        setting = user.get("vendor_data")
        if isinstance(setting, dict) and setting.get("enabled") is False:
            warnings.append(f"{source}:vendor-data: not applied (user-data says "
                            f"vendor_data.enabled: false)")
            vendor = None
    if user is None and vendor is None:
        return None
    merged = dict(vendor or {})
    merged.update(user or {})
    merged.pop("vendor_data", None)
    return merged


def parse(doc: dict[str, Any], where: str) -> tuple[CloudConfig, list[str]]:
    """The CloudConfig of a merged document, and one warning per item not taken."""
    warnings: list[str] = []
    fields: dict[str, Any] = {}
    modules = []
    for key, value in doc.items():
        handler = HANDLERS.get(key) if isinstance(key, str) else None
        if handler is None:
            warnings.append(f"{where}: {shown(key)} is not a cloud-config module the agent "
                            f"applies; ignored")
            continue
        modules.append(key)
        handler(value, f"{where}: {key}", fields, warnings)
    return CloudConfig(modules=tuple(modules), **fields), warnings


def from_documents(user_data: bytes | None, vendor_data: bytes | None,
                   source: str) -> tuple[CloudConfig | None, bytes | None, list[str]]:
    """(cloud-config, user script, warnings) from a source's user-data and vendor-data.

    A vendor-data script is not run (cloud-init runs it through its own scripts-vendor
    module; the agent has one first-boot script, the user's): a warning says so.
    """
    warnings: list[str] = []
    user = classify(user_data, f"{source}:user-data") if user_data else Classified()
    vendor = classify(vendor_data, f"{source}:vendor-data") if vendor_data else Classified()
    warnings += user.warnings + vendor.warnings
    if vendor.script is not None:
        warnings.append(f"{source}:vendor-data: a vendor script is not run (only the "
                        f"user-data script is); ignored")
    doc = merge(user.config, vendor.config, warnings, source)
    if doc is None:
        return None, user.script, warnings
    where = f"{source}:user-data" if vendor.config is None else f"{source}:cloud-config"
    config, problems = parse(doc, where)
    return config, user.script, warnings + problems


def with_root_password(config: CloudConfig | None, root_pw: str | None) -> CloudConfig | None:
    """SmartOS `root_pw`: root's plain password, set (never expired) unless the cloud-config
    already sets root's."""
    from fsm.record import replace
    from providers.cloudconfig_model import PasswordSpec

    if not root_pw or "\n" in root_pw:
        return config
    config = config or CloudConfig(chpasswd_expire=False)
    if any(p.name == "root" for p in config.chpasswd):
        return config
    spec = PasswordSpec("root", root_pw, hashed=False)
    expire = config.chpasswd_expire if config.chpasswd else False
    return replace(config, chpasswd=(*config.chpasswd, spec), chpasswd_expire=expire,
                   modules=tuple(dict.fromkeys((*config.modules, "chpasswd"))))
