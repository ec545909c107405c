"""providers/yamlload.py: PyYAML's own results and errors, without compiling its
NON_PRINTABLE pattern at import (issue 17)."""

from __future__ import annotations

import pytest
import yaml
from guest import fresh_python
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import yamlload


def test_pyyaml_still_carries_the_pattern_deferred():
    """If a PyYAML release changed the pattern's text, the deferral would silently stop
    applying (slower, never wrong): this says so instead."""
    assert yaml.reader.Reader.NON_PRINTABLE.pattern == yamlload.PYYAML_NON_PRINTABLE


def _outcome(text: str, loader: type) -> tuple[str, object]:
    try:
        return "ok", yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoaders
    except yaml.YAMLError as e:
        return "error", str(e)


@pytest.mark.parametrize("text", [
    "#cloud-config\nhostname: web-1\nusers: [{name: ops}]\n",
    "a: 1\r\nb:\t'tab'\n",
    "a: \x07bell\n",                # ASCII control character: refused
    "a: b\x1b[0m\n",                # an escape sequence pasted from a terminal
    "a: \x7f\n",                    # DEL
    "a: \x00\n",
    "name: café\n",                 # non-ASCII, allowed
    "a: \x85next-line\n",          # NEL: allowed by YAML
    "a: \ufeffbom-inside\n",
    "a: \ufffe\n",                  # a non-character: refused
    "a: \U0001f600\n",
    "a: \x9b\n",                    # C1 control: refused
    "a: 'x'\nb: \x01\nc: é\n",      # mixed: the first bad one is reported
])
def test_same_result_and_error_as_pyyaml(text):
    assert _outcome(text, yamlload.safe_loader()) == _outcome(text, yaml.SafeLoader)


@given(st.text(max_size=60))
def test_same_result_and_error_as_pyyaml_for_any_text(text):
    assert _outcome(text, yamlload.safe_loader()) == _outcome(text, yaml.SafeLoader)


# Text drawn from YAML's own punctuation, so that most examples are documents (valid or
# nearly) and reach past the printable check: plain st.text() is mostly refused early.
YAMLISH = st.text(alphabet=st.sampled_from(list(": -?[]{},'\"#&*!|>%@`~.\n\t abcnoyTF019é\x85\x07")),
                  max_size=80)


@given(YAMLISH)
@settings(max_examples=500, deadline=None)
def test_same_result_and_error_as_pyyaml_for_yaml_like_text(text):
    assert _outcome(text, yamlload.safe_loader()) == _outcome(text, yaml.SafeLoader)


def test_import_defers_the_pattern_until_non_ascii_text_needs_it():
    """In a fresh interpreter: importing through yamlload leaves the pattern uncompiled, an
    ASCII document keeps it so, and the first non-ASCII one compiles it, once. Every
    other pattern PyYAML compiles at import is a real compiled pattern."""
    probe = (
        "import re, sys\n"
        "from providers import yamlload\n"
        "yaml = yamlload.import_yaml()\n"
        "pattern = yaml.reader.Reader.NON_PRINTABLE\n"
        "assert type(pattern).__name__ == '_Deferred' and pattern.compiled is None\n"
        "assert re.compile is not None and re.compile.__module__ == 're'\n"
        "assert isinstance(yaml.resolver.Resolver.yaml_implicit_resolvers['t'][0][1],"
        " re.Pattern)\n"
        "assert yamlload.safe_load('hostname: web-1\\nkeys: [a, b]\\n') == "
        "{'hostname': 'web-1', 'keys': ['a', 'b']}\n"
        "assert pattern.compiled is None\n"
        "assert yamlload.safe_load('name: caf\\u00e9\\n') == {'name': 'caf\\u00e9'}\n"
        "assert isinstance(pattern.compiled, re.Pattern)\n"
        "print('ok')\n")
    assert fresh_python(probe) == "ok"
