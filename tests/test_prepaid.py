"""Prepaid help as a customer asks for it twice: a second advance while one waits is never filed
beside it (track it or replace it), and the customer is told how and when the advance arrives."""

from __future__ import annotations

from conversations.backoffice import decide

from .chat import Chat
from .test_requests import engine  # noqa: F401  (1000004: prepaid, low income; decisions at the next turn)


async def prepaid_chat(engine, lang: str, first: str) -> Chat:
    chat = Chat(engine, sender_phone="+212670000004", lang_hint=lang)
    await chat.send(first)
    await chat.press("➕")
    await chat.send("1000004")  # also links 1000006 (same phone)
    await chat.no_reminders()
    return chat


async def ask_advance(chat: Chat, prepaid: str, advance: str) -> None:
    await chat.press(prepaid)
    await chat.press("1000004")
    await chat.press(advance)


async def requests_of(engine) -> list[tuple[str, str, dict]]:
    async with engine.store.snapshot() as tx:
        return [(r.reference, r.status, r.details) for r in await tx.requests(contract="1000004")]


async def test_a_second_advance_the_same_day_is_tracked_not_filed_in_french(engine):
    chat = await prepaid_chat(engine, "fr", "bonjour")
    await ask_advance(chat, "Compteur prépayé", "Avance")
    text = chat.text
    assert "Nous enregistrons une demande d'avance de 20 kWh sur le contrat 1000004" in text
    assert "Vous aurez la réponse ici sous 24 heures au plus." in text
    assert (
        "Comment l'avance arrive sur le compteur : une fois accordée, elle vous est envoyée par SMS au numéro "
        "du contrat, sous forme d'un code de recharge à taper sur le clavier du compteur."
    ) in text
    assert text.endswith("Confirmer ?")
    await chat.send("oui")
    assert "Référence : PP-2026-000001" in chat.text and "sous 24 heures au plus" in chat.text
    # The same afternoon, the same request again.
    engine.clock.advance(hours=3)
    await chat.send("/menu")
    await ask_advance(chat, "Compteur prépayé", "Avance")
    assert (
        "Vous avez déjà une demande en cours d'examen pour ce compteur : PP-2026-000001, "
        "Avance de consommation sur compteur prépayé, du 23 novembre 2026."
    ) in chat.text
    assert [b.label for b in chat.buttons] == ["🔎 Suivre cette demande", "🔁 La remplacer par une nouvelle", "Annuler"]
    await chat.send("euh")
    assert "Choisissez « Suivre cette demande » ou « La remplacer »." in chat.text
    await chat.send("suivre cette demande")
    assert "PP-2026-000001 : Avance de consommation sur compteur prépayé" in chat.text
    assert "en cours d'examen" in chat.text and "code de recharge" in chat.text
    assert [r[:2] for r in await requests_of(engine)] == [("PP-2026-000001", "pending")]


async def test_a_second_advance_replaces_the_first_in_darija(engine):
    chat = await prepaid_chat(engine, "ar", "السلام")
    await ask_advance(chat, "العداد المسبق الدفع", "تسبيق")
    assert "ستتوصل بالجواب هنا في أجل أقصاه 24 ساعة." in chat.text
    assert "كيف يصل التسبيق إلى العداد: بعد القبول، يصلك رمز شحن في رسالة قصيرة" in chat.text
    await chat.send("واخا")
    assert "المرجع: PP-2026-000001" in chat.text
    await chat.send("bghit tasbi9 dyal lcompteur lcarte")  # arabizi: the prepaid journey again
    assert "أي عداد مسبق الدفع؟" in chat.text  # two prepaid meters on this phone
    await chat.press("1000004")
    await chat.press("تسبيق")
    assert "عندك من قبل طلب في طور الدراسة لهذا العداد: PP-2026-000001" in chat.text
    await chat.press("تعويضه")
    assert "⚠️ هذا الطلب سيعوض الطلب PP-2026-000001." in chat.text and chat.text.endswith("نؤكد؟")
    await chat.send("اه")
    assert "المرجع: PP-2026-000002" in chat.text
    assert [r[:2] for r in await requests_of(engine)] == [("PP-2026-000001", "replaced"), ("PP-2026-000002", "pending")]
    assert (await requests_of(engine))[1][2]["replaces"] == "PP-2026-000001"


async def test_a_request_decided_while_the_customer_confirms_its_replacement_is_kept(engine):
    chat = await prepaid_chat(engine, "fr", "bonjour")
    await ask_advance(chat, "Compteur prépayé", "Avance")
    await chat.send("oui")
    await chat.send("/menu")
    await ask_advance(chat, "Compteur prépayé", "Avance")
    await chat.press("remplacer")
    async with engine.store.transaction() as tx:
        await decide(tx, "PP-2026-000001", "approved", note=None, actor="a", now=engine.clock())
    await chat.send("oui")
    assert "La demande PP-2026-000001 vient d'être traitée : elle n'est pas remplacée." in chat.text
    # The approval itself says how the advance arrives.
    assert "votre demande PP-2026-000001 (Avance de consommation sur compteur prépayé) est acceptée." in chat.text
    assert "Comment l'avance arrive sur le compteur : une fois accordée" in chat.text
    assert [r[:2] for r in await requests_of(engine)] == [("PP-2026-000001", "approved")]


async def test_a_second_visit_is_not_filed_beside_the_first_either(engine):
    chat = await prepaid_chat(engine, "fr", "bonjour")
    await ask_advance(chat, "Compteur prépayé", "Visite")
    assert "demande de visite de recharge pour le contrat 1000004" in chat.text and "SMS" not in chat.text
    await chat.send("oui")
    await ask_advance(chat, "Compteur prépayé", "Visite")
    assert "PV-2026-000001, Visite de recharge du compteur prépayé" in chat.text
    await chat.press("Annuler")
    async with engine.store.snapshot() as tx:
        assert [r.reference for r in await tx.requests(contract="1000004")] == ["PV-2026-000001"]


async def test_an_advance_whose_confirmation_failed_to_save_is_said_not_filed_and_confirmed_again(engine, monkeypatch):
    from .test_honest_apology import the_next_commit_fails

    chat = await prepaid_chat(engine, "fr", "bonjour")
    await ask_advance(chat, "Compteur prépayé", "Avance")
    filed = await requests_of(engine)
    the_next_commit_fails(engine, monkeypatch)
    await chat.press("Oui")
    assert "votre confirmation n'a pas été enregistrée" in chat.text
    assert await requests_of(engine) == filed
    await chat.press("Oui")
    assert len(await requests_of(engine)) == len(filed) + 1
