"""Issue 20: flagged customer readings reviewed by the back office (`addad readings list|review`
and conversations/review.py), and the customer told the outcome on his chat, in his language."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conversations.profile import load_profile
from conversations.review import ReviewError, review

from .chat import Chat, add_omar


@pytest.fixture
async def engine(engine):
    engine.pull_channels = frozenset({"test"})  # the outcome is shown at the customer's next turn
    async with engine.store.transaction() as tx:
        await add_omar(tx)
    return engine


@pytest.fixture
def addad(tmp_path):
    """`addad …` as the agent Amina, on the engine's database (tests/conftest.py `engine`)."""
    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "addad.sqlite3"), "ADDAD_AGENT": "amina"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
        )

    return run


async def send_outlier(engine, *, lang_hint=None, index="46500") -> Chat:
    chat = Chat(engine, sender_phone="+212612345678", lang_hint=lang_hint)
    if lang_hint == "ar":
        await chat.send("السلام")
        await chat.press("➕")
        await chat.send("1000001")
        await chat.send("بغيت نعطي الرقم ديال العداد")
        await chat.press("1000001")
        await chat.send(index)
        await chat.press("نعم")
        await chat.press("بدون صورة")
        await chat.press("تأكيد")
        assert "RL-2026-000001" in chat.text
    else:
        await chat.send("bonjour")
        await chat.press("➕")
        await chat.send("1000001")
        await chat.no_reminders()
        await chat.press("Envoyer mon index")
        await chat.press("1000001")
        await chat.send(index)
        await chat.press("Oui")
        await chat.press("Sans photo")
        await chat.press("Confirmer")
        assert "un agent la vérifiera avant la facturation" in chat.text
    return chat


async def only_item(engine):
    async with engine.store.snapshot() as tx:
        items = await tx.review_items(flagged=True)
    assert len(items) == 1
    return items[0]


async def test_a_flagged_reading_rejected_from_the_command_line_and_the_customer_told_in_french(engine, addad):
    chat = await send_outlier(engine)
    item = await only_item(engine)
    listed = addad("readings", "list", "--flagged")
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if "RL-2026-000001" in l)
    assert line.split()[:5] == [str(item.reading.id), "RL-2026-000001", "1000001", "2026-11-23", "46500"]
    assert "1290" in line and "45210@2026-10-31" in line and line.endswith("to review: outlier")
    assert "1 awaiting review; times in Africa/Casablanca" in listed.stdout
    # A rejection without a note, a letter for an id, an index where none is taken: one clear line each.
    for args, message in (
        ((str(item.reading.id), "reject"), "addad: a rejection needs --note (the customer is told why)\n"),
        (
            ("x1", "accept"),
            "addad: reading ID must be a number or a reference (the first two columns of `addad readings list`), "
            "not 'x1'\n",
        ),
        (("RL-2026-999999", "accept"), "addad: no customer reading RL-2026-999999\n"),
        ((str(item.reading.id), "accept", "123"), "addad: accept takes no index (only correct does)\n"),
        ((str(item.reading.id), "correct", "45a00"), "addad: the index must be digits only, not '45a00'\n"),
        (("999", "accept"), "addad: no customer reading 999\n"),
        (("9" * 30, "accept"), f"addad: no customer reading {'9' * 30}\n"),
    ):
        done = addad("readings", "review", *args)
        assert (done.returncode, done.stderr) == (2, message)
    # By its reference, as the customer was told it (any case).
    done = addad(
        "readings", "review", "rl-2026-000001", "reject", "--note", "Le compteur de la photo n'est pas le vôtre"
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == f"reading {item.reading.id} (RL-2026-000001): rejected, index 46500; the customer will be told on test\n"
    )
    again = addad("readings", "review", str(item.reading.id), "accept")
    assert again.returncode == 2
    assert again.stderr == (
        f"addad: reading {item.reading.id} was already reviewed (rejected by backoffice:amina on 2026-11-23 10:00)\n"
    )
    await chat.send("merci")
    assert (
        "❌ Votre index 46500 (référence RL-2026-000001) n'a pas été retenu.\n"
        "Note du service : Le compteur de la photo n'est pas le vôtre\n"
        "Vous pouvez envoyer à nouveau votre index depuis le menu (« Envoyer mon index »), "
        "avec une photo nette du compteur."
    ) in chat.text
    async with engine.store.snapshot() as tx:
        readings = await tx.readings("1000001", include_replaced=True)
        audit = await tx.audit_entries(action="reading_rejected")
        assert await tx.review_items(flagged=True) == []
    rejected = next(r for r in readings if r.reference == "RL-2026-000001")
    assert (rejected.status, rejected.review) == ("replaced", False)  # no longer a valid reading for billing
    assert [(a["actor"], a["details"]["reference"]) for a in audit] == [("backoffice:amina", "RL-2026-000001")]
    listed = addad("readings", "list")
    assert "rejected by backoffice:amina" in listed.stdout


