"""One log line per event on stdout, which SMF sends to the service's log file.

Each line carries a UTC timestamp, the level, and the phase/step being run, so an operator
reading `svcs -L` output can tell where a boot stopped without any other tool.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator

_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="-")


@contextlib.contextmanager
def where(label: str) -> Iterator[None]:
    """Tag every line logged inside with `label` (e.g. `NETWORK/addresses`)."""
    token = _where.set(label)
    try:
        yield
    finally:
        _where.reset(token)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            msg += "\n" + self.formatException(record.exc_info)
        return f"{stamp}.{int(record.msecs):03d}Z {record.levelname:<7} [{_where.get()}] {msg}"


class _FlushingHandler(logging.StreamHandler):
    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()  # a SIGKILL must not eat lines already logged

    def handleError(self, record: logging.LogRecord) -> None:
        # A closed or full log must never stop the guest from being configured.
        pass


def setup(level: str = "info", console: str = "", to_stderr: bool = False) -> None:
    """Log to stdout (the SMF service log), or to stderr where stdout is a report."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = _FlushingHandler(sys.stderr if to_stderr else sys.stdout)
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    if console:
        try:
            stream = open(console, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        except OSError as e:
            logging.getLogger(__name__).warning("cannot copy the log to %s: %s", console, e.strerror)
        else:
            extra = _FlushingHandler(stream)
            extra.setFormatter(_Formatter())
            root.addHandler(extra)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # transitions narrates every callback at INFO; our own lines already say each move.
    logging.getLogger("transitions").setLevel(logging.WARNING)
