"""The WhatsApp channel end to end: signed Cloud API webhooks in, a fake Graph API on 127.0.0.1 out,
through the same service `addad whatsapp` runs."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from datetime import timedelta

import aiohttp
import pytest

from bot.channels.whatsapp import (
    MAX_BUTTON_TITLE,
    MAX_ROW_DESCRIPTION,
    MAX_ROW_TITLE,
    messages_and_statuses,
    render,
    signature_status,
    to_inbound,
)
from bot.config import Settings
from bot.runtime import ConfigError, run_whatsapp
from conversations.backoffice import decide
from conversations.events import Button, Reply
from storage import open_store

from .telegram_harness import seeded_database
from .webhook_harness import raw_post, stalled_post, tracebacks
from .whatsapp_harness import (
    APP_SECRET,
    VERIFY_TOKEN,
    FakeGraphAPI,
    WaUser,
    delivery,
    message,
    sign,
    text_of,
    whatsapp_settings,
)

FATIMA = "212612345678"
YOUSSEF = "212661234567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def graph():
    api = await FakeGraphAPI().start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
async def wa(graph, tmp_path, process_clock, request):
    """`run_whatsapp` serving on 127.0.0.1 at the test's clock; yields (webhook URL, http session, database).
    Indirect parametrization adds settings (`{"webhook_max_reads": 2}`)."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    port = free_port()
    settings = whatsapp_settings(
        database,
        graph.url,
        clock=process_clock.setting,
        **getattr(request, "param", {}),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_whatsapp(settings, listen="127.0.0.1", port=port, stop=stop, ready=ready.set))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    async with aiohttp.ClientSession() as http:
        try:
            yield f"http://127.0.0.1:{port}/whatsapp", http, database
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


def user(wa, graph, phone=FATIMA) -> WaUser:
    url, http, _ = wa
    return WaUser(http, url, graph, phone)


# ---------------------------------------------------------------------- the webhook's security
async def test_verification_challenge(wa):
    url, http, _ = wa
    ok = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    async with http.get(url, params=ok) as r:
        assert r.status == 200 and await r.text() == "1158201444"
    async with http.get(url, params={**ok, "hub.verify_token": "guess"}) as r:
        assert r.status == 403


@pytest.mark.parametrize("text", ["السلام عليكم، بغيت نعرف شحال خاصني نخلص", "Bonjour, j'ai reçu une facture élevée"])
async def test_signatures_missing_wrong_and_good_with_non_ascii_bodies(wa, graph, text):
    fatima = user(wa, graph)
    payload = delivery([message(FATIMA, "text", {"body": text})])
    assert await fatima.post(payload, signature=None) == 401
    assert await fatima.post(payload, signature="sha256=" + "0" * 64) == 403
    body = json.dumps(payload, ensure_ascii=False).encode()
    assert await fatima.post(payload, signature=sign(body, "another-secret")) == 403
    await asyncio.sleep(0.2)
    assert graph.sent == []  # nothing refused reached the bot
    assert await fatima.post(payload) == 200
    await graph.wait_for(lambda m: m["to"] == FATIMA)


async def test_unauthenticated_bodies_are_refused_by_size_before_being_read(wa, graph, caplog):
    url, _, _ = wa
    small = json.dumps(delivery([message(FATIMA, "text", {"body": "Bonjour"})])).encode()
    unsigned = {"Content-Type": "application/json"}
    # A 4 MB Content-Length is refused from the headers alone: not one byte of it is awaited.
    assert await raw_post(url, {**unsigned, "Content-Length": str(4 * 1024 * 1024)}) == 413
    assert await raw_post(url, {**unsigned, "Content-Length": str(256 * 1024 + 1)}) == 413
    # Without a length (chunked), the reading stops at the cap.
    chunk = b"x" * (256 * 1024 + 1)
    chunked = {**unsigned, "Transfer-Encoding": "chunked"}
    assert await raw_post(url, chunked, b"%x\r\n%s\r\n" % (len(chunk), chunk)) == 413
    # Under the cap, the signature decides, as before.
    assert await raw_post(url, {**unsigned, "Content-Length": str(len(small))}, small) == 401
    assert await raw_post(url, chunked, b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)) == 401
    assert await raw_post(url, chunked, b"zz\r\n{}\r\n0\r\n\r\n") == 400  # a malformed chunk size
    signed = {**unsigned, "Content-Length": str(len(small)), "X-Hub-Signature-256": sign(small)}
    assert await raw_post(url, signed, small) == 200
    await graph.wait_for(lambda m: m["to"] == FATIMA)
    assert tracebacks(caplog.records) == []