async def test_a_correction_in_arabic_gives_the_new_consumption_and_cost(engine):
    chat = await send_outlier(engine, lang_hint="ar", index="45750")
    item = await only_item(engine)
    profile = load_profile()
    async with engine.store.transaction() as tx:
        done = await review(tx, item.reading.id, "corrected", index=45400, actor="web:amina", profile=profile)
    assert (done.outcome, done.original_index, done.corrected_index) == ("corrected", 45750, 45400)
    await chat.send("شكرا")
    text = chat.text
    assert "✏️ تم التحقق من مؤشرك 45750 (المرجع RL-2026-000001): صححته مصلحتنا إلى 45400." in text
    assert "الاستهلاك المعتمد: 190 ك.و.س.\nالمبلغ التقديري للفترة: 251,34 درهم (للإشارة فقط)." in text
    async with engine.store.snapshot() as tx:
        r = next(r for r in await tx.readings("1000001") if r.source == "customer")
    assert (r.index_value, r.consumption, r.rollover, r.review, r.status) == (45400, 190, False, False, "valid")


async def test_accepting_clears_the_flag_and_a_second_review_is_refused(engine):
    chat = await send_outlier(engine)
    item = await only_item(engine)
    profile = load_profile()
    with pytest.raises(ReviewError, match="the meter has 5 dials: the index must be below 100000"):
        async with engine.store.transaction() as tx:
            await review(tx, item.reading.id, "corrected", index=123456, actor="web:karim", profile=profile)
    async with engine.store.transaction() as tx:
        await review(tx, item.reading.id, "accepted", actor="web:amina", profile=profile)
    async with engine.store.snapshot() as tx:
        r = next(r for r in await tx.readings("1000001") if r.source == "customer")
        assert (r.review, r.review_reason, r.status) == (False, "outlier", "valid")
    with pytest.raises(ReviewError, match="already reviewed") as refused:
        async with engine.store.transaction() as tx:
            await review(tx, item.reading.id, "corrected", index=45300, actor="web:karim", profile=profile)
    assert refused.value.code == "reviewed"
    await chat.send("merci")
    assert "✅ Votre index 46500 (référence RL-2026-000001) a été vérifié et accepté par notre service." in chat.text
    assert chat.text.count("Votre index 46500") == 1  # told once


async def test_rollovers_and_replacing_readings_are_flagged_and_a_rejected_replacement_restores_the_first(engine):
    chat = Chat(engine, sender_phone="+212677777777")
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000007")
    await chat.no_reminders()
    await chat.press("Envoyer mon index")
    await chat.send("00080")
    await chat.send("oui")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    fatima = Chat(engine, user="u2", sender_phone="+212612345678")
    await fatima.send("bonjour")
    await fatima.press("➕")
    await fatima.send("1000001")
    await fatima.no_reminders()
    for index in ("45300", "45310"):
        await fatima.press("Envoyer mon index")
        await fatima.press("1000001")
        await fatima.send(index)
        await fatima.press("Sans photo")
        await fatima.press("Confirmer")
    async with engine.store.snapshot() as tx:
        items = await tx.review_items(flagged=True)
    assert [(i.reading.contract, i.reading.index_value, i.flags, i.replaces_reference) for i in items] == [
        ("1000007", 80, ("rollover",), None),
        ("1000001", 45310, ("replaces",), "RL-2026-000002"),
    ]
    async with engine.store.transaction() as tx:
        await review(
            tx, items[1].reading.id, "rejected", note="Index illisible", actor="web:amina", profile=load_profile()
        )
    async with engine.store.snapshot() as tx:
        rows = [
            (r.index_value, r.status)
            for r in await tx.readings("1000001", include_replaced=True)
            if r.source == "customer"
        ]
    assert rows == [(45300, "valid"), (45310, "replaced")]
    await fatima.send("ok")
    assert (
        "❌ Votre index 45310 (référence RL-2026-000003) n'a pas été retenu.\nNote du service : Index illisible"
        in fatima.text
    )
