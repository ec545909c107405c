"""Coverage-guided fuzzing (atheris) of the SmartOS V2 frame decoder,
providers/smartos_protocol.py.

The serial line carries whatever the host (or line noise) sends, so `decode_frame` must give
a Frame or a ProtocolError for any bytes, and a decoded frame must encode back to a line that
decodes to the same frame. Random bytes rarely pass the length and CRC checks, so the first
input byte chooses a mode: a raw line, or a body wrapped in a correct `V2 <len> <crc>` header
so the fuzzer reaches the body's parser. Seeds: fuzz/corpus/smartos_frame/ (the protocol
specification's test vectors). Run with fuzz/run.sh.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    from providers.smartos_protocol import ProtocolError, checksum, decode_frame, encode_frame


def framed(body: bytes) -> bytes:
    return b"V2 %d %s %s" % (len(body), checksum(body).encode(), body)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    line = framed(data[1:]) if data[0] & 1 else data[1:]
    try:
        frame = decode_frame(line)
    except ProtocolError:
        return
    assert decode_frame(encode_frame(frame)) == frame, (line, frame)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
