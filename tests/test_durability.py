"""What waits for the disk (docs/delivery.md "Power loss"): a turn that records a link, a reading
or a request returns only once its WAL is fsynced; a turn that records nothing (a balance, a
menu, a question) is committed without a sync, and after a power cut that loses it, the
redelivered update is answered again and nothing is doubled."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conversations.engine import Engine
from conversations.profile import load_profile
from storage import open_store
from storage.sqlite import db as sqlite_db

from .chat import Chat, Clock


@pytest.fixture
def clock():
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


class Syncs:
    """The WAL fsyncs the store makes (storage/sqlite/db.py sync_file), with the WAL's size then."""

    def __init__(self, monkeypatch) -> None:
        self.sizes: list[int] = []
        real = sqlite_db.sync_file

        def counted(path: str) -> None:
            real(path)
            self.sizes.append(Path(path).stat().st_size)

        monkeypatch.setattr(sqlite_db, "sync_file", counted)

    def __len__(self) -> int:
        return len(self.sizes)


async def test_a_recording_turn_is_fsynced_and_a_balance_turn_is_not(engine, monkeypatch):
    db = engine.store.db
    assert db.wal_path == db.path + "-wal"
    # SQLite itself does not sync at COMMIT (NORMAL); the store syncs the WAL where a promise needs it.
    assert db.conn.raw.execute("PRAGMA synchronous").fetchone()[0] == 1
    syncs = Syncs(monkeypatch)
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")  # the menu: a session, the message key, its replies
    assert len(syncs) == 0
    await chat.send("combien je dois")  # a question: which contract
    assert len(syncs) == 0
    await chat.send("1000001")  # the link is recorded: durable; then the balance
    assert "Total à payer : 462,07" in chat.text
    assert len(syncs) == 1
    light, durable = db.light_commits, db.durable_commits
    await chat.send("combien je dois")  # linked: the balance alone
    assert "Total à payer : 462,07" in chat.text
    assert (len(syncs), db.light_commits, db.durable_commits) == (1, light + 1, durable)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    await chat.send_photo("tg-file-AgADBAAD")
    assert len(syncs) == 1  # questions, the index and photo kept in the session
    await chat.press("Confirmer")
    assert "Index enregistré ✅ Référence : RL-2026-000001" in chat.text
    assert len(syncs) == 2 and db.durable_commits == durable + 1


async def test_a_write_outside_the_light_ones_makes_the_transaction_durable(engine, monkeypatch):
    syncs = Syncs(monkeypatch)
    async with engine.store.transaction() as tx:  # light writes only: no sync
        await tx.record_turn("test", "k1", "[]")
    assert len(syncs) == 0
    async with engine.store.transaction() as tx:  # and anything else: synced
        await tx.record_turn("test", "k2", "[]")
        await tx.audit("something", actor="system")
    assert len(syncs) == 1
    async with engine.store.db.transaction() as conn:  # not through the repositories: synced
        await conn.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
    assert len(syncs) == 2


def power_cut(database: Path, wal_size: int, into: Path) -> Path:
    """The files a power cut leaves when the disk kept the WAL only up to its last fsync."""
    into.mkdir()
    shutil.copyfile(database, into / database.name)
    with open(f"{database}-wal", "rb") as wal:
        (into / f"{database.name}-wal").write_bytes(wal.read(wal_size))
    return into / database.name


