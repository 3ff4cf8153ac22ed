"""Tracking, prepaid help, callbacks and back-office decisions, as customers and agents see them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from conversations.backoffice import BackOfficeError, decide
from storage import Contract

from .chat import Chat, Clock, open_engine


@pytest.fixture
async def engine(database):
    engine = await open_engine(database, Clock())
    engine.pull_channels = frozenset({"test"})  # decisions shown at the next turn, like the console
    async with engine.store.transaction() as tx:
        for number, low in (("1000004", True), ("1000006", False)):
            await tx.upsert_contract(
                Contract(
                    number,
                    "electricity",
                    "Ahmed Ouali",
                    "+212670000004",
                    "ar",
                    "Ait Ourir",
                    f"P-{number}",
                    "prepaid",
                    6,
                    0,
                    date(2026, 10, 1),
                    "BT-RES",
                    low,
                )
            )
    try:
        yield engine
    finally:
        await engine.store.close()


async def file_instalment(engine, lang_hint=None) -> Chat:
    chat = Chat(engine, sender_phone="+212612345678", lang_hint=lang_hint)
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000001")
    # Typed in the chat's language: a plainly French message turns an Arabic chat French.
    await chat.send("نخلص على 3 شهور" if lang_hint == "ar" else "payer en 3 fois")
    await chat.send("1")  # first reason
    await chat.send("1")  # confirm
    return chat


async def test_approval_reaches_the_customer_once_in_their_language(engine):
    chat = await file_instalment(engine, lang_hint="ar")
    assert "IN-2026-000001" in chat.text
    async with engine.store.transaction() as tx:
        await decide(tx, "in-2026-000001", "approved", note="أول قسط في 23 دجنبر", actor="backoffice:amina")
    await chat.send("شكرا")
    assert "خبر سار: طلبك IN-2026-000001 (تقسيط المتأخرات) تم قبوله" in chat.text
    assert "أول قسط في 23 دجنبر" in chat.text
    await chat.send("السلام")
    assert "خبر سار" not in chat.text  # never twice
    await chat.press("تتبع طلباتي")
    assert "IN-2026-000001" in chat.text and "مقبول" in chat.text


async def test_rejection_needs_a_note_and_a_decision_is_final(engine):
    await file_instalment(engine)
    async with engine.store.transaction() as tx:
        with pytest.raises(BackOfficeError, match="needs --note"):
            await decide(tx, "IN-2026-000001", "rejected", note=" ", actor="a")
    async with engine.store.transaction() as tx:
        await decide(tx, "IN-2026-000001", "rejected", note="Dossier incomplet", actor="a")
    async with engine.store.transaction() as tx:
        with pytest.raises(BackOfficeError, match="is rejected"):
            await decide(tx, "IN-2026-000001", "approved", note=None, actor="a")
        assert len(await tx.outbox_for_chat("test", "u1", statuses=("pending",))) == 1


async def test_decision_rolled_back_with_a_failed_turn_is_shown_later(engine):
    chat = await file_instalment(engine)
    async with engine.store.transaction() as tx:
        await decide(tx, "IN-2026-000001", "approved", note=None, actor="a")
    # A turn whose transaction fails keeps the message queued (it was not shown).
    original = engine._step

    async def boom(turn, fresh):
        raise RuntimeError("disk full")

    engine._step = boom
    await chat.send("bonjour")
    assert "un incident s'est produit" in chat.text and "Bonne nouvelle" not in chat.text
    engine._step = original
    await chat.send("bonjour")
    assert "Bonne nouvelle : votre demande IN-2026-000001" in chat.text


async def test_tracking_by_reference_and_not_someone_elses(engine):
    await file_instalment(engine)
    other = Chat(engine, user="intruder", sender_phone="+212661234567")
    await other.send("bonjour")
    await other.send("suivi de ma demande IN-2026-000001")
    assert "Nous ne trouvons pas la demande IN-2026-000001" in other.text
    assert "Échelonnement" not in other.text


async def test_prepaid_advance_refused_for_a_non_eligible_contract_and_granted_otherwise(engine):
    chat = Chat(engine, sender_phone="+212670000004")
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000006")  # also links 1000004 (same phone)
    await chat.no_reminders()
    await chat.press("Compteur prépayé")
    await chat.press("1000006")
    await chat.press("Avance")
    assert "réservée aux foyers à revenu modeste" in chat.text
    await chat.press("Compteur prépayé")
    await chat.press("1000004")
    await chat.press("Avance")
    assert "avance de 20 kWh" in chat.text
    await chat.send("oui")
    assert "Référence : PP-2026-000001" in chat.text
    for reference in ("PP-2026-000001", "PP-2026-000002"):  # each granted before the next is asked
        async with engine.store.transaction() as tx:
            await decide(tx, reference, "approved", note=None, actor="a", now=engine.clock())
        await chat.press("Compteur prépayé")
        await chat.press("1000004")
        await chat.press("Avance")
        if "Confirmer" in chat.text:
            await chat.send("oui")
    assert "Vous avez déjà bénéficié de 2 avances cette année" in chat.text
    async with engine.store.snapshot() as tx:
        assert [r.status for r in await tx.requests(contract="1000004")] == ["approved", "approved"]


async def test_callback_request_without_a_linked_contract(engine):
    chat = Chat(engine, lang_hint="fr")
    await chat.send("je veux parler à un conseiller")
    assert "080 200 77 77" in chat.text
    await chat.press("Être rappelé")
    await chat.send("pas un numéro")
    assert "Tapez un numéro marocain" in chat.text
    await chat.send("06 12 34 56 78")
    await chat.send("coupure depuis hier")
    assert "+21261234••••" in chat.text and "CB-2026-000001" in chat.text
    async with engine.store.snapshot() as tx:
        req = await tx.request("CB-2026-000001")
    assert req.details["phone"] == "+212612345678" and req.reason_text == "coupure depuis hier"


def test_back_office_cli(tmp_path, database):
    import asyncio

    async def prepare():
        engine = await open_engine(database, Clock())
        try:
            await file_instalment(engine)
        finally:
            await engine.store.close()

    asyncio.run(prepare())
    env = {**os.environ, "ADDAD_DATABASE": str(database), "ADDAD_AGENT": "amina"}

    def addad(*args):
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )

    listed = addad("requests", "list", "--status", "pending")
    assert listed.returncode == 0 and "IN-2026-000001" in listed.stdout and "462.07" in listed.stdout
    shown = addad("requests", "show", "IN-2026-000001")
    assert "154.03 DH" in shown.stdout and "total      462.07 DH" in shown.stdout
    refused = addad("requests", "reject", "IN-2026-000001")
    assert refused.returncode != 0  # argparse: --note is required
    ok = addad("requests", "approve", "IN-2026-000001", "--note", "OK")
    assert ok.returncode == 0 and "approved" in ok.stdout
    again = addad("requests", "approve", "IN-2026-000001")
    assert (
        again.returncode == 2
        and again.stderr.strip() == "addad: IN-2026-000001 is approved: only pending requests can be decided"
    )
    missing = addad("requests", "show", "XX-1")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
