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