async def test_a_redelivered_update_after_losing_the_last_unsynced_commits_doubles_nothing(
    engine, clock, monkeypatch, tmp_path
):
    db = engine.store.db
    db.conn.raw.execute("PRAGMA wal_autocheckpoint = 0")  # the database file stays as the cut finds it
    syncs = Syncs(monkeypatch)
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("combien je dois")
    await chat.send("1000001")
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    await chat.send_photo("tg-file-AgADBAAD")
    confirm = next(b.payload for b in chat.buttons if "Confirmer" in b.label)
    await chat.press_payload(confirm, message_id="confirm")
    assert "RL-2026-000001" in chat.text
    durable = syncs.sizes[-1]
    await chat.send("combien je dois", message_id="balance")  # committed, never synced
    balance = chat.text
    assert "Total à payer : 462,07" in balance and syncs.sizes[-1] == durable
    assert Path(f"{db.path}-wal").stat().st_size > durable

    copy = power_cut(Path(db.path), durable, tmp_path / "after-cut")
    check = sqlite3.connect(copy)
    keys = {k for (k,) in check.execute("SELECT message_id FROM processed_messages")}
    check.close()
    assert "confirm" in keys and "balance" not in keys  # the balance turn was lost, the reading was not

    store = await open_store(copy, clock=clock)
    try:
        again = Engine(store, load_profile(), clock=clock)
        chat.engine = again
        # The channel redelivers both (or the inbox replays them): the reading is not recorded
        # twice, the lost balance turn runs again and is answered.
        await chat.press_payload(confirm, message_id="confirm")
        await chat.send("combien je dois", message_id="balance")
        assert chat.text == balance
        async with store.snapshot() as tx:
            readings = [r for r in await tx.readings("1000001", include_replaced=True) if r.reference]
            assert await tx.kept_replies("test", "balance") is not None
        assert [r.reference for r in readings] == ["RL-2026-000001"]
    finally:
        await store.close()


async def test_a_light_commit_in_the_long_running_bot_is_visible_to_other_processes(tmp_path, clock, monkeypatch):
    """With the background checkpointer (the bot's), a light group commits on the loop's thread."""
    path = tmp_path / "bot.sqlite3"
    store = await open_store(path, clock=clock, checkpoint_every=60)
    syncs = Syncs(monkeypatch)
    try:
        assert store.db.checkpointer is not None
        async with store.transaction() as tx:
            await tx.record_turn("test", "k1", '["hi"]')
        assert len(syncs) == 0 and store.db.light_commits == 1
        other = sqlite3.connect(path)
        assert other.execute("SELECT replies FROM processed_messages").fetchall() == [('["hi"]',)]
        other.close()
    finally:
        await store.close()


async def test_a_durable_commit_in_the_long_running_bot_returns_after_its_fsync(tmp_path, clock, monkeypatch):
    """With the background checkpointer, a durable group's COMMIT runs on the loop's thread and
    only its fsync on another; the transaction returns once the WAL is synced, and a power cut
    that keeps the WAL only up to that fsync keeps what it wrote."""
    import threading

    path = tmp_path / "bot.sqlite3"
    store = await open_store(path, clock=clock, checkpoint_every=60)  # no checkpoint during the test
    synced: list[tuple[int, int]] = []  # (thread, WAL size) at each fsync
    real = sqlite_db.sync_file

    def on_thread(wal: str) -> None:
        real(wal)
        synced.append((threading.get_ident(), Path(wal).stat().st_size))

    monkeypatch.setattr(sqlite_db, "sync_file", on_thread)
    commits: list[int] = []
    store.db.conn.raw.set_trace_callback(lambda sql: commits.append(threading.get_ident()) if sql == "COMMIT" else None)
    durable = store.db.durable_commits  # (opening the store committed some)
    try:
        async with store.transaction() as tx:
            await tx.record_turn("test", "k1", '["hi"]')
            await tx.audit("reading_recorded", actor="customer")
        assert store.db.durable_commits == durable + 1 and len(synced) == 1  # synced before returning
        loop_thread = threading.get_ident()
        assert commits == [loop_thread] and synced[0][0] != loop_thread
        copy = power_cut(path, synced[0][1], tmp_path / "after-cut")
    finally:
        store.db.conn.raw.set_trace_callback(None)
        await store.close()
    check = sqlite3.connect(copy)
    assert check.execute("SELECT message_id FROM processed_messages").fetchall() == [("k1",)]
    assert check.execute("SELECT action FROM audit_log").fetchall() == [("reading_recorded",)]
    check.close()
