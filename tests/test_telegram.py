"""The Telegram channel end to end: the real bot (python-telegram-bot, `addad telegram`'s code
path) against a fake Bot API server on 127.0.0.1 speaking HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3

import aiohttp
import pytest

from bot.channels.telegram import markup_for, plan, split_text, to_inbound
from bot.runtime import ConfigError, run_telegram
from conversations.backoffice import decide
from conversations.events import Button, Reply
from storage import open_store

from .telegram_harness import BotProcess, TgUser, seeded_database, settings_for, start_bot
from .webhook_harness import free_port, raw_post, tracebacks


@pytest.fixture
async def bot(api, tmp_path):
    """The bot running in this event loop, as `addad telegram` (long polling) runs it."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    try:
        yield database
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


# ---------------------------------------------------------------------- journeys, French, buttons
async def test_french_customer_links_by_contact_reads_meter_with_photo_and_files_instalments(api, bot, tmp_path):
    commands = [c for c in api.calls if c.method == "setMyCommands"]
    assert {c.params.get("language_code") for c in commands} == {"ar", "fr", None}
    fr = next(c for c in commands if c.params.get("language_code") == "fr")
    assert {"command": "cancel", "description": "Annuler la demande en cours"} in fr.params["commands"]

    user = TgUser(api, 1001, "fr")
    await user.send("/start")
    assert "Bonjour et bienvenue" in user.text
    await user.press("Mes factures")
    # The pressed keyboard is answered and edited away, the choice written under it.
    assert [c.params["callback_query_id"] for c in api.calls if c.method == "answerCallbackQuery"] == ["cq1002"]
    edit = next(c for c in api.calls if c.method == "editMessageText" and c.chat_id == 1001)
    assert edit.text.endswith("👉 🧾 Mes factures, solde") and not edit.markup.get("inline_keyboard")
    assert "reliez d'abord votre contrat" in user.text
    await user.send("1000001")
    keyboard = user.replies[-1].keyboard_buttons()
    assert {"text": "📱 Partager mon numéro", "request_contact": True} in keyboard
    await user.share_contact("+212612345678")
    assert user.replies[0].markup == {"remove_keyboard": True}
    assert "est maintenant relié" in user.text and "Total à payer : 462,07\u00a0DH" in user.text

    await user.press("sept. 2026")
    assert "Facture F-2026-09-1" in user.text and "Cette facture a été estimée" in user.text
    await user.press("Oui")
    assert "E-77001" in user.text  # the estimated bill's meter, not a contract question
    await user.send_photo("AgACAgQAAxkBAAIBmeter")
    assert "photo" in user.text.lower()
    await user.send("45400")
    assert "Index : 45400" in user.text and "Consommation : 190 kWh depuis 45210" in user.text
    assert "Photo : jointe" in user.text
    await user.press("Confirmer")
    assert "Index enregistré ✅ Référence : RL-2026-000001" in user.text
    assert "190 kWh × 1,0732 = 203,91\u00a0DH" in user.text
    # The meter photo was fetched through getFile and kept next to the database, named by its hash.
    assert [c.params["file_id"] for c in api.calls if c.method == "getFile"] == ["AgACAgQAAxkBAAIBmeter"]
    digest = hashlib.sha256(api.files["AgACAgQAAxkBAAIBmeter"]).hexdigest()
    assert (tmp_path / "media" / digest[:2] / digest).read_bytes() == api.files["AgACAgQAAxkBAAIBmeter"]
    con = sqlite3.connect(bot)
    assert con.execute("SELECT photo_ref, photo_sha256 FROM readings WHERE source='customer'").fetchone() == (
        "AgACAgQAAxkBAAIBmeter",
        digest,
    )
    con.close()

    await user.send("je voudrais payer en 3 fois")
    assert "Pour quelle raison" in user.text
    await user.press("Perte d'emploi")
    assert "Arriérés : 2 factures, 462,07\u00a0DH" in user.text
    assert ": 154,02\u00a0DH" in user.text and ": 154,03\u00a0DH" in user.text  # remainder on the last line
    await user.press("Envoyer la demande")
    assert "IN-2026-000001" in user.text


