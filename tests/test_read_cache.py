"""The bot keeps what its turns read in memory (storage/sqlite/cache.py). It must never show a customer
something the database no longer says: another process's import or unlinking, a turn that
failed, a commit that failed."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sqlite3
import sys

import pytest

from conversations.i18n import translator
from storage import SessionRecord
from storage.sqlite import repositories
from storage.sqlite.cache import CACHED, ReadCache, StaleRead, written_table

from .chat import Chat
from .test_reading import reading_chat as linked_chat
from .test_storage_contract import NOW


async def another_process(path: str, sql: str) -> None:
    """A statement committed by another process (an import, the back office)."""
    code = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.close()\n"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, path, sql)
    assert await proc.wait() == 0


async def test_a_reading_imported_by_another_process_is_what_the_next_turn_checks_against(engine):
    chat = await linked_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    assert "Dernier index enregistré : 45210, le 31 octobre 2026." in chat.text
    # Meanwhile the billing system's import writes a meter reader's reading of 20 November.
    await another_process(
        engine.store.db.path,
        "INSERT INTO readings (contract, reading_date, index_value, source, submitted_at) "
        "VALUES ('1000001', '2026-11-20', 45300, 'actual', '2026-11-22T18:00:00+00:00')",
    )
    await chat.send("45 340")
    await chat.press("Sans photo")
    assert "Consommation : 40 kWh depuis 45300 (20 novembre 2026)" in chat.text


async def test_a_chat_unlinked_by_another_process_is_asked_to_link_again(engine):
    chat = await linked_chat(engine)
    await chat.send("mon solde")
    assert "1000001" in chat.text
    await another_process(engine.store.db.path, "DELETE FROM chat_links")
    await chat.send("mon solde")
    assert translator("fr")("link.needed") in chat.text


async def test_a_turn_that_fails_leaves_the_session_as_it_was(engine, monkeypatch):
    chat = await linked_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    state = await session_state(engine, chat)

    async def broken(*_a, **_kw):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr("storage.sqlite.repositories.SqliteTx.record_turn", broken)  # fails after the session was saved
    await chat.send("45 340")
    assert translator("fr")("error.internal", phone="x").split("x")[0][:30] in chat.text
    monkeypatch.undo()
    assert await session_state(engine, chat) == state
    # The index was never taken: the journey goes on from where it was.
    await chat.send("45 340")
    assert "Envoyez une photo nette du compteur" in chat.text


async def session_state(engine, chat: Chat) -> str:
    async with engine.store.transaction() as tx:  # a write transaction: the cached view
        return (await tx.load_session(chat.channel, chat.user)).state


async def test_after_a_failed_commit_the_next_transaction_reads_the_file(sqlite_store):
    async with sqlite_store.transaction() as tx:
        await tx.save_session(SessionRecord("telegram", "9", "menu.main", {}, "fr", 0, None), now=NOW)
    async with sqlite_store.transaction() as tx:
        session = await tx.load_session("telegram", "9")
    with pytest.raises(sqlite3.IntegrityError):
        async with sqlite_store.transaction() as tx:
            session.state = "reading.index"
            await tx.save_session(session, now=NOW)
            await tx._write("PRAGMA defer_foreign_keys = ON")
            await tx.link_chat("telegram", "9", "9999999", "phone", now=NOW)  # fails at COMMIT
    async with sqlite_store.transaction() as tx:
        kept = await tx.load_session("telegram", "9")
        assert (kept.state, kept.version) == ("menu.main", 1)
        assert await tx.linked_contracts("telegram", "9") == []


async def test_writes_in_this_process_are_seen_by_the_next_transaction(store):
    async with store.transaction() as tx:
        assert await tx.linked_contracts("telegram", "9") == []
        assert await tx.outbox_for_chat("telegram", "9") == []
    async with store.transaction() as tx:
        await tx.link_chat("telegram", "9", "1000001", "phone", now=NOW)
        await tx.enqueue_outbox(channel="telegram", user_id="9", lang="fr", kind="decision", payload={"x": 1}, now=NOW)
    async with store.transaction() as tx:
        assert [c.contract for c in await tx.linked_contracts("telegram", "9")] == ["1000001"]
        [msg] = await tx.outbox_for_chat("telegram", "9")
        await tx.mark_outbox_sent(msg.id, now=NOW)  # known by its id only
    async with store.transaction() as tx:
        assert await tx.outbox_for_chat("telegram", "9") == []


def test_the_cache_is_bounded():
    cache = ReadCache(max_keys=3, max_records=4)
    cache.sync(1)
    for i in range(10):
        cache.put(("session", i), "q", [i])
    assert [cache.get(("session", i), "q") for i in range(10)] == [None] * 7 + [[7], [8], [9]]
    built = []
    convert = lambda row: built.append(row) or row[0]  # noqa: E731
    assert cache.records(convert, [(i,) for i in range(6)]) == list(range(6))
    assert cache.records(convert, [(5,)]) == [5] and len(built) == 6  # reused, not built again
    assert len(cache._records) <= 4
    cache.sync(2)  # the epoch moved: all forgotten
    assert cache.get(("session", 9), "q") is None


# ---------------------------------------------------------------- what a write forgets
async def test_a_write_that_does_not_make_the_cache_forget_fails(sqlite_store):
    """The suite runs with ReadCache.verify (conftest.py): a write that left a cached read stale,
    here one that bypasses the repositories' `_write`, fails the next read of it."""
    async with sqlite_store.transaction() as tx:
        assert [r.index_value for r in await tx.readings("1000001")] == [45210]
    with pytest.raises(StaleRead):
        async with sqlite_store.transaction() as tx:
            await tx._c.execute("UPDATE readings SET index_value = 45211 WHERE contract = '1000001'")
            await tx.readings("1000001")


