"""On Telegram a confirmed reading is one message: the reference, the consumption and the
pre-bill, then the menu's question, with the 📊 chart button on the menu's keyboard (one
sendMessage, where it used to be two: bot/channels/telegram.py `offers_joined`). The 📊 button
still draws that meter's chart; WhatsApp keeps its own rendering (tests/test_chart.py). Through
the real bot against the fake Bot API, in French and in Arabic."""

from __future__ import annotations

import asyncio

from bot.channels.base import Outgoing
from bot.channels.telegram import LIMITS, offers_joined
from conversations.events import Button
from conversations.i18n import translator

from .telegram_harness import TgUser
from .test_telegram import bot  # noqa: F401  (the fixture: the real bot against the fake Bot API)


async def record_a_reading(u: TgUser, t) -> None:
    await u.send("/start")
    await u.press(t("menu.bills"))
    await u.send("1000001")
    await u.share_contact("+212612345678")
    # Reminders settled from the menu first, so that the reading's end is the menu (else the
    # reminders question, whose answers are never joined with an offer: the unit test below).
    await u.send("menu")
    await u.press(t("menu.reminders"))
    assert [b["callback_data"] for b in u.replies[-1].inline_buttons()][:3] == [
        "remind:all",
        "remind:bills",
        "remind:none",
    ]
    await u.press(t("remind.opt_none"))
    await u.send("45400")
    await u.press("1000001")  # the number links both of its contracts: the electricity one
    await u.press(t("reading.skip_photo"))
    await u.press(t("reading.confirm"))


async def check_one_message_then_the_chart(api, u: TgUser, t, recorded: str) -> None:
    [sent] = [c for c in u.replies if c.method == "sendMessage"]  # one message for the whole turn
    text = u.text
    assert recorded in text and "RL-2026-000001" in text
    assert text.endswith(t("menu.prompt"))  # the menu's question last, under the pre-bill
    labels = [b["text"] for b in sent.inline_buttons()]
    assert labels[0] == t("usage.button")  # the chart button first, then the menu's entries
    assert t("menu.reading") in labels and t("menu.bills") in labels
    assert sent.inline_buttons()[0]["callback_data"] == "go:usage:1000001"
    start = len(api.calls)
    await u.press(t("usage.button"))
    for _ in range(100):  # the chart is drawn after the turn's commit
        if api.photos(u.chat_id, after=start):
            break
        await asyncio.sleep(0.05)
    (photo,) = api.photos(u.chat_id, after=start)
    assert "1000001" in photo.params["caption"]


async def test_a_confirmed_reading_is_one_message_with_the_chart_button_on_the_menu_in_french(api, bot):
    u = TgUser(api, 7101, "fr")
    t = translator("fr")
    await record_a_reading(u, t)
    await check_one_message_then_the_chart(api, u, t, "Index enregistré")


async def test_a_confirmed_reading_is_one_message_with_the_chart_button_on_the_menu_in_arabic(api, bot):
    u = TgUser(api, 7102, "ar")
    t = translator("ar")
    await record_a_reading(u, t)
    await check_one_message_then_the_chart(api, u, t, t("reading.recorded", reference="\x00").split("\x00")[0].strip())


def test_only_an_offer_joins_the_question_that_follows_and_only_when_it_fits():
    chart = Outgoing("Index enregistré.", [Button("go:usage:1000001", "📊 Ma consommation")])
    menu = Outgoing("Que voulez-vous faire ?", [Button(f"go:{i}", f"choix {i}") for i in range(9)])
    [joined] = offers_joined([chart, menu])
    assert joined.text == "Index enregistré.\n\nQue voulez-vous faire ?"
    assert [b.payload for b in joined.buttons] == ["go:usage:1000001"] + [f"go:{i}" for i in range(9)]
    question = Outgoing("Rappels ?", [Button("remind:all", "Tous")])  # a question's choices: never joined
    assert offers_joined([question, menu]) == [question, menu]
    assert offers_joined([chart, question]) == [chart, question]  # (a typed "1" stays the question's)
    share = Outgoing("Votre numéro ?", [Button("share", "📱 Partager", request="contact")])  # a reply keyboard
    assert offers_joined([chart, share]) == [chart, share]
    assert offers_joined([chart, Outgoing("Merci.")]) == [chart, Outgoing("Merci.")]  # nothing to join
    long = Outgoing("x" * 3000, menu.buttons)  # together past Telegram's 4,096: two messages
    assert offers_joined([chart, long]) == [chart, long]
    many = Outgoing("?", [Button(f"go:{i}", str(i)) for i in range(LIMITS.buttons or 0)])
    assert offers_joined([chart, many]) == [chart, many]


def edits(api, chat_id: int, after: int) -> list:
    return [c for c in api.calls[after:] if c.method == "editMessageText" and c.chat_id == chat_id]


async def check_a_press_keeps_the_joined_offer(api, u: TgUser, t) -> None:
    """Pressing a menu entry of the joined message: the message says the choice and keeps the 📊
    (a message of its own before joining, still valid); pressing that 📊 on the edited message
    then draws the chart, and the message loses its last button."""
    joined = u.last_keyboard_message()
    start = len(api.calls)
    await u.press(t("menu.reading"))
    [edit] = edits(api, u.chat_id, start)
    assert edit.text.endswith(t("telegram.you_chose", label=t("menu.reading")))
    assert [(b["text"], b["callback_data"]) for b in edit.inline_buttons()] == [(t("usage.button"), "go:usage:1000001")]
    await u.send("annuler" if u.lang == "fr" else "إلغاء")
    start = len(api.calls)
    edit.params["_message_id"] = joined.params.get("_message_id")
    api.press(u.chat_id, "go:usage:1000001", message=edit, lang=u.lang)
    for _ in range(100):
        if api.photos(u.chat_id, after=start) and edits(api, u.chat_id, start):
            break
        await asyncio.sleep(0.05)
    (photo,) = api.photos(u.chat_id, after=start)
    assert "1000001" in photo.params["caption"]
    [again] = edits(api, u.chat_id, start)
    assert again.text.endswith(t("telegram.you_chose", label=t("usage.button")))
    assert again.inline_buttons() == []  # nothing left to keep


async def check_pressing_the_offer_answers_the_menu(api, u: TgUser, t) -> None:
    start = len(api.calls)
    await u.press(t("usage.button"))
    for _ in range(100):
        if api.photos(u.chat_id, after=start):
            break
        await asyncio.sleep(0.05)
    [edit] = edits(api, u.chat_id, start)
    assert edit.text.endswith(t("telegram.you_chose", label=t("usage.button")))
    assert edit.inline_buttons() == []  # the menu's question was answered by the 📊: its buttons go


async def test_a_menu_press_keeps_the_chart_button_in_french(api, bot):
    u = TgUser(api, 7103, "fr")
    t = translator("fr")
    await record_a_reading(u, t)
    await check_a_press_keeps_the_joined_offer(api, u, t)


async def test_a_menu_press_keeps_the_chart_button_in_arabic(api, bot):
    u = TgUser(api, 7104, "ar")
    t = translator("ar")
    await record_a_reading(u, t)
    await check_a_press_keeps_the_joined_offer(api, u, t)


async def test_pressing_the_chart_button_takes_the_menu_away_in_french_and_arabic(api, bot):
    for chat, lang in ((7105, "fr"), (7106, "ar")):
        u = TgUser(api, chat, lang)
        t = translator(lang)
        await record_a_reading(u, t)
        await check_pressing_the_offer_answers_the_menu(api, u, t)