# ---------------------------------------------------------------------- Arabic, typing only
async def test_arabic_customer_types_everything(api, bot):
    user = TgUser(api, 2002, "ar")
    await user.send("السلام عليكم")
    assert "مرحبا" in user.text or "أهلا" in user.text
    await user.send("شحال خاصني نخلص")
    await user.send("١٠٠٠٠٠١")
    await user.share_contact("0612345678")
    assert "مربوط الآن" in user.text and "462,07" in user.text
    await user.send("بغيت نخلص بالتقسيط")
    assert "فاتورتان غير مؤداتين، المجموع 462,07 درهم" in user.text
    await user.send("على 3 شهور")  # typed, not pressed
    await user.send("1")  # the first reason, by its number
    assert "154,03" in user.text
    await user.send("نعم")
    assert "IN-2026-000001" in user.text


async def test_a_phone_set_to_french_gets_arabic_when_its_owner_writes_arabic(api, bot):
    # Telegram's language_code is the app's language, French on many Moroccan phones: the first
    # message's own language decides, the phone's only where the text does not tell.
    writer = TgUser(api, 2102, "fr")
    await writer.send("السلام عليكم بغيت نعرف شحال خاصني نخلص")
    assert "رقم العقد" in writer.text and "contrat" not in writer.text
    await writer.send("1000001")
    await writer.share_contact("0612345678")
    assert "مربوط الآن" in writer.text and "462,07" in writer.text
    starter = TgUser(api, 2103, "fr")
    await starter.send("/start")  # no words of its own: the phone's language
    assert "Bonjour" in starter.text
    arabophone = TgUser(api, 2104, "ar")
    await arabophone.send("Bonjour, je voudrais connaître mon solde")
    assert "contrat" in arabophone.text and "رقم العقد" not in arabophone.text


# ---------------------------------------------------------------------- Telegram's rules
async def test_a_contact_that_is_not_the_senders_does_not_link(api, bot):
    user = TgUser(api, 3003, "fr")
    await user.send("/start")
    await user.press("Ajouter un contrat")
    await user.send("1000001")
    await user.share_contact("+212612345678", own=False)  # a forwarded contact card
    assert "votre propre numéro" in user.text and "relié" not in user.text


async def test_flood_control_429_is_waited_out_and_the_reply_arrives(api, bot):
    api.fail_once("sendMessage", status=429, retry_after=1, when=lambda p: str(p.get("chat_id")) == "4004")
    user = TgUser(api, 4004, "fr")
    await user.send("/start")
    first = api.calls.index(user.replies[0])
    await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 4004, after=first + 1)
    attempts = [c for c in api.calls if c.method == "sendMessage" and c.chat_id == 4004]
    assert len(attempts) == 2 and attempts[1].at - attempts[0].at >= 1.0
    assert attempts[0].text == attempts[1].text and "Bonjour" in attempts[1].text


async def test_a_duplicate_update_is_answered_once(api, bot):
    user = TgUser(api, 5005, "fr")
    await user.send("/start")
    update_id = api.text(5005, "combien je dois")
    duplicate = json.loads(json.dumps(api.updates[-1]))
    api.push(duplicate)  # Telegram delivers the same update_id again
    assert duplicate["update_id"] == update_id
    await api.acknowledged(update_id)
    await asyncio.sleep(0.5)
    answers = [c for c in api.calls if c.method == "sendMessage" and c.chat_id == 5005 and "reliez d'abord" in c.text]
    assert len(answers) == 1


async def test_a_stale_button_gets_an_answer_not_a_spinner(api, bot):
    user = TgUser(api, 6006, "fr")
    await user.send("/start")
    start = len(api.calls)
    api.press(6006, "bill:3")  # a button from a message long gone
    answered = await api.wait_for(lambda c: c.method == "answerCallbackQuery", after=start)
    assert answered.params["callback_query_id"].startswith("cq")
    reply = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 6006, after=start)
    assert "Ce bouton n'est plus valable" in reply.text


async def test_stickers_groups_and_long_texts_get_an_answer(api, bot):
    user = TgUser(api, 7007, "fr")
    await user.send("/start")
    await user._after(lambda: api.sticker(7007))
    assert user.text  # never silence
    await user.send("a" * 5000)
    assert "long" in user.text
    start = len(api.calls)
    api.push(
        {
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": -100, "type": "group", "title": "Famille"},
                "from": {"id": 7007, "is_bot": False, "first_name": "X", "language_code": "fr"},
                "text": "combien je dois",
            }
        }
    )
    reply = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == -100, after=start)
    assert "message privé" in reply.text


