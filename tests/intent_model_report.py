"""pytest plugin (loaded by tests/test_intent_model.py through `pytest_plugins`): prints the
intent model's held-out figures in the terminal summary."""

from __future__ import annotations

LINES: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not LINES:
        return
    terminalreporter.write_sep("=", "intent model, held-out set")
    for line in LINES:
        terminalreporter.write_line(line)
