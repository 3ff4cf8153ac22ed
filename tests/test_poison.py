"""Poison payloads (issue 18.5): a signed WhatsApp delivery or a Telegram update whose fields have
the wrong types is answered when its sender is known ("we could not read your message", in the
chat's language) and parked in the dead letters otherwise; nothing crashes, nothing is replayed
at the next start, and the next normal message is answered as usual."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from bot.runtime import run_whatsapp
from storage import open_store

from .chat import START
from .telegram_harness import ROOT, TgUser, seeded_database, settings_for, start_bot
from .test_whatsapp import FATIMA, free_port, graph, user, wa  # noqa: F401 (fixtures)
from .whatsapp_harness import delivery, message, text_of, whatsapp_settings

UNREADABLE_FR = "Désolé, je n'ai pas pu lire votre message"
UNREADABLE_AR = "عذرا، لم أتمكن من قراءة رسالتك"

# Four senders whose message is unreadable (each answered), three messages nobody can be answered for.
ANSWERED = {
    "212600000001": {"from": "212600000001", "id": "wamid.P1", "type": "text", "text": "hello"},
    "212600000002": {"from": "212600000002", "id": "wamid.P2", "type": "text", "text": {"body": 12345}},
    "212600000003": {
        "from": "212600000003",
        "id": "wamid.P3",
        "type": "location",
        "location": {"latitude": "33.57", "longitude": -7.59},
    },
    "212600000004": {"from": "212600000004", "id": "wamid.P4", "type": "contacts", "contacts": {"name": "x"}},
}
PARKED = [
    {"id": "wamid.P5", "type": "text", "text": {"body": "no sender"}},
    {"from": 212600000006, "id": "wamid.P6", "type": "text", "text": {"body": "a number as sender"}},
    ["a", "list", "where", "a", "message", "is", "due"],
]


def answered_rows(database) -> tuple[int, int]:
    con = sqlite3.connect(database)
    try:
        return con.execute("SELECT count(*), count(answered_at) FROM inbox").fetchone()
    finally:
        con.close()


async def dead_letters(database) -> list[dict]:
    store = await open_store(database, clock=lambda: START)
    try:
        async with store.snapshot() as tx:
            return await tx.dead_letters()
    finally:
        await store.close()


async def wait_all_answered(database, expected: int) -> None:
    for _ in range(100):
        if answered_rows(database) == (expected, expected):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"inbox rows (all, answered): {answered_rows(database)}, expected {expected}")


def sent_to(graph, phone: str, after: int = 0) -> list[str]:
    return [text_of(m) for m in graph.sent[after:] if m["to"] == phone]


# ---------------------------------------------------------------------- WhatsApp
async def test_whatsapp_poison_messages_are_answered_or_parked_and_the_next_message_is_normal(wa, graph):
    _, _, database = wa
    fatima = user(wa, graph)
    await fatima.send("Bonjour, j'ai une question")  # a French chat: its notice is in French
    start = len(graph.sent)
    arabic_poison = {"from": FATIMA, "id": "wamid.PA", "type": "image", "image": ["not", "an", "object"]}
    no_id = {"from": "212600000009", "type": "text", "text": {"body": "bonjour"}}
    poison = [*ANSWERED.values(), *PARKED, arabic_poison, no_id]
    assert await fatima.post(delivery([m for m in poison if isinstance(m, dict) and "from" in m])) == 200
    assert await fatima.post({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "messages": [m for m in poison if not (isinstance(m, dict) and "from" in m)]}}]}]}) == 200  # fmt: skip
    for phone in ANSWERED:  # new chats, in the language the bot starts a WhatsApp chat in
        reply = await graph.wait_for(lambda m, p=phone: m["to"] == p, after=start)
        assert UNREADABLE_AR in text_of(reply)
    reply = await graph.wait_for(lambda m: m["to"] == FATIMA, after=start)
    assert UNREADABLE_FR in text_of(reply)
    # Without an id, under a key of its own: answered as any first message.
    assert "Bonjour" in text_of(await graph.wait_for(lambda m: m["to"] == "212600000009", after=start))
    await wait_all_answered(database, 1 + len(poison))

    parked = {d["message_id"]: d for d in await dead_letters(database)}
    assert len(parked) == len(ANSWERED) + len(PARKED) + 1  # the id-less message is readable: not parked
    assert parked["wamid.P1"]["notified"] and "text" in parked["wamid.P1"]["reason"]
    assert parked["wamid.P3"]["reason"].startswith("location.latitude")
    assert not parked["wamid.P5"]["notified"] and parked["wamid.P5"]["reason"] == "from: Field required"
    assert not parked["wamid.P6"]["notified"]
    listed = next(d for d in parked.values() if d["message_id"].startswith("noid:"))
    assert json.loads(listed["body"]) == PARKED[2] and "not an object" in listed["reason"]

    # Meta redelivering the same webhook: nothing runs again; the next message is answered normally.
    before = len(graph.sent)
    assert await fatima.post(delivery([m for m in poison if isinstance(m, dict) and "from" in m])) == 200
    await fatima.send("chhal khassni nkhelles")
    assert fatima.replies and UNREADABLE_FR not in fatima.text
    assert [m["to"] for m in graph.sent[before:]] == [FATIMA] * len(fatima.replies)


async def test_poison_rows_left_by_an_old_process_are_parked_once_not_replayed_at_every_start(
    graph, tmp_path, process_clock
):
    """The inbox of a process that crashed on them: at start they are answered or parked, marked
    answered with the rest, and a second start sends nothing again."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=process_clock)
    normal = message(FATIMA, "text", {"body": "bonjour"}, wamid="wamid.normal")
    rows = [*ANSWERED.values(), *PARKED[:2], normal]
    async with store.transaction() as tx:
        for i, m in enumerate(rows):
            await tx.accept_inbound("whatsapp", m.get("id") or f"None{i}", json.dumps(m))
        await tx.accept_inbound("whatsapp", "None", json.dumps(PARKED[2]))  # stored as "None" before
    await store.close()
    settings = whatsapp_settings(
        database,
        graph.url,
        clock=process_clock.setting,
    )

    async def run_once() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            run_whatsapp(settings, listen="127.0.0.1", port=free_port(), stop=stop, ready=ready.set)
        )
        await asyncio.wait_for(ready.wait(), 30)
        try:
            await wait_all_answered(database, len(rows) + 1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)

    await run_once()
    assert "Bonjour" in text_of(await graph.wait_for(lambda m: m["to"] == FATIMA))
    for phone in ANSWERED:
        assert sent_to(graph, phone) and UNREADABLE_AR in sent_to(graph, phone)[0]
    first = len(graph.sent)
    assert len(await dead_letters(database)) == len(ANSWERED) + 3
    await run_once()
    await asyncio.sleep(0.3)
    assert graph.sent[first:] == []  # nothing replayed, nothing parked twice
    assert len(await dead_letters(database)) == len(ANSWERED) + 3