def test_long_replies_are_split_cleanly_and_buttons_stay_last():
    paragraph = "Ligne de facture détaillée, période et montant. " * 20
    text = "\n\n".join([paragraph] * 12)  # about 11,500 characters
    pieces = split_text(text)
    assert len(pieces) == 3 and all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing lost, nothing added
    assert all(p.endswith(".") for p in pieces)  # cut between paragraphs, not in a word
    merged = plan([Reply("a"), Reply("b", (Button("x", "X"),)), Reply("c")])
    assert [(m.text, [b.payload for b in m.buttons]) for m in merged] == [("a\n\nb", ["x"]), ("c", [])]


def test_callback_data_must_be_ascii_within_64_bytes():
    with pytest.raises(ValueError):
        markup_for([Button("بطاقة", "x")])
    with pytest.raises(ValueError):
        markup_for([Button("x" * 65, "x")])
    assert markup_for([Button("x" * 64, "عربي")])["inline_keyboard"][0][0]["callback_data"] == "x" * 64


# ---------------------------------------------------------------------- webhook
async def test_webhook_mode_checks_the_secret_and_answers(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    settings = settings_for(api, database, telegram_webhook_secret="s3cret-Token_1")
    with pytest.raises(ConfigError, match="ADDAD_TELEGRAM_WEBHOOK_SECRET"):
        await run_telegram(settings_for(api, database), webhook_url="https://bot.example/tg", port=0)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task, stop = await start_bot(settings, webhook_url="https://bot.example/tg/hook", listen="127.0.0.1", port=port)
    try:
        assert api.webhook["url"] == "https://bot.example/tg/hook" and api.webhook["secret_token"] == "s3cret-Token_1"
        update = {
            "update_id": 900,
            "message": {
                "message_id": 5,
                "date": 0,
                "chat": {"id": 8008, "type": "private"},
                "from": {"id": 8008, "is_bot": False, "first_name": "Y", "language_code": "ar"},
                "text": "السلام",
            },
        }
        url = f"http://127.0.0.1:{port}/tg/hook"
        async with aiohttp.ClientSession() as http:
            for headers, status in (({}, 403), ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, 403)):
                async with http.post(url, json=update, headers=headers) as r:
                    assert r.status == status
            assert not [c for c in api.calls if c.chat_id == 8008]
            good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
            async with http.post(url, json=update, headers=good) as r:
                assert r.status == 200
            # Kept in the inbox before the 200, answered from there.
            reply = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 8008)
            assert "مرحبا" in reply.text
            async with http.post(url, json=update, headers=good) as r:  # Telegram retrying
                assert r.status == 200
            await asyncio.sleep(0.3)
            assert len([c for c in api.calls if c.method == "sendMessage" and c.chat_id == 8008]) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_webhook_refuses_what_is_no_update_without_a_traceback(api, tmp_path, caplog):
    """With the right secret: arrays, deep nesting, oversized bodies → 400/413; a non-ASCII
    secret → 403; nothing reaches the bot and nothing is logged as an error."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    settings = settings_for(api, database, telegram_webhook_secret="s3cret-Token_1")
    port = free_port()
    task, stop = await start_bot(settings, webhook_url="https://bot.example/tg/hook", listen="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}/tg/hook"
    good = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
    update = json.dumps(
        {
            "update_id": 901,
            "message": {"message_id": 1, "date": 0, "chat": {"id": 8009, "type": "private"}, "text": "x"},
        }
    )
    try:
        for body, status in (
            (b"[]", 400),
            (b'[{"update_id": 1}]', 400),
            (b"[" * 200_000, 400),
            (b'{"update_id": 1, "message": ' + b"[" * 100_000, 400),
            (b'{"update_id": 1, "message": []}', 200),  # an update of the wrong shape: parked (test_poison.py)
            (b"not json", 400),
        ):
            assert await raw_post(url, {**good, "Content-Length": str(len(body))}, body) == status, body[:40]
        assert await raw_post(url, {**good, "Content-Length": str(4 * 1024 * 1024)}) == 413
        chunk = b"x" * (256 * 1024 + 1)
        chunked = {**good, "Transfer-Encoding": "chunked"}
        assert await raw_post(url, chunked, b"%x\r\n%s\r\n" % (len(chunk), chunk)) == 413
        body = update.encode()
        for secret in ("s3cret-Token_é", "تحقق", "s3cret-Token_1é"):
            headers = {**good, "X-Telegram-Bot-Api-Secret-Token": secret, "Content-Length": str(len(body))}
            assert await raw_post(url, headers, body) == 403
        assert not [c for c in api.calls if c.chat_id == 8009]
        assert tracebacks(caplog.records) == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


# ---------------------------------------------------------------------- processes killed and restarted
async def test_killed_mid_conversation_the_bot_resumes_where_it_was(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database)
    await proc.start(api)
    user = TgUser(api, 9009, "fr")
    try:
        await user.send("/start")
        await user.press("Mes factures")
        await user.send("1000001")
        assert "choisissez une méthode" in user.text
        proc.kill()  # kill -9 while the bot waits for the proof
        update_id = api.contact(9009, "+212612345678")  # sent while the bot is down
        await proc.start(api)
        reply = await api.wait_for(
            lambda c: c.method == "sendMessage" and c.chat_id == 9009 and "relié" in c.text, timeout=20
        )
        assert "1000001" in reply.text
        await api.acknowledged(update_id)
    finally:
        await proc.stop()


async def test_a_reading_confirmed_just_before_a_crash_gets_its_reference_after_the_restart(api, tmp_path):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database)
    await proc.start(api)
    user = TgUser(api, 9200, "fr")
    try:
        await user.send("/start")
        await user.press("Mes factures")
        await user.send("1000001")
        await user.share_contact("+212612345678")
        await user.send("45400")
        await user.press("1000001")  # the number links both of its contracts
        await user.send("Sans photo")
        assert "Consommation : 190 kWh" in user.text
        # The reading is committed, its answer is on the wire, and the bot dies.
        release = api.hold("sendMessage", lambda p: "Index enregistré" in str(p.get("text")))
        start = len(api.calls)
        api.text(9200, "Confirmer")
        await api.wait_for(lambda c: "Index enregistré" in c.text, after=start, timeout=15)
        proc.kill()
        release.set()
        restart = len(api.calls)
        await proc.start(api)
        again = await api.wait_for(
            lambda c: c.chat_id == 9200 and "Index enregistré" in c.text, after=restart, timeout=20
        )
        assert "RL-2026-000001" in again.text
        con = sqlite3.connect(database)
        assert con.execute("SELECT count(*) FROM readings WHERE source='customer'").fetchone()[0] == 1
        con.close()
        await user.send("combien je dois ?")  # and the conversation goes on from the menu
        assert "Total à payer" in user.text
        await asyncio.sleep(0.5)
        assert len([c for c in api.calls[restart:] if "Index enregistré" in c.text]) == 1
    finally:
        await proc.stop()


async def test_a_decision_pushed_when_the_bot_dies_after_sending_is_never_sent_twice(api, tmp_path, process_clock):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    proc = BotProcess(api, database)
    await proc.start(api)
    user = TgUser(api, 9100, "fr")
    try:
        await user.send("/start")
        await user.press("Facilités de paiement")
        await user.send("1000001")
        await user.share_contact("+212612345678")
        assert "Que préférez-vous" in user.text
        await user.press("3 mois")
        await user.press("Perte d'emploi")
        await user.press("Envoyer la demande")
        assert "IN-2026-000001" in user.text
        # Telegram takes the decision, but the bot dies before it can note it.
        release = api.hold(
            "sendMessage", lambda p: "IN-2026-000001" in str(p.get("text")) and "accept" in str(p.get("text"))
        )
        store = await open_store(database, clock=process_clock)
        async with store.transaction() as tx:
            await decide(tx, "IN-2026-000001", "approved", note="Premier prélèvement le 5", actor="backoffice:amina")
        await store.close()
        await api.wait_for(lambda c: c.method == "sendMessage" and "Premier prélèvement le 5" in c.text, timeout=15)
        proc.kill()
        release.set()
        start = len(api.calls)
        await proc.start(api)
        await asyncio.sleep(3)  # more than a dispatcher poll
        assert not [c for c in api.calls[start:] if "Premier prélèvement le 5" in c.text]
        con = sqlite3.connect(database)
        status, error = con.execute("SELECT status, last_error FROM outbox WHERE kind='request_decision'").fetchone()
        con.close()
        assert status == "failed" and "not resent" in error
        await user.send("/menu")
        assert "Premier prélèvement" not in user.text
    finally:
        await proc.stop()


async def test_a_decision_reaches_a_telegram_customer_once(api, bot, process_clock):
    user = TgUser(api, 9200, "ar")
    await user.send("السلام")
    await user.send("بغيت نخلص بالتقسيط")
    await user.send("1000001")
    await user.share_contact("+212612345678")
    await user.send("على 3 شهور")
    await user.send("1")
    await user.send("نعم")
    reference = "IN-2026-000001"
    assert reference in user.text
    store = await open_store(bot, clock=process_clock)
    async with store.transaction() as tx:
        await decide(tx, reference, "rejected", note="الملف ناقص", actor="backoffice:amina")
    await store.close()
    pushed = await api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == 9200 and "الملف ناقص" in c.text, timeout=15
    )
    assert reference in pushed.text
    await asyncio.sleep(2.5)
    assert len([c for c in api.calls if "الملف ناقص" in c.text]) == 1


def test_updates_become_core_events():
    from telegram import Update

    own = Update.de_json(
        {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "ar"},
                "contact": {"phone_number": "+212612345678", "first_name": "A", "user_id": 5},
            },
        },
        None,
    )
    e = to_inbound(own)
    assert (e.user_id, e.message_id, e.contact_phone, e.contact_is_own, e.lang_hint) == (
        "5",
        "1",
        "+212612345678",
        True,
        "ar",
    )
    doc = Update.de_json(
        {
            "update_id": 2,
            "message": {
                "message_id": 2,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "A"},
                "document": {"file_id": "D1", "file_unique_id": "u", "mime_type": "image/jpeg"},
            },
        },
        None,
    )
    assert to_inbound(doc).photo_ref == "D1"


async def test_a_reply_telegram_failed_to_take_is_sent_again_not_lost(api, bot):
    api.fail_once("sendMessage", status=502, when=lambda p: str(p.get("chat_id")) == "9300")
    start = len(api.calls)
    api.text(9300, "/start")
    first = await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 9300, after=start)
    # The outbox dispatcher sends it again a moment later, keyboard included.
    again = await api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == 9300, after=api.calls.index(first) + 1, timeout=15
    )
    assert again.text == first.text and "Bonjour" in again.text
    assert [b["callback_data"] for b in again.inline_buttons()][:2] == ["go:reading", "go:bills"]
    con = sqlite3.connect(bot)
    for _ in range(50):  # marked once Telegram's answer is back
        if con.execute("SELECT kind, status FROM outbox").fetchall() == [("reply", "sent")]:
            break
        await asyncio.sleep(0.05)
    assert con.execute("SELECT kind, status FROM outbox").fetchall() == [("reply", "sent")]
    con.close()


async def test_logs_at_info_carry_no_phone_number_and_no_amount(api, tmp_path, caplog):
    database = await seeded_database(tmp_path / "addad.sqlite3")
    with caplog.at_level(logging.DEBUG, logger="httpx"), caplog.at_level(logging.INFO):
        task, stop = await start_bot(settings_for(api, database))
        try:
            user = TgUser(api, 4242, "fr")
            await user.send("/start")
            await user.press("Mes factures")
            await user.send("1000001")
            await user.share_contact("+212612345678")
            assert "Total à payer : 462,07\u00a0DH" in user.text
            await user.send("je voudrais payer en 3 fois")
            await user.press("Perte d'emploi")
            await user.press("Envoyer la demande")
            api.fail_once("sendMessage", status=500)  # an error path logs too
            await user.send("mon numéro est 0612345678, solde ?")
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records if r.levelno >= logging.INFO)
    assert logged, "nothing was logged at all"
    for secret in ("612345678", "+2126", "462,07", "462.07", "46207", "154,02", "Fatima", "Bennani"):
        assert secret not in logged, f"{secret!r} in the logs:\n{logged}"


async def test_customer_without_the_contract_number_shares_the_contact_and_picks_a_masked_contract(api, bot):
    user = TgUser(api, 1011, "ar")
    await user.send("chhal khassni nkhelles")
    await user.press("ما عرفتش رقم العقد")
    assert "شارك رقم هاتفك بالزر أسفله" in user.text
    assert {"text": "📱 مشاركة رقم هاتفي", "request_contact": True} in user.replies[-1].keyboard_buttons()
    await user.share_contact("+212612345678")
    assert "هذه هي العقود المسجلة برقم هاتفك" in user.text and "1000002" not in user.text
    await user.send("lma")
    assert "العقد 1000002 (الماء، الدار البيضاء) مربوط الآن" in user.text.replace("\u2066", "").replace("\u2069", "")
