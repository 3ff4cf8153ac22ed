"""The backlog after a crash (issue 18, items 1 and 2): every message kept in the inbox and not
answered is answered after one restart, however many, in order per chat, none twice, while new
messages keep flowing; in Telegram webhook mode too. Real `addad whatsapp` / `addad telegram`
processes killed with SIGKILL, against the fake Graph API and Bot API."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from pathlib import Path

import aiohttp

from bot.channels.ordering import ChatSequencer
from conversations.inbox import Inbox
from conversations.profile import load_profile
from storage import open_store

from .chat import Clock
from .fake_botapi import FakeBotAPI
from .telegram_harness import BotProcess, TgUser, seeded_database
from .webhook_harness import free_port
from .whatsapp_harness import FakeGraphAPI, WhatsAppProcess, delivery, message, text_of

# Cities the bot has no agency in: "agence à Fès" is answered "Nous n'avons pas d'agence à Fès",
# so each answer names the message it answers.
CITIES = ["Fès", "Tanger", "Marrakech", "Meknès", "Agadir", "Oujda", "Kénitra", "Tétouan", "Nador", "Taza"]
# Each city as the answer names it, in French or in Arabic (a customer's language is the bot's guess).
NAMES = {n: c.name for c in load_profile().cities if c.name in [*CITIES, "Safi"] for n in (c.name, c.ar)}
CITY = re.compile("|".join(NAMES))
CHATS, PER_CHAT = 200, 25  # 5,000 messages


def plan(chat_index: int) -> list[str]:
    """What one chat writes: PER_CHAT cities, in an order of its own."""
    return [CITIES[(chat_index * 7 + k * (1 + chat_index % 3)) % len(CITIES)] for k in range(PER_CHAT)]


def cities_in(texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        names = CITY.findall(text)
        assert len(names) == 1, text
        found.append(NAMES[names[0]])
    return found


def inbox_rows(database: Path, channel: str) -> tuple[int, int]:
    """(unanswered rows, rows whose turn ran) of a channel's inbox."""
    con = sqlite3.connect(database)
    try:
        unanswered = con.execute(
            "SELECT count(*) FROM inbox WHERE channel=? AND answered_at IS NULL", (channel,)
        ).fetchone()[0]
        ran = con.execute(
            "SELECT count(*) FROM inbox i JOIN processed_messages p USING (channel, message_id) "
            "WHERE i.channel=? AND i.answered_at IS NULL",
            (channel,),
        ).fetchone()[0]
    finally:
        con.close()
    return unanswered, ran


# ---------------------------------------------------------------------- the inbox alone
async def test_the_whole_backlog_is_handed_over_in_order_a_bounded_number_at_a_time(tmp_path):
    """Keyset pages of 3 rows, 2 rows in flight: every row once, in order per chat; a new message
    of a chat with a backlog waits for it, one of another chat does not; rows kept after open()
    are new messages, not backlog."""
    store = await open_store(tmp_path / "a.sqlite3", clock=Clock())
    inbox = Inbox(store, "whatsapp", batch=3, in_flight=2)
    async with store.transaction() as tx:
        for i in range(12):
            chat = "A" if i % 3 else "B"
            await tx.accept_inbound("whatsapp", f"m{i}", json.dumps({"chat": chat, "n": i}))
    await inbox.open()
    await inbox.accept([("late", json.dumps({"chat": "A", "n": 99}))])  # after open(): a new message
    done: list[tuple[str, int]] = []
    busy, most = 0, 0
    replay_order = ChatSequencer(64)

    async def turn(chat: str, n: int) -> None:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0.01)
        done.append((chat, n))
        busy -= 1

    async def replayed(message_id: str, body: str, processed: bool) -> None:
        m = json.loads(body)
        await replay_order.run(m["chat"], turn(m["chat"], m["n"]))

    live = ChatSequencer(64, admit=inbox.admit)
    inbox.start_replay(lambda body: json.loads(body)["chat"], replayed)
    new_a = asyncio.create_task(live.run("A", turn("A", 100)))
    new_c = asyncio.create_task(live.run("C", turn("C", 200)))
    await new_c
    assert len(done) < 12  # C did not wait for the backlog
    await asyncio.wait_for(new_a, 5)
    await inbox.close()
    await store.close()
    assert [n for chat, n in done if chat == "A"] == [1, 2, 4, 5, 7, 8, 10, 11, 100]
    assert [n for chat, n in done if chat == "B"] == [0, 3, 6, 9]
    assert most <= 2 + 1  # the backlog's two, and C's
    assert inbox.replayed == 12