async def test_a_bad_envelope_or_status_does_not_fail_the_good_messages_beside_it(wa, graph):
    fatima = user(wa, graph)
    payload = delivery([message(FATIMA, "text", {"body": "Bonjour"})])
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = "not a list"
    value["statuses"] = [{"id": 5, "status": "failed", "errors": "x"}, "not an object"]
    payload["entry"].append("not an entry")
    assert await fatima.post(payload) == 200
    assert "Bonjour" in text_of(await graph.wait_for(lambda m: m["to"] == FATIMA))


# ---------------------------------------------------------------------- Telegram
def _tg_message(chat_id: int, lang: str = "fr", **fields) -> dict:
    return {
        "message_id": 1,
        "date": 1_796_000_000,
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "C", "language_code": lang},
        **fields,
    }


TG_ANSWERED = {
    2001: {"message": _tg_message(2001, text=123)},
    2002: {"message": _tg_message(2002, "ar", location={"latitude": "x", "longitude": -7.5})},
    2003: {"message": _tg_message(2003, photo="not a list")},  # PTB itself fails on this one
    2004: {"message": _tg_message(2004, entities="x", text={"a": 1})},
    2005: {
        "callback_query": {
            "id": "cq1",
            "from": ["not", "a", "user"],
            "chat_instance": "1",
            "data": 7,
            "message": {"message_id": 3, "date": 1, "chat": {"id": 2005, "type": "private"}},
        }
    },
}
TG_PARKED = [{"message": []}, {"message": {"chat": "x", "text": "hi"}}, {"callback_query": "x"}]


