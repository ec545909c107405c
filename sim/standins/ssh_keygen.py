"""ssh-keygen(1) stand-in: `ssh-keygen -A [-q] [-f PREFIX]` and `ssh-keygen -l -f FILE`.

The sshd start methods of OmniOS and OpenIndiana (illumos-gate usr/src/cmd/ssh/etc/sshd,
oi-userland components/network/openssh/files/sshd: `start`) and Tribblix (tribblix/build
patches/openssh-method: `start`) all run `/usr/bin/ssh-keygen -A` before sshd, so a
missing host key is made when ssh starts. What `-A` does, from openssh-portable
ssh-keygen.c do_gen_all_hostkeys():
- for each of rsa, ecdsa and ed25519 whose key file `PREFIX/etc/ssh/ssh_host_TYPE_key` is
  missing, make the pair (private 0600, `.pub` 0644, comment `root@HOSTNAME`);
- before the first one, print `ssh-keygen: generating new host keys: ` to stdout, then
  each type in capitals followed by a space, then a newline; `-q` prints nothing;
- nothing missing: nothing printed, exit 0.
`-l -f FILE` prints `BITS SHA256:FINGERPRINT COMMENT (TYPE)` (fingerprint_one_key()).
Any other form is a usage error: ssh-keygen's usage() exits 1.

The keys are not real: the public blob has the real wire layout (RFC 4253 strings) with
random bytes where key material goes, which is all a fingerprint needs; the private file
is a marked placeholder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import sys

from sim.standins.base import BadOption, Invocation, posix_getopt

TYPES = (("rsa", "RSA", "ssh-rsa", 3072), ("ecdsa", "ECDSA", "ecdsa-sha2-nistp256", 256),
         ("ed25519", "ED25519", "ssh-ed25519", 256))
USAGE = "usage: ssh-keygen [-q] [-a rounds] [-b bits] [-C comment] [-f output_keyfile]"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def public_blob(key_type: str, material: bytes) -> bytes:
    """The wire form of a public key of `key_type` with `material` as its key bytes."""
    if key_type == "ssh-rsa":
        return _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\x00" + material)
    if key_type.startswith("ecdsa-"):
        return _string(key_type.encode()) + _string(b"nistp256") + _string(b"\x04" + material)
    return _string(key_type.encode()) + _string(material)


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _write(path: str, data: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.chmod(path, mode)


def _gen_all(inv: Invocation, prefix: str, quiet: bool) -> int:
    ssh_dir = os.path.join(inv.root, prefix.strip("/"), "etc", "ssh")
    if not os.path.isdir(ssh_dir):
        inv.fail(f"Could not stat {prefix.rstrip('/')}/etc/ssh: No such file or directory", 1)
    comment = f"root@{inv.state.get('hostname', 'unknown')}"
    said = False
    for name, label, key_type, _bits in TYPES:
        private = os.path.join(ssh_dir, f"ssh_host_{name}_key")
        if os.path.exists(private) and os.path.exists(private + ".pub"):
            continue
        if not quiet:
            if not said:
                sys.stdout.write("ssh-keygen: generating new host keys: ")
                said = True
            sys.stdout.write(f"{label} ")
        size = {"ssh-rsa": 384, "ssh-ed25519": 32}.get(key_type, 64)
        blob = public_blob(key_type, os.urandom(size))
        _write(private, "-----BEGIN OPENSSH PRIVATE KEY-----\n(simulated host key)\n"
                        "-----END OPENSSH PRIVATE KEY-----\n", 0o600)
        _write(private + ".pub", f"{key_type} {base64.b64encode(blob).decode()} {comment}\n",
               0o644)
    if said:
        sys.stdout.write("\n")
    return 0


def _list(inv: Invocation, path: str) -> int:
    host = os.path.join(inv.root, path.lstrip("/"))
    if not host.endswith(".pub") and os.path.exists(host + ".pub"):
        host += ".pub"
    try:
        with open(host, encoding="utf-8") as f:
            words = f.read().split()
        blob = base64.b64decode(words[1], validate=True)
    except (OSError, IndexError, ValueError):
        inv.fail(f"{path} is not a public key file.", 255)
    for _name, label, key_type, bits in TYPES:
        if words[0] == key_type:
            comment = " ".join(words[2:]) or "no comment"
            inv.out(f"{bits} {fingerprint(blob)} {comment} ({label})")
            return 0
    inv.fail(f"{path} is not a public key file.", 255)


def main(inv: Invocation) -> int:
    try:
        pairs, operands = posix_getopt(list(inv.argv), "Alq", "f")
    except BadOption:
        inv.fail(USAGE, 1)
    opts = dict(pairs)
    if operands:
        inv.fail(USAGE, 1)
    if "A" in opts:
        return _gen_all(inv, opts.get("f", "/"), "q" in opts)
    if "l" in opts and "f" in opts:
        return _list(inv, opts["f"])
    inv.fail(USAGE, 1)
