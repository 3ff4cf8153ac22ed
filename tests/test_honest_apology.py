"""A turn whose save fails (disk full: the COMMIT raises) rolled back: the customer is told what is
true. At a step that records what they confirm (a reading, a request), it was not recorded and they
can send it again from the same step; elsewhere, what they had confirmed before is kept."""

from __future__ import annotations

import sqlite3

from .test_reading import engine, reading_chat, readings  # noqa: F401  (Omar's meter seeded)


def the_next_commit_fails(engine, monkeypatch) -> None:
    """The next COMMIT fails as on a full disk (sqlite3.OperationalError); later ones work."""
    aio = engine.store.db.conn.aio
    execute = aio.execute
    failed = []

    def flaky(sql, *args, **kw):
        if sql == "COMMIT" and not failed:
            failed.append(sql)

            async def full():
                raise sqlite3.OperationalError("database or disk is full")

            return full()
        return execute(sql, *args, **kw)

    monkeypatch.setattr(aio, "execute", flaky)


async def test_a_reading_whose_confirmation_failed_is_said_not_recorded_and_confirmed_again(engine, monkeypatch):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    await chat.press("Sans photo")
    before = await readings(engine, "1000001")
    the_next_commit_fails(engine, monkeypatch)
    await chat.press("Confirmer")
    text = chat.text
    assert "votre confirmation n'a pas été enregistrée" in text and "renvoyez votre dernière réponse" in text
    assert "Ce que vous aviez confirmé est bien enregistré" not in text
    assert await readings(engine, "1000001") == before
    await chat.press("Confirmer")  # still at the summary: the same button works
    assert "Index enregistré ✅ Référence : RL-2026-000001" in chat.text
    assert len(await readings(engine, "1000001")) == len(before) + 1


async def test_a_failure_before_any_confirmation_keeps_the_usual_wording(engine, monkeypatch):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    the_next_commit_fails(engine, monkeypatch)
    await chat.send("45 340")
    assert "Ce que vous aviez confirmé est bien enregistré" in chat.text
    assert "n'a pas été enregistrée" not in chat.text


async def test_an_arabic_reading_whose_confirmation_failed_is_said_not_recorded(engine, monkeypatch):
    chat = await reading_chat(engine, lang_hint="ar")
    await chat.send("بغيت نعطي الرقم ديال العداد")
    await chat.press("1000001")
    await chat.send("45340")
    await chat.press("بدون صورة")
    before = await readings(engine, "1000001")
    the_next_commit_fails(engine, monkeypatch)
    await chat.press("تأكيد")
    text = chat.text
    assert "تأكيدك لم يُسجَّل" in text and "أعد إرسال جوابك الأخير" in text
    assert "ما أكدته من قبل محفوظ" not in text
    assert await readings(engine, "1000001") == before
    await chat.press("تأكيد")
    assert "تم تسجيل المؤشر ✅ المرجع: RL-2026-000001" in chat.text
