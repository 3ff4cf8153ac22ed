"""Retention (law 09-08, [retention] in the profile): what is pruned, when, and what stays so a
redelivered message is still answered once. Real `run_whatsapp` on 127.0.0.1 for the customer's
side; the database as an operator (or an auditor) would read it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta

import pytest

from bot import cli
from bot.runtime import run_whatsapp
from conversations import retention
from conversations.profile import ProfileError, default_profile_path, load_profile
from storage import open_store

from .chat import Clock
from .telegram_harness import seeded_database
from .test_whatsapp import FATIMA, free_port
from .whatsapp_harness import (
    FakeGraphAPI,
    WaUser,
    delivery,
    message,
    text_of,
    whatsapp_settings,
)


@pytest.fixture
async def graph():
    api = await FakeGraphAPI().start()
    try:
        yield api
    finally:
        await api.stop()


def rows(database, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


class WhatsApp:
    """`addad whatsapp` in this process, started and stopped by the test."""

    def __init__(self, graph, database, clock) -> None:
        self.settings = whatsapp_settings(
            database,
            graph.url,
            clock=clock.setting,
        )
        self.port = free_port()

    async def __aenter__(self) -> str:
        self.stop, ready = asyncio.Event(), asyncio.Event()
        self.task = asyncio.create_task(
            run_whatsapp(self.settings, listen="127.0.0.1", port=self.port, stop=self.stop, ready=ready.set)
        )
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([self.task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        return f"http://127.0.0.1:{self.port}/whatsapp"

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)


async def test_a_redelivery_of_a_pruned_message_is_not_answered_again(graph, tmp_path, process_clock):
    import aiohttp

    database = await seeded_database(tmp_path / "addad.sqlite3")
    hello = message(FATIMA, "text", {"body": "bonjour"}, wamid="wamid.hello")
    async with aiohttp.ClientSession() as http:
        async with WhatsApp(graph, database, process_clock) as url:
            fatima = WaUser(http, url, graph, FATIMA)
            assert await fatima.post(delivery([hello])) == 200
            await graph.wait_for(lambda m: "Bonjour" in text_of(m))
        assert rows(database, "SELECT count(*) FROM inbox WHERE answered_at IS NOT NULL") == [(1,)]
        assert rows(database, "SELECT count(*) FROM processed_messages WHERE replies IS NOT NULL") == [(1,)]

        process_clock.advance(days=31)  # past replies_days (30) and inbox_days (7), before keys_days (90)
        async with WhatsApp(graph, database, process_clock) as url:  # prunes at start
            await asyncio.sleep(0.3)
            # The body and the replies are gone; the key stays.
            assert rows(database, "SELECT count(*) FROM inbox") == [(0,)]
            assert rows(database, "SELECT message_id, replies FROM processed_messages") == [("wamid.hello", None)]
            fatima = WaUser(http, url, graph, FATIMA)
            start = len(graph.sent)
            assert await fatima.post(delivery([hello])) == 200  # Meta redelivers the old message
            later = message(FATIMA, "text", {"body": "merci"}, wamid="wamid.later")
            assert await fatima.post(delivery([later])) == 200
            await graph.wait_for(lambda m: m["to"] == FATIMA, after=start)
            await asyncio.sleep(0.5)
            # Per-chat order: the duplicate was handled before "merci" and sent nothing; "merci" one message.
            assert len(graph.sent[start:]) == 1
            assert rows(database, "SELECT message_id FROM processed_messages ORDER BY message_id") == [
                ("wamid.hello",),
                ("wamid.later",),
            ]


async def test_an_unanswered_message_is_never_pruned_and_is_answered_at_start(graph, tmp_path, process_clock):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=process_clock)
    m = message(FATIMA, "text", {"body": "bonjour"}, wamid="wamid.waiting")
    async with store.transaction() as tx:
        await tx.accept_inbound("whatsapp", "wamid.waiting", json.dumps(m))
    await store.close()
    process_clock.advance(days=40)  # the process was down for 40 days
    async with WhatsApp(graph, database, process_clock):
        reply = await graph.wait_for(lambda m: m["to"] == FATIMA, timeout=20)
        assert "Bonjour" in text_of(reply)


async def test_older_rows_pruned_newer_kept_unanswered_never(tmp_path):
    clock = Clock()
    profile = load_profile()  # replies_days 30, inbox_days 7, keys_days 90
    store = await open_store(tmp_path / "addad.sqlite3", clock=clock)
    now = clock()

    async def handled(mid: str, days: float, *, answered: bool | None) -> None:
        at = now - timedelta(days=days)
        async with store.transaction() as tx:
            if answered is not None:
                await tx.accept_inbound("whatsapp", mid, f'{{"text": "body of {mid}"}}', now=at)
                if answered:
                    await tx.mark_answered("whatsapp", [mid], now=at)
            await tx.record_turn("whatsapp", mid, '[{"text": "Montant: 120,00 DH", "buttons": []}]', now=at)

    await handled("new", 2, answered=True)  # everything kept
    await handled("week", 8, answered=True)  # inbox row deleted, replies kept
    await handled("month", 31, answered=True)  # replies emptied too, key kept
    await handled("console", 31, answered=None)  # no inbox (console, webhook): replies emptied
    await handled("stuck", 100, answered=False)  # turn ran, replies never sent: all kept for the replay
    await handled("ancient", 91, answered=True)  # the key too
    async with store.transaction() as tx:  # accepted 100 days ago, turn never ran
        await tx.accept_inbound("telegram", "1001", '{"update_id": 1001}', now=now - timedelta(days=100))
    async with store.transaction() as tx:
        pruned = await retention.prune(tx, profile, now)
    await store.close()
    assert (pruned.inbox, pruned.replies, pruned.keys) == (3, 3, 1)

    database = tmp_path / "addad.sqlite3"
    assert rows(database, "SELECT channel, message_id FROM inbox ORDER BY message_id") == [
        ("telegram", "1001"),
        ("whatsapp", "new"),
        ("whatsapp", "stuck"),
    ]
    kept = dict(rows(database, "SELECT message_id, replies IS NOT NULL FROM processed_messages"))
    assert kept == {"new": 1, "week": 1, "month": 0, "console": 0, "stuck": 1}


async def test_pruning_runs_once_a_day_by_the_store_clock(tmp_path):
    clock = Clock()
    store = await open_store(tmp_path / "addad.sqlite3", clock=clock)
    daily = retention.Daily(store, load_profile())
    async with store.transaction() as tx:
        await tx.accept_inbound("whatsapp", "a", "{}", now=clock() - timedelta(days=6, hours=12))
        await tx.mark_answered("whatsapp", ["a"])
    assert (await daily.due()).inbox == 0  # the first run, at start: 6.5 days old, kept
    clock.advance(hours=23)
    assert await daily.due() is None  # not a day yet
    clock.advance(hours=1)
    assert (await daily.due()).inbox == 1
    await store.close()


def test_the_periods_are_validated(tmp_path):
    base = default_profile_path().read_text(encoding="utf-8")
    for bad, why in [
        ("replies_days = -1", "replies_days"),
        ("keys_days = 3", "keys_days"),  # WhatsApp redelivers for 7 days: the key must outlive that
        ("inbox_days = 400", "keys_days must be at least"),
    ]:
        key = bad.split(" ")[0]
        text = "\n".join(bad if line.startswith(key + " ") else line for line in base.splitlines())
        path = tmp_path / "profile.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ProfileError, match=why):
            load_profile(path)


def test_addad_db_prune(tmp_path, monkeypatch, capsys):
    database = tmp_path / "addad.sqlite3"

    async def old_answered() -> None:
        store = await open_store(database, clock=Clock())
        async with store.transaction() as tx:
            await tx.accept_inbound("whatsapp", "a", "{}", now=Clock()() - timedelta(days=10))
            await tx.mark_answered("whatsapp", ["a"])
        await store.close()

    asyncio.run(old_answered())
    monkeypatch.setenv("ADDAD_DATABASE", str(database))
    assert cli.main(["db", "prune"]) == 0
    assert "1 answered inbox row(s) deleted" in capsys.readouterr().out
    assert rows(database, "SELECT count(*) FROM inbox") == [(0,)]


async def test_a_telegram_update_delivered_again_after_pruning_is_answered_once(api, tmp_path, process_clock):
    from .telegram_harness import TgUser, settings_for, start_bot

    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    try:
        user = TgUser(api, 5005, "fr")
        api.text(5005, "combien je dois")
        update = json.loads(json.dumps(api.updates[-1]))
        await api.wait_for(lambda c: c.method == "sendMessage" and "reliez d'abord" in c.text)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    process_clock.advance(days=31)
    task, stop = await start_bot(settings_for(api, database))  # prunes at start
    try:
        await asyncio.sleep(0.3)
        assert rows(database, "SELECT count(*) FROM inbox") == [(0,)]
        assert rows(database, "SELECT message_id, replies FROM processed_messages") == [
            (str(update["update_id"]), None)
        ]
        start = len(api.calls)
        api.push(update)  # Telegram delivers the same update_id again
        await api.acknowledged(update["update_id"])
        await user.send("merci")
        await asyncio.sleep(0.5)
        sent = [c for c in api.calls[start:] if c.method == "sendMessage" and c.chat_id == 5005]
        assert sent  # "merci" is answered …
        assert not any("reliez d'abord" in c.text for c in sent)  # … the old update's answer is not sent again
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