@pytest.mark.parametrize("wa", [{"webhook_max_reads": 2}], indirect=True)
async def test_concurrent_unauthenticated_reads_are_capped(wa, graph, caplog):
    """Slow senders hold at most `webhook_max_reads` reads; the next one is told 503 at once, and
    the slots come back when they leave."""
    url, _, _ = wa
    headers = {"Content-Type": "application/json", "Content-Length": "100000"}
    stalled = [(await stalled_post(url, headers, b'{"object": '))[1] for _ in range(2)]
    try:
        for _ in range(100):  # until both stalled bodies hold their slot
            status = await raw_post(url, {"Content-Length": "2"}, b"{}")
            if status == 503:
                break
            assert status == 401
            await asyncio.sleep(0.05)
        assert status == 503
    finally:
        for writer in stalled:
            writer.close()
    fatima = user(wa, graph)
    payload = delivery([message(FATIMA, "text", {"body": "Bonjour"})])
    for _ in range(100):
        if (status := await fatima.post(payload)) != 503:
            break
        await asyncio.sleep(0.05)
    assert status == 200
    await graph.wait_for(lambda m: m["to"] == FATIMA)
    assert tracebacks(caplog.records) == []


@pytest.mark.parametrize("wa", [{"webhook_max_reads": 1, "webhook_read_timeout": 0.5}], indirect=True)
async def test_a_body_that_never_arrives_gives_its_slot_back(wa, graph, caplog):
    url, _, _ = wa
    headers = {"Content-Type": "application/json", "Content-Length": "100000"}
    reader, writer = await stalled_post(url, headers, b'{"object": ')
    try:
        fatima = user(wa, graph)
        payload = delivery([message(FATIMA, "text", {"body": "Bonjour"})])
        for _ in range(100):  # the stalled read holds the only slot
            if (status := await fatima.post(payload)) == 503:
                break
            await asyncio.sleep(0.02)
        assert status == 503
        # After the read timeout the slow sender is answered 408 and the slot is free again.
        assert (await asyncio.wait_for(reader.readline(), 10)).split()[1] == b"408"
        assert await fatima.post(payload) == 200
    finally:
        writer.close()
    await graph.wait_for(lambda m: m["to"] == FATIMA)
    assert tracebacks(caplog.records) == []


async def test_non_ascii_signature_and_verify_token_are_refused_not_crashing(wa, graph, caplog):
    url, http, _ = wa
    body = json.dumps(delivery([message(FATIMA, "text", {"body": "Bonjour"})])).encode()
    headers = {"Content-Length": str(len(body)), "X-Hub-Signature-256": "sha256=é" + "0" * 63}
    assert await raw_post(url, headers, body) == 403
    ok = {"hub.mode": "subscribe", "hub.challenge": "42"}
    for token in ("vérifié", "تحقق", VERIFY_TOKEN + "é"):
        async with http.get(url, params={**ok, "hub.verify_token": token}) as r:
            assert r.status == 403
    async with http.get(url, params={**ok, "hub.verify_token": VERIFY_TOKEN}) as r:
        assert r.status == 200 and await r.text() == "42"
    assert graph.sent == []
    assert tracebacks(caplog.records) == []


@pytest.mark.parametrize(
    "body",
    [b"[" * 200_000, b"[" * 100_000 + b"]" * 100_000, b'{"entry": ' + b"[" * 120_000, b"[]", b'"text"', b"\xff\xfe"],
    ids=["nested-200k", "nested-closed", "nested-in-object", "array", "string", "not-utf8"],
)
async def test_signed_bodies_that_are_no_delivery_get_400(wa, graph, caplog, body):
    url, _, _ = wa
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Hub-Signature-256": sign(body)}
    assert await raw_post(url, headers, body) == 400
    assert tracebacks(caplog.records) == []