async def test_telegram_polling_poison_updates_answered_or_parked_then_normal_and_not_replayed(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    try:
        for update in [*TG_ANSWERED.values(), *TG_PARKED]:
            api.push(copy.deepcopy(update))
        normal = TgUser(api, 2010)
        await normal.send("/start")  # in the same getUpdates batch or the next: PTB never sees the poison
        assert "Bonjour et bienvenue" in normal.text
        for chat in TG_ANSWERED:
            call = await api.wait_for(lambda c, chat=chat: c.method == "sendMessage" and c.chat_id == chat)
            # In the sender's Telegram language; without one (2005: no readable sender), Arabic.
            assert (UNREADABLE_AR if chat in (2002, 2005) else UNREADABLE_FR) in call.text
        await wait_all_answered(database, len(TG_ANSWERED) + len(TG_PARKED) + 1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    parked = await dead_letters(database)
    assert len(parked) == len(TG_ANSWERED) + len(TG_PARKED)
    assert sum(d["notified"] for d in parked) == len(TG_ANSWERED)
    first = len(api.calls)
    task, stop = await start_bot(settings_for(api, database))  # a restart: nothing to replay
    try:
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert [c for c in api.calls[first:] if c.method == "sendMessage"] == []
    assert len(await dead_letters(database)) == len(parked)


async def test_telegram_poison_rows_in_the_inbox_are_parked_at_replay(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=lambda: START)
    async with store.transaction() as tx:
        await tx.accept_inbound("telegram", "77", json.dumps({"update_id": 77, **TG_ANSWERED[2001]}))
        await tx.accept_inbound("telegram", "78", json.dumps({"update_id": 78, "message": []}))
    await store.close()
    task, stop = await start_bot(settings_for(api, database))
    try:
        call = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 2001)
        assert UNREADABLE_FR in call.text
        await wait_all_answered(database, 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert {d["message_id"] for d in await dead_letters(database)} == {"77", "78"}


async def test_telegram_webhook_poison_is_answered_200_and_parked(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    settings = settings_for(api, database, telegram_webhook_secret="s3cret")
    port = free_port()
    task, stop = await start_bot(settings, webhook_url="https://bot.example/tg", listen="127.0.0.1", port=port)
    import aiohttp

    headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    try:
        async with aiohttp.ClientSession() as http:
            for i, update in enumerate([TG_ANSWERED[2001], TG_PARKED[0]]):
                async with http.post(
                    f"http://127.0.0.1:{port}/tg", json={**update, "update_id": 500 + i}, headers=headers
                ) as r:
                    assert r.status == 200
        call = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 2001)
        assert UNREADABLE_FR in call.text
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert {(d["message_id"], d["notified"]) for d in await dead_letters(database)} == {("500", True), ("501", False)}


# ---------------------------------------------------------------------- the back office
@pytest.mark.parametrize("command", [["deadletters", "--body"], ["requests", "list"]])
async def test_the_back_office_sees_the_parked_messages(tmp_path, command):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=lambda: START)
    async with store.transaction() as tx:
        await tx.park_message("whatsapp", "wamid.P1", "text: Input should be an object", '{"x": 1}', notified=True)
    await store.close()
    env = {**os.environ, "ADDAD_DATABASE": str(database), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", *command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    if command[0] == "deadletters":
        lines = done.stdout.splitlines()
        assert "whatsapp" in lines[0] and "wamid.P1" in lines[0] and "told" in lines[0]
        assert lines[0].endswith("text: Input should be an object") and lines[1].strip() == '{"x": 1}'
        assert lines[-1].startswith("1 parked message(s)")
    else:
        assert "1 message(s) the bot could not read are parked: addad deadletters" in done.stdout
