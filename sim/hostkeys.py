"""The SSH host keys an image carries: the ones its build VM's sshd made on first start.

Every guest made from the image starts with these same keys (the reason the agent
replaces them on a new instance). They are fixed, so tests can tell the image's keys from
new ones by fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import os

from sim.standins.ssh_keygen import TYPES, fingerprint, public_blob

SSH_DIR = "etc/ssh"
IMAGE_COMMENT = "root@omnios-build"


def _image_blob(key_type: str) -> bytes:
    size = {"ssh-rsa": 384, "ssh-ed25519": 32}.get(key_type, 64)
    material = hashlib.shake_256(f"image host key {key_type}".encode()).digest(size)
    return public_blob(key_type, material)


IMAGE_FINGERPRINTS = {name: fingerprint(_image_blob(kt)) for name, _l, kt, _b in TYPES}


def lay_out(root: str) -> None:
    ssh_dir = os.path.join(root, SSH_DIR)
    os.makedirs(ssh_dir, exist_ok=True)
    for name, _label, key_type, _bits in TYPES:
        private = os.path.join(ssh_dir, f"ssh_host_{name}_key")
        with open(private, "w", encoding="utf-8") as f:
            f.write("-----BEGIN OPENSSH PRIVATE KEY-----\n(the image's host key)\n"
                    "-----END OPENSSH PRIVATE KEY-----\n")
        os.chmod(private, 0o600)
        blob = base64.b64encode(_image_blob(key_type)).decode()
        with open(private + ".pub", "w", encoding="utf-8") as f:
            f.write(f"{key_type} {blob} {IMAGE_COMMENT}\n")
        os.chmod(private + ".pub", 0o644)


def present(root: str) -> dict[str, str]:
    """Key type -> fingerprint of each `ssh_host_TYPE_key.pub` under the root."""
    out: dict[str, str] = {}
    ssh_dir = os.path.join(root, SSH_DIR)
    try:
        names = sorted(os.listdir(ssh_dir))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for name in names:
        if not (name.startswith("ssh_host_") and name.endswith("_key.pub")):
            continue
        try:
            with open(os.path.join(ssh_dir, name), encoding="utf-8") as f:
                blob = base64.b64decode(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            out[name[len("ssh_host_"):-len("_key.pub")]] = "(unreadable)"
            continue
        out[name[len("ssh_host_"):-len("_key.pub")]] = fingerprint(blob)
    return out