def test_signature_is_over_the_raw_bytes():
    raw = '{"a":"é"}'.encode()
    assert signature_status(APP_SECRET, raw, sign(raw)) == 200
    assert signature_status(APP_SECRET, '{"a": "é"}'.encode(), sign(raw)) == 403  # re-serialised ≠ raw


# ---------------------------------------------------------------------- journeys
async def test_french_balance_by_sender_number_with_list_and_buttons(wa, graph):
    fatima = user(wa, graph)
    await fatima.send("Bonjour")
    kind, choices = fatima.last_choices()
    assert kind == "list" and ("go:bills", "🧾 Mes factures, solde") in choices and len(choices) == 10
    assert "Que puis-je faire pour vous" in fatima.text
    await fatima.send("2")  # typing the number works too
    # WhatsApp vouches for the sender's number: the contract is linked without any proof step.
    assert "reliez d'abord" in fatima.text
    await fatima.send("1000001")
    assert "est maintenant relié" in fatima.text and "Total à payer : 462,07\u00a0DH" in fatima.text
    kind, choices = fatima.last_choices()
    assert kind == "list" and ("bill:1", "📄 sept. 2026 · 1000001") in choices
    await fatima.tap("sept. 2026")
    assert "Facture F-2026-09-1" in fatima.text
    kind, choices = fatima.last_choices()
    assert kind == "button" and [t for _, t in choices] == ["✅ Oui", "❌ Non"]
    await fatima.tap("Non")
    assert "à tout moment" in fatima.text


async def test_arabic_reading_with_a_meter_image(wa, graph):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await fatima.send("السلام عليكم بغيت نصيفط الكونتور")
    await fatima.send("1000001")
    assert "مربوط الآن" in fatima.text
    # Contract labels are longer than a list row: numbered text, answered by typing the number.
    assert "1. العقد 1000001 (الكهرباء، الدار البيضاء)" in fatima.text
    await fatima.send("1")
    await fatima.send_image("1322815968542613", caption=None)
    assert "توصلنا بالصورة" in fatima.text
    await fatima.send("45400")
    assert "190" in fatima.text
    await fatima.tap("تأكيد")
    assert "RL-2026-000001" in fatima.text
    con = sqlite3.connect(database)
    assert con.execute("SELECT photo_ref, channel FROM readings WHERE source='customer'").fetchone() == (
        "1322815968542613",
        "whatsapp",
    )
    con.close()


async def test_instalment_request_in_arabic_then_the_decision_is_pushed(wa, graph, process_clock):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await fatima.send("بغيت نخلص بالتقسيط")
    await fatima.send("1000001")
    await fatima.send("على 3 شهور")
    await fatima.tap("فقدان العمل")
    assert "154,03" in fatima.text
    await fatima.tap("إرسال الطلب")
    assert "IN-2026-000001" in fatima.text
    store = await open_store(database, clock=process_clock)
    async with store.transaction() as tx:
        await decide(tx, "IN-2026-000001", "approved", note="أول قسط في 5 يناير", actor="backoffice:amina")
    await store.close()
    pushed = await graph.wait_for(lambda m: "أول قسط في 5 يناير" in text_of(m), timeout=15)
    assert pushed["to"] == FATIMA and pushed["biz_opaque_callback_data"].startswith("outbox:")
    await asyncio.sleep(2.5)
    assert len([m for m in graph.sent if "أول قسط في 5 يناير" in text_of(m)]) == 1


# ---------------------------------------------------------------------- deliveries
async def test_several_messages_in_one_delivery_and_a_duplicate(wa, graph):
    fatima = user(wa, graph)
    first = message(FATIMA, "text", {"body": "bonjour"})
    second = message(FATIMA, "text", {"body": "combien je dois"})
    start = len(graph.sent)
    assert await fatima.post(delivery([first, second])) == 200
    await graph.wait_for(lambda m: "reliez d'abord" in text_of(m), after=start)
    assert await fatima.post(delivery([second])) == 200  # Meta redelivers
    await asyncio.sleep(0.5)
    texts = [text_of(m) for m in graph.sent[start:]]
    assert len([t for t in texts if "reliez d'abord" in t]) == 1
    assert texts.index(next(t for t in texts if "Bonjour" in t)) < texts.index(
        next(t for t in texts if "reliez d'abord" in t)
    )


