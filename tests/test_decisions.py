"""A granted facility as the customer then sees it: the decision carries the schedule (or the date
to pay before), and the balance shows the bills it covers as under a plan, not as overdue."""

from __future__ import annotations

from conversations.backoffice import decide
from conversations.i18n import LRI, PDI

from .chat import Chat
from .test_requests import engine, file_instalment  # noqa: F401  (the fixture: decisions shown at the next turn)


async def approve(engine, reference: str, note: str | None = None) -> None:
    async with engine.store.transaction() as tx:
        await decide(tx, reference, "approved", note=note, actor="backoffice:amina", now=engine.clock())


async def test_an_approved_plan_brings_its_schedule_and_the_balance_shows_it_in_french(engine):
    chat = await file_instalment(engine)
    await approve(engine, "IN-2026-000001", note="Merci de respecter les dates")
    await chat.send("merci")
    text = chat.text
    assert "Bonne nouvelle : votre demande IN-2026-000001 (Échelonnement des arriérés) est acceptée." in text
    assert (
        "Votre échéancier :\n"
        "  • Échéance 1, le 23 décembre 2026 : 154,02\u00a0DH\n"
        "  • Échéance 2, le 23 janvier 2027 : 154,02\u00a0DH\n"
        "  • Échéance 3, le 23 février 2027 : 154,03\u00a0DH\n"
        "Note du service : Merci de respecter les dates"
    ) in text
    await chat.send("combien je dois")
    text = chat.text
    assert (
        "• septembre 2026 : 243,17\u00a0DH, dans l'échelonnement accordé IN-2026-000001 : "
        "prochaine échéance le 23 décembre 2026, 154,02\u00a0DH"
    ) in text
    assert "• octobre 2026 : 218,90\u00a0DH, dans l'échelonnement accordé IN-2026-000001" in text
    assert "échue" not in text
    assert "Total à payer : 462,07\u00a0DH" in text  # still owed, only not overdue
    # After the first date, the next instalment is the second one.
    await chat.send("/menu")
    engine.clock.advance(days=31)
    await chat.send("combien je dois")
    assert "prochaine échéance le 23 janvier 2027, 154,02\u00a0DH" in chat.text


async def test_an_approved_plan_in_arabic_and_the_balance_asked_in_arabizi(engine):
    chat = await file_instalment(engine, lang_hint="ar")
    await approve(engine, "IN-2026-000001")
    await chat.send("شكرا")
    assert (
        "جدول الأقساط:\n"
        "  • القسط 1، بتاريخ 23 دجنبر 2026: 154,02 درهم\n"
        "  • القسط 2، بتاريخ 23 يناير 2027: 154,02 درهم\n"
        "  • القسط 3، بتاريخ 23 فبراير 2027: 154,03 درهم"
    ) in chat.text
    await chat.send("chhal khassni nkhelles")
    text = chat.text
    assert (
        "• شتنبر 2026: 243,17 درهم، ضمن التقسيط المقبول IN-2026-000001: القسط القادم بتاريخ 23 دجنبر 2026، 154,02 درهم"
    ) in text
    assert "فات أجلها" not in text


async def test_a_plan_whose_dates_are_all_past_no_longer_hides_an_overdue_bill(engine):
    chat = await file_instalment(engine)
    await approve(engine, "IN-2026-000001")
    engine.clock.advance(days=120)  # 23 March 2027: the last date was 23 February
    await chat.send("combien je dois")
    assert "échue depuis le 25 octobre 2026" in chat.text and "échelonnement accordé" not in chat.text


async def test_an_approved_deferral_says_until_when_in_both_languages(engine):
    chat = Chat(engine, sender_phone="+212612345678", lang_hint="ar")
    await chat.send("السلام")
    await chat.send("بغيت نأجل الخلاص")
    await chat.send("1000001")
    await chat.press("الأداء لاحقا")
    await chat.send("10 دجنبر")
    await chat.press("المرض")
    await chat.send("واخا")
    assert "DF-2026-000001" in chat.text
    await approve(engine, "DF-2026-000001")
    await chat.send("شحال خاصني نخلص")
    text = chat.text
    assert "طلبك DF-2026-000001 (تأجيل الأداء) تم قبوله.\nالأداء قبل 10 دجنبر 2026." in text
    assert "• شتنبر 2026: 243,17 درهم، تأجيل مقبول DF-2026-000001: الأداء قبل 10 دجنبر 2026" in text
    await chat.send("/language")
    await chat.press("Français")
    await chat.send("mes factures")
    assert (
        "• septembre 2026 : 243,17\u00a0DH, report accordé DF-2026-000001 : à payer avant le 10 décembre 2026"
        in chat.text
    )


async def test_a_rejected_plan_carries_no_schedule_and_leaves_the_bills_overdue(engine):
    chat = await file_instalment(engine)
    async with engine.store.transaction() as tx:
        await decide(tx, "IN-2026-000001", "rejected", note="Dossier incomplet", actor="a", now=engine.clock())
    await chat.send("combien je dois")
    assert "n'a pas été acceptée" in chat.text and "Échéance" not in chat.text
    assert "échue depuis le 25 octobre 2026" in chat.text


async def test_a_decision_on_a_french_request_is_told_in_arabic_after_the_switch(engine):
    chat = await file_instalment(engine)  # filed in French
    await chat.send("/language")
    await approve(engine, "IN-2026-000001")
    await chat.press("العربية")  # the decision is shown in this very turn
    text = chat.text
    assert "خبر سار: طلبك IN-2026-000001 (تقسيط المتأخرات) تم قبوله." in text
    assert "  • القسط 1، بتاريخ 23 دجنبر 2026: 154,02 درهم" in text
    assert "سنتحدث الآن بالعربية" in text and "Bonne nouvelle" not in text and "Échéance" not in text


async def test_a_pushed_decision_is_rendered_in_the_language_the_chat_speaks_at_send_time(engine):
    from conversations.dispatch import Dispatcher
    from conversations.profile import load_profile

    from .test_dispatch import RecordingSender

    chat = await file_instalment(engine)  # filed in French
    await chat.send("/language")
    await chat.press("العربية")
    await approve(engine, "IN-2026-000001")
    sender = RecordingSender()
    assert await Dispatcher(engine.store, load_profile(), [sender], clock=engine.clock).dispatch_due() == 1
    [(user, text)] = sender.delivered
    text = text.replace(LRI, "").replace(PDI, "")
    assert user == "u1" and "خبر سار: طلبك IN-2026-000001" in text and "جدول الأقساط:" in text
    assert "Bonne nouvelle" not in text


async def test_the_schedule_reaches_the_customer_from_addad_requests_approve(engine, tmp_path, database):
    import os
    import subprocess
    import sys

    chat = await file_instalment(engine, lang_hint="ar")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "requests", "approve", "IN-2026-000001"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={
            **os.environ,
            "ADDAD_DATABASE": str(database),
            "ADDAD_AGENT": "amina",
            "PYTHONPATH": os.getcwd(),
        },
    )
    assert done.returncode == 0, done.stderr
    await chat.send("slm")
    assert (
        "طلبك IN-2026-000001 (تقسيط المتأخرات) تم قبوله.\nجدول الأقساط:\n  • القسط 1، بتاريخ 23 دجنبر 2026" in chat.text
    )
