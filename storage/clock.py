"""Where "now" comes from: one clock, injected, never read behind the caller's back.

A clock is a callable returning an aware UTC datetime. The store holds the process's clock and
hands it to whoever asks (the engine, the dispatcher, the channels, the CLI commands); code
below them is given `now` (or the local `today` derived from it), never the wall clock.

Production uses the system clock. `ADDAD_CLOCK` (bot/config.py) replaces it for tests and
demos (see `parse_clock`): a process started by a test lives at the test's date whatever the
wall clock says.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

Clock = Callable[[], datetime]


def _wall() -> datetime:
    return datetime.now(UTC)


def system_clock() -> datetime:
    """The machine's clock, in UTC (the production default). Looks `_wall` up at each call so a
    test suite can make any reach to it fail loudly (tests/conftest.py)."""
    return _wall()


def _uptime() -> float | None:
    """Seconds since boot as the kernel counts them (Linux /proc/uptime, 10 ms steps): the same in
    every process even where libfaketime's start-at mode (`faketime -f '@DATE'`) gives each
    process a monotonic clock of its own. None where there is no such file."""
    try:
        return float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


class ClockError(ValueError):
    """An ADDAD_CLOCK value or clock file that cannot be read; the message says why."""


def parse_instant(text: str) -> datetime:
    """`2026-11-23T09:00:00Z` or with an explicit offset; a naive time is refused (which zone?)."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ClockError(f"not an ISO 8601 instant: {text!r}") from None
    if value.tzinfo is None:
        raise ClockError(f"{text!r} has no UTC offset (write e.g. 2026-11-23T09:00:00Z)")
    return value.astimezone(UTC)


class SteadyClock:
    """Starts at `start` and runs at real speed (monotonic time, so a wall-clock jump or a faked
    system date does not move it): stamps keep their order and retry delays come due. `anchor` is
    the time.monotonic() reading at which `start` was true (default: now)."""

    def __init__(self, start: datetime, anchor: float | None = None) -> None:
        self.start = start.astimezone(UTC)
        self._anchor = time.monotonic() if anchor is None else anchor

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._anchor)


class FileClock:
    """Reads an instant from a file and runs on from it at real speed; rewriting the file moves
    time, for a test that needs an idle reset or a lockout to expire in a running bot process.

    The file's first line is the instant. An optional second line `monotonic SECONDS` says at
    which time.monotonic() reading it was true: that clock is system-wide (Linux CLOCK_MONOTONIC),
    so every process reading the file, one restarted later included, agrees on "now" (`write`
    adds it), and a third, `uptime SECONDS`, the kernel's uptime then, for processes whose
    monotonic clocks differ (libfaketime's `-f '@DATE'` mode: `_local_anchor`). Without them the
    instant is true when the process first reads it. The file is looked at (one stat) on each call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int, int] | None = None
        self._steady = self._read()  # an unreadable file is an error at start, not later

    def _read(self) -> SteadyClock:
        try:
            st = os.stat(self.path)
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ClockError(f"clock file {self.path}: {exc.strerror or exc}") from None
        if not lines:
            raise ClockError(f"clock file {self.path} is empty")
        anchor = None
        if len(lines) > 1 and lines[1].strip():
            anchor = self._seconds(lines[1], "monotonic")
            if len(lines) > 2 and lines[2].strip():
                anchor = _local_anchor(anchor, self._seconds(lines[2], "uptime"))
        steady = SteadyClock(parse_instant(lines[0]), anchor)
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        return steady

    def _seconds(self, line: str, name: str) -> float:
        word, _, seconds = line.strip().partition(" ")
        try:
            value = float(seconds)
        except ValueError:
            value = None
        if word != name or value is None:
            raise ClockError(f"clock file {self.path}: line {line!r} is not '{name} SECONDS'")
        return value

    def __call__(self) -> datetime:
        try:
            st = os.stat(self.path)
            if (st.st_ino, st.st_mtime_ns, st.st_size) != self._seen:
                self._steady = self._read()
        except (ClockError, OSError):
            pass  # removed or unreadable for a moment: keep the last instant
        return self._steady()

    @staticmethod
    def write(path: str | Path, instant: datetime) -> None:
        """Set the time every FileClock on `path` shows, from now on (atomically: a reader never
        sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        mono, up = time.monotonic(), _uptime()
        lines = [instant.astimezone(UTC).isoformat(), f"monotonic {mono:.6f}"]
        if up is not None:
            lines.append(f"uptime {up:.2f}")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _local_anchor(mono: float, up: float) -> float:
    """The writer's monotonic reading `mono`, taken at uptime `up`, on this process's monotonic
    clock: the same reading where both processes share the clock (their monotonic and uptime
    differ by the same amount), else moved by the difference (libfaketime's start-at mode),
    within /proc/uptime's 10 ms steps."""
    here = _uptime()
    if here is None:
        return mono
    shift = (time.monotonic() - here) - (mono - up)
    return mono if abs(shift) < 1.0 else mono + shift


def parse_clock(spec: str | None) -> Clock:
    """The clock an `ADDAD_CLOCK` value names:

    - unset or empty: the system clock;
    - an instant (`2026-11-23T09:00:00Z`): the process starts at that instant and time runs on;
    - `file:PATH`: the instant written in PATH, running on from each rewrite of the file.
    """
    spec = (spec or "").strip()
    if not spec:
        return system_clock
    if spec.startswith("file:"):
        return FileClock(spec[len("file:") :])
    return SteadyClock(parse_instant(spec))
