"""Figures the suite prints at its end (the understanding data set, the intent model's held-out
set): a test fills its section; the terminal summary prints them. Under pytest-xdist the tests
run in worker processes, so each worker hands its sections to the controller, which prints them
(the hooks are in tests/conftest.py)."""

from __future__ import annotations

import json

SECTIONS: dict[str, list[str]] = {}
_KEY = "addad_summary"


def section(title: str) -> list[str]:
    """The lines of `title`, emptied: what the calling test appends is printed at the end."""
    lines = SECTIONS.setdefault(title, [])
    lines.clear()
    return lines


def hand_over(workeroutput: dict) -> None:
    """In an xdist worker: pass this process's sections to the controller."""
    if SECTIONS:
        workeroutput[_KEY] = json.dumps(SECTIONS)


def take_over(workeroutput: dict) -> None:
    """In the controller: keep what a worker handed over."""
    if _KEY in workeroutput:
        SECTIONS.update(json.loads(workeroutput[_KEY]))


def print_sections(terminalreporter) -> None:
    for title, lines in SECTIONS.items():
        if lines:
            terminalreporter.write_sep("=", title)
            for line in lines:
                terminalreporter.write_line(line)
