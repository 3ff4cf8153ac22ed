"""An emoji alone mid-journey (👍, 🙏, ❤️): where yes/no is asked, 👍 is a yes; elsewhere the question
comes again with a kind word, never "type only the digits"."""

from __future__ import annotations

from conversations.i18n import translator

from .test_reading import engine, reading_chat, readings  # noqa: F401  (Omar's meter seeded)


async def test_an_emoji_at_the_index_question_gets_the_question_again_kindly(engine):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    for emoji in ("👍", "🙏", "❤️", "👍🏽"):
        await chat.send(emoji)
        text = chat.text
        assert "Merci 🙂 Pour continuer, il me faut juste votre réponse à cette question :" in text
        assert "Tapez l'index affiché sur le compteur E-77001" in text
        assert translator("fr")("reading.index_not_number") not in text
    await chat.send("45 340")  # still at the question
    assert "Envoyez une photo nette du compteur" in chat.text


async def test_a_thumbs_up_where_yes_is_asked_confirms(engine):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    await chat.press("Sans photo")
    await chat.send("🙏")  # not a yes: the summary again
    assert "Merci 🙂" in chat.text and "Vérifiez avant de confirmer" in chat.text
    await chat.send("👍")
    assert "Index enregistré ✅ Référence : RL-2026-000001" in chat.text
    assert [r.index_value for r in await readings(engine, "1000001")][-1] == 45340


async def test_an_emoji_in_arabic_gets_the_question_again_kindly(engine):
    chat = await reading_chat(engine, lang_hint="ar")
    await chat.send("بغيت نعطي الرقم ديال العداد")
    await chat.press("1000001")
    await chat.send("👍")
    text = chat.text
    assert "شكرا 🙂 لنكمل، أحتاج فقط إلى جوابك على هذا السؤال:" in text
    assert translator("ar")("reading.index_not_number") not in text
    await chat.send("45340")
    assert translator("ar")("reading.ask_photo") in chat.text  # the index was taken: the photo step
