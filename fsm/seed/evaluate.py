"""What the agent would make of a seed's files: its own parsers, then its own validators.

One code path for `metadata seed cpio|nocloud` (which refuse to write a seed the agent would
refuse) and `metadata seed inspect` (which reports on one), so neither can drift from the
agent. The agent stops at the first bad file; a person fixing a seed wants every problem at
once, so each file also goes through the agent's parser on its own (the parsers treat each
file independently, so the messages are exactly the agent's), and the validators then run
on what the files that parsed give, as the IDENTITY and USERSCRIPT steps would run them.

- `problems`: the agent would fail with exit 96 (a MetadataError or ConfigError).
- `warnings`: the agent carries on but skips something (a key line, a non-script user-data,
  an unknown config.toml key, a network item it cannot apply, a seed with no usable data):
  every warning the agent would record (`Metadata.warnings` and the key lines), so `seed
  inspect` says "refuse" only when the agent would. The seed writers refuse those too (bar
  a NoCloud user-data that is not a script): a key the user passed and the guest silently
  drops is a lock-out found too late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fsm.errors import AgentError
from fsm.record import field, record
from operations.validate import parse_authorized_keys, validate_hostname, validate_script
from providers import nocloud, seedfiles
from providers.model import Metadata


@record
class Evaluation:
    kind: str                                   # "cpio" or "nocloud"
    files: dict[str, bytes]
    metadata: Metadata | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _parser_warnings(out: Evaluation) -> Iterator[None]:
    """What the providers' parsers log as warnings (the agent's own words), into `out`."""
    logger = logging.getLogger("providers")
    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        out.warnings.extend(m for m in dict.fromkeys(handler.messages) if m not in out.warnings)


def _validate(md: Metadata, out: Evaluation) -> None:
    """The checks the IDENTITY and USERSCRIPT steps make before they write anything."""
    if md.hostname is not None:
        try:
            validate_hostname(md.hostname, md.origin("hostname"))
        except AgentError as e:
            out.problems.append(str(e))
    if md.ssh_keys:
        try:
            _valid, skipped = parse_authorized_keys("\n".join(md.ssh_keys), md.origin("ssh_keys"))
            out.warnings.extend(skipped)
        except AgentError as e:
            out.problems.append(str(e))
    if md.user_script is not None:
        try:
            validate_script(md.user_script, md.origin("user_script"))
        except AgentError as e:
            out.problems.append(str(e))


def evaluate_cpio(files: dict[str, bytes], source: str = "cpio") -> Evaluation:
    """The seed files of a CPIO seed (name -> contents), as providers/cpio.py reads them."""
    out = Evaluation("cpio", dict(files))
    parsed = {}
    for name in seedfiles.SEED_FILES:
        if name not in files:
            continue
        try:
            with _parser_warnings(Evaluation("cpio", {})):
                seedfiles.read_seed({name: files[name]}, source)
            parsed[name] = files[name]
        except AgentError as e:
            out.problems.append(str(e))
    with _parser_warnings(Evaluation("cpio", {})):   # read_seed's warnings are returned
        reading = seedfiles.read_seed(parsed, source)
    out.metadata = reading.metadata
    out.warnings.extend(reading.warnings)
    _validate(reading.metadata, out)
    return out


def evaluate_nocloud(files: dict[str, bytes]) -> Evaluation:
    """The files of a NoCloud volume (name -> contents), as providers/nocloud.py reads them."""
    out = Evaluation("nocloud", dict(files))
    parsed = {}
    # Each file alone only for what refuses it; the warnings are those of the whole seed
    # (a file alone would be "no usable data" where the seed is not).
    with _parser_warnings(Evaluation("nocloud", {})):
        for name in nocloud.FILES:
            if name not in files:
                continue
            try:
                nocloud.parse_seed({name: files[name]})
                parsed[name] = files[name]
            except AgentError as e:
                out.problems.append(str(e))
    with _parser_warnings(out):
        md = nocloud.parse_seed(parsed)
    out.metadata = md
    out.warnings.extend(w for w in md.warnings if w not in out.warnings)
    _validate(md, out)
    return out
