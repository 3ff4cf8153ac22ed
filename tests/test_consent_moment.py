"""The reminders question is put at the right moment (issue 22): once the journey that linked the
contract has ended, alone in its turn (a typed "1" or "oui" answers nothing else, on the console
too), and asked at most once more, in a later conversation, if the customer wrote about
something else. Through tests/chat.py in French and Arabic; end to end through the fake Bot API
and the fake Graph API at the bottom."""

from __future__ import annotations

import sqlite3

import pytest

from conversations import reminders

from .chat import Chat
from .telegram_harness import TgUser
from .test_reminders_channels import FATIMA, bot, graph, wa  # noqa: F401  (fixtures)
from .whatsapp_harness import choices_of

ASK = {"fr": "Voulez-vous recevoir ici nos rappels", "ar": "هل تريد أن تصلك هنا تذكيراتنا"}
ON = {"fr": "vous recevrez ici les rappels", "ar": "ستصلك هنا التذكيرات"}
BILLS = {"fr": "factures et d'échéances seulement", "ar": "الفواتير"}
OFF = {"fr": "nous ne vous enverrons plus de rappels", "ar": "لن نرسل لك أي تذكير"}
MENU = {"fr": "Que puis-je faire pour vous", "ar": "كيف يمكنني مساعدتك"}
READING = {"fr": "Envoyer mon index", "ar": "إرسال مؤشر العداد"}
RECORDED = {"fr": "Index enregistré", "ar": "تم تسجيل المؤشر"}


async def consent_of(engine, channel: str, user: str):
    async with engine.store.snapshot() as tx:
        return await tx.reminder_consent(channel, user)


def customer(engine, lang: str, channel: str = "console", user: str = "f1") -> Chat:
    return Chat(engine, channel=channel, user=user, sender_phone="+212612345678", lang_hint=lang)


async def linked_during_a_reading(engine, lang: str, channel: str = "console") -> Chat:
    """Fatima asks to send her index; the bot links 1000001 (her phone vouches) on the way, then
    she picks the meter, types the index, goes without a photo and confirms."""
    chat = customer(engine, lang, channel)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    await chat.press(READING[lang])
    await chat.send("1000001")
    assert ASK[lang] not in chat.text  # linked: the reading goes on, its meter question alone
    await chat.send("1")  # the first meter: the typed "1" answers that question only
    assert ASK[lang] not in chat.text and "E-77001" in chat.text
    await chat.send("45400")
    assert ASK[lang] not in chat.text
    await chat.send("1")  # without a photo
    assert ASK[lang] not in chat.text
    await chat.send("1")  # confirm
    return chat


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_linking_during_a_reading_the_index_is_recorded_first_then_the_question_comes_alone(engine, lang):
    chat = await linked_during_a_reading(engine, lang)
    assert RECORDED[lang] in chat.text
    assert ASK[lang] in chat.replies[-1].text  # last, instead of the menu
    offers = [b.payload for r in chat.replies[:-1] for b in r.buttons]
    assert offers == ["go:usage:1000001"]  # before it, only the chart's link: no other question
    assert [b.payload for b in chat.buttons] == ["remind:all", "remind:bills", "remind:none"]
    assert chat.text.index(RECORDED[lang]) < chat.text.index(ASK[lang])
    await chat.send("1")
    assert ON[lang] in chat.text and MENU[lang] in chat.text  # then the menu
    consent = await consent_of(engine, "console", "f1")
    assert consent.kinds == reminders.KINDS and consent.how == "typed" and consent.answered_at is not None


