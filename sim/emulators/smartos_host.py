"""What the SmartOS host's metadata agent answers to one line from the guest.

Derived from smartos-live `src/vm/lib/metadata/agent.js`, `makeMetadataHandler()` and its
helpers `parse_v2_request()`, `format_v2_response()`, `returnit()`, `setMetadata()`, and
from `crc32.js` `crc32_calc()`; the clients checked against it are cloud-init's
`DataSourceSmartOS.JoyentMetadataClient` and mdata-client's `proto.c` `process_input()`.
The facts carried over, and kept here, without the transport (sim/emulators/smartos.py):

- A line is split on `\\n` and trimmed at the right; a blank line, or `GET`/`NEGOTIATE`
  without an argument, answers `invalid command`. `NEGOTIATE V2` -> `V2_OK`, any other
  version -> `FAILURE`.
- `V2 <len> <crc> <reqid> <CMD> [<base64 arg>]`: a frame that does not parse, whose length
  is not the body's length or 0, or whose CRC (8 lowercase hex digits) is wrong gets no
  answer at all. The argument is decoded as Node's `Buffer(.., 'base64')` does: leniently.
- Answers: a string value -> `SUCCESS` + base64 in V2; an EMPTY string -> `SUCCESS` with no
  payload and no trailing space (the frame length counts `<reqid> SUCCESS` only); in V1
  `SUCCESS\\n` + the value with each line starting `.` doubled + `\\n.\\n`, so an empty
  value is `SUCCESS\\n\\n.\\n`. A number or boolean is its text; another non-string
  (an object at an `sdc:` key other than nics/resolvers/tmpfs/routes) -> `FAILURE`;
  a missing key -> `NOTFOUND`. Errors -> V2 `FAILURE` carrying the message, V1 `FAILURE`.
- `sdc:nics`, `sdc:resolvers`, `sdc:tmpfs`, `sdc:routes` are `JSON.stringify` of the VM's
  fields: compact, no spaces.
- `KEYS` works in V1 and V2: the customer keys, in their stored order, one a line.
- `PUT` and `DELETE` only in V2 (in V1 they are unknown commands); PUT's argument is the
  base64 of `<base64 key> <base64 value>`; both answer `SUCCESS` with payload `OK`; a PUT
  of an empty value removes the key; a key in `sdc:` answers
  `FAILURE` (`Cannot update the "sdc" Namespace.`). Any other command -> `FAILURE`
  (`Unknown command X`); a V2 GET without a key -> `FAILURE` (`Invalid GET Request`).

Not modelled: internal_metadata (`*_pw` keys, `internal_metadata_namespaces`), the
`sdc:` fields computed from the VM object (we serve what the metadata JSON gives),
`operator-script`, and JavaScript's UTF-16 string lengths (the frames are ASCII).
"""

from __future__ import annotations

import base64
import json
import re
import string
import zlib
from dataclasses import dataclass
from typing import Any

INVALID = b"invalid command\n"
SDC_JSON_FIELDS = frozenset({"nics", "resolvers", "tmpfs", "routes"})
_LINE = re.compile(r"(\S+)\s?(.*)")                        # agent.js: /^([^\s]+)\s?(.*)/
_V2 = re.compile(r"\s*([0-9]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(.*)")  # parse_v2_request
_V2_BODY = re.compile(r"\s*(\S+)\s*(.*)")
_LINE_START_DOT = re.compile(r"(?:^|(?<=[\n\r\u2028\u2029]))\.")  # JS /^\./mg
_B64 = frozenset(string.ascii_letters + string.digits + "+/")


class Unservable:
    """A value the host holds but cannot send as text (returnit: `FAILURE`)."""


UNSERVABLE = Unservable()


