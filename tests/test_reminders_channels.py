"""Reminders end to end (issue 22): the real bot against the fake Bot API and the fake Graph API,
`addad remind` as typed, the test's clock moving everyone's time (ADDAD_CLOCK)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import aiohttp
import pytest

from bot.cli import main
from bot.runtime import run_whatsapp

from .telegram_harness import ROOT, BotProcess, TgUser, seeded_database, settings_for, start_bot
from .webhook_harness import free_port
from .whatsapp_harness import FakeGraphAPI, WaUser, message, whatsapp_settings

DEC_1_10H = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Casablanca
READING = "La période de relève est ouverte"


async def cli(database, *argv: str) -> str:
    """`addad …` in this process (off the event loop), on the bot's database; its standard output."""
    import contextlib
    import io

    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main(list(argv))

    old = os.environ.get("ADDAD_DATABASE")
    os.environ["ADDAD_DATABASE"] = str(database)
    try:
        assert await asyncio.to_thread(run) == 0
    finally:
        if old is None:
            del os.environ["ADDAD_DATABASE"]
        else:
            os.environ["ADDAD_DATABASE"] = old
    return out.getvalue()


def queued_kinds(database) -> list[str]:
    con = sqlite3.connect(database)
    try:
        return [r[0] for r in con.execute("SELECT kind FROM reminders_sent ORDER BY contract")]
    finally:
        con.close()


def reminders_to(api, chat_id: int, after: int = 0) -> list:
    return [c for c in api.sent(chat_id, after=after) if READING in c.text]


async def link_on_telegram(api, chat_id: int, contract: str, phone: str, answer: str) -> TgUser:
    """A Telegram customer links `contract` by sharing their contact and answers the consent question."""
    user = TgUser(api, chat_id, "fr")
    await user.send("/start")
    await user.press("Ajouter un contrat")
    await user.send(contract)
    await user.share_contact(phone)
    ask = next(c for c in user.replies if "Voulez-vous recevoir ici nos rappels" in c.text)
    labels = [b["text"] for b in ask.inline_buttons()]
    assert labels == ["🔔 Oui, tous", "🧾 Factures seulement", "🔕 Non merci"]
    await user._after(lambda: api.press(chat_id, answer, message=ask))
    return user


@pytest.fixture
async def bot(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    try:
        yield database
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_an_opted_in_customer_gets_the_reading_window_and_its_button_starts_the_journey_on_that_meter(
    api, bot, process_clock
):
    fatima = await link_on_telegram(api, 9301, "1000001", "+212612345678", "remind:all")
    assert "C'est noté : vous recevrez ici les rappels" in fatima.text
    youssef = await link_on_telegram(api, 9302, "1000003", "+212661234567", "remind:none")
    assert "nous ne vous enverrons plus de rappels" in youssef.text
    start = len(api.calls)
    process_clock.set(DEC_1_10H)
    await cli(bot, "remind")
    assert queued_kinds(bot) == ["reading", "reading"]  # (queued by this run, or by the bot's own daily one)
    await api.wait_for(lambda c: c.chat_id == 9301 and "W-88002" in c.text and READING in c.text, after=start)
    await api.wait_for(lambda c: c.chat_id == 9301 and "E-77001" in c.text and READING in c.text, after=start)
    water = next(c for c in reminders_to(api, 9301, start) if "W-88002" in c.text)
    assert "contrat 1000002" in water.text and "10 décembre 2026" in water.text and "« stop »" in water.text
    assert [(b["text"], b["callback_data"]) for b in water.inline_buttons()] == [
        ("📟 Envoyer mon index", "remind:read:1000002")
    ]
    await asyncio.sleep(1.5)
    assert len(reminders_to(api, 9301, start)) == 2  # once each
    assert api.sent(9302, after=start) == []  # said no: nothing
    # One tap: the reading journey, on the water meter, no "which contract?".
    await fatima._after(lambda: api.press(9301, "remind:read:1000002", message=water))
    assert "compteur W-88002" in fatima.text and "Tapez l'index" in fatima.text
    await fatima.send("1325")
    assert "photo nette du compteur" in fatima.text  # the journey goes on with that index


async def test_quiet_hours_are_respected_under_the_controlled_clock(api, bot, process_clock):
    await link_on_telegram(api, 9311, "1000001", "+212612345678", "remind:all")
    process_clock.set(datetime(2026, 12, 1, 21, 30, tzinfo=UTC))  # 22:30 in Casablanca
    start = len(api.calls)
    await cli(bot, "remind")
    await asyncio.sleep(3)  # more than a dispatcher poll
    assert reminders_to(api, 9311, start) == []
    process_clock.set(datetime(2026, 12, 2, 7, 31, tzinfo=UTC))  # 08:31: the quiet hours are over
    await api.wait_for(lambda c: c.chat_id == 9311 and READING in c.text, after=start, timeout=15)


async def test_stop_on_telegram_then_nothing_is_sent(api, bot, process_clock):
    fatima = await link_on_telegram(api, 9321, "1000001", "+212612345678", "remind:all")
    await fatima.send("ma bghitch rappel")
    assert "nous ne vous enverrons plus de rappels" in fatima.text
    start = len(api.calls)
    process_clock.set(DEC_1_10H)
    out = await cli(bot, "remind")
    assert out.splitlines()[-1] == "reminders for 2026-12-01: queued 0"
    await asyncio.sleep(2.5)
    assert reminders_to(api, 9321, start) == []


def remind_process(database, clock) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADDAD_DATABASE": str(database), "ADDAD_CLOCK": clock.setting, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "remind"], env=env, capture_output=True, text=True, timeout=60, check=True
    )


