"""Proof brute force across chats (issue 18.3): a contract's proof can be failed only a few times a
day from all chats and channels together, the back office is alerted, the real holder still links
with a vouched phone, and until proof the answers do not tell which contract numbers exist."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .chat import Chat, open_engine

SUSPENDED = "la vérification par le montant est suspendue"


async def _guess(engine, user: str, number: str, amount: str, **kw) -> Chat:
    chat = Chat(engine, user=user, **kw)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send(number)
    await chat.press("Montant")
    await chat.send(amount)
    return chat


async def _links(engine, chat: Chat) -> list[str]:
    async with engine.store.snapshot() as tx:
        return sorted(c.contract for c in await tx.linked_contracts(chat.channel, chat.user))


async def test_many_chats_guessing_one_contract_are_refused_after_the_limit(engine):
    limit = engine.profile.linking.max_failed_proofs
    for i in range(limit):  # each chat stays far below its own 5-failure lockout
        chat = await _guess(engine, f"attacker{i}", "1000001", f"{i + 1},00")
        assert "ne correspond pas" in chat.text
    # From now on no amount is even compared, the right one included, from any chat or channel.
    for user, channel in (("attacker-late", "test"), ("wa-attacker", "whatsapp")):
        chat = Chat(engine, user=user, channel=channel)
        await chat.send("bonjour")
        await chat.press("Ajouter un contrat")
        await chat.send("1000001")
        await chat.send("218,90")  # Fatima's real last bill
        assert SUSPENDED in chat.text and "relié" not in chat.text
        assert await _links(engine, chat) == []
    # The holder: her WhatsApp number (the sender, vouched by the channel) links at once ...
    holder = Chat(engine, user="212612345678", channel="whatsapp", sender_phone="+212612345678")
    await holder.send("bonjour")
    await holder.press("Ajouter un contrat")
    await holder.send("1000001")
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in holder.text
    # ... and so does her own Telegram contact, shared at the proof question.
    telegram = Chat(engine, user="tg-fatima", channel="telegram", contact_request=True)
    await telegram.send("bonjour")
    await telegram.press("Ajouter un contrat")
    await telegram.send("1000001")
    await telegram.share_contact("0612345678")
    assert "est maintenant relié" in telegram.text
    assert "1000001" in await _links(engine, telegram)
    async with engine.store.snapshot() as tx:
        alerts = await tx.audit_entries(action="proof_locked")
        refused = [
            e for e in await tx.audit_entries(action="link_failed") if e["details"]["reason"] == "contract_locked"
        ]
    assert [(a["contract"], a["details"]["failures"], a["details"]["chats"]) for a in alerts] == [
        ("1000001", limit, limit)
    ]  # one alert, when the limit was reached
    assert len(refused) == 2


async def test_the_limit_is_a_day_and_a_profile_setting(engine, clock):
    engine.profile = engine.profile.model_copy(
        update={"linking": engine.profile.linking.model_copy(update={"max_failed_proofs": 2})}
    )
    for i in range(2):
        await _guess(engine, f"a{i}", "1000001", "1,00")
    chat = await _guess(engine, "a2", "1000001", "218,90")
    assert SUSPENDED in chat.text
    clock.advance(hours=24, minutes=1)
    chat = await _guess(engine, "a3", "1000001", "218,90")
    assert "est maintenant relié" in chat.text


async def _answers(engine, user: str, number: str, lang: str, contact: bool, rounds: int) -> list:
    """Everything a chat sees, text and buttons, while it tries to prove `number`."""
    chat = Chat(engine, user=user, lang_hint=lang, contact_request=contact)
    seen = []

    def keep():
        seen.append((chat.text, [(b.label, b.payload) for b in chat.replies[-1].buttons] if chat.replies else []))

    await chat.send("bonjour" if lang == "fr" else "السلام عليكم")
    await chat.send("8")  # "Add a contract", the 8th choice
    keep()
    await chat.send(number)
    keep()
    if contact:
        await chat.share_contact("0699999999")
        keep()
    for i in range(rounds):
        await chat.send(f"{i + 1}0,00")
        keep()
    return seen


@pytest.mark.parametrize("lang", ["fr", "ar"])
@pytest.mark.parametrize("contact", [False, True], ids=["console", "telegram"])
async def test_known_and_unknown_numbers_are_answered_alike(engine, lang, contact):
    # Until the chat locks itself (5 failures, the contract's limit too), then in another chat
    # past the contract's limit: every answer the same.
    known = await _answers(engine, "k", "1000001", lang, contact, 5 - contact)
    unknown = await _answers(engine, "u", "9999999", lang, contact, 5 - contact)
    assert known == unknown
    known_later = await _answers(engine, "k2", "1000001", lang, contact, 2)
    unknown_later = await _answers(engine, "u2", "9999999", lang, contact, 2)
    assert known_later == unknown_later
    suspended = "vérification par le montant est suspendue" if lang == "fr" else "أوقفنا التحقق بالمبلغ"
    assert suspended in known_later[-1][0]
    known += known_later
    texts = "\n".join(t for t, _ in known)
    assert "9999999" not in texts and "1000001" not in texts
    if lang == "fr":
        assert "Nous ne trouvons pas" not in texts and "choisissez une méthode" in texts
    else:
        assert "لم نجد" not in texts and "اختر طريقة" in texts
    async with engine.store.snapshot() as tx:
        assert [e["contract"] for e in await tx.audit_entries(action="proof_locked")] == ["1000001", "9999999"]


def test_the_back_office_sees_the_alert(tmp_path, process_clock):
    import asyncio

    async def attack():
        engine = await open_engine(tmp_path / "bo.sqlite3", process_clock)
        try:
            for i in range(engine.profile.linking.max_failed_proofs):
                await _guess(engine, f"x{i}", "1000003", "1,00")
                await _guess(engine, f"y{i}", "8888888", "1,00")
        finally:
            await engine.store.close()

    asyncio.run(attack())
    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "bo.sqlite3")}
    listed = subprocess.run(
        [sys.executable, "-m", "bot", "requests", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith("SECURITY ALERT")]
    assert len(lines) == 2 and "1000003" in lines[0] and "8888888" in lines[1]
    assert "5 failed proofs in 24 h from 5 chat(s)" in lines[0] and "(no such contract)" in lines[1]
    assert "2 security alert(s) in 7 days" in listed.stdout
