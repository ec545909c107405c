"""SSH host keys of their own for every instance made from one image.

An image captured after one boot carries that VM's `/etc/ssh/ssh_host_*` keys into every
VM cloned from it, so all clones would share one host identity (cloud-init's
CVE-2018-10896; Triton's prepare-image, `waagent -deprovision` and OpenBSD's
`cloud-agent -u` all remove them). On a new instance this step removes them and makes new
ones with `ssh-keygen -A`, before `svc:/network/ssh` starts (the manifest makes ssh a
dependent of the agent). The sshd start methods of OmniOS, OpenIndiana and Tribblix all
run `ssh-keygen -A` themselves, so a key this step could not make is still made when ssh
starts; making them here lets the agent publish their fingerprints in its log and in
`metadata status`, as cloud-init prints them to the console.

A false "new instance" must never rotate the keys (users then meet a host-key warning):
the witness is not the checkpoint, which can be lost or reset, but a record beside the
keys, `/etc/ssh/metadata-agent.instance`, naming the instance they were made for. Keys
recorded for this instance are kept whatever the checkpoint says. Keys without a record
are kept when the checkpoint knows this instance from an earlier boot (an agent upgraded
on a running instance), and only then adopted by writing the record. With no instance id
at all nothing is done: the agent cannot tell a new instance.
"""

from __future__ import annotations

import base64
import binascii
import logging

from fsm.digests import sha256
from fsm.errors import CommandError
from fsm.steps import Context, Outcome
from fsm.system import System
from operations.sshkeys import UnsafeFileError, read_regular_file, refuse_linked_parents

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

SSH_DIR = "/etc/ssh"
KEY_PREFIX = "ssh_host_"
RECORD_PATH = "/etc/ssh/metadata-agent.instance"
RECORD_HEADER = ("# The SSH host keys in this directory were made for the instance below "
                 "(illumos metadata agent).\n")
SSH_KEYGEN = "/usr/bin/ssh-keygen"
MAX_PUB_BYTES = 16 << 10
SETTING = "ssh.regenerate_host_keys"
STEP_KEY = "IDENTITY/host-keys"


# ---- reading what is there ------------------------------------------------------------
def key_files(system: System) -> list[str]:
    """Guest paths of every `/etc/ssh/ssh_host_*` entry (keys, .pub files, certificates)."""
    return [f"{SSH_DIR}/{n}" for n in system.listdir(SSH_DIR) if n.startswith(KEY_PREFIX)]