def test_what_a_write_forgets_follows_from_its_statement():
    cache = ReadCache()
    cache.sync(1)

    def fill():
        for kind in CACHED:
            for key in ("1000001", "1000002", ("telegram", "9"), ("telegram", "8")):
                cache.put((kind, key), "q", [kind])

    def kept():
        return {
            (kind, key)
            for kind in CACHED
            for key in ("1000001", "1000002", ("telegram", "9"), ("telegram", "8"))
            if cache.get((kind, key), "q") is not None
        }

    every = {(k, key) for k in CACHED for key in ("1000001", "1000002", ("telegram", "9"), ("telegram", "8"))}
    fill()
    cache.wrote("UPDATE readings SET status='replaced' WHERE id=?", "1000001")  # one contract's readings
    assert every - kept() == {("readings", "1000001")}
    fill()
    cache.wrote("INSERT INTO readings (contract) VALUES (?)")  # no key given: every contract's
    assert every - kept() == {("readings", k) for k in ("1000001", "1000002", ("telegram", "9"), ("telegram", "8"))}
    fill()
    cache.wrote("UPDATE contracts SET city=? WHERE contract=?", "1000001")  # links are kept per chat
    assert {kind for kind, _ in every - kept()} == {"links"}
    fill()
    cache.wrote("delete from chat_links WHERE channel=? AND user_id=?", ("telegram", "9"))
    assert every - kept() == {("links", ("telegram", "9"))}
    fill()
    cache.wrote("INSERT INTO audit_log (at) VALUES (?)")  # feeds no cached read
    assert kept() == every
    fill()
    cache.wrote("PRAGMA defer_foreign_keys = ON")  # cannot tell: forgets everything
    assert kept() == set()
    with pytest.raises(KeyError):  # a cached read must declare the tables it depends on
        cache.put(("audit", "DF-1"), "q", [])


def test_every_write_statement_names_its_table_and_only_the_base_runs_statements():
    """Walks the SQLite repositories: each write statement's table is told from its text (else
    it would forget the whole cache, correct but slow), and no repository runs a statement
    except through `_Repository` (which is what makes the cache forget)."""
    source = inspect.getsource(repositories)
    tree = ast.parse(source)
    writes = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.match(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", node.value)
    ]
    assert len(writes) > 25
    assert [w for w in writes if written_table(w) is None] == []
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef) and cls.name != "_Repository":
            runs = [
                n.attr
                for n in ast.walk(cls)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "_c"
            ]
            assert runs == [], f"{cls.name} runs statements on the connection directly: {runs}"