async def test_on_the_console_only_the_questions_choices_are_numbered_and_1_answers_it(engine):
    from bot.channels.console import ConsoleChat

    console = ConsoleChat(engine, user="c1", phone="+212612345678", lang="fr")
    await console.send("/start")
    await console.send("1")  # the menu's first item: send my index (links on the way)
    await console.send("1000001")
    await console.send("1")  # the first meter
    await console.send("45400")
    await console.send("1")  # without a photo
    shown = await console.send("1")  # confirm
    assert "Index enregistré" in shown and ASK["fr"] in shown
    numbered = [line.strip() for line in shown.splitlines() if line.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert numbered == ["1. 🔔 Oui, tous", "2. 🧾 Factures seulement", "3. 🔕 Non merci"]
    assert "• 📊 Ma consommation" in shown  # the chart's link, unnumbered
    shown = await console.send("1")
    assert ON["fr"] in shown and "1. 📟 Envoyer mon index" in shown  # the menu, numbered again
    assert (await consent_of(engine, "console", "c1")).kinds == reminders.KINDS


@pytest.mark.parametrize(
    ("lang", "typed", "kinds"),
    [
        ("fr", "1", reminders.KINDS),
        ("fr", "2", ("due", "instalment")),
        ("fr", "3", ()),
        ("fr", "oui", reminders.KINDS),
        ("fr", "Oui merci", reminders.KINDS),
        ("fr", "factures seulement", ("due", "instalment")),
        ("fr", "non", ()),
        ("fr", "stop", ()),
        ("ar", "ah", reminders.KINDS),
        ("ar", "نعم", reminders.KINDS),
        ("ar", "wakha", reminders.KINDS),
        ("ar", "la", ()),
        ("ar", "لا", ()),
        ("ar", "توقف", ()),
        ("ar", "2", ("due", "instalment")),
    ],
)
async def test_a_typed_answer_on_the_console_is_read_as_the_answer_to_that_question(engine, lang, typed, kinds):
    chat = customer(engine, lang)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    await chat.press("➕")
    await chat.send("1000001")
    assert ASK[lang] in chat.replies[-1].text  # linked from the menu: that journey is over
    await chat.send(typed)
    said = ON if kinds == reminders.KINDS else BILLS if kinds else OFF
    assert said[lang] in chat.text and MENU[lang] in chat.text
    consent = await consent_of(engine, "console", "f1")
    assert consent.kinds == kinds and consent.how == "typed"
    await chat.send("1")  # now the menu's first item: the reading journey, not a second answer
    assert "compteur" in chat.text or "كم" in chat.text or READING[lang] not in chat.text
    assert (await consent_of(engine, "console", "f1")).answered_at == consent.answered_at


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_a_customer_who_writes_something_else_is_served_and_asked_once_more_later_then_never(engine, clock, lang):
    chat = customer(engine, lang)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    await chat.press("➕")
    await chat.send("1000001")
    assert ASK[lang] in chat.text
    await chat.send("solde" if lang == "fr" else "شحال خاصني نخلص")
    assert "462,07" in chat.text and ASK[lang] not in chat.text  # served
    consent = await consent_of(engine, "console", "f1")
    assert consent.answered_at is None and consent.kinds == () and consent.how == "shown"
    await chat.send("menu")  # the same conversation: not asked again
    assert MENU[lang] in chat.text and ASK[lang] not in chat.text
    clock.advance(hours=3)  # a later conversation
    await chat.send("bonjour" if lang == "fr" else "السلام")
    assert ASK[lang] in chat.replies[-1].text and MENU[lang] not in chat.text  # once more
    assert (await consent_of(engine, "console", "f1")).how == "shown_twice"
    await chat.send("je veux envoyer mon index" if lang == "fr" else "بغيت نصيفط الكونتور")  # no answer again
    assert any("1000001" in b.label for b in chat.buttons)  # served: which meter?
    clock.advance(days=2)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    assert ASK[lang] not in chat.text and MENU[lang] in chat.text  # never a third time
    consent = await consent_of(engine, "console", "f1")
    assert consent.answered_at is None and consent.kinds == ()  # no answer: nothing is sent
    await chat.press("🔔")  # the menu's item still sets them
    await chat.send("1")
    assert ON[lang] in chat.text
    assert (await consent_of(engine, "console", "f1")).kinds == reminders.KINDS


async def test_the_question_after_help_or_an_emoji_is_the_same_question_not_a_second_one(engine, clock):
    chat = customer(engine, "fr")
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000001")
    await chat.send("👍")
    assert ASK["fr"] in chat.replies[-1].text
    await chat.send("aide")
    assert ASK["fr"] in chat.replies[-1].text
    assert (await consent_of(engine, "console", "f1")).how == "shown"  # still the first asking
    await chat.send("non merci")
    assert OFF["fr"] in chat.text
    assert (await consent_of(engine, "console", "f1")).how == "typed"


# ---------------------------------------------------------------------- through the channels
async def test_on_telegram_a_customer_linking_during_a_reading_is_asked_after_it_and_types_1(api, bot):
    user = TgUser(api, 9501, "fr")
    await user.send("/start")
    await user.press("Envoyer mon index")
    await user.send("1000001")
    await user.share_contact("+212612345678")  # the proof: linked
    seen = list(user.replies)
    await user.press("1000001")  # the meter
    seen += user.replies
    await user.send("45400")
    seen += user.replies
    await user.press("Sans photo")
    seen += user.replies
    assert not [c for c in seen if ASK["fr"] in c.text]  # never beside the reading's questions
    await user.press("Confirmer")
    assert RECORDED["fr"] in user.text and ASK["fr"] in user.replies[-1].text
    before = [b["callback_data"] for c in user.replies[:-1] for b in c.inline_buttons()]
    assert before == ["go:usage:1000001"]  # the recorded index's chart link: no other question
    asked = [b["callback_data"] for b in user.replies[-1].inline_buttons()]
    assert asked == ["remind:all", "remind:bills", "remind:none"]  # a message of its own
    await user.send("1")
    assert ON["fr"] in user.text and MENU["fr"] in user.text
    con = sqlite3.connect(bot)
    try:
        row = con.execute("SELECT kinds, how, answered_at IS NOT NULL FROM reminder_consents WHERE user_id='9501'")
        assert row.fetchone() == (",".join(reminders.KINDS), "typed", 1)
    finally:
        con.close()


async def test_on_whatsapp_in_arabic_the_question_follows_the_reading_and_a_typed_la_says_no(wa, graph):
    fatima, database = wa
    await fatima.send("السلام")
    await fatima.tap(READING["ar"])
    await fatima.send("1000001")  # her own number: the channel vouches for it
    seen = fatima.text
    await fatima.send("1")  # the first meter
    seen += fatima.text
    await fatima.send("45400")
    seen += fatima.text
    await fatima.send("1")  # without a photo
    seen += fatima.text
    assert ASK["ar"] not in seen
    start = len(graph.sent)
    await fatima.send("1")  # confirm
    assert RECORDED["ar"] in fatima.text and ASK["ar"] in fatima.text
    last = graph.sent[-1]
    assert ASK["ar"] in str(last) and [p for p, _ in choices_of(last)] == ["remind:all", "remind:bills", "remind:none"]
    before = [p for m in graph.sent[start:-1] for p, _ in choices_of(m)]
    assert before == ["go:usage:1000001"]  # the recorded index's chart link: no other question
    await fatima.send("لا")
    assert OFF["ar"] in fatima.text
    con = sqlite3.connect(database)
    try:
        row = con.execute("SELECT kinds, how FROM reminder_consents WHERE user_id=?", (FATIMA,)).fetchone()
    finally:
        con.close()
    assert row == ("", "typed")
