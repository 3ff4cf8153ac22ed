"""How the bot shares its SQLite file: statements run on the event loop, and only what can
wait (another process's write lock, the commit's fsync) waits off it."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import pytest

from storage import SessionRecord, Store, open_store

from .chat import Clock
from .test_storage_contract import NOW

HOLD = 0.8  # seconds the other process keeps the write lock


@pytest.fixture
def store(sqlite_store):
    """These tests are of the SQLite backend (backend-independent ones are in test_storage_contract.py)."""
    return sqlite_store


async def other_process_writing(path: str) -> asyncio.subprocess.Process:
    """Another process (an import, the back office) holding the write lock for HOLD seconds."""
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        f"time.sleep({HOLD})\n"
        "c.execute('COMMIT')\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, path, stdout=asyncio.subprocess.PIPE)
    assert (await proc.stdout.readline()).strip() == b"locked"
    return proc


async def test_a_turn_waits_for_another_process_without_freezing_the_bot(store):
    proc = await other_process_writing(store.db.path)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    beat = asyncio.create_task(ticker())
    started = time.monotonic()
    async with store.transaction() as tx:  # waits for the other process's COMMIT
        await tx.save_session(SessionRecord("telegram", "42", "menu.main", {}, "fr", 0, None), now=NOW)
    waited = time.monotonic() - started
    beat.cancel()
    await proc.wait()
    assert waited > HOLD / 2  # it did wait for the lock…
    assert ticks >= 10  # …and the event loop went on meanwhile
    async with store.snapshot() as tx:
        assert (await tx.load_session("telegram", "42")).state == "menu.main"


async def test_a_caller_cancelled_while_waiting_leaves_no_transaction_open(store):
    proc = await other_process_writing(store.db.path)

    async def turn():
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", "7", "reading.start", {}, "fr", 0, None), now=NOW)

    task = asyncio.create_task(turn())
    await asyncio.sleep(0.2)  # now waiting for the lock in aiosqlite's thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await proc.wait()
    async with store.transaction() as tx:  # a new transaction starts cleanly
        await tx.save_session(SessionRecord("telegram", "8", "menu.main", {}, "fr", 0, None), now=NOW)
    async with store.snapshot() as tx:
        assert await tx.load_session("telegram", "7") is None
        assert (await tx.load_session("telegram", "8")).state == "menu.main"


async def test_a_commit_that_fails_is_rolled_back_and_the_next_turn_works(store):
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", "9", "menu.main", {}, "fr", 0, None), now=NOW)
            # A foreign key checked only at COMMIT: the commit itself fails.
            await tx._write("PRAGMA defer_foreign_keys = ON")
            await tx.link_chat("telegram", "9", "9999999", "phone", now=NOW)
    async with store.transaction() as tx:
        await tx.link_chat("telegram", "9", "1000001", "phone", now=NOW)
    async with store.snapshot() as tx:
        assert await tx.load_session("telegram", "9") is None  # nothing of the failed one
        assert [link.contract for link in await tx.chat_links("telegram", "9")] == ["1000001"]


async def write_sessions(store: Store, n: int) -> None:
    """n turns' worth of writes, each one a transaction, with pauses as between customers."""
    for i in range(n):
        async with store.transaction() as tx:
            await tx.save_session(
                SessionRecord("telegram", str(i), "menu.main", {"note": "x" * 3000}, "fr", 0, None), now=NOW
            )
        if i % 50 == 49:
            await asyncio.sleep(0.1)  # (room for the checkpointer, every 0.02 s, on a busy machine too)


async def test_the_running_bot_checkpoints_the_wal_off_its_turns(tmp_path):
    # Turns do not checkpoint (a COMMIT that did would make that customer wait): without the
    # background checkpointer the WAL would only grow. With it, it stays small.
    bare = await open_store(tmp_path / "bare.sqlite3", clock=Clock())
    await bare.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
    await write_sessions(bare, 600)
    grown = (tmp_path / "bare.sqlite3-wal").stat().st_size
    await bare.close()

    store = await open_store(tmp_path / "bot.sqlite3", checkpoint_every=0.02, clock=Clock())
    try:
        assert list(await store.db.conn.execute_fetchall("PRAGMA wal_autocheckpoint")) == [(0,)]
        await write_sessions(store, 600)
        kept = (tmp_path / "bot.sqlite3-wal").stat().st_size
    finally:
        await store.close()
    assert grown > 2_000_000
    assert kept < grown / 4
    with sqlite3.connect(tmp_path / "bot.sqlite3") as check:  # and everything is in the database
        assert check.execute("SELECT count(*) FROM sessions").fetchone() == (600,)


