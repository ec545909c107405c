"""Errors that carry their SMF exit code, so the CLI never has to guess.

The codes are those of illumos `/lib/svc/share/smf_include.sh`: an operator must act on
SMF_EXIT_ERR_FATAL (95); SMF_EXIT_ERR_CONFIG (96) means bad settings or bad metadata.
"""

from __future__ import annotations

SMF_EXIT_OK = 0
SMF_EXIT_ERR_FATAL = 95
SMF_EXIT_ERR_CONFIG = 96

SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as messages quote it: repr (so newlines and control characters stay visible
    and cannot forge log lines), cut to `limit` characters with the full length named.
    Metadata controls these values; a message quoting one whole could grow the checkpoint
    past its cap or flood the service log. The repr is built from a bounded part only: a
    YAML alias bomb must not become a string of millions of characters first."""
    if isinstance(value, (str, bytes)):
        text = repr(value[:limit + 1])
        size = len(value)
    else:
        import reprlib

        bounded = reprlib.Repr()
        bounded.maxstring = bounded.maxother = limit
        bounded.maxlevel = 3
        text = bounded.repr(value)
        size = None
    if len(text) <= limit and (size is None or size <= limit):
        return text
    return f"{text[:limit]}... ({size} characters)" if size is not None else f"{text[:limit]}..."


# Longest problem text an error carries: a provider that quotes a value whole (instead of
# through `shown`) still cannot make a message, a log line or the checkpoint huge.
MAX_PROBLEM_CHARS = 500


def cut(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """`text`, cut to `limit` characters with the full length named."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class AgentError(Exception):
    """Base of every error the agent reports; `exit_code` is what SMF sees."""

    exit_code = SMF_EXIT_ERR_FATAL


class ConfigError(AgentError):
    """The agent's own settings are wrong (TOML file or SMF properties)."""

    exit_code = SMF_EXIT_ERR_CONFIG

    def __init__(self, source: str, key: str, problem: str):
        source, key, problem = cut(source, 200), cut(key, 200), cut(problem)
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}")


class MetadataError(AgentError):
    """The metadata a provider returned is malformed: names the source and the field."""

    exit_code = SMF_EXIT_ERR_CONFIG

    def __init__(self, source: str, field: str, problem: str):
        source, field, problem = cut(source, 200), cut(field, 200), cut(problem)
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field}: {problem}")


class ServiceError(AgentError):
    """A metadata service could not be reached or answered wrongly within its bounds."""

    exit_code = SMF_EXIT_ERR_FATAL


class CommandError(AgentError):
    """A command exited non-zero, timed out or could not be started."""

    exit_code = SMF_EXIT_ERR_FATAL

    def __init__(self, argv: list[str], returncode: int | None, stderr: str, why: str = ""):
        self.argv, self.returncode, self.stderr = list(argv), returncode, stderr
        what = why or f"exit code {returncode}"
        detail = cut(stderr.strip().splitlines()[-1], 300) if stderr.strip() else ""
        msg = f"{cut(' '.join(argv), 300)}: {what}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class ParseError(AgentError):
    """A command printed something its parser did not expect: names the command and line."""

    exit_code = SMF_EXIT_ERR_FATAL

    def __init__(self, command: str, line: str, problem: str):
        self.command, self.line, self.problem = command, line, problem
        super().__init__(f"{command}: unexpected output {shown(line)}: {cut(problem)}")
