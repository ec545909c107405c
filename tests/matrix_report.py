"""pytest plugin: count the crash-matrix cases and print the matrix size after the suite.

Issue 5 asks that the suite say how big the matrix it ran was, so a reader of `make test`
output sees at once whether a change shrank it (a mis-parametrised table silently running
ten cases instead of a hundred would otherwise look like success). A case is any test
marked `crash_matrix`; it counts as run when its setup or call was attempted (a failing
fixture is a case that did not pass, not one that did not exist) and as passed when its
call passed. Skipped cases are reported apart. Works under pytest-xdist: the controller
sees every worker's reports.

Registered from tests/conftest.py (`pytest_plugins = ["matrix_report"]`) or with
`-p matrix_report` on the command line.
"""

from __future__ import annotations

import pytest

MARK = "crash_matrix"


class _Counts:
    def __init__(self) -> None:
        self.run: set[str] = set()
        self.passed: set[str] = set()
        self.skipped: set[str] = set()


_counts = _Counts()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARK}: a crash-matrix case (counted and reported by tests/matrix_report.py)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if MARK not in report.keywords:
        return
    if report.skipped:
        _counts.skipped.add(report.nodeid)
        return
    if report.when == "setup" and report.failed:
        _counts.run.add(report.nodeid)
    elif report.when == "call":
        _counts.run.add(report.nodeid)
        if report.passed:
            _counts.passed.add(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not (_counts.run or _counts.skipped):
        return
    line = f"crash matrix: {len(_counts.run)} cases run, {len(_counts.passed)} passed"
    if _counts.skipped:
        line += f", {len(_counts.skipped)} skipped"
    terminalreporter.write_line(line, bold=True,
                                green=len(_counts.passed) == len(_counts.run),
                                red=len(_counts.passed) != len(_counts.run))