# ---------------------------------------------------------------- group commit
def other_connection(path: str) -> sqlite3.Connection:
    """What another process sees: only committed data."""
    return sqlite3.connect(path, isolation_level=None)


async def test_concurrent_turns_share_commits_and_each_is_durable_when_it_returns(store):
    commits = []
    store.db.conn.raw.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    outside = other_connection(store.db.path)
    seen_on_return = []

    async def turn(i: int) -> None:
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", str(i), "menu.main", {}, "fr", 0, None), now=NOW)
            await asyncio.sleep(0)  # a turn awaits between statements
        # Returned: another process must already see it (the customer may be told it is saved).
        seen_on_return.append(
            outside.execute("SELECT count(*) FROM sessions WHERE user_id = ?", (str(i),)).fetchone()[0]
        )

    await asyncio.gather(*(turn(i) for i in range(60)))
    store.db.conn.raw.set_trace_callback(None)
    assert seen_on_return == [1] * 60
    assert 1 <= len(commits) < 20  # grouped: far fewer commits than turns
    assert outside.execute("SELECT count(*) FROM sessions").fetchone() == (60,)


async def test_a_lone_failing_turn_does_not_keep_the_write_lock(store):
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", "5", "menu.main", {}, "fr", 0, None), now=NOW)
            raise ValueError("boom")
    await asyncio.sleep(0.05)
    outside = other_connection(store.db.path)
    outside.execute("PRAGMA busy_timeout = 0")
    outside.execute("BEGIN IMMEDIATE")  # would raise "database is locked"
    outside.execute("ROLLBACK")
    assert outside.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


async def test_a_read_sees_only_committed_writes(store):
    async def writer() -> None:
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", "11", "menu.main", {}, "fr", 0, None), now=NOW)

    async def reader() -> bool:
        async with store.snapshot() as tx:
            present = await tx.load_session("telegram", "11") is not None
        outside = other_connection(store.db.path)
        durable = outside.execute("SELECT count(*) FROM sessions WHERE user_id = '11'").fetchone()[0] == 1
        return present == durable

    first = asyncio.ensure_future(writer())
    await asyncio.sleep(0)  # the writer is in its group, not committed yet
    assert await reader()
    await first


# ---------------------------------------------------------------- aiosqlite's private connection
async def test_the_one_private_read_of_aiosqlite_still_holds(tmp_path):
    """storage/sqlite/db.py runs statements on the sqlite3 connection aiosqlite wraps, read from
    its private `_conn` (raw_connection). A new aiosqlite release must be checked by hand: this
    fails until it is listed in AIOSQLITE_TESTED, or if it no longer holds that connection."""
    import aiosqlite

    from storage.sqlite.db import AIOSQLITE_TESTED, raw_connection

    assert ".".join(aiosqlite.__version__.split(".")[:2]) in AIOSQLITE_TESTED
    aio = await aiosqlite.connect(tmp_path / "probe.sqlite3", isolation_level=None, check_same_thread=False)
    try:
        raw = raw_connection(aio)
        assert isinstance(raw, sqlite3.Connection)
        raw.execute("CREATE TABLE t (x)")
        raw.execute("INSERT INTO t VALUES (1)")
        # The statement run on aiosqlite's thread sees what ran on `raw`: the same connection.
        assert list(await aio.execute_fetchall("SELECT x FROM t")) == [(1,)]
        await aio.execute("INSERT INTO t VALUES (2)")
        assert raw.execute("SELECT count(*) FROM t").fetchone() == (2,)
        assert raw.in_transaction is False  # isolation_level=None reached it: we issue BEGIN/COMMIT
    finally:
        await aio.close()
