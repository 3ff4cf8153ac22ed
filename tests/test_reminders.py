"""Proactive messages with consent (issue 22), in process: the consent question and its answers,
"stop" in every way of writing it, what `addad remind` / `addad notify` queue, once, to whom,
quiet hours and the dispatcher's checks at send time. End to end through the fake Bot API and
the fake Graph API: tests/test_reminders_channels.py."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.cli import main
from conversations import reminders
from conversations.backoffice import decide, render_outbox
from conversations.dispatch import Dispatcher, Undeliverable
from conversations.i18n import translator
from conversations.profile import load_profile

from .chat import Chat
from .test_requests import file_instalment

PROFILE = load_profile()
# Casablanca is UTC+1 in these months (tests/chat.py START is 10:00 local).
DEC_1_10H = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def cli(argv: list[str]) -> int:
    """`addad …` as typed (bot/cli.py main), off this test's event loop."""
    return await asyncio.to_thread(main, argv)


def local(y, m, d, hh, mm=0) -> datetime:
    return datetime(y, m, d, hh - 1, mm, tzinfo=UTC)


async def fatima(engine, *, lang_hint="fr", channel="telegram", user="f1") -> Chat:
    """Fatima links 1000001 (and so 1000002, on her phone) from the menu."""
    chat = Chat(engine, channel=channel, user=user, sender_phone="+212612345678", lang_hint=lang_hint)
    await chat.send("bonjour" if lang_hint == "fr" else "السلام")
    await chat.press("➕")
    await chat.send("1000001")
    return chat


async def youssef(engine, *, user="y1") -> Chat:
    chat = Chat(engine, channel="telegram", user=user, sender_phone="+212661234567", lang_hint="fr")
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000003")
    return chat


async def consent_of(engine, channel="telegram", user="f1"):
    async with engine.store.snapshot() as tx:
        return await tx.reminder_consent(channel, user)


class RecordingSender:
    channel = "telegram"
    confirms_delivery = False

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = fail

    async def send_outbox(self, msg, text):
        if self.fail is not None:
            raise self.fail
        self.sent.append((msg.user_id, msg.kind, text))
        return str(len(self.sent))


def dispatcher(engine, clock, sender) -> Dispatcher:
    return Dispatcher(engine.store, PROFILE, [sender], clock=clock)