async def test_closing_mid_replay_leaves_the_rest_for_the_next_start_in_order(tmp_path):
    store = await open_store(tmp_path / "a.sqlite3", clock=Clock())
    async with store.transaction() as tx:
        for i in range(6):
            await tx.accept_inbound("whatsapp", f"m{i}", json.dumps({"chat": "A", "n": i}))
    inbox = Inbox(store, "whatsapp", batch=2, in_flight=1, every=0.01)
    await inbox.open()
    await inbox.accept([("new", json.dumps({"chat": "A", "n": 6}))])
    started = asyncio.Event()

    async def slow(message_id: str, body: str, processed: bool) -> None:
        started.set()
        await asyncio.sleep(0.2)
        inbox.done(f"m{json.loads(body)['n']}")

    live = ChatSequencer(64, admit=inbox.admit)
    inbox.start_replay(lambda body: json.loads(body)["chat"], slow)
    await started.wait()
    waiting = asyncio.create_task(live.run("A", asyncio.sleep(0)))
    await inbox.close()  # the row in hand finishes; the new message is not let through
    assert waiting.cancelled() or isinstance(waiting.exception(), asyncio.CancelledError)
    async with store.snapshot() as tx:
        left = [m for m, *_ in await tx.unanswered_inbound("whatsapp")]
    await store.close()
    assert left == ["m1", "m2", "m3", "m4", "m5", "new"]


