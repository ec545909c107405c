"""Differential fuzzing (atheris) of the two YAML parsers providers/yamlload.py uses.

`yamlload.load` hands text that `libyaml_agrees` admits to libyaml's event parser under
PyYAML's composer, constructor and resolver, and everything else to PyYAML's own parser.
That split is only right if, for every admitted text, libyaml's path gives what PyYAML's
SafeLoader gives: the same objects, or an error where PyYAML has one. This target decodes
each input as UTF-8 and, where `libyaml_agrees`, fails on any difference. (libyaml refusing
a text PyYAML accepts is allowed: `load` parses it again with PyYAML's parser.)
Seeds: fuzz/corpus/yaml_parsers/ (cloud-config, network-config and meta-data documents as
the providers serve them). Run with fuzz/run.sh.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    import yaml

    from providers import yamlload

FAST = yamlload.fast_loader()


def outcome(text: str, loader: type) -> tuple[str, object]:
    try:
        return "ok", yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoaders
    except yaml.YAMLError:
        return "error", None
    except RecursionError:
        return "deep", None


def test_one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if not yamlload.libyaml_agrees(text):
        return
    fast = outcome(text, FAST)
    if fast[0] == "error":
        return   # load() falls back to PyYAML's parser
    assert fast == outcome(text, yaml.SafeLoader), text


def main() -> None:
    assert FAST is not None, "PyYAML was built without libyaml: nothing to compare"
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
