"""A private chat's plain text read without python-telegram-bot's parsing (bot/channels/telegram_text.py):
the engine gets the very event PTB's parsing gave, every other update still goes through PTB,
and a failure on the fast path still tells the customer, in their language."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Bot, Update

import bot.channels.telegram as tg
from bot.channels.payloads import check_telegram
from bot.channels.telegram_text import text_update
from conversations.engine import Engine

from .telegram_harness import TgUser, seeded_database, settings_for, start_bot

BOT = Bot("123456:TEST")


def message(chat: dict | None = None, **fields) -> dict:
    msg = {
        "message_id": 7,
        "date": 1764580000,
        "chat": chat or {"id": 4242, "type": "private", "first_name": "Amina"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Amina", "language_code": "ar"},
    }
    return {"update_id": 99, "message": {**msg, **fields}}


def checked(raw: dict) -> dict:
    c = check_telegram(raw)
    assert c.reason is None and c.update is not None
    return c.update


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(min_size=1, max_size=300),
    lang=st.sampled_from([None, "fr", "ar", "AR-ma", "en-US", ""]),
    chat_id=st.integers(min_value=1, max_value=2**52),
    update_id=st.integers(min_value=0, max_value=2**31),
)
def test_a_private_text_gives_the_event_ptb_parsing_gave(text, lang, chat_id, update_id):
    sender = {"id": chat_id, "is_bot": False, "first_name": "X"}
    if lang is not None:
        sender["language_code"] = lang
    raw = {
        "update_id": update_id,
        "message": {
            "message_id": 3,
            "date": 1764580000,
            "chat": {"id": chat_id, "type": "private"},
            "from": sender,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": 1}],  # not checked: dropped
        },
    }
    update = checked(raw)
    fast = text_update(update)
    assert fast is not None
    assert fast.inbound(tg.CHANNEL) == tg.to_inbound(Update.de_json(update, BOT))
    assert tg.chat_key(fast) == tg.chat_key(Update.de_json(update, BOT)) == chat_id


@pytest.mark.parametrize(
    "raw",
    [
        message(chat={"id": -100, "type": "group", "title": "Famille"}, text="combien je dois"),
        message(chat={"id": -100, "type": "supergroup"}, text="salam"),
        message(contact={"phone_number": "+212612345678", "user_id": 4242}),
        message(photo=[{"file_id": "P1", "width": 1, "height": 1}], caption="45400"),
        message(document={"file_id": "D1", "mime_type": "image/jpeg"}, caption="45400"),
        message(location={"latitude": 33.5, "longitude": -7.6}),
        message(sticker={"file_id": "S1"}),
        message(text=""),
        message(text="45400", reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}),
        {"update_id": 5, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"}},
        {
            "update_id": 6,
            "callback_query": {
                "id": "cq1",
                "from": {"id": 4242, "is_bot": False, "first_name": "A"},
                "data": "go:bills",
                "message": {"message_id": 2, "date": 0, "chat": {"id": 4242, "type": "private"}, "text": "Menu"},
            },
        },
    ],
    ids=[
        "group",
        "supergroup",
        "contact",
        "photo",
        "image-document",
        "location",
        "sticker",
        "empty",
        "keyboard",
        "no-sender",
        "button",
    ],
)
def test_anything_but_a_private_text_is_left_to_ptb(raw):
    assert text_update(checked(raw)) is None
    # An update that cannot be read (a text that is not a string) is parked before this point.
    assert check_telegram(message(text=45400)).reason is not None


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("fr", "Désolé, un incident s'est produit"), ("ar", "عذرا، وقع خلل من جهتنا")],
)
async def test_a_text_whose_turn_fails_in_the_adapter_is_told_in_its_language(
    api, tmp_path, monkeypatch, lang, expected
):
    """The engine catches its own errors; this is the adapter's last resort (on_error), reached
    on the fast path too. The customer's text never went through PTB's parsing."""
    parsed: list[object] = []
    real_de_json = Update.de_json.__func__

    def counting(cls, data, bot=None):
        parsed.append(data)
        return real_de_json(cls, data, bot)

    monkeypatch.setattr(Update, "de_json", classmethod(counting))
    real_respond = Engine.respond

    async def respond(self, inbound, **kw):
        if inbound.text == "boom":
            raise RuntimeError("a bug")
        return await real_respond(self, inbound, **kw)

    monkeypatch.setattr(Engine, "respond", respond)
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    try:
        user = TgUser(api, 5005, lang)
        await user.send("/start")
        assert user.text
        await user.send("boom")
        assert expected in user.text
        assert "080 200 77 77" in user.text  # the operator's phone
        await user.send("1000001")  # the chat goes on
        assert user.text and expected not in user.text
        assert not [d for d in parsed if isinstance(d, dict) and "message" in d and d["message"].get("text")]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