async def test_a_reminder_is_not_sent_twice_across_a_kill_9_of_the_sender(api, tmp_path, process_clock):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database)
    await proc.start(api)
    try:
        await link_on_telegram(api, 9331, "1000001", "+212612345678", "remind:all")
        process_clock.set(DEC_1_10H)
        release = api.hold("sendMessage", lambda p: READING in str(p.get("text")))
        await asyncio.to_thread(remind_process, database, process_clock)
        assert queued_kinds(database) == ["reading", "reading"]
        first = await api.wait_for(lambda c: c.chat_id == 9331 and READING in c.text, timeout=15)
        proc.kill()  # kill -9: Telegram has the first reminder, the bot never noted it
        release.set()
        start = len(api.calls)
        await proc.start(api)
        await asyncio.sleep(4)  # the restarted dispatcher's recovery and a few polls
        meters = ["E-77001" if "E-77001" in c.text else "W-88002" for c in reminders_to(api, 9331)]
        assert sorted(meters) == ["E-77001", "W-88002"]  # each once: the first never again, the other sent
        assert [c for c in reminders_to(api, 9331, start) if c.text == first.text] == []
        again = await asyncio.to_thread(remind_process, database, process_clock)  # a second run, same day
        assert again.stdout.splitlines()[-1] == "reminders for 2026-12-01: queued 0"
        con = sqlite3.connect(database)
        rows = con.execute("SELECT status, last_error FROM outbox WHERE kind='reminder' ORDER BY id").fetchall()
        con.close()
        assert sorted(s for s, _ in rows) == ["failed", "sent"]
        assert any(s == "failed" and "not resent" in (e or "") for s, e in rows)
    finally:
        await proc.stop()


# ---------------------------------------------------------------------- WhatsApp
FATIMA = "212612345678"


@pytest.fixture
async def graph():
    api = await FakeGraphAPI().start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
async def wa(graph, tmp_path, process_clock):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    port = free_port()
    settings = whatsapp_settings(database, graph.url, clock=process_clock.setting)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_whatsapp(settings, listen="127.0.0.1", port=port, stop=stop, ready=ready.set))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    async with aiohttp.ClientSession() as http:
        try:
            yield WaUser(http, f"http://127.0.0.1:{port}/whatsapp", graph, FATIMA), database
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


async def test_a_whatsapp_reminder_outside_the_window_goes_as_the_template_with_its_language_and_parameters(
    wa, graph, process_clock
):
    fatima, database = wa
    await fatima.send("Bonjour")
    await fatima.tap("Ajouter un contrat")
    await fatima.send("1000001")  # her own number: the channel vouches for it
    assert "Voulez-vous recevoir ici nos rappels" in fatima.text
    reply = {"type": "button_reply", "button_reply": {"id": "remind:all", "title": "🔔 Oui, tous"}}
    await fatima._turn(message(FATIMA, "interactive", reply))
    assert "vous recevrez ici les rappels" in fatima.text
    process_clock.set(DEC_1_10H)  # eight days after her last message: outside the 24-hour window
    start = len(graph.sent)
    await cli(database, "remind")
    sent = await graph.wait_for(
        lambda m: m.get("type") == "template" and "W-88002" in str(m["template"]), after=start, timeout=15
    )
    template = sent["template"]
    assert template["name"] == "addad_reading_window" and template["language"] == {"code": "fr"}
    body, button = template["components"]
    assert [p["text"] for p in body["parameters"]] == ["1000002", "W-88002", "10 décembre 2026"]
    assert button == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": "remind:read:1000002"}],
    }
    assert not [m for m in graph.sent[start:] if m.get("type") != "template"]  # no free text outside the window
    # Her tap on the template's quick reply: the reading journey on the water meter.
    tap = {"payload": "remind:read:1000002", "text": "📟 Envoyer mon index"}
    await fatima._turn(message(FATIMA, "button", tap, at=DEC_1_10H))
    assert "compteur W-88002" in fatima.text


