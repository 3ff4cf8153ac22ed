"""Issue 20: a customer who asks for a human is queued; an agent takes the chat, reads its recent
conversation (masked), writes through the bot and hands it back; meanwhile the bot is quiet on
that chat; a silent agent's chat returns to the bot. Through the engine, and through the fake
Bot API with the real Telegram bot."""

from __future__ import annotations

import asyncio

import pytest

from conversations import handoff
from conversations.handoff import HandoffError
from storage import open_store

from .chat import Chat
from .telegram_harness import TgUser
from .test_telegram import bot  # noqa: F401  (the fixture: the real bot against the fake Bot API)


@pytest.fixture
async def engine(engine):
    engine.pull_channels = frozenset({"test"})  # what the agent writes is shown at the next turn
    return engine


async def queued(engine):
    async with engine.store.transaction() as tx:
        return await handoff.queue(tx, engine.clock())


async def act(engine, what, *args, **kw):
    async with engine.store.transaction() as tx:
        return await what(tx, *args, now=engine.clock(), **kw)


async def test_an_agent_takes_the_chat_writes_through_the_bot_and_hands_it_back_in_french(engine):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000001")
    await chat.send("je veux parler à un conseiller")
    assert "👤 Un conseiller a été prévenu : il vous écrira ici dès qu'il sera disponible." in chat.text
    await chat.send("je veux parler à un conseiller")
    assert "👤 Votre demande est déjà transmise" in chat.text  # one place in the queue
    [h] = await queued(engine)
    assert (h.channel, h.user_id, h.lang, h.contract, h.status) == ("test", "u1", "fr", "1000001", "waiting")

    await act(engine, handoff.take, h.id, actor="web:amina")
    with pytest.raises(HandoffError, match="is taken by web:amina") as other:
        await act(engine, handoff.take, h.id, actor="web:karim")
    assert other.value.code == "taken"
    await chat.send("allo ? mon numéro est le 06 12 34 56 78, contrat 1000001")
    # Only the notice that an agent has it: the bot itself says nothing.
    assert chat.text == "👤 Un conseiller a pris votre conversation : écrivez-lui ici. Le robot se met en pause."
    await chat.send("combien je dois ?")
    assert chat.replies == []  # kept for the agent, not answered by the bot

    async with engine.store.snapshot() as tx:
        lines = await handoff.conversation(tx, h)
    said = [(line.sender, line.text) for line in lines]
    assert ("customer", "allo ? mon numéro est le 06 •• •• •• 78, contrat ••••001") in said
    assert said[-1] == ("customer", "combien je dois ?")
    assert all("1000001" not in text and "12 34 56" not in text for _, text in said)
    assert any(sender == "bot" and "conseiller a été prévenu" in text for sender, text in said)

    with pytest.raises(HandoffError, match="empty message"):
        await act(engine, handoff.say, h.id, "   ", actor="web:amina")
    with pytest.raises(HandoffError, match="not yours"):
        await act(engine, handoff.say, h.id, "Bonjour", actor="web:karim")
    await act(engine, handoff.say, h.id, "Bonjour, votre solde est de 462,07 DH.", actor="web:amina")
    await chat.send("?")
    assert chat.text == "👤 Conseiller : Bonjour, votre solde est de 462,07 DH."
    await act(engine, handoff.hand_back, h.id, actor="web:amina")
    await chat.send("combien je dois ?")
    assert chat.text.startswith("🤖 Le conseiller a terminé. Le robot vous répond de nouveau")
    assert "Total à payer : 462,07\u00a0DH" in chat.text  # the bot answers again
    assert await queued(engine) == []
    async with engine.store.snapshot() as tx:
        actions = [(a["action"], a["actor"]) for a in await tx.audit_entries() if a["action"].startswith("handoff")]
    assert actions == [
        ("handoff_requested", "customer"),
        ("handoff_taken", "web:amina"),
        ("handoff_message", "web:amina"),
        ("handoff_returned", "web:amina"),
    ]


async def test_a_silent_agent_gives_the_chat_back_to_the_bot_and_the_customer_is_told_in_arabic(engine):
    chat = Chat(engine, sender_phone="+212612345678", lang_hint="ar")
    await chat.send("السلام")
    await chat.send("بغيت نهضر مع شي واحد")
    assert "👤 تم إخبار أحد المستشارين" in chat.text
    [h] = await queued(engine)
    await act(engine, handoff.take, h.id, actor="web:amina")
    await chat.send("واش كاين شي حد؟")
    assert chat.text == "👤 أحد المستشارين تكلف بمحادثتك: اكتب له هنا. الروبوت متوقف مؤقتا."
    engine.clock.advance(minutes=31)
    await chat.send("القائمة")
    assert chat.text.startswith("🤖 المستشار لا يجيب حاليا. الروبوت يجيبك من جديد")
    assert chat.buttons  # the menu, from the bot again
    assert await queued(engine) == []
    with pytest.raises(HandoffError, match="not yours"):
        await act(engine, handoff.say, h.id, "مرحبا", actor="web:amina")


async def test_the_queue_closes_a_timed_out_chat_and_queues_the_customer_notice(engine):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux parler à un conseiller")
    [h] = await queued(engine)
    await act(engine, handoff.take, h.id, actor="web:amina")
    engine.clock.advance(minutes=31)
    assert await queued(engine) == []
    await chat.send("bonjour")
    assert "🤖 Le conseiller ne répond plus pour le moment." in chat.text
    assert "👤 Un conseiller a pris votre conversation" in chat.text  # both notices, once each


async def test_the_agents_words_reach_a_telegram_customer_through_the_fake_bot_api(api, bot, process_clock):
    user = TgUser(api, 9300, "fr")
    await user.send("bonjour")
    await user.send("je veux parler à un conseiller")
    assert "Un conseiller a été prévenu" in user.text
    store = await open_store(bot, clock=process_clock)
    try:
        async with store.transaction() as tx:
            [h] = await handoff.queue(tx, process_clock())
            await handoff.take(tx, h.id, actor="web:amina", now=process_clock())
        await api.wait_for(lambda c: c.chat_id == 9300 and "a pris votre conversation" in c.text, timeout=15)
        start = len(api.calls)
        api.text(9300, "quel est mon solde ?", lang="fr")
        await asyncio.sleep(2.0)
        assert [c for c in api.calls[start:] if c.chat_id == 9300 and c.method == "sendMessage"] == []
        async with store.transaction() as tx:
            await handoff.say(tx, h.id, "Je regarde votre dossier.", actor="web:amina", now=process_clock())
        pushed = await api.wait_for(lambda c: c.chat_id == 9300 and "Je regarde votre dossier." in c.text, timeout=15)
        assert pushed.text == "👤 Conseiller : Je regarde votre dossier."
        async with store.transaction() as tx:
            await handoff.hand_back(tx, h.id, actor="web:amina", now=process_clock())
        await api.wait_for(lambda c: c.chat_id == 9300 and "Le robot vous répond de nouveau" in c.text, timeout=15)
        async with store.snapshot() as tx:
            lines = await handoff.conversation(tx, h)
        assert ("customer", "quel est mon solde ?") in [(line.sender, line.text) for line in lines]
    finally:
        await store.close()
