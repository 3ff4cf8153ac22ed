"""The conversation core, driven like a customer would: welcome, language, account linking,
typed answers, /cancel everywhere, restarts and redeliveries. Both languages."""

from __future__ import annotations

import pytest

from conversations.engine import Engine
from conversations.profile import load_profile
from storage import open_store

from .chat import Chat, Clock, open_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def timed_engine(database, clock):
    engine = await open_engine(database, clock)
    try:
        yield engine
    finally:
        await engine.store.close()


async def _state(engine: Engine, chat: Chat) -> str:
    async with engine.store.snapshot() as tx:
        return (await tx.load_session(chat.channel, chat.user)).state


async def _links(engine: Engine, chat: Chat) -> list[str]:
    async with engine.store.snapshot() as tx:
        return [c.contract for c in await tx.linked_contracts(chat.channel, chat.user)]


# ---------------------------------------------------------------- welcome and language
async def test_french_welcome_shows_the_menu(engine):
    chat = Chat(engine)
    await chat.send("Bonjour")
    assert "Bonjour et bienvenue chez l'assistant de l'ONEE" in chat.text
    labels = [b.label for b in chat.buttons]
    assert "📟 Envoyer mon index" in labels and "🧾 Mes factures, solde" in labels


async def test_arabic_script_gets_arabic(engine):
    chat = Chat(engine)
    await chat.send("السلام عليكم")
    assert "مرحبا بك 👋 أنا المساعد الرقمي ديال المكتب الوطني للكهرباء والماء." in chat.text
    assert "📟 إرسال مؤشر العداد" in [b.label for b in chat.buttons]


async def test_channel_language_hint_wins_over_script(engine):
    chat = Chat(engine, lang_hint="ar")
    await chat.send("salut")
    assert "مرحبا" in chat.text


