"""Per-chat flood (issue 18.6): one chat sending hundreds of messages at once gets its first ones
answered and ONE polite notice; the rest are accepted (acknowledged, kept, marked answered) but
not run; other chats are answered as usual. No timing is asserted: only what each chat receives."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from bot.channels.flood import FloodGuard
from bot.runtime import run_whatsapp
from storage import open_store

from .chat import Clock
from .telegram_harness import TgUser, seeded_database, settings_for, start_bot
from .test_whatsapp import FATIMA, YOUSSEF, free_port, graph, user, wa  # noqa: F401 (fixtures)
from .whatsapp_harness import delivery, message, text_of, whatsapp_settings

NOTICE_FR = "Vous m'envoyez beaucoup de messages à la fois"
NOTICE_AR = "أنت ترسل الكثير من الرسائل في وقت واحد"
FLOOD = 300


def test_the_bucket_gives_a_burst_then_one_notice_then_refills_per_chat():
    clock = Clock()
    guard = FloodGuard(clock, burst=3, rate=1.0)
    assert [guard.admit("a") for _ in range(6)] == ["run", "run", "run", "notice", "drop", "drop"]
    assert guard.admit("b") == "run"  # another chat has its own bucket
    clock.advance(seconds=1)
    assert [guard.admit("a"), guard.admit("a")] == ["run", "drop"]  # one a second; still the same flood
    clock.advance(seconds=3)  # quiet until the bucket is full: that flood is over
    assert [guard.admit("a") for _ in range(5)] == ["run", "run", "run", "notice", "drop"]
    off = FloodGuard(clock, burst=1, rate=0)
    assert {off.admit("a") for _ in range(50)} == {"run"}


def handled(database, prefix: str) -> set[str]:
    con = sqlite3.connect(database)
    try:
        rows = con.execute("SELECT message_id FROM processed_messages WHERE message_id LIKE ?", (prefix + "%",))
        return {r[0] for r in rows}
    finally:
        con.close()


def inbox_rows(database) -> tuple[int, int]:
    con = sqlite3.connect(database)
    try:
        return con.execute("SELECT count(*), count(answered_at) FROM inbox").fetchone()
    finally:
        con.close()


@pytest.mark.parametrize("wa", [{"flood_rate": 1.0, "flood_burst": 10}], indirect=True)  # the defaults
async def test_whatsapp_a_flooding_chat_gets_its_first_answers_and_one_notice_others_are_answered(wa, graph):
    _, _, database = wa
    flooder = user(wa, graph, FATIMA)
    other = user(wa, graph, YOUSSEF)
    await flooder.send("Bonjour")  # a French chat
    start = len(graph.sent)
    first = [message(FATIMA, "text", {"body": f"question {i}"}, wamid=f"wamid.flood.{i:03d}") for i in range(9)]
    assert await flooder.post(delivery(first)) == 200
    rest = [message(FATIMA, "text", {"body": f"question {i}"}, wamid=f"wamid.flood.{i:03d}") for i in range(9, FLOOD)]
    posts = [flooder.post(delivery(rest[i : i + 10])) for i in range(0, len(rest), 10)]
    statuses, _ = await asyncio.gather(asyncio.gather(*posts), other.send("Bonjour"))
    assert set(statuses) == {200}  # every message accepted
    assert "Bonjour" in other.text and NOTICE_FR not in other.text
    await other.send("Mes factures")
    assert other.replies and NOTICE_FR not in other.text

    for _ in range(100):  # every message kept and marked answered, run or not
        if inbox_rows(database) == (FLOOD + 3, FLOOD + 3):
            break
        await asyncio.sleep(0.1)
    assert inbox_rows(database) == (FLOOD + 3, FLOOD + 3)
    notices = [t for t in (text_of(m) for m in graph.sent[start:] if m["to"] == FATIMA) if NOTICE_FR in t]
    assert len(notices) == 1
    ran = handled(database, "wamid.flood.")
    assert {f"wamid.flood.{i:03d}" for i in range(9)} <= ran  # his first messages were answered
    assert len(ran) < FLOOD // 2  # most of the flood was not run through the engine
    # Redelivered by Meta: nothing new runs.
    before = len(graph.sent)
    assert await flooder.post(delivery(rest[-10:])) == 200
    await asyncio.sleep(0.3)
    assert graph.sent[before:] == []


async def test_telegram_a_flooding_chat_gets_its_first_answers_and_one_notice_others_are_answered(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database, flood_rate=1.0, flood_burst=10))  # the defaults
    try:
        flooder, other = TgUser(api, 3001, "ar"), TgUser(api, 3002, "fr")
        first = [api.text(3001, f"سؤال {i}", lang="ar") for i in range(FLOOD)]
        await other.send("/start")
        assert "Bonjour et bienvenue" in other.text and NOTICE_FR not in other.text
        await other.send("menu")
        assert other.replies and NOTICE_FR not in other.text
        notice = await api.wait_for(lambda c: c.chat_id == 3001 and NOTICE_AR in c.text, timeout=30)
        for _ in range(100):
            if inbox_rows(database)[1] == FLOOD + 2:
                break
            await asyncio.sleep(0.1)
        assert inbox_rows(database) == (FLOOD + 2, FLOOD + 2)
        to_flooder = [c for c in api.calls if c.method == "sendMessage" and c.chat_id == 3001]
        assert [c.text for c in to_flooder].count(notice.text) == 1
        assert "مرحبا" in to_flooder[0].text  # his first message was answered
        ran = {int(m) for m in handled(database, "") if m.isdecimal()} & set(first)
        assert set(first[:10]) <= ran and len(ran) < FLOOD // 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    _ = flooder


async def test_a_backlog_replayed_at_start_is_not_taken_for_a_flood(graph, tmp_path, process_clock):
    """30 messages of one chat accepted by a process that stopped: all run at the next start."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=process_clock)
    async with store.transaction() as tx:
        for i in range(30):
            m = message(FATIMA, "text", {"body": f"question {i}"}, wamid=f"wamid.backlog.{i:02d}")
            await tx.accept_inbound("whatsapp", m["id"], json.dumps(m))
    await store.close()
    settings = whatsapp_settings(
        database,
        graph.url,
        clock=process_clock.setting,
        flood_rate=1.0,
        flood_burst=10,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_whatsapp(settings, listen="127.0.0.1", port=free_port(), stop=stop, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        for _ in range(200):
            if len(handled(database, "wamid.backlog.")) == 30:
                break
            await asyncio.sleep(0.1)
        assert len(handled(database, "wamid.backlog.")) == 30
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert not any(NOTICE_FR in text_of(m) or NOTICE_AR in text_of(m) for m in graph.sent)