async def test_a_429_from_the_graph_api_is_retried(wa, graph):
    graph.fail_once(429)
    fatima = user(wa, graph)
    await fatima.send("bonjour")
    assert len(graph.attempts) == 2 and "Bonjour" in fatima.text


async def test_a_decision_outside_the_24_hour_window_goes_as_the_profile_template(wa, graph, process_clock):
    _url, _http, database = wa
    youssef = user(wa, graph, YOUSSEF)
    await youssef.send("bonjour")
    con = sqlite3.connect(database)
    con.execute("UPDATE sessions SET updated_at=? WHERE user_id=?", ("2026-01-01T00:00:00+00:00", YOUSSEF))
    con.execute(
        "INSERT INTO requests (reference, kind, contract, channel, user_id, lang, status, details, created_at, "
        "updated_at) VALUES ('CB-2026-000009','callback','1000003','whatsapp',?,'fr','pending','{}',"
        "'2026-01-01T00:00:00+00:00','2026-01-01T00:00:00+00:00')",
        (YOUSSEF,),
    )
    con.commit()
    con.close()
    store = await open_store(database, clock=process_clock)
    async with store.transaction() as tx:
        await decide(tx, "CB-2026-000009", "rejected", note="Numéro injoignable", actor="backoffice:amina")
    await store.close()
    sent = await graph.wait_for(lambda m: m.get("type") == "template", timeout=15)
    assert sent["template"]["name"] == "addad_request_decision" and sent["template"]["language"]["code"] == "fr"
    params = [p["text"] for p in sent["template"]["components"][0]["parameters"]]
    assert params == ["CB-2026-000009", "refusée", "Numéro injoignable"]


