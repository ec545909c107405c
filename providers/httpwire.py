"""HTTP/1.1 over a plain TCP socket, for the http:// metadata services (EC2, DigitalOcean).

Why not `http.client` here: importing it imports `ssl` (at module level, to define
HTTPSConnection), the `email` package (its header parser) and, for a host given as text,
the `idna` codec with `stringprep`. Measured with `python -X importtime` on an EC2 first
boot, that was about 13 ms of CPU of an agent whose whole first boot is held to 6× a bare
interpreter (issue 17), for services that answer a handful of small documents over plain
HTTP on a link-local address. What is written here is the small part of HTTP/1.1 such an
exchange needs (RFC 9112): one request per connection (`Connection: close`), the status
line, bounded header lines, and a body framed by Content-Length, chunked coding or the
close of the connection; a body cut short is an error, never half a document. https://
(a NoCloud seed URL may be one) still goes through `http.client`, which is only imported
then. The interface is the slice of `http.client` that providers/http.py uses
(`request`, `getresponse`, `status`, `getheaders`, `read`, `close`, `sock`), so the retry,
deadline and size rules there apply to both alike.
"""

from __future__ import annotations

import _socket  # socket.py's C core: see `connect`
import io

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from socket import socket

MAX_LINE = 65536      # http.client's _MAXLINE: one status, header or chunk-size line
MAX_HEADERS = 100     # http.client's _MAXHEADERS
BODY_EXPECTED = ("PUT", "POST", "PATCH")   # sent `Content-Length: 0` when bodiless


class ProtocolError(Exception):
    """The answer is not HTTP/1.x as framed here: no status line, too many or too long
    header lines, a bad chunk, a body cut short. Retried as a transient failure."""


def connect(host: str | bytes, port: int, timeout: float) -> socket:
    """`socket.create_connection((host, port), timeout)`, on the C module that socket.py
    wraps. Importing socket.py builds four IntEnum classes from every constant the platform
    defines and imports selectors and array: 13 M instructions, about 3 ms of CPU, a
    seventh of a bare interpreter's start, on every HTTP boot, for one connect (issue 17).
    The loop is create_connection's: each address getaddrinfo gives, in its order, until
    one connects, else the last error. The socket is close-on-exec, as socket.py's are."""
    last: OSError | None = None
    for family, kind, proto, _name, address in _socket.getaddrinfo(host, port, 0,
                                                                   _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as e:
            sock.close()
            last = e
    raise last or OSError(f"no address for {host!r}")


class _SocketStream(io.RawIOBase):
    """The socket as the raw stream under an io.BufferedReader: what `makefile("rb")`
    gives, without socket.py. Reads raise the socket's timeout as it does."""

    def __init__(self, sock: socket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        return self._sock.recv_into(buffer)


class Connection:
    """One exchange with host:port; `sock` is there once connected (for a shutdown from
    another thread at the caller's deadline)."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket | None = None
        self._response: Response | None = None

    def request(self, method: str, target: str, headers: dict[str, str],
                body: bytes | None = None) -> None:
        # An ASCII host as bytes: a str host would make getaddrinfo encode it with the
        # idna codec, importing it and stringprep (the literal addresses are ASCII).
        host = self.host.encode("ascii") if self.host.isascii() else self.host
        self.sock = connect(host, self.port, self.timeout)
        authority = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != 80:
            authority += f":{self.port}"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}",
                 "Accept-Encoding: identity", "Connection: close"]
        names = {name.lower() for name in headers}
        if body is not None and "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
        elif method.upper() in BODY_EXPECTED and "content-length" not in names:
            lines.append("Content-Length: 0")
        for name, value in headers.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ValueError(f"header {name!r}: a line break or NUL in a header")
            lines.append(f"{name}: {value}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        self._response = Response(io.BufferedReader(_SocketStream(self.sock)), method)

    def getresponse(self) -> Response:
        if self._response is None:
            raise ProtocolError("no request sent")
        self._response.begin()
        return self._response

    def close(self) -> None:
        if self._response is not None:
            self._response.fp.close()
        if self.sock is not None:
            self.sock.close()


class Response:
    """The answer: status and headers read by `begin`, the body by `read`."""

    def __init__(self, fp, method: str):
        self.fp = fp
        self.method = method
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._left: int | None = None     # body bytes still due (Content-Length, or chunk)
        self._chunked = False
        self._done = False

    def _line(self) -> bytes:
        line = self.fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError("a line longer than 65536 bytes")
        return line

    def begin(self) -> None:
        for _ in range(MAX_HEADERS):   # interim 1xx answers are skipped, boundedly
            line = self._line()
            if not line:
                raise ProtocolError("the connection closed before a status line")
            version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
                raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
            self.status = int(code)
            self.headers = self._header_lines()
            if not 100 <= self.status < 200:
                break
        else:
            raise ProtocolError("too many interim answers")
        fields = {name.lower(): value for name, value in self.headers}
        if self.method.upper() == "HEAD" or self.status in (204, 304):
            self._done = True
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            self._chunked, self._left = True, 0
        elif fields.get("content-length", "").isdigit():
            self._left = int(fields["content-length"])

    def _header_lines(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            if len(headers) >= MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} header lines")
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:   # (a line without a colon is ignored, as http.client's parser does)
                headers.append((name.strip(), value.strip()))

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self.headers)

    def read(self, amount: int) -> bytes:
        """Up to `amount` bytes of the body; b"" at its end."""
        if self._done:
            return b""
        if self._chunked and self._left == 0:
            self._left = self._chunk_size()
            if self._left == 0:
                self._header_lines()   # the trailer section, discarded
                self._done = True
                return b""
        elif self._left == 0:   # Content-Length: 0
            self._done = True
            return b""
        want = amount if self._left is None else min(amount, self._left)
        data = self.fp.read1(want)
        if self._left is None:   # framed by the close of the connection
            self._done = not data
            return data
        if not data:
            raise ProtocolError(f"the body was cut short ({self._left} bytes missing)")
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                if self._line() not in (b"\r\n", b"\n"):
                    raise ProtocolError("a chunk not followed by its line end")
            else:
                self._done = True
        return data

    def _chunk_size(self) -> int:
        line = self._line()
        size = line.split(b";", 1)[0].strip()
        if not size or size.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError(f"a bad chunk size line: {line[:80]!r}")
        return int(size, 16)