def host_text(key: str, value: Any) -> str | Unservable | None:
    """The metadata JSON's value for `key` as the host holds it (None: absent)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"       # JS: true.toString()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if key.startswith("sdc:") and key[4:] not in SDC_JSON_FIELDS:
        return UNSERVABLE                          # VM.flatten gave an object
    # JSON.stringify: no spaces, non-ASCII as is. (Customer keys are strings on a real
    # host; an object given for one here is served as that same compact text.)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def crc32_hex(text: str) -> str:
    """crc32.js crc32_calc(): the low byte of each UTF-16 unit, 8 lowercase hex digits."""
    return f"{zlib.crc32(bytes(ord(c) & 0xFF for c in text)) & 0xFFFFFFFF:08x}"


def node_b64decode(text: str) -> str:
    """`new Buffer(text, 'base64').toString()`: never fails; skips what is not base64."""
    text = text.replace("-", "+").replace("_", "/").split("=", 1)[0]
    kept = "".join(c for c in text if c in _B64)
    kept = kept[: len(kept) - 1] if len(kept) % 4 == 1 else kept
    return base64.b64decode(kept + "=" * (-len(kept) % 4)).decode("utf-8", "replace")


def v2_frame(reqid: str, code: str, body: str | None = None) -> bytes:
    """format_v2_response(): the payload only when non-empty, so no trailing space."""
    resp = f"{reqid} {code}"
    if body:
        resp += " " + base64.b64encode(body.encode("utf-8")).decode("ascii")
    return f"V2 {len(resp)} {crc32_hex(resp)} {resp}\n".encode()


def v1_success(text: str) -> bytes:
    return ("SUCCESS\n" + _LINE_START_DOT.sub("..", text) + "\n.\n").encode("utf-8")


@dataclass(frozen=True)
class Reply:
    data: bytes                 # what the host writes (b"": nothing at all)
    request: str | None = None  # "GET key", "KEYS", "PUT key"... for the emulator's log
    reqid: str | None = None    # a V2 answer's request id (the wire faults need it)


class Host:
    """The metadata a VM has and the agent's answers to it; one line at a time."""

    def __init__(self, values: dict[str, Any], v1_only: bool = False):
        self.values: dict[str, Any] = {k: host_text(k, v) for k, v in values.items()}
        self.values = {k: v for k, v in self.values.items() if v is not None}
        self.v1_only = v1_only   # an older host: neither NEGOTIATE nor frames are known

    def answer(self, raw: bytes) -> Reply:
        text = raw.decode("utf-8", "replace").rstrip()
        parts = _LINE.match(text)
        if not parts:
            return Reply(INVALID)
        cmd, want = parts.group(1), parts.group(2)
        if cmd in ("NEGOTIATE", "GET") and not want:
            return Reply(INVALID)
        reqid = None
        if cmd == "V2" and self.v1_only:
            return Reply(INVALID)
        if cmd == "V2":
            frame = self._parse_v2(want)
            if frame is None:
                return Reply(b"")            # a corrupt frame: the host says nothing
            reqid, cmd, want = frame
        return self._dispatch(cmd, want, reqid)

    @staticmethod
    def _parse_v2(inframe: str) -> tuple[str, str, str] | None:
        m = _V2.search(inframe)
        if not m:
            return None
        body = m.group(3) + " " + m.group(4)
        clen = int(m.group(1))
        if not clen > 0 or clen != len(body) or m.group(2) != crc32_hex(body):
            return None
        m2 = _V2_BODY.match(m.group(4))
        if not m2:
            return None
        return m.group(3), m2.group(1), node_b64decode(m2.group(2))

    def _dispatch(self, cmd: str, want: str, reqid: str | None) -> Reply:
        if cmd == "GET":
            key = want.strip()
            if not key:
                return self._fail(reqid, "Invalid GET Request", "GET")
            return self._value(self.values.get(key), reqid, f"GET {key}")
        if cmd == "NEGOTIATE" and reqid is None:
            if self.v1_only:
                return Reply(INVALID)
            return Reply(b"V2_OK\n" if want == "V2" else b"FAILURE\n")
        if cmd == "KEYS":
            keys = [k for k in self.values if not k.startswith("sdc:")]
            return self._value("\n".join(keys), reqid, "KEYS")
        if cmd == "DELETE" and reqid is not None:
            key = want.strip()
            if not key:
                return self._fail(reqid, "Invalid DELETE Request", "DELETE")
            return self._update(key, None, reqid, f"DELETE {key}")
        if cmd == "PUT" and reqid is not None:
            terms = want.strip().split(" ")
            key = node_b64decode(terms[0]).strip() if len(terms) == 2 else ""
            if not key:
                return self._fail(reqid, "Invalid PUT Request", "PUT")
            return self._update(key, node_b64decode(terms[1]), reqid, f"PUT {key}")
        return self._fail(reqid, f"Unknown command {cmd}", cmd)

    def _update(self, key: str, value: str | None, reqid: str, request: str) -> Reply:
        if key.startswith("sdc:"):
            return self._fail(reqid, 'Cannot update the "sdc" Namespace.', request)
        if value:                             # setMetadata: an empty value removes the key
            self.values[key] = value
        else:
            self.values.pop(key, None)
        return self._value("OK", reqid, request)

    @staticmethod
    def _value(value: Any, reqid: str | None, request: str) -> Reply:
        if reqid is None:
            data = (b"NOTFOUND\n" if value is None else b"FAILURE\n"
                    if isinstance(value, Unservable) else v1_success(value))
        else:
            data = (v2_frame(reqid, "NOTFOUND") if value is None else v2_frame(reqid, "FAILURE")
                    if isinstance(value, Unservable) else v2_frame(reqid, "SUCCESS", value))
        return Reply(data, request, reqid)

    @staticmethod
    def _fail(reqid: str | None, message: str, request: str) -> Reply:
        data = b"FAILURE\n" if reqid is None else v2_frame(reqid, "FAILURE", message)
        return Reply(data, request, reqid)