# ---------------------------------------------------------------------- WhatsApp, kill -9
async def test_whatsapp_killed_with_5000_messages_waiting_answers_them_all_after_one_restart(tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    graph = await FakeGraphAPI().start()
    proc = WhatsAppProcess(graph, database)
    try:
        await proc.start()
        graph.stall = True  # a slow Graph API: turns run, their replies do not get out
        phones = [f"2126{10_000_000 + i}" for i in range(CHATS)]
        plans = {phone: plan(i) for i, phone in enumerate(phones)}
        async with aiohttp.ClientSession() as http:
            for k in range(PER_CHAT):
                for start in range(0, CHATS, 20):  # 20 messages a delivery
                    batch = [
                        message(p, "text", {"body": f"agence à {plans[p][k]}"}) for p in phones[start : start + 20]
                    ]
                    assert await proc.post(http, delivery(batch)) == 200
        unanswered, ran = inbox_rows(database, "whatsapp")
        assert unanswered == CHATS * PER_CHAT and ran < 200
        proc.kill()
        graph.stall = False  # what the killed process had on the wire never reached anyone
        sent_before = len(graph.sent)
        began = time.monotonic()
        await proc.start()
        late = {phones[0]: "Safi", "212699999999": "Safi"}  # written during the replay
        async with aiohttp.ClientSession() as http:
            for phone, city in late.items():
                assert await proc.post(http, delivery([message(phone, "text", {"body": f"agence à {city}"})])) == 200
        expected = CHATS * PER_CHAT + len(late)
        while len(graph.sent) - sent_before < expected and time.monotonic() - began < 90:
            await asyncio.sleep(0.2)
        replies = graph.sent[sent_before:]
        assert len(replies) == expected, f"{len(replies)} of {expected} answered"
        elapsed = time.monotonic() - began
        await asyncio.sleep(0.5)
        assert len(graph.sent) - sent_before == expected  # nothing more: none twice
        for phone in phones:
            texts = [text_of(m) for m in replies if m["to"] == phone]
            assert cities_in(texts) == plans[phone] + (["Safi"] if phone in late else [])
        order = [m["to"] for m in replies]
        # The new chat was answered while the backlog was still being replayed.
        assert order.index("212699999999") < len(order) - 100, elapsed
        assert inbox_rows(database, "whatsapp") == (0, 0)
        assert await proc.stop() == 0
        assert "Traceback" not in proc.output()
    finally:
        await proc.stop()
        await graph.stop()


# ---------------------------------------------------------------------- Telegram polling, kill -9
async def test_telegram_polling_killed_with_5000_updates_waiting_answers_them_all_after_one_restart(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database, env={"ADDAD_TELEGRAM_RATE_LIMIT": "0"})
    stalling = True
    api.hold("sendMessage", lambda p: stalling)  # held calls are never answered: the process dies first
    try:
        await proc.start(api)
        chats = [810_000 + i for i in range(CHATS)]
        plans = {chat: plan(i) for i, chat in enumerate(chats)}
        last = 0
        for k in range(PER_CHAT):
            for chat in chats:
                last = api.text(chat, f"agence à {plans[chat][k]}")
        await api.acknowledged(last, timeout=60)  # all of them confirmed to "Telegram": in the inbox
        unanswered, ran = inbox_rows(database, "telegram")
        assert unanswered == CHATS * PER_CHAT and ran < 200
        proc.kill()
        stalling = False
        restart = len(api.calls)
        began = time.monotonic()
        await proc.start(api)
        late = {chats[0]: "Safi", 899_999: "Safi"}  # written during the replay
        for chat, city in late.items():
            api.text(chat, f"agence à {city}")
        expected = CHATS * PER_CHAT + len(late)

        def answers() -> list:
            return [c for c in api.calls[restart:] if c.method == "sendMessage"]

        while len(answers()) < expected and time.monotonic() - began < 90:
            await asyncio.sleep(0.2)
        assert len(answers()) == expected, f"{len(answers())} of {expected} answered"
        await asyncio.sleep(0.5)
        replies = answers()
        assert len(replies) == expected  # nothing more: none twice
        for chat in chats:
            texts = [c.text for c in replies if c.chat_id == chat]
            assert cities_in(texts) == plans[chat] + (["Safi"] if chat in late else [])
        order = [c.chat_id for c in replies]
        assert order.index(899_999) < len(order) - 100  # not held up by the replay
        assert inbox_rows(database, "telegram") == (0, 0)
    finally:
        assert await proc.stop() == 0, proc.output()[-3000:]
    assert "Traceback" not in proc.output()


# ---------------------------------------------------------------------- Telegram webhook, kill -9
async def test_telegram_webhook_killed_between_the_reading_and_its_answer_sends_the_reference_after_restart(
    api: FakeBotAPI, tmp_path
):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    port = free_port()
    secret = "s3cret-Token_1"
    proc = BotProcess(
        api,
        database,
        "--webhook-url",
        "https://bot.example/tg/hook",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        env={"ADDAD_TELEGRAM_WEBHOOK_SECRET": secret},
    )
    url = f"http://127.0.0.1:{port}/tg/hook"
    # The fake Bot API's updates are posted to the webhook instead of being polled.
    posted: list[int] = []

    async def post(update: dict) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # until the server listens (after a restart)
                try:
                    async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
                        assert r.status == 200
                        posted.append(update["update_id"])
                        return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError("the webhook never answered")

    original_push = api.push

    def push(update: dict) -> int:
        update_id = original_push(update)
        api.updates = [u for u in api.updates if u["update_id"] != update_id]
        full = {"update_id": update_id, **update}
        asyncio.get_running_loop().create_task(post(full))
        return update_id

    api.push = push  # type: ignore[method-assign]

    async def serving() -> None:
        begin = len(api.calls)
        await proc.start(api)
        await api.wait_for(lambda c: c.method == "setWebhook", after=begin, timeout=20)

    await serving()
    user = TgUser(api, 9300, "fr")
    try:
        assert api.webhook and api.webhook["url"] == "https://bot.example/tg/hook"
        await user.send("/start")
        await user.press("Mes factures")
        await user.send("1000001")
        await user.share_contact("+212612345678")
        await user.send("45400")
        await user.press("1000001")
        await user.send("Sans photo")
        assert "Consommation : 190 kWh" in user.text
        # The reading is committed, the update was answered 200 long before, its answer hangs on
        # the wire, and the bot dies.
        release = api.hold("sendMessage", lambda p: "Index enregistré" in str(p.get("text")))
        start = len(api.calls)
        update_id = api.text(9300, "Confirmer")
        await api.wait_for(lambda c: "Index enregistré" in c.text, after=start, timeout=15)
        assert posted[-1] == update_id
        proc.kill()
        release.set()  # answered to a dead process: the restarted one must send it again
        restart = len(api.calls)
        await serving()
        again = await api.wait_for(lambda c: c.chat_id == 9300 and "Index enregistré" in c.text, after=restart)
        assert "RL-2026-000001" in again.text
        con = sqlite3.connect(database)
        assert con.execute("SELECT count(*) FROM readings WHERE source='customer'").fetchone()[0] == 1
        con.close()
        await user.send("combien je dois ?")
        assert "Total à payer" in user.text
        await asyncio.sleep(0.5)
        assert len([c for c in api.calls[restart:] if "Index enregistré" in c.text]) == 1
        assert inbox_rows(database, "telegram") == (0, 0)
    finally:
        code = await proc.stop()
    assert code == 0, proc.output()[-3000:]
    assert "Traceback" not in proc.output()
