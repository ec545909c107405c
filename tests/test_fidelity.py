"""docs/fidelity.md keeps one row per command the agent can run, and every stand-in cites
the illumos source it follows.

The agent's commands are found in its code, not in a list kept by hand: every string
constant in fsm/, providers/ and operations/ that is an absolute path under a bin or sbin
directory (System.run insists on absolute paths, so a command cannot hide behind a bare
name). That set, the stand-ins sim installs, and the table's rows must be the same.
"""

from __future__ import annotations

import ast
import importlib
import os
import re

from guest import PROJECT_DIR

from sim.commands import COMMAND_PATHS, OPTIONAL_COMMAND_PATHS

DOC = os.path.join(PROJECT_DIR, "docs", "fidelity.md")
AGENT_PACKAGES = ("fsm", "providers", "operations")
COMMAND_PATH = re.compile(r"/(?:usr/)?s?bin/[A-Za-z0-9._-]+")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def agent_command_paths() -> dict[str, str]:
    """basename -> path of every command path the agent's code names."""
    found: dict[str, str] = {}
    for package in AGENT_PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(PROJECT_DIR, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                            and COMMAND_PATH.fullmatch(node.value)):
                        found[os.path.basename(node.value)] = node.value
    return found


def table_rows() -> dict[str, list[str]]:
    """command -> its cells, from the one table in docs/fidelity.md."""
    with open(DOC, encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith("| `")]
    rows: dict[str, list[str]] = {}
    for line in lines:
        cells = [c.strip() for c in CELL_SPLIT.split(line.strip().strip("|"))]
        command = cells[0].strip("`")
        assert command not in rows, f"two rows for {command}"
        rows[command] = cells
    return rows


def test_the_table_lists_exactly_the_commands_the_agent_can_run():
    agent = agent_command_paths()
    installed = {**COMMAND_PATHS, **OPTIONAL_COMMAND_PATHS}
    assert len(agent) >= 20
    assert set(agent) == set(installed), set(agent) ^ set(installed)
    assert all(agent[name] == installed[name] for name in agent), "a command at another path"
    assert set(table_rows()) == set(agent), set(table_rows()) ^ set(agent)


def test_every_row_says_what_is_run_where_it_comes_from_and_what_is_left_out():
    for command, cells in table_rows().items():
        assert len(cells) == 5, command
        argv, evidence, modelled, missing = cells[1:]
        assert argv and modelled and missing, command
        assert re.search(r"[\w/.-]+\.(c|h|[18])\b", evidence), f"{command}: no source file cited"


def test_every_standin_docstring_cites_its_source():
    for command in {**COMMAND_PATHS, **OPTIONAL_COMMAND_PATHS}:
        module = importlib.import_module(f"sim.standins.{command.replace('-', '_')}")
        doc = module.__doc__ or ""
        # illumos-gate's path, open-vm-tools' rpctool, or IPS's (pkg(1) is not in the gate)
        assert re.search(r"usr/src/[\w/.-]+|rpctool/rpctool\.c|pkg5 src/[\w/.-]+", doc), command


def test_the_tests_cited_in_the_document_exist():
    with open(DOC, encoding="utf-8") as f:
        cited = re.findall(r"`(test_\w+\.py)::(test_\w+)`", f.read())
    assert cited
    for filename, test in cited:
        with open(os.path.join(PROJECT_DIR, "tests", filename), encoding="utf-8") as f:
            assert f"def {test}(" in f.read(), f"{filename}::{test}"
