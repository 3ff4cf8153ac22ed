"""The learning loop (issue 17): what the bot could not place at the menu is kept masked for the
profile's retention, exported for labelling in the training data's shape, and forgotten after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conversations.learning import mask

from .chat import Chat, Clock, open_engine


async def kept(engine) -> list[dict]:
    async with engine.store.snapshot() as tx:
        return await tx.unrecognised()


def test_masking_drops_digits_e_mails_links_and_names():
    assert mask("je m'appelle Karim Benali, mon numéro 0612345678") == "je m'appelle <name>, mon numéro 0000000000"
    assert mask("smiti Fatima Zahra Bennani o bghit chi haja") == "smiti <name> o bghit chi haja"
    assert mask("wach 3ndkom l7sab dyal 45 123?") == "wach 3ndkom l7sab dyal 00 000?"
    assert mask("اسمي يوسف العمري وعندي مشكل") == "اسمي <name> مشكل"  # up to three words: rather too many
    assert mask("écrivez à karim.b@gmail.com ou www.exemple.ma") == "écrivez à <email> ou <link>"
    assert mask("عندي ١٢٣٤٥") == "عندي 00000"


async def test_a_request_the_bot_cannot_place_at_the_menu_is_kept_masked(engine):
    chat = Chat(engine, lang_hint="fr")
    await chat.send("bonjour")
    await chat.send("wach 3ndkom chi promo f ramadan, smiti Karim")
    rows = await kept(engine)
    assert [(r["text"], r["intent"], r["state"]) for r in rows] == [
        ("wach 3ndkom chi promo f ramadan, smiti <name>", "unknown", "menu.main")
    ]


async def test_answers_understood_requests_buttons_and_bare_numbers_are_not_kept(engine):
    chat = Chat(engine, sender_phone="+212612345678", lang_hint="fr")
    await chat.send("je veux envoyer mon index d'électricité")  # understood
    await chat.send("1000001")  # an answer (the contract number)
    await chat.send("euh je sais pas trop quoi mettre la")  # an answer at the index question
    await chat.press_payload("cmd:menu")  # a button
    await chat.send("12")  # a bare number at the menu
    assert await kept(engine) == []


async def test_export_writes_training_lines_and_forgets_what_is_past_retention(tmp_path):
    clock = Clock()
    db = tmp_path / "addad.sqlite3"
    engine = await open_engine(db, clock)
    try:
        chat = Chat(engine, lang_hint="ar")
        await chat.send("salam")
        await chat.send("chkoun rbe7 lmatch lbare7?")
        clock.advance(days=31)  # past the profile's 30 days
        await chat.send("wach kayn chi khedma 3ndkom?")
    finally:
        await engine.store.close()
    env = {**os.environ, "ADDAD_DATABASE": str(db), "ADDAD_CLOCK": clock.now.isoformat()}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "learn", "export"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["wach kayn chi khedma 3ndkom?"]  # the match is forgotten
    assert lines[0]["intent"] == "" and lines[0]["bot_guess"] == "unknown" and lines[0]["lang"] == "ar"
    assert set(lines[0]) >= {"text", "intent", "lang", "entities", "group"}  # data/intents/train.jsonl's shape
    assert "1 message(s) to label (1 older than 30 days forgotten)" in out.stderr
