"""Coverage-guided fuzzing (atheris) of the CPIO seed reader, providers/cpioarchive.py.

The seed disk is attacker-controlled bytes, so the reader's contract is: any input gives the
wanted files or a CpioFormatError, within memory and time bounds. Anything else that escapes
(IndexError, struct.error, RecursionError, MemoryError...) is a crash that atheris reports
with the input that caused it. Seeds: fuzz/corpus/cpio/ (archives made by GNU cpio in every
format). Run with fuzz/run.sh.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    from providers.cpioarchive import CpioFormatError, archive_format, iter_entries, read_archive
    from providers.seedfiles import SEED_FILES


def test_one_input(data: bytes) -> None:
    archive_format(data[:6])
    try:
        files = read_archive(data, SEED_FILES, source="fuzz")
    except CpioFormatError:
        pass
    else:
        assert set(files) <= set(SEED_FILES), files.keys()
        assert all(isinstance(v, bytes) for v in files.values())
    try:
        for entry in iter_entries(data, source="fuzz"):
            assert len(entry.data) <= 1 << 20
    except CpioFormatError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
