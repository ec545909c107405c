"""fsm/settings.py: a settings file of comments and blank lines alone (an image's
commented-out template) gives the defaults without tomllib, exactly as tomllib would."""

from __future__ import annotations

import pytest
from guest import fresh_python
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm.errors import ConfigError
from fsm.settings import defaults, only_comments, parse, toml_parser

tomllib = toml_parser()   # tomli before Python 3.11

TEMPLATE = """\
# /etc/metadata-agent.toml: every key is optional; the defaults are shown.
#
#[log]
#level = "info"          # debug, info, warning or error
\t# [timeouts]
#   fetch = 60.0  — seconds FETCH may spend in retries (UTF-8 in a comment is fine)

"""


@pytest.mark.parametrize(("text", "blank"), [
    ("", True), ("\n\n", True), (" \t \r\n", True), (TEMPLATE, True),
    (TEMPLATE.replace("\n", "\r\n"), True),
    ("# a\r", False),                     # a final CR without its LF: tomllib refuses it
    ("# a\rb\n", False),                  # a lone CR: tomllib refuses it
    ("# bell \x07\n", False),             # control characters: refused in comments
    ("# del \x7f\n", False),
    ("# tab\tis allowed\n", True),
    ("\ufeff# BOM\n", False),             # left to tomllib
    ("\f\n", False),                      # form feed is not TOML whitespace
    ("[log]\n", False), ("x = 1 # c\n", False), ("#ok\nlevel\n", False),
])
def test_only_comments_where_tomllib_gives_the_empty_document(text, blank):
    assert only_comments(text) is blank
    if blank:
        assert tomllib.loads(text) == {}
        assert parse(text).values == defaults() and parse(text).given == frozenset()


@given(st.lists(st.tuples(st.sampled_from(["", " ", "\t", " \t"]),
                          st.one_of(st.just(""), st.text(max_size=30).map(lambda c: "#" + c)),
                          st.sampled_from(["\n", "\r\n"])), max_size=8))
@settings(max_examples=300, deadline=None)
def test_the_fast_path_never_disagrees_with_tomllib(lines):
    """Generated lines of indentation, comments with any characters, LF or CRLF: where
    only_comments says the file is empty, tomllib parses it to {}; where it says not,
    tomllib either refuses the text or finds something in it."""
    text = "".join(indent + body + end for indent, body, end in lines)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        doc = None
    if only_comments(text):
        assert doc == {}
    else:
        assert doc != {}


def test_a_template_is_read_without_importing_tomllib_and_a_bad_file_still_refused():
    probe = (
        "import sys\n"
        "from fsm.settings import parse\n"
        f"assert parse({TEMPLATE!r}).given == frozenset()\n"
        "print('tomllib' in sys.modules)\n")
    assert fresh_python(probe) == "False"
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse("# fine\n# bell \x07\n")
