"""pytest plugin (loaded by tests/test_understanding.py through `pytest_plugins`): prints the
understanding data-set report in the terminal summary, so accuracy is visible on every run."""

from __future__ import annotations

LINES: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not LINES:
        return
    terminalreporter.write_sep("=", "understanding data set")
    for line in LINES:
        terminalreporter.write_line(line)