def fingerprint_of(pub_line: str) -> str | None:
    """`SHA256:...` of a public key line, as `ssh-keygen -l` prints it; None if unreadable."""
    words = pub_line.split()
    if len(words) < 2:
        return None
    try:
        blob = base64.b64decode(words[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(sha256(blob).digest()).decode().rstrip("=")


def fingerprints(system: System) -> dict[str, str]:
    """Key type (`ed25519`, ...) -> fingerprint of each host key's `.pub` file."""
    out: dict[str, str] = {}
    for path in key_files(system):
        name = path.rsplit("/", 1)[1]
        if not name.endswith("_key.pub"):
            continue
        try:
            text, _ = read_regular_file(system, path, MAX_PUB_BYTES)
        except (UnsafeFileError, OSError):
            continue
        fp = fingerprint_of(text or "")
        if fp:
            out[name[len(KEY_PREFIX):-len("_key.pub")]] = fp
    return out


def made_for(system: System) -> str | None:
    """The instance id the record beside the keys names, or None without a record."""
    try:
        text, _ = read_regular_file(system, RECORD_PATH, 4096)
    except (UnsafeFileError, OSError):
        return None
    lines = [ln.strip() for ln in (text or "").splitlines()
             if ln.strip() and not ln.startswith("#")]
    return lines[0] if lines else None


def _known_from_earlier_boot(ctx: Context, iid: str) -> bool:
    """The checkpoint holds records of this instance from a boot before this one."""
    cp = ctx.checkpoint
    return any(isinstance(rec, dict) and rec.get("boot", cp.boot) < cp.boot
               for rec in cp.instances.get(iid, {}).values())


# ---- the step ----------------------------------------------------------------------------
def intent(ctx: Context) -> dict[str, Any]:
    """What was there before the first attempt: an interrupted attempt's intent is kept,
    so a restart can tell the keys it made from the image's."""
    prior = ctx.checkpoint.instances.get(ctx.checkpoint.instance_id or "", {}).get(STEP_KEY)
    if isinstance(prior, dict) and prior.get("status") == "started" and prior.get("intent"):
        return dict(prior["intent"])
    return {"made_for": made_for(ctx.system),
            "fingerprints_before": sorted(fingerprints(ctx.system).values())}


def took_effect(ctx: Context, recorded: dict[str, Any]) -> bool:
    """The interrupted run finished once the record beside the keys names this instance
    (it is written last)."""
    iid = ctx.checkpoint.instance_id
    return iid is not None and made_for(ctx.system) == iid


def regenerate(ctx: Context) -> Outcome:
    system = ctx.system
    outcome = Outcome()
    iid = ctx.checkpoint.instance_id
    if not ctx.settings.get(SETTING):
        log.info("host keys kept: %s = false in the agent settings", SETTING)
        return outcome
    if iid is None:
        log.info("host keys kept: no instance id, so a new instance cannot be told from "
                 "this one")
        return outcome
    refuse_linked_parents(system, RECORD_PATH)
    if system.is_symlink(SSH_DIR):
        raise UnsafeFileError(SSH_DIR, "is a symbolic link")
    if not system.exists(SSH_DIR):
        log.info("no %s: ssh is not installed, no host keys to replace", SSH_DIR)
        return outcome
    owner = made_for(system)
    before = fingerprints(system)
    if owner == iid:
        log.info("host keys were made for this instance (%s); kept", RECORD_PATH)
        return _published(outcome, before)
    if owner is None and before and _known_from_earlier_boot(ctx, iid):
        log.info("host keys without a record on an instance booted before: kept as its own")
        _write_record(system, iid)
        outcome.changed(f"{RECORD_PATH} (the present host keys recorded as this instance's)")
        return _published(outcome, before)

    prior = ctx.checkpoint.instances.get(iid, {}).get(STEP_KEY) or {}
    old = set((prior.get("intent") or {}).get("fingerprints_before") or ())
    if old and before and not set(before.values()) & old:
        # A run killed after making the new keys: they have never been served; keep them.
        log.info("host keys already replaced by an interrupted run; completing it")
    else:
        removed = key_files(system)
        for path in removed:
            system.remove(path)
        if removed:
            why = f"made for instance {owner}" if owner else "not recorded as this instance's"
            outcome.changed(f"{len(removed)} host key file(s) removed from {SSH_DIR} ({why})")
    if system.exists(SSH_KEYGEN):
        try:
            system.apply([SSH_KEYGEN, "-A"])
        except CommandError as e:   # the old keys are gone: that is what matters
            outcome.warnings.append(f"{e}; the ssh service's start method makes the host "
                                    "keys when it starts")
    else:
        outcome.warnings.append(f"{SSH_KEYGEN} is missing: the ssh service's start method "
                                "makes the host keys when it starts")
    if system.dry_run:
        outcome.changed(f"new host keys ({SSH_KEYGEN} -A), recorded in {RECORD_PATH}")
        return outcome
    _write_record(system, iid)
    after = fingerprints(system)
    for key_type, fp in sorted(after.items()):
        outcome.changed(f"new {key_type} host key {fp}")
    return _published(outcome, after)


def _published(outcome: Outcome, prints: dict[str, str]) -> Outcome:
    for key_type, fp in sorted(prints.items()):
        log.info("host key %s %s", key_type, fp)
    outcome.record["fingerprints"] = dict(sorted(prints.items()))
    return outcome


def _write_record(system: System, iid: str) -> None:
    system.write_file(RECORD_PATH, RECORD_HEADER + iid + "\n", mode=0o644)