def outbox(path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT user_id, kind, status, payload, next_attempt_at, last_error FROM outbox").fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------- consent
async def test_consent_is_asked_once_after_linking_and_the_answer_is_kept_with_its_time(engine, clock):
    chat = await fatima(engine)
    ask = next(r for r in chat.replies if "Voulez-vous recevoir ici nos rappels" in r.text)
    assert [b.label for b in ask.buttons] == ["🔔 Oui, tous", "🧾 Factures seulement", "🔕 Non merci"]
    assert "est maintenant lié" in chat.text or "1000001" in chat.text
    assert chat.replies[-1] is ask  # linked from the menu: the journey is over, the question alone, last
    consent = await consent_of(engine)
    assert consent is not None and consent.kinds == () and consent.answered_at is None  # asked, not answered
    assert consent.how == "shown"
    clock.advance(minutes=2)
    await chat.press_payload("remind:bills")
    assert "factures et d'échéances seulement" in chat.text
    consent = await consent_of(engine)
    assert consent.kinds == ("due", "instalment") and consent.answered_at == clock() and consent.how == "button"
    async with engine.store.snapshot() as tx:
        audit = await tx.audit_entries(action="reminders_consent")
    assert [e["details"] for e in audit] == [{"kinds": ["due", "instalment"], "how": "button"}]
    # Another contract linked later: not asked again.
    await chat.send("menu")
    await chat.press("➕")
    await chat.send("1000003")
    await chat.press("montant")
    await chat.send("172,62")
    assert "lié" in chat.text and "Voulez-vous recevoir ici nos rappels" not in chat.text


async def test_a_typed_yes_at_the_menu_answers_the_question_in_arabic(engine):
    chat = await fatima(engine, lang_hint="ar")
    assert "هل تريد أن تصلك هنا تذكيراتنا" in chat.text
    await chat.send("واخا")
    assert "ستصلك هنا التذكيرات" in chat.text
    assert (await consent_of(engine)).kinds == reminders.KINDS
    await chat.send("واخا")  # asked once: a second yes is no answer to it
    assert "ستصلك" not in chat.text


async def test_a_journey_waiting_for_the_link_goes_on_and_its_yes_is_not_taken_for_consent(engine):
    chat = Chat(engine, channel="telegram", user="f1", sender_phone="+212612345678", lang_hint="fr")
    await chat.send("bonjour")
    await chat.press("Facilités")
    await chat.send("1000001")
    assert "Voulez-vous recevoir ici nos rappels" not in chat.text  # not beside the plan's question
    assert "3 mois" in " ".join(b.label for b in chat.buttons)  # the plan's question, last
    await chat.send("oui")
    assert (await consent_of(engine)).answered_at is None


@pytest.mark.parametrize(
    ("lang", "text", "said"),
    [
        ("fr", "stop", "nous ne vous enverrons plus de rappels"),
        ("fr", "Arrêt", "nous ne vous enverrons plus de rappels"),
        ("fr", "stop rappels", "nous ne vous enverrons plus de rappels"),
        ("ar", "توقف", "لن نرسل لك أي تذكير"),
        ("ar", "بلا تذكير", "لن نرسل لك أي تذكير"),
        ("ar", "bla rappel", "لن نرسل لك أي تذكير"),
        ("ar", "ma bghitch rappel", "لن نرسل لك أي تذكير"),
        ("fr", "Ma bghitch les rappels", "nous ne vous enverrons plus de rappels"),
    ],
)
async def test_stop_in_french_darija_and_arabizi_ends_reminders(engine, lang, text, said):
    chat = await fatima(engine, lang_hint=lang)
    await chat.press_payload("remind:all")
    assert (await consent_of(engine)).kinds == reminders.KINDS
    await chat.send(text)
    assert said in chat.text
    consent = await consent_of(engine)
    assert consent.kinds == () and consent.how == "stop"


async def test_bla_rappel_in_a_journey_keeps_its_question_and_stop_cancels_it(engine):
    chat = await fatima(engine)
    await chat.press_payload("remind:all")
    await chat.press("Envoyer mon index")
    asked = chat.text
    await chat.send("bla rappel")
    assert "nous ne vous enverrons plus de rappels" in chat.text
    assert asked.splitlines()[-1] in chat.text  # the same question again
    await chat.press_payload("remind:all")
    await chat.send("stop")
    assert "nous ne vous enverrons plus de rappels" in chat.text and "annul" in chat.text.lower()


async def test_a_bare_stop_with_no_reminders_is_the_cancel_it_always_was(engine):
    chat = await fatima(engine)
    await chat.send("je veux envoyer mon index")  # the question not answered: the request is served
    await chat.send("stop")
    assert "rappels" not in chat.text and "annul" in chat.text.lower()
    assert (await consent_of(engine)).answered_at is None  # no answer was given to the question


async def test_reminders_are_turned_back_on_from_the_menu(engine):
    chat = await fatima(engine)
    await chat.press_payload("remind:none")
    assert "nous ne vous enverrons plus de rappels" in chat.text
    await chat.press("🔔 Rappels")
    assert "Rappels sur ce canal : aucun" in chat.text
    await chat.press("Oui, tous")
    assert "vous recevrez ici les rappels" in chat.text
    assert (await consent_of(engine)).kinds == reminders.KINDS
    await chat.press("🔔 Rappels")
    assert "tous (relève" in chat.text


# ---------------------------------------------------------------------- what is queued, once, to whom
async def opted(engine):
    """Fatima said yes to all on Telegram; Youssef said no."""
    f = await fatima(engine)
    await f.press_payload("remind:all")
    y = await youssef(engine)  # his phone vouched: linked at once
    await y.press_payload("remind:none")
    return f, y


async def test_remind_queues_the_reading_window_once_per_contract_and_never_to_who_said_no(
    engine, clock, tmp_path, process_clock, monkeypatch, capsys
):
    await opted(engine)
    monkeypatch.setenv("ADDAD_DATABASE", str(tmp_path / "addad.sqlite3"))
    process_clock.set(DEC_1_10H)
    assert await cli(["remind", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out[:-1]) == ["1000001 telegram reading", "1000002 telegram reading"]
    assert out[-1] == "reminders for 2026-12-01: would queue 2 (reading 2)"
    assert outbox(tmp_path / "addad.sqlite3") == []  # a dry run queues nothing
    assert await cli(["remind"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "reminders for 2026-12-01: queued 2 (reading 2)"
    rows = outbox(tmp_path / "addad.sqlite3")
    assert [(u, k, s) for u, k, s, *_ in rows] == [("f1", "reminder", "pending")] * 2
    assert await cli(["remind", "--as-of", "2026-12-01"]) == 0  # again: nothing twice
    assert capsys.readouterr().out.splitlines()[-1] == "reminders for 2026-12-01: queued 0"
    assert len(outbox(tmp_path / "addad.sqlite3")) == 2
    process_clock.set(DEC_1_10H + timedelta(days=1))
    assert await cli(["remind"]) == 0  # the next day of the window: the same occasion
    assert len(outbox(tmp_path / "addad.sqlite3")) == 2


async def test_remind_refuses_a_day_to_come_and_a_bad_date_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADDAD_DATABASE", str(tmp_path / "addad.sqlite3"))
    assert await cli(["remind", "--as-of", "2026-12-24"]) == 2
    assert "is in the future (today is 2026-11-23" in capsys.readouterr().err
    assert await cli(["remind", "--as-of", "24/12/2026"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("addad: --as-of:") and "Traceback" not in err and len(err.splitlines()) == 1


async def test_a_bill_due_soon_carries_its_amount_and_reference_in_the_chats_language(engine, clock):
    await opted(engine)
    queued = await reminders.queue_day(engine.store, PROFILE, date(2026, 11, 23))  # F-2026-10-1 due on the 25th
    assert [(p.target.contract, p.kind, p.occasion) for p in queued] == [("1000001", "due", "due:F-2026-10-1")]
    async with engine.store.snapshot() as tx:
        (msg,) = await tx.outbox_for_chat("telegram", "f1", statuses=("pending",))
    text = render_outbox(msg, PROFILE)
    assert "F-2026-10-1" in text and "218,90" in text and "25 novembre 2026" in text and "« stop »" in text
    from dataclasses import replace

    arabic = render_outbox(replace(msg, lang="ar"), PROFILE)
    assert "تذكير: الفاتورة" in arabic and "218,90" in arabic and "«توقف»" in arabic


async def test_the_approved_plan_carries_its_schedule_and_its_first_instalment_is_recalled(engine, clock):
    chat = await file_instalment(engine, lang_hint="fr")
    await chat.press_payload("remind:bills")
    async with engine.store.transaction() as tx:
        req = await decide(tx, "IN-2026-000001", "approved", note=None, actor="backoffice:amina", now=clock())
    first = req.lines[0]
    async with engine.store.snapshot() as tx:
        (decision,) = [m for m in await tx.outbox_for_chat("test", "u1") if m.kind == "request_decision"]
    told = render_outbox(decision, PROFILE)  # the approval lists the schedule, first date first
    assert f"Échéance 1, le {translator('fr').date(first.due_date)} : " in told
    # Three days before the first instalment:
    day = first.due_date - timedelta(days=3)
    clock.now = local(day.year, day.month, day.day, 10)
    queued = [p for p in await reminders.queue_day(engine.store, PROFILE, day) if p.kind == "instalment"]
    assert [p.occasion for p in queued] == ["instalment:IN-2026-000001:1"]
    async with engine.store.snapshot() as tx:
        msgs = [m for m in await tx.outbox_for_chat("test", "u1", statuses=("pending",)) if m.kind == "reminder"]
    text = render_outbox(next(m for m in msgs if m.payload["kind"] == "instalment"), PROFILE)
    left = sum(line.amount for line in req.lines[1:])
    assert "l'échéance 1 sur 3 de votre plan IN-2026-000001" in text
    assert f"{first.amount // 100},{first.amount % 100:02d}" in text and f"{left // 100},{left % 100:02d}" in text


async def test_a_removed_link_or_a_stop_after_queueing_sends_nothing(engine, clock):
    f, _ = await opted(engine)
    clock.now = DEC_1_10H
    await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    async with engine.store.transaction() as tx:
        assert await tx.unlink_chat("telegram", "f1", "1000002")
    sender = RecordingSender()
    await dispatcher(engine, clock, sender).dispatch_due()
    assert [(u, k) for u, k, _ in sender.sent] == [("f1", "reminder")]
    assert "E-77001" in sender.sent[0][2]  # 1000001's, still linked; not 1000002's
    async with engine.store.snapshot() as tx:
        (dropped,) = await tx.outbox_for_chat("telegram", "f1", statuses=("failed",))
    assert dropped.payload["contract"] == "1000002" and "unlinked" in (dropped.last_error or "")
    # A stop said between queueing and sending wins too.
    await reminders.queue_notice(engine.store, PROFILE, city="Casablanca", service=None, text_ar="a", text_fr="b")
    await f.send("stop")
    await dispatcher(engine, clock, sender).dispatch_due()
    assert len(sender.sent) == 1
    async with engine.store.snapshot() as tx:
        assert await reminders.plan_day(tx, PROFILE, date(2026, 12, 2)) == []  # and nothing planned for her


async def test_quiet_hours_hold_a_reminder_until_their_end_in_local_time(engine, clock):
    await opted(engine)
    clock.now = local(2026, 12, 1, 22, 30)
    await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    async with engine.store.snapshot() as tx:
        pending = await tx.outbox_for_chat("telegram", "f1", statuses=("pending",))
    assert {m.next_attempt_at for m in pending} == {local(2026, 12, 2, 8, 30)}
    sender = RecordingSender()
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    clock.now = local(2026, 12, 2, 8, 29)
    await d.dispatch_due()
    assert sender.sent == []
    clock.now = local(2026, 12, 2, 8, 31)
    await d.dispatch_due()
    assert len(sender.sent) == 2 and all(kind == "reminder" for _, kind, _ in sender.sent)


async def test_a_reminder_retried_into_quiet_hours_waits_for_their_end(engine, clock):
    await opted(engine)
    clock.now = DEC_1_10H
    await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    clock.now = local(2026, 12, 1, 23, 0)  # due since 10:00 (a dispatcher was down), now quiet
    sender = RecordingSender()
    await dispatcher(engine, clock, sender).dispatch_due()
    assert sender.sent == []
    async with engine.store.snapshot() as tx:
        pending = await tx.outbox_for_chat("telegram", "f1", statuses=("pending",))
    assert {m.next_attempt_at for m in pending} == {local(2026, 12, 2, 8, 30)}


async def test_a_blocked_bot_is_recorded_and_not_retried(engine, clock):
    await opted(engine)
    clock.now = DEC_1_10H
    await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    sender = RecordingSender(fail=Undeliverable("Forbidden: bot was blocked by the user"))
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    clock.advance(hours=5)
    assert await d.dispatch_due() == 0
    async with engine.store.snapshot() as tx:
        failed = await tx.outbox_for_chat("telegram", "f1", statuses=("failed",))
        audit = await tx.audit_entries(action="outbox_failed")
    assert len(failed) == 2 and len(audit) == 2


async def test_a_campaign_never_delays_a_decision(engine, clock):
    chat = await file_instalment(engine, lang_hint="fr")
    await chat.press_payload("remind:all")
    async with engine.store.transaction() as tx:
        target = (await tx.reminder_targets("reading"))[0]
        for i in range(150):  # a campaign queued first
            await tx.queue_reminder(
                contract="1000001",
                occasion=f"test:{i}",
                target=target,
                kind="reading",
                payload={"meter": "E-77001", "last_day": "2026-12-10", "service": "electricity"},
                not_before=clock(),
            )
        await decide(tx, "IN-2026-000001", "approved", note=None, actor="backoffice:amina", now=clock())
    async with engine.store.snapshot() as tx:
        due = await tx.outbox_due(now=clock(), limit=100)
    assert due[0].kind == "request_decision"


async def test_the_bot_queues_the_day_once_at_the_profiles_local_time(engine, clock):
    await opted(engine)
    clock.now = local(2026, 12, 1, 9, 59)
    daily = reminders.DailyReminders(engine.store, PROFILE, clock)
    assert await daily.due() == 0
    clock.now = local(2026, 12, 1, 10, 0)
    assert await daily.due() == 2
    clock.advance(hours=3)
    assert await daily.due() == 0
    again = reminders.DailyReminders(engine.store, PROFILE, clock)  # a restarted bot
    assert await again.due() == 0


# ---------------------------------------------------------------------- notices
async def test_notify_reaches_each_opted_in_customer_of_the_city_once(
    engine, tmp_path, monkeypatch, capsys, process_clock
):
    await opted(engine)
    monkeypatch.setenv("ADDAD_DATABASE", str(tmp_path / "addad.sqlite3"))
    args = ["notify", "--city", "casa", "--ar", "انقطاع الماء يوم الأحد", "--fr", "Coupure d'eau dimanche"]
    assert await cli([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["1000001 telegram notice", "notice for Casablanca: would queue 1"]  # two contracts, one customer
    assert await cli(args) == 0 and await cli(args) == 0  # the same notice twice: once
    assert capsys.readouterr().out.splitlines()[-1] == "notice for Casablanca: queued 0"
    rows = [r for r in outbox(tmp_path / "addad.sqlite3") if r[1] == "notice"]
    assert len(rows) == 1
    async with engine.store.snapshot() as tx:
        (msg,) = await tx.outbox_for_chat("telegram", "f1", statuses=("pending",))
    assert "Coupure d'eau dimanche" in render_outbox(msg, PROFILE) and "Casablanca" in render_outbox(msg, PROFILE)
    assert await cli(["notify", "--city", "Rabat", "--ar", "x", "--fr", "y"]) == 0  # Youssef said no
    assert capsys.readouterr().out.splitlines() == ["notice for Rabat: queued 0"]
    assert await cli(["notify", "--city", "Atlantis", "--ar", "x", "--fr", "y"]) == 2
    assert "--city: 'Atlantis' is not a city of the profile" in capsys.readouterr().err
    assert await cli(["notify", "--city", "Rabat", "--ar", " ", "--fr", "y"]) == 2
    assert "--ar: the notice is empty" in capsys.readouterr().err


WATER_NOTICE = ["notify", "--city", "Casablanca", "--service", "water", "--ar", "a", "--fr", "b"]


async def test_notify_by_service_only_reaches_that_service(engine, tmp_path, monkeypatch, capsys):
    f = await fatima(engine)
    await f.press_payload("remind:bills")  # no notices asked for
    monkeypatch.setenv("ADDAD_DATABASE", str(tmp_path / "addad.sqlite3"))
    assert (
        await cli(["notify", "--city", "Casablanca", "--service", "water", "--ar", "a", "--fr", "b", "--dry-run"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == ["notice for Casablanca: would queue 0"]
    await f.press("🔔 Rappels")
    await f.press("Oui, tous")
    assert (
        await cli(["notify", "--city", "Casablanca", "--service", "water", "--ar", "a", "--fr", "b", "--dry-run"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == ["1000002 telegram notice", "notice for Casablanca: would queue 1"]


def test_whatsapp_templates_carry_the_language_code_and_the_parameters():
    from bot.channels.whatsapp import reminder_template
    from storage import OutboxMessage

    payload = {"kind": "due", "contract": "1000001", "bill": "F-2026-10-1", "amount": 21890, "due_date": "2026-11-25"}
    msg = OutboxMessage(1, "whatsapp", "212612345678", "ar", "reminder", payload, "pending", 0, DEC_1_10H, None, None)
    t = reminder_template(msg, PROFILE)
    assert t["template"]["name"] == "addad_bill_due" and t["template"]["language"] == {"code": "ar"}
    params = [p["text"] for p in t["template"]["components"][0]["parameters"]]
    assert params[0] == "F-2026-10-1" and "218,90" in params[1] and "2026" in params[2]


async def test_a_failed_whatsapp_template_is_recorded_and_a_reminder_is_never_held_for_days(engine, clock):
    from conversations.dispatch import DeliveryReport

    chat = await fatima(engine, channel="whatsapp", user="212612345678")
    await chat.press_payload("remind:all")
    clock.now = DEC_1_10H
    await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    sender = RecordingSender()
    sender.channel = "whatsapp"
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    assert len(sender.sent) == 2
    await d.apply_reports(
        "whatsapp",
        [
            DeliveryReport("1", outcome="failed", error="WhatsApp 132001: delivery failed", details={"code": 132001}),
            DeliveryReport("2", outcome="held", error="WhatsApp 131047: outside the 24-hour window"),
        ],
    )
    clock.advance(days=1)
    assert await d.dispatch_due() == 0  # not retried
    async with engine.store.snapshot() as tx:
        failed = await tx.outbox_for_chat("whatsapp", "212612345678", statuses=("failed",))
        audit = await tx.audit_entries(action="outbox_failed")
    assert len(failed) == 2 and len(audit) == 2
    await chat.send("bonjour")  # her next message: no stale reminder shown
    assert "relève est ouverte" not in chat.text


async def test_the_lane_keeps_the_channel_rate_and_one_a_second_per_chat():
    lane = reminders.Lane(rate=50)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    seen: dict[str, list[float]] = {}

    async def one(chat: str) -> None:
        await lane.wait("telegram", chat)
        seen.setdefault(chat, []).append(loop.time() - begin)

    await asyncio.gather(*(one(f"c{i}") for i in range(50)), one("c0"), one("c0"))
    times = sorted(t for ts in seen.values() for t in ts)
    assert times[-1] >= 2.0 - 0.05  # c0's third message waits two seconds after its first
    assert times[49] >= 49 / 50 - 0.05  # 50 a second across chats, not all at once
    c0 = seen["c0"]
    assert all(b - a >= 1.0 - 0.02 for a, b in itertools.pairwise(c0))


async def test_a_campaign_is_planned_and_queued_a_page_at_a_time_each_contract_once(engine, monkeypatch):
    from .chat import clone_customers

    monkeypatch.setattr(reminders, "PAGE", 3)
    async with engine.store.transaction() as tx:
        contracts = await clone_customers(tx, range(1, 9))
        for chat in contracts:
            await tx.set_reminder_consent("telegram", str(chat), reminders.KINDS, how="button")
        later = tx.now() + timedelta(minutes=1)
        await tx.link_chat("telegram", "1", contracts[2], "phone", now=later)  # one contract in two chats
    queued = await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1))
    assert sorted(p.target.contract for p in queued) == sorted(contracts.values())
    assert [p.target.user_id for p in queued if p.target.contract == contracts[2]] == ["1"]  # its newest link
    assert await reminders.queue_day(engine.store, PROFILE, date(2026, 12, 1)) == []


async def test_on_the_console_a_reminder_is_shown_at_the_next_message_unless_stopped(engine):
    chat = await fatima(engine, channel="console", user="c1")
    await chat.press_payload("remind:all")
    await reminders.queue_day(engine.store, PROFILE, date(2026, 11, 23))  # F-2026-10-1 due on the 25th
    await chat.send("bonjour")
    assert "Rappel : la facture F-2026-10-1" in chat.text
    await reminders.queue_notice(engine.store, PROFILE, city="Casablanca", service=None, text_ar="أ", text_fr="Travaux")
    await chat.send("bla rappel")  # said before the notice was shown: never shown
    assert "Travaux" not in chat.text and "plus de rappels" in chat.text
    await chat.send("bonjour")
    assert "Travaux" not in chat.text


async def test_a_reading_showing_a_consumption_well_above_the_usual_is_told_once(engine, clock):
    await opted(engine)
    async with engine.store.transaction() as tx:
        # 1000001 uses ~5.8 kWh a day (its read bill); 23 days at twice that since 31 October:
        await tx.add_customer_reading(
            contract="1000001",
            day=date(2026, 11, 23),
            index=45210 + 267,
            reference="RL-2026-000099",
            channel="telegram",
            user_id="f1",
            photo_ref=None,
            previous_index=45210,
            previous_date=date(2026, 10, 31),
            consumption=267,
        )
    queued = await reminders.queue_day(engine.store, PROFILE, date(2026, 11, 24))
    queued = [p for p in queued if p.kind == "consumption"]
    assert [(p.target.contract, p.occasion) for p in queued] == [("1000001", "consumption:2026-11-23")]
    async with engine.store.snapshot() as tx:
        msg = next(m for m in await tx.outbox_for_chat("telegram", "f1") if m.payload.get("kind") == "consumption")
    text = render_outbox(msg, PROFILE)
    assert "depuis le 31 octobre 2026 (contrat 1000001) est de 267 kWh" in text and "% au-dessus" in text
    percent = msg.payload["percent"]
    assert 90 <= percent <= 110  # twice the usual
    assert await reminders.queue_day(engine.store, PROFILE, date(2026, 11, 25)) == []  # once per reading
    # 1000002's water: no new reading, nothing said; nor a week after the reading.
    async with engine.store.snapshot() as tx:
        later = await reminders.plan_day(tx, PROFILE, date(2026, 12, 1))
    assert not [p for p in later if p.kind == "consumption"]


# ---------------------------------------------------------------------- the storage contract (every backend)
async def test_storage_keeps_consent_and_queues_a_reminder_once_with_its_outbox_row(store):
    from .test_storage_contract import NOW

    later = NOW + timedelta(minutes=5)
    async with store.transaction() as tx:
        assert await tx.reminder_consent("telegram", "7") is None
        await tx.set_reminder_consent("telegram", "7", (), how="asked", now=NOW)
        await tx.set_reminder_consent("telegram", "7", (), how="asked", now=later)  # asked once: the first time kept
        assert await tx.reminder_targets("due") == []  # asked, not answered: nobody to write to
        await tx.link_chat("telegram", "7", "1000001", "phone", now=NOW)
        await tx.set_reminder_consent("telegram", "7", ("due", "instalment"), how="button", now=later)
        consent = await tx.reminder_consent("telegram", "7")
        assert (consent.kinds, consent.asked_at, consent.answered_at, consent.how) == (
            ("due", "instalment"),
            NOW,
            later,
            "button",
        )
        assert await tx.reminder_targets("reading") == []
        (target,) = await tx.reminder_targets("due")
        assert (target.channel, target.user_id, target.contract) == ("telegram", "7", "1000001")
        args = dict(contract="1000001", occasion="due:F1", target=target, kind="due", payload={"bill": "F1"})
        first = await tx.queue_reminder(**args, not_before=later, now=NOW)
        assert first is not None and await tx.queue_reminder(**args, not_before=later, now=NOW) is None
        assert await tx.reminder_queued("1000001", "due:F1") and not await tx.reminder_queued("1000001", "due:F2")
        (msg,) = await tx.outbox_for_chat("telegram", "7")
        assert (msg.id, msg.kind, msg.next_attempt_at, msg.payload["kind"]) == (first, "reminder", later, "due")
        assert await tx.reminder_allowed("telegram", "7", "1000001", "due")
        assert not await tx.reminder_allowed("telegram", "7", "1000001", "reading")
        await tx.unlink_chat("telegram", "7", "1000001")
        assert not await tx.reminder_allowed("telegram", "7", "1000001", "due")
        notice = await tx.add_notice(key="k", city="Casablanca", service=None, text_ar="a", text_fr="b", now=NOW)
        assert await tx.add_notice(key="k", city="Casablanca", service=None, text_ar="a", text_fr="b") == notice


def test_a_notice_template_parameter_holds_no_newline():
    from bot.channels.whatsapp import reminder_template
    from storage import OutboxMessage

    payload = {"city": "Fès", "service": None, "ar": "أشغال\nيوم الأحد", "fr": "Travaux\n\ndimanche   matin"}
    msg = OutboxMessage(2, "whatsapp", "212612345678", "fr", "notice", payload, "pending", 0, DEC_1_10H, None, None)
    t = reminder_template(msg, PROFILE)
    assert t["template"]["name"] == "addad_service_notice" and t["template"]["language"] == {"code": "fr"}
    assert [p["text"] for p in t["template"]["components"][0]["parameters"]] == ["Travaux dimanche matin"]