async def test_a_failed_status_holds_the_decision_for_the_next_message(wa, graph, process_clock):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await fatima.send("bonjour")
    store = await open_store(database, clock=process_clock)
    async with store.transaction() as tx:
        await tx.add_request(
            reference="DF-2026-000042",
            kind="deferral",
            contract="1000001",
            channel="whatsapp",
            user_id=FATIMA,
            lang="fr",
            details={},
        )
    async with store.transaction() as tx:
        await decide(tx, "DF-2026-000042", "approved", note=None, actor="a")
    await store.close()
    pushed = await graph.wait_for(lambda m: "DF-2026-000042" in text_of(m), timeout=15)
    # WhatsApp reports it could not deliver it (the window closed meanwhile).
    status = {
        "id": pushed["_wamid"],
        "status": "failed",
        "timestamp": "1",
        "recipient_id": FATIMA,
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    assert await fatima.post(delivery(statuses=[status])) == 200
    await asyncio.sleep(0.3)
    await fatima.send("merci")
    assert "DF-2026-000042" in fatima.text  # shown with the next answer, once
    await fatima.send("merci")
    assert "DF-2026-000042" not in fatima.text


# ---------------------------------------------------------------------- rendering within limits
def test_every_translated_button_fits_whatsapp_or_falls_back_to_numbers():
    from conversations.i18n import translator

    for lang in ("ar", "fr"):
        t = translator(lang)
        labels = [
            t("common.yes"),
            t("common.no"),
            t("common.cancel"),
            t("common.menu"),
            t("reading.skip_photo"),
            t("facilities.reason_job"),
            t("facilities.reason_illness"),
            t("facilities.reason_other"),
            t("whatsapp.list_button"),
        ]
        for label in labels:
            assert len(label) <= MAX_ROW_TITLE, (lang, label)
        assert len(t("whatsapp.list_button")) <= 20
        replies = [Reply("x" * 3000, tuple(Button(f"p{i}", f"{t('common.yes')} {i}") for i in range(5)))]
        for m in render(replies, lang):
            if m["type"] == "interactive":
                inter = m["interactive"]
                assert len(inter["body"]["text"]) <= 1024
                rows = [r for s in inter["action"]["sections"] for r in s["rows"]]
                assert all(
                    len(r["title"]) <= MAX_ROW_TITLE and len(r.get("description", "")) <= MAX_ROW_DESCRIPTION
                    for r in rows
                )
            else:
                assert len(m["text"]["body"]) <= 4096
    many = render([Reply("Menu", tuple(Button(f"p{i}", f"Choix {i}") for i in range(12)))], "fr")
    assert many[0]["type"] == "text" and "12. Choix 11" in many[0]["text"]["body"]
    three = render([Reply("Q", (Button("a", "A" * MAX_BUTTON_TITLE), Button("b", "B"), Button("c", "C")))], "fr")
    assert three[0]["interactive"]["type"] == "button"


def test_real_shaped_payloads_become_core_events():
    payload = delivery(
        [
            message(
                FATIMA,
                "interactive",
                {"type": "list_reply", "list_reply": {"id": "bill:1", "title": "📄 septembre 2026", "description": ""}},
                wamid="wamid.A",
            ),
            message(FATIMA, "location", {"latitude": 33.57, "longitude": -7.59}, wamid="wamid.B"),
        ],
        statuses=[{"id": "wamid.out.1", "status": "delivered", "timestamp": "1", "recipient_id": FATIMA}],
    )
    messages, statuses = messages_and_statuses(payload)
    first, second = (to_inbound(m) for m in messages)
    assert (first.payload, first.message_id, first.sender_phone) == ("bill:1", "wamid.A", "+212612345678")
    assert second.location == (33.57, -7.59) and statuses[0]["status"] == "delivered"


async def test_whatsapp_needs_its_settings(tmp_path):
    with pytest.raises(ConfigError, match="ADDAD_WHATSAPP_APP_SECRET"):
        await run_whatsapp(
            Settings(
                _env_file=None,
                database=str(tmp_path / "a.sqlite3"),
                whatsapp_token="t",
                whatsapp_phone_number_id="1",
                whatsapp_verify_token="v",
            )
        )


async def test_accepted_messages_survive_a_crash_before_their_turn(graph, tmp_path, process_clock):
    """Answered 200 = in the inbox: a message accepted by a process that died is handled at start."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=process_clock)
    m = message(FATIMA, "text", {"body": "bonjour"}, wamid="wamid.crash")
    async with store.transaction() as tx:
        await tx.accept_inbound("whatsapp", "wamid.crash", json.dumps(m))
    await store.close()
    settings = whatsapp_settings(
        database,
        graph.url,
        clock=process_clock.setting,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_whatsapp(settings, listen="127.0.0.1", port=free_port(), stop=stop))
    try:
        reply = await graph.wait_for(lambda m: m["to"] == FATIMA, timeout=20)
        assert "Bonjour" in text_of(reply)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    _ = timedelta


async def test_sender_without_the_contract_number_picks_a_masked_contract_by_typed_service(wa, graph):
    fatima = user(wa, graph)
    await fatima.send("salam, bghit nchouf lfactura")
    await fatima.send("ma3reftch numéro dyal lcontrat")
    # The contracts on the WhatsApp sender's number, masked (too long for reply buttons: numbered).
    text = fatima.text.replace("\u2066", "").replace("\u2069", "")
    assert "1. •••0001 (الكهرباء، الدار البيضاء)\n2. •••0002 (الماء، الدار البيضاء)" in text
    assert "1000001" not in text
    await fatima.send("do")
    assert "1000001 (الكهرباء، الدار البيضاء) مربوط الآن" in fatima.text.replace("\u2066", "").replace("\u2069", "")


async def test_a_thumbs_up_reaction_mid_reading_gets_the_question_again_then_confirms(wa, graph):
    fatima = user(wa, graph)
    await fatima.send("bonjour, je veux envoyer mon index")
    await fatima.send("1000001")
    await fatima.send("1")
    assert "Tapez l'index affiché sur le compteur" in fatima.text
    last = graph.sent[-1]
    react = {"message_id": last.get("_wamid", "wamid.ours"), "emoji": "👍"}
    await fatima._turn(message(fatima.phone, "reaction", react))
    assert "Merci 🙂 Pour continuer" in fatima.text and "Tapez l'index affiché sur le compteur" in fatima.text
    assert "Tapez seulement les chiffres" not in fatima.text
    await fatima.send("45400")
    await fatima.tap("Sans photo")
    await fatima._turn(message(fatima.phone, "reaction", react))  # 👍 where "Confirmer" is asked
    assert "RL-2026-000001" in fatima.text