async def test_language_can_be_switched_by_button_and_by_typing(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("العربية")  # the menu's language entry, labelled in the other language
    await chat.press("العربية")
    assert "سنتحدث الآن بالعربية" in chat.text
    assert "📟 إرسال مؤشر العداد" in [b.label for b in chat.buttons]
    await chat.send("/language")
    await chat.send("2")  # typed number instead of pressing
    assert "Nous continuons en français." in chat.text


# ---------------------------------------------------------------- linking
async def test_link_by_shared_contact_links_all_contracts_of_that_phone_then_shows_balance(engine):
    chat = Chat(engine, contact_request=True)
    await chat.send("bonjour")
    await chat.press("Mes factures")
    assert "reliez d'abord votre contrat" in chat.text
    await chat.send("1000001")
    assert "vérifier que ce contrat est bien le vôtre" in chat.text
    assert any(r.ask == "contact" for r in chat.replies)
    assert "Bennani" not in chat.text and "243" not in chat.text  # nothing shown before proof
    await chat.share_contact("0612345678")
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in chat.text
    assert "contrat 1000002 (eau, Casablanca)" in chat.text
    # The balance that was asked for comes right after linking.
    assert "2 factures impayées" in chat.text
    assert "Total à payer : 462,07\u00a0DH" in chat.text
    assert "• Application ou site de votre banque : Service « Fatourati »" in chat.text  # from the profile
    assert "jamais vos données de carte bancaire" in chat.text
    assert sorted(await _links(engine, chat)) == ["1000001", "1000002"]


async def test_link_by_last_bill_amount_in_arabic(engine):
    chat = Chat(engine)
    await chat.send("السلام")
    await chat.press("إضافة عقد")
    await chat.send("١٠٠٠٠٠١")  # Arabic-Indic digits
    await chat.press("مبلغ آخر فاتورة")
    await chat.send("218,90")
    assert "تم ✅ العقد 1000001 (الكهرباء، الدار البيضاء) مربوط الآن" in chat.text
    assert await _links(engine, chat) == ["1000001"]  # amount proof links only that contract


async def test_amount_can_be_typed_without_choosing_the_method(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("contrat 1000001")
    await chat.send("218.90")
    assert "est maintenant relié" in chat.text


async def test_vouched_sender_phone_proves_at_once(engine):
    chat = Chat(engine, sender_phone="+212 6 12 34 56 78")  # WhatsApp sender / console --phone
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("1000002")
    assert "Le contrat 1000002 (eau, Casablanca) est maintenant relié" in chat.text


async def test_wrong_proofs_are_counted_and_explained(engine):
    chat = Chat(engine, contact_request=True)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("1000003")
    await chat.share_contact("0612345678")  # Fatima's number, not Youssef's
    assert "Ce numéro n'est pas celui enregistré pour ce contrat." in chat.text
    assert "Il vous reste 4 essais." in chat.text
    await chat.share_contact("0661234567", own=False)  # Youssef's number, but someone else's contact card
    assert "votre propre numéro" in chat.text and "Il vous reste 3 essais." in chat.text
    await chat.press("Montant de ma dernière facture")
    await chat.send("deux cents")
    assert "Tapez le montant en chiffres seulement" in chat.text  # a format slip is not a failed proof
    await chat.send("100,00")
    assert "ne correspond pas" in chat.text and "Il vous reste 2 essais." in chat.text
    assert await _links(engine, chat) == []
    async with engine.store.snapshot() as tx:
        failures = await tx.audit_entries(action="link_failed")
    assert [f["details"]["reason"] for f in failures] == ["phone_mismatch", "contact_not_own", "amount_mismatch"]


async def test_unknown_contract_and_bad_format(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("12ab")
    assert "6 à 10 chiffres" in chat.text
    await chat.send("9999999")  # unknown: the proof question every number gets, not "not found"
    assert "choisissez une méthode" in chat.text and "9999999" not in chat.text
    await chat.send("100,00")
    assert "ne correspond pas à la dernière facture" in chat.text and "Il vous reste 4 essais." in chat.text


async def test_five_failures_lock_linking_for_thirty_minutes(timed_engine, clock):
    engine = timed_engine
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("1000001")
    await chat.press("Montant")
    for amount in ("1,00", "2,00", "3,00", "4,00"):
        await chat.send(amount)
    await chat.send("5,00")
    assert "suspendue dans cette conversation jusqu'à" in chat.text
    # Even the right amount is refused while locked.
    await chat.press("Ajouter un contrat")
    assert "suspendue" in chat.text
    await chat.send("1000001")
    clock.advance(minutes=29)
    await chat.send("/menu")
    await chat.press("Ajouter un contrat")
    assert "suspendue" in chat.text
    clock.advance(minutes=2)
    await chat.send("/menu")
    await chat.press("Ajouter un contrat")
    assert "Envoyez votre numéro de contrat" in chat.text
    await chat.send("1000001")
    await chat.press("Montant")
    await chat.send("218,90")  # the chat is free again, but 1000001 has had its 5 failed proofs today
    assert "vérification par le montant est suspendue" in chat.text and "relié" not in chat.text
    await chat.press("Annuler")
    await chat.press("Ajouter un contrat")
    await chat.send("1000002")
    await chat.press("Montant")
    await chat.send("64,75")
    assert "est maintenant relié" in chat.text
    async with engine.store.snapshot() as tx:
        assert len(await tx.audit_entries(action="link_locked")) == 1


# ---------------------------------------------------------------- typed answers, cancel, bad input
async def test_typed_answers_work_where_buttons_are_offered(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.send("8")  # "➕ Ajouter un contrat" is the 8th choice
    assert "Envoyez votre numéro de contrat" in chat.text
    await chat.send("annuler")
    assert "C'est annulé" in chat.text
    await chat.send("ajouter un contrat")  # the button's words
    assert "Envoyez votre numéro de contrat" in chat.text


@pytest.mark.parametrize(
    "path",
    [
        [],  # menu
        ["➕"],  # link.contract
        ["➕", "#1000001"],  # link.proof
        ["➕", "#1000001", "🧾"],  # link.amount
        ["🌐"],  # lang.choose
        ["📍"],  # agency.start
    ],
)
@pytest.mark.parametrize("cancel", ["/cancel", "annuler", "الغاء"])
async def test_cancel_works_from_every_state(engine, path, cancel):
    chat = Chat(engine)
    await chat.send("bonjour")
    for step in path:
        if step.startswith("#"):
            await chat.send(step[1:])
        else:
            await chat.press(step)
    await chat.send(cancel)
    assert await _state(engine, chat) == "menu.main"
    assert ("C'est annulé" in chat.text) if path else ("aucune démarche en cours" in chat.text)
    assert "📟 Envoyer mon index" in [b.label for b in chat.buttons]


@pytest.mark.parametrize(
    "message", ["", "   ", "🙂🙂🙂", "²", "x" * 4000, "'; DROP TABLE contracts; --", "\u202e\u200f"]
)
async def test_bad_input_gets_an_answer(engine, message):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.send(message)
    assert chat.text.strip(), "silence"
    assert "un incident s'est produit" not in chat.text, "a traceback behind a polite apology"
    assert chat.buttons, "no way on"


async def test_photo_sticker_and_contact_out_of_place(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.send_photo("tg-file-1")
    assert "J'ai bien reçu la photo" in chat.text
    await chat._send(other="sticker")
    assert "Je ne sais pas lire ce type de message" in chat.text
    await chat.share_contact("0612345678")
    assert "je n'en ai pas besoin ici" in chat.text


async def test_forged_or_stale_button_is_refused(engine):
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.press_payload("proof:amount")  # not offered in this state
    assert "Ce bouton n'est plus valable" in chat.text
    assert await _state(engine, chat) == "link.contract"


# ---------------------------------------------------------------- durability and ordering
async def test_duplicate_message_id_is_handled_once(engine):
    chat = Chat(engine)
    await chat.send("bonjour", message_id="dup-1")
    first = chat.text
    await chat.send("bonjour", message_id="dup-1")
    assert first and chat.replies == []
    await chat.press("Ajouter un contrat")
    await chat.send("9999999", message_id="dup-1b")
    await chat.send("1,00", message_id="dup-2")
    await chat.send("1,00", message_id="dup-2")
    async with engine.store.snapshot() as tx:
        assert len(await tx.audit_entries(action="link_failed")) == 1


async def test_restart_in_the_middle_of_a_journey_resumes_it(database):
    path = database
    clock = Clock()  # both processes share the day's time
    engine = await open_engine(path, clock)
    chat = Chat(engine)
    await chat.send("bonjour")
    await chat.press("Mes factures")
    await chat.send("1000001")
    await chat.press("Montant")
    await engine.store.close()

    engine2 = Engine(await open_store(path), load_profile(), clock=clock)
    try:
        chat.engine = engine2
        await chat.send("218,90")
        assert "est maintenant relié" in chat.text
        assert "Total à payer" in chat.text  # the balance asked for before the restart
    finally:
        await engine2.store.close()


async def test_idle_session_restarts_at_the_menu(timed_engine, clock):
    chat = Chat(timed_engine)
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    clock.advance(minutes=31)
    await chat.send("1000001")
    assert "nous reprenons au menu" in chat.text
    assert await _state(timed_engine, chat) == "menu.main"


async def test_many_chats_concurrently_keep_their_own_order(engine):
    import asyncio

    chats = [Chat(engine, user=f"u{i}") for i in range(30)]

    async def journey(chat: Chat):
        await chat.send("bonjour")
        await chat.press("Ajouter un contrat")
        await chat.send("1000001")
        await chat.press("Montant")
        await chat.send("218,90")
        return chat.text

    results = await asyncio.gather(*(journey(c) for c in chats))
    assert all("est maintenant relié" in r for r in results)


async def test_agencies_of_the_customers_city_and_by_typed_city(engine):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.press("Ajouter un contrat")
    await chat.send("1000001")
    await chat.no_reminders()
    await chat.press("Agences")
    assert "Nos agences à Casablanca" in chat.text and "Agence Maârif" in chat.text
    await chat.send("rabt")  # a typo
    assert "Nos agences à Rabat" in chat.text and "0537 77 66 55" in chat.text


async def test_contact_details_come_from_the_profile(engine):
    chat = Chat(engine, lang_hint="ar")
    await chat.send("bghit nhder m3a chi wa7ed")
    assert "080 200 77 77" in chat.text and "crc@onee.ma" in chat.text