async def test_a_whatsapp_reminder_inside_the_window_is_free_text_with_its_button(wa, graph, process_clock):
    fatima, database = wa
    process_clock.set(DEC_1_10H)
    await fatima.send("Bonjour")
    await fatima.tap("Ajouter un contrat")
    await fatima.send("1000001")
    reply = {"type": "button_reply", "button_reply": {"id": "remind:all", "title": "🔔 Oui, tous"}}
    await fatima._turn(message(FATIMA, "interactive", reply))
    start = len(graph.sent)
    await cli(database, "remind")
    sent = await graph.wait_for(lambda m: m.get("type") == "interactive" and "W-88002" in str(m), after=start)
    assert READING in sent["interactive"]["body"]["text"]
    buttons = sent["interactive"]["action"]["buttons"]
    assert buttons == [{"type": "reply", "reply": {"id": "remind:read:1000002", "title": "📟 Envoyer mon index"}}]


async def test_telegrams_retry_after_is_honoured_and_the_reminder_arrives_once(api, bot, process_clock):
    await link_on_telegram(api, 9341, "1000003", "+212661234567", "remind:all")
    process_clock.set(DEC_1_10H)
    api.fail_once("sendMessage", status=429, retry_after=2, when=lambda p: READING in str(p.get("text")))
    start = len(api.calls)
    await cli(bot, "remind")
    refused = await api.wait_for(lambda c: c.chat_id == 9341 and READING in c.text, after=start, timeout=15)
    sent = await api.wait_for(
        lambda c: c.chat_id == 9341 and READING in c.text, after=api.calls.index(refused) + 1, timeout=20
    )
    assert sent.at - refused.at >= 2.0  # Telegram's retry_after, not the dispatcher's 5 s first back-off alone
    await asyncio.sleep(1)
    assert len(reminders_to(api, 9341, start)) == 2  # the refused call and the one that went through


async def test_addad_remind_killed_midway_queues_the_rest_once_when_run_again(tmp_path, process_clock):
    """kill -9 of `addad remind` in the middle of a campaign: every reminder queued is whole (its
    key and its outbox row, or neither), and the next run queues exactly the rest."""
    from bench.bench_remind import build

    database = tmp_path / "addad.sqlite3"
    from storage import open_store

    await (await open_store(database)).close()  # the schema
    build(database, 20_000)
    process_clock.set(DEC_1_10H)
    env = {**os.environ, "ADDAD_DATABASE": str(database), "ADDAD_CLOCK": process_clock.setting, "PYTHONPATH": str(ROOT)}

    def counts() -> tuple[int, int]:
        con = sqlite3.connect(database)
        try:
            keys = con.execute("SELECT count(*) FROM reminders_sent").fetchone()[0]
            rows = con.execute("SELECT count(*) FROM outbox WHERE kind='reminder'").fetchone()[0]
            return keys, rows
        finally:
            con.close()

    proc = subprocess.Popen([sys.executable, "-m", "bot", "remind"], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if counts()[0] > 0 or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        proc.kill()  # kill -9, mid-campaign
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    keys, rows = counts()
    assert 0 < keys < 20_000, "the run ended before it was killed: nothing shown"
    assert keys == rows  # no key without its row, no row without its key
    again = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "remind"], env=env, capture_output=True, text=True, timeout=300
    )
    rest = 20_000 - keys
    assert again.stdout.splitlines()[-1] == f"reminders for 2026-12-01: queued {rest} (reading {rest})"
    assert counts() == (20_000, 20_000)
    con = sqlite3.connect(database)
    assert con.execute("SELECT count(DISTINCT json_extract(payload, '$.contract')) FROM outbox").fetchone()[0] == 20_000
    con.close()
