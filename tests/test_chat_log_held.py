"""The handoff's chat log on SQLite (storage/sqlite/chatlog.py): a chat with no open handoff has
its lines held in the bot's memory, not written on every turn; asking for an adviser writes them
in that turn's transaction, so the agent, from another process, reads what led to the request;
while the handoff is open every line is written at once. A turn rolled back holds nothing."""

from __future__ import annotations

import sqlite3

import pytest

from conversations import handoff
from storage import open_store
from storage.sqlite.chatlog import HeldChatLog

from . import pg
from .chat import Chat

pytestmark = pytest.mark.skipif(
    pg.engine_backend() == "postgresql", reason="SQLite holds the lines; PostgreSQL writes them"
)


def written(database) -> list[tuple[str, str]]:
    """The chat log as another process sees it in the file (the workspace, `addad handoff`)."""
    with sqlite3.connect(database) as con:
        return con.execute("SELECT sender, text FROM chat_messages ORDER BY id").fetchall()


async def agent_reads(database, clock) -> list[tuple[str, str]]:
    """The queue's handoff and its conversation, read by a process of its own."""
    other = await open_store(str(database), clock=clock)
    try:
        async with other.transaction() as tx:
            [h] = await handoff.queue(tx, clock())
            return [(line.sender, line.text) for line in await handoff.conversation(tx, h)]
    finally:
        await other.close()


async def test_lines_are_held_until_the_customer_asks_for_an_adviser_then_the_agent_reads_them(engine, database, clock):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("mon contrat est le 1000001, je ne comprends pas ma facture")
    assert written(database) == []  # two turns, nothing written for them
    await chat.send("je veux parler à un conseiller")
    assert "👤 Un conseiller a été prévenu" in chat.text
    said = await agent_reads(database, clock)
    assert said[0] == ("customer", "bonjour")
    assert ("customer", "mon contrat est le ••••001, je ne comprends pas ma facture") in said  # masked on read
    assert said[-2] == ("customer", "je veux parler à un conseiller")
    assert said[-1][0] == "bot" and "conseiller a été prévenu" in said[-1][1]
    assert [s for s, _ in said].count("customer") == 3 and len(written(database)) == len(said)

    await chat.send("vous êtes là ?")  # waiting: written at once, seen by the agent's process
    assert written(database)[-2:][0] == ("customer", "vous êtes là ?")
    assert (await agent_reads(database, clock))[-2] == ("customer", "vous êtes là ?")


async def test_an_arabic_chat_held_then_handed_over_shows_the_agent_what_it_said(engine, database, clock):
    chat = Chat(engine, sender_phone="+212612345678", lang_hint="ar")
    await chat.send("السلام")
    await chat.send("عندي مشكل فالفاتورة ديال 1000001")
    assert written(database) == []
    await chat.send("بغيت نهضر مع شي واحد")
    assert "👤 تم إخبار أحد المستشارين" in chat.text
    said = await agent_reads(database, clock)
    assert said[0] == ("customer", "السلام")
    assert ("customer", "عندي مشكل فالفاتورة ديال ••••001") in said
    assert said[-1][0] == "bot" and "تم إخبار أحد المستشارين" in said[-1][1]


async def test_a_rolled_back_transaction_holds_no_line_and_a_committed_one_is_read_back(sqlite_store):
    from datetime import UTC, datetime

    now = datetime(2026, 11, 3, 9, tzinfo=UTC)
    with pytest.raises(RuntimeError):
        async with sqlite_store.transaction() as tx:
            await tx.log_chat("telegram", "7", [("customer", None, "perdu")], now=now)
            raise RuntimeError("the turn failed")
    async with sqlite_store.transaction() as tx:
        await tx.log_chat("telegram", "7", [("customer", None, "gardé"), ("bot", None, "réponse")], now=now)
        # Its own lines, before the commit:
        assert [line.text for line in await tx.chat_log("telegram", "7")] == ["gardé", "réponse"]
    async with sqlite_store.snapshot() as tx:
        assert [line.text for line in await tx.chat_log("telegram", "7")] == ["gardé", "réponse"]
    assert written(sqlite_store.db.path) == []


def test_what_is_held_is_bounded_per_chat_and_in_all_the_quietest_chat_dropped_first():
    held = HeldChatLog(max_lines=3, max_chars=10)
    held.add(("t", "1"), [("a", "customer", None, f"q{i}") for i in range(5)])
    assert [line[3] for line in held.lines(("t", "1"))] == ["q2", "q3", "q4"]
    held.add(("t", "2"), [("a", "customer", None, "abcd")])
    held.add(("t", "1"), [("a", "customer", None, "zzzz")])  # chat 1 written last: chat 2 is the quietest
    assert held.lines(("t", "2")) == [] and len(held.lines(("t", "1"))) == 3 and held.chars <= 10


async def test_a_stopped_bot_writes_what_it_held_so_the_agent_reads_it_after_the_restart(api, tmp_path):
    """`systemctl restart` (SIGTERM) between the customer's first words and his request for an
    adviser: the held lines are written at the stop, and the agent reads them."""
    from .telegram_harness import BotProcess, TgUser, seeded_database

    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database)
    await proc.start(api)
    user = TgUser(api, 9301, "fr")
    try:
        await user.send("bonjour")
        await user.send("ma facture de novembre est estimée, personne n'est venu")
        assert written(database) == []  # held in the bot's memory
        assert await proc.stop() == 0
        assert ("customer", "ma facture de novembre est estimée, personne n'est venu") in written(database)
        await proc.start(api)
        await user.send("je veux parler à un conseiller")
        assert "👤 Un conseiller a été prévenu" in user.text
    finally:
        await proc.stop()
    said = await agent_reads(database, api.clock)
    assert said[0] == ("customer", "bonjour")
    assert ("customer", "ma facture de novembre est estimée, personne n'est venu") in said
    assert said[-2] == ("customer", "je veux parler à un conseiller")
