"""providers/yamlload.py: PyYAML's own results and errors, without compiling its
NON_PRINTABLE pattern at import (issue 17)."""

from __future__ import annotations

import os

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


def _outcome(text: str, loader: type | None) -> tuple[str, object]:
    """What PyYAML makes of `text` with this SafeLoader (None: yamlload.load, libyaml's
    parser first)."""
    try:
        if loader is None:
            return "ok", yamlload.load(text)
        return "ok", yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoaders
    except yaml.YAMLError as e:
        return "error", str(e)


def _same_as_pyyaml(text: str) -> None:
    expected = _outcome(text, yaml.SafeLoader)
    assert _outcome(text, yamlload.safe_loader()) == expected
    assert _outcome(text, None) == expected


# Text drawn from YAML's own punctuation, so that most examples are documents (valid or
# nearly): plain text from st.text() is mostly refused at its first character.
YAMLISH = st.text(alphabet=st.sampled_from(list(": -?[]{},'\"#&*!|>%@`~.\n\t abcnoyTF019é\x85")),
                  max_size=80)


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
    _same_as_pyyaml(text)


@given(st.text(max_size=60))
def test_same_result_and_error_as_pyyaml_for_any_text(text):
    _same_as_pyyaml(text)


@given(YAMLISH)
@settings(max_examples=2000, deadline=None)
def test_libyamls_parser_gives_pyyamls_result_for_yaml_like_text(text):
    """libyaml's events under PyYAML's composer: the same objects as PyYAML's own parser,
    or (where libyaml refuses) PyYAML's own error."""
    _same_as_pyyaml(text)


def test_libyaml_parses_the_corpus_documents_as_pyyaml_does():
    """Every YAML document the providers' corpus holds (what clouds and hypervisors
    really serve), through both parsers: the same objects."""
    corpus = os.path.join(os.path.dirname(__file__), "corpus")
    seen = fast = 0
    for folder, _dirs, files in os.walk(corpus):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            try:
                text = data.decode("utf-8")
                expected = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506
            except (UnicodeDecodeError, yaml.YAMLError):
                continue
            if not isinstance(expected, (dict, list)):
                continue
            assert yamlload.load(text) == expected, name
            seen += 1
            fast += yamlload.libyaml_agrees(text)
    assert seen >= 10 and fast >= seen // 2   # most real documents take libyaml's parser


@pytest.mark.parametrize(("text", "agrees"), [
    ("#cloud-config\nhostname: web-1  # a comment\nusers: [{name: ops}]\n", True),
    ("a:\tb\n", False), ("a: !!str 1\n", False), ("a: caf\u00e9\n", False),
    ("a: |#\n", False), ("{#c\n}", False), ("url: 'http://x/#frag'\n", False),
])
def test_what_goes_to_libyaml(text, agrees):
    assert yamlload.libyaml_agrees(text) is agrees
    _same_as_pyyaml(text)


def test_node_limits_apply_on_the_libyaml_path():
    """cloud-config's node counting lives in compose_node, which the libyaml path keeps."""
    from providers import cloudconfig

    assert yamlload.fast_loader() is not None   # PyYAML with libyaml, as Debian's is
    many = "#cloud-config\nk: [" + ",".join(["1"] * (cloudconfig.MAX_NODES + 1)) + "]\n"
    assert yamlload.libyaml_agrees(many)
    out = cloudconfig.load(many.encode(), "user-data")
    assert out.config is None and "YAML nodes" in out.warnings[0]
    deep = "#cloud-config\nk: " + "[" * 5000 + "]" * 5000 + "\n"
    assert yamlload.libyaml_agrees(deep)
    out = cloudconfig.load(deep.encode(), "user-data")
    assert out.config is None and "levels deep" in out.warnings[0]


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
