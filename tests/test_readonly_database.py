"""A database the bot cannot write (a read-only file, a read-only folder whose -wal and -shm files
were deleted) stops `addad requests list` and the bot's start with one line naming the file and
what to check, exit status 2: no traceback, and no bot that starts only to fail every turn.

Real processes on a real file. As root, chmod does not stop writes (root bypasses permissions),
so the commands run as `nobody` (setpriv); as another user, as that user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import open_store

from .chat import ProcessClock

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
ONE_LINE = "the file or its folder is read-only: the bot writes the database and creates its -wal and -shm files"


@pytest.fixture
def folder() -> Iterator[Path]:
    # Not tmp_path: its parents are private to the user running the tests, and `nobody` must reach it.
    path = Path(tempfile.mkdtemp(prefix="addad-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        path.chmod(0o755)
        shutil.rmtree(path)


def as_another_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no user whom chmod stops")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def addad(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ADDAD_DATABASE": str(folder / "addad.sqlite3"),
        "ADDAD_CLOCK": f"file:{folder / 'clock'}",
        # The bot's start: nothing listens there, the database is refused first.
        "ADDAD_TELEGRAM_TOKEN": "123:abc",
        "ADDAD_TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
    }
    return subprocess.run(
        [*as_another_user(), sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


async def make_database(folder: Path) -> Path:
    ProcessClock(folder / "clock")
    (folder / "clock").chmod(0o644)
    store = await open_store(folder / "addad.sqlite3")
    await store.close()
    return folder / "addad.sqlite3"


def assert_one_line(done: subprocess.CompletedProcess, database: Path) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"addad: database {database}: ") and ONE_LINE in line


async def test_a_read_only_database_file_stops_the_listing_and_the_start_with_one_line(folder):
    database = await make_database(folder)
    database.chmod(0o444)
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, -1)  # the folder writable: only the file is read-only
    for command in (["requests", "list"], ["telegram"]):
        assert_one_line(addad(folder, *command), database)


async def test_a_read_only_folder_whose_wal_was_deleted_stops_the_listing_with_one_line(folder):
    database = await make_database(folder)
    for journal in ("-wal", "-shm"):
        Path(f"{database}{journal}").unlink(missing_ok=True)
    folder.chmod(0o555)
    assert_one_line(addad(folder, "requests", "list"), database)


async def test_a_writable_database_still_lists(folder):
    await make_database(folder)
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, -1)
        os.chown(folder / "addad.sqlite3", NOBODY, -1)
    done = addad(folder, "requests", "list")
    assert done.returncode == 0, done.stderr
    assert "0 request(s)" in done.stdout
