import pytest

import storage.clock
from storage import open_store
from storage.sqlite.cache import ReadCache

from . import pg, summary
from .chat import Clock, ProcessClock, open_engine
from .fake_botapi import FakeBotAPI
from .test_storage_contract import BACKENDS, C1, NOW


@pytest.fixture(autouse=True)
def no_wall_clock(monkeypatch):
    """Every test runs at the date its data is about, whatever the wall clock says: code that
    reaches for the system clock instead of the clock it was given fails here at once."""

    def wall():
        raise AssertionError("the wall clock was read: pass the test's clock (tests/chat.py Clock, ProcessClock)")

    monkeypatch.setattr(storage.clock, "_wall", wall)


@pytest.fixture(autouse=True)
def verified_read_cache(monkeypatch):
    """Every read the cache answers is read from the database again and compared: a write that
    did not make the cache forget what it changed fails the test that made it."""
    monkeypatch.setattr(ReadCache, "verify", True)


@pytest.fixture(autouse=True)
def process_clock(tmp_path, monkeypatch) -> ProcessClock:
    """The clock of the bot processes this test starts, at tests/chat.py START: ADDAD_CLOCK is set
    for every `addad` process and every Settings() of the test, so none runs on the wall clock."""
    clock = ProcessClock(tmp_path / "clock.txt")
    monkeypatch.setenv("ADDAD_CLOCK", clock.setting)
    # Scripted customers type faster than any person: the per-chat flood limit (a burst of 10, then
    # one a second) is off but in the tests about it (tests/test_flood.py).
    monkeypatch.setenv("ADDAD_FLOOD_RATE", "0")
    # No test reads meter photos (a model in a process of its own) but those about it (tests/test_ocr.py).
    monkeypatch.setenv("ADDAD_OCR", "off")
    return clock


@pytest.fixture
async def api(process_clock):
    """The fake Telegram Bot API server on 127.0.0.1, dating its messages by the test's clock."""
    server = await FakeBotAPI(clock=process_clock).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """The URL of a new, empty store of each backend (storage.open_store): tests taking it, or
    `store`, are part of the storage contract and run against every implementation
    (PostgreSQL: a fresh database per test, tests/pg.py; skipped without a server)."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'addad.sqlite3'}"
        return
    if request.param == "postgresql":
        with pg.fresh() as url:
            yield url
        return
    raise NotImplementedError(request.param)


@pytest.fixture
def database(tmp_path):
    """Where the conversation tests' engine keeps its store: a SQLite file, or with
    ADDAD_TEST_BACKEND=postgresql a fresh PostgreSQL database (tests/pg.py)."""
    if pg.engine_backend() != "postgresql":
        yield tmp_path / "addad.sqlite3"
        return
    with pg.fresh() as url:
        yield url


def pytest_sessionfinish(session, exitstatus):
    if pg.available():
        pg.drop_template()
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker
        summary.hand_over(session.config.workeroutput)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's: a worker has finished
def pytest_testnodedown(node, error):
    summary.take_over(getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summary.print_sections(terminalreporter)


async def seeded(url: str):
    s = await open_store(url, clock=lambda: NOW)
    async with s.transaction() as tx:
        await tx.upsert_contract(C1, now=NOW)
    return s


@pytest.fixture
async def store(backend):
    """A store of each backend holding one contract, C1 (tests/test_storage_contract.py
    defines an empty one)."""
    s = await seeded(backend)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def sqlite_store(tmp_path):
    """A SQLite file holding one contract, C1, for tests of how the SQLite backend works."""
    s = await seeded(str(tmp_path / "addad.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> Clock:
    """The conversation tests' clock (tests/chat.py START); a module sets its own day by
    defining a `clock` fixture of its own."""
    return Clock()


@pytest.fixture
async def engine(database, clock):
    """The engine on a seeded database (a file, or PostgreSQL: the `database` fixture), at the
    `clock` fixture's time (modules needing more data extend it: `async def engine(engine): ...`)."""
    engine = await open_engine(database, clock)
    try:
        yield engine
    finally:
        await engine.store.close()
