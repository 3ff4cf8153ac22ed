"""The index read from the meter photo (issue 21): `addad ocr` on generated photos
(tests/meter_photos.py), and a photo sent on Telegram (fake Bot API) and WhatsApp (signed
webhook, fake Graph media) leading to "I read 45400 — is that right?" and a confirmed reading, a
typed index that disagrees with the photo held for review with both values, a photo it cannot
read kept as evidence, and ADDAD_OCR=off (or no extra) where the photo is evidence only.

The OCR tests need the `ocr` extra (.ci/run installs it) and skip without it; the worker
process and its model load once per bot, the CLI's once per call: few photos, few bots.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conversations import ocr

from .meter_photos import meter_photo, not_a_meter, too_blurred, too_dark
from .telegram_harness import TgUser, seeded_database, settings_for, start_bot
from .test_whatsapp import graph, user, wa  # noqa: F401 (graph and wa: the WhatsApp fixtures)
from .whatsapp_harness import WaUser, delivery, message

ROOT = Path(__file__).resolve().parent.parent
needs_ocr = pytest.mark.skipif(
    not ocr.available(),
    reason="the ocr extra is not installed (pip install -e '.[ocr]' and rapidocr_onnxruntime --no-deps, see README)",
)
# Fatima's electricity meter 1000001 has 5 dials, last index 45210 (tests/chat.py seed). Seeds
# 1, 2 and 4 of the generator draw photos read for sure (checked once, deterministic).
PHOTO_45400 = meter_photo(1, digits=5, index=45400, roll=0.0)
PHOTO_45388 = meter_photo(2, digits=5, index=45388, roll=0.0)
SLOW = 90.0  # seconds for a turn that starts the OCR process and loads its model (2 busy cores)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(database: Path) -> list[tuple]:
    con = sqlite3.connect(database)
    try:
        return con.execute(
            "SELECT index_value, ocr_index, photo_sha256, review, review_reason, details FROM readings "
            "WHERE source='customer' ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def addad(*args: str, database: Path | None = None) -> subprocess.CompletedProcess:
    """An `addad` command as the operator runs it (on `database`, from its folder, when given)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if database is not None:
        env["ADDAD_DATABASE"] = str(database)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=database.parent if database is not None else None,
        timeout=180,
    )


def addad_ocr(*args: str) -> subprocess.CompletedProcess:
    return addad("ocr", *args)


# ---------------------------------------------------------------------- the reader
@needs_ocr
def test_addad_ocr_prints_the_index_of_a_generated_photo(tmp_path):
    photo = tmp_path / "meter.jpg"
    photo.write_bytes(PHOTO_45400.jpeg)
    done = addad_ocr(str(photo), "--digits", "5")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["index"], got["digits"]) == (45400, 5) and 0.5 <= got["confidence"] <= 1
    # Another meter (six dials shown where five are expected): no guess.
    six = tmp_path / "six.jpg"
    six.write_bytes(meter_photo(4, digits=6, index=45400, roll=0.0).jpeg)
    got = json.loads(addad_ocr(str(six), "--digits", "5").stdout)
    assert got["index"] is None and got["digits"] == 6
    # Not an image, not a file: one line, in words.
    (tmp_path / "notes.jpg").write_text("not a photo")
    done = addad_ocr(str(tmp_path / "notes.jpg"))
    assert done.returncode == 2 and "is not a JPEG, PNG or WebP image" in done.stderr and "Traceback" not in done.stderr
    done = addad_ocr(str(tmp_path / "missing.jpg"), "--digits", "5")
    assert done.returncode == 2 and "No such file" in done.stderr


@needs_ocr
def test_the_reader_never_guesses_and_leaves_the_red_drums_out():
    # Red drums (one tenth for kWh, three for m³) are not part of the index; the last black
    # drum caught mid-roll reads as the lower figure, or not at all.
    for seed, tenths, roll in ((4, 3, 0.0), (2, 1, 0.0), (1, 1, 0.25)):
        p = meter_photo(seed, digits=5, index=45409, tenths=tenths, roll=roll)
        got = ocr.read_photo(p.jpeg, 5)
        assert got.index in (45409, None), (seed, got)
        if roll == 0.0:
            assert got.index == 45409 and got.sure, (seed, got)
    # Not a meter, too dark, blurred: "unsure", never an index.
    for name, data in {
        "not a meter": not_a_meter(3),
        "too dark": too_dark(1).jpeg,
        "blurred": too_blurred(1).jpeg,
    }.items():
        got = ocr.read_photo(data, 5)
        assert got.index is None and not got.sure, (name, got)
    assert ocr.read_photo(b"\xff\xd8 not a jpeg", 5).index is None


def test_ocr_is_on_with_the_extra_and_off_when_told(monkeypatch):
    assert ocr.enabled("off") is False and ocr.enabled("OFF") is False
    assert ocr.enabled(None) is ocr.available() and ocr.enabled("on") is ocr.available()
    assert os.environ.get("ORT_DISABLE_TELEMETRY") == "1"  # set by importing conversations.ocr


# ---------------------------------------------------------------------- Telegram
@pytest.fixture
async def tg(api, tmp_path, request):
    """The Telegram bot with ADDAD_OCR as the test says (`@pytest.mark.parametrize("tg", ["on"],
    indirect=True)`); yields the database."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database, ocr=getattr(request, "param", "on")))
    try:
        yield database
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def at_index_step(fatima: TgUser) -> None:
    await fatima.send("je veux envoyer mon index")
    await fatima.send("1000001")
    await fatima.share_contact("+212612345678")
    if "1000002" in fatima.text:
        await fatima.press("1000001")
    assert "index" in fatima.text.lower() and "5" in fatima.text


async def photo(fatima: TgUser, file_id: str, data: bytes) -> None:
    await fatima._after(lambda: fatima.api.photo(fatima.chat_id, file_id, lang=fatima.lang, data=data), timeout=SLOW)


@needs_ocr
async def test_telegram_photo_first_gets_the_suggestion_and_yes_records_it(api, tg):
    database = tg
    fatima = TgUser(api, 1001, "fr")
    await at_index_step(fatima)
    await photo(fatima, "AgAC-meter-45400", PHOTO_45400.jpeg)
    assert "J'y lis l'index 45400 : est-ce bien ça ?" in fatima.text
    assert [b["text"] for b in fatima.last_keyboard_message().inline_buttons()][:2] == ["Oui, c'est ça", "Je le tape"]
    await fatima.press("Oui, c'est ça")
    assert "45400" in fatima.text and "Photo : jointe" in fatima.text  # the summary: no photo asked again
    assert "La photo semble montrer" not in fatima.text
    await fatima.press("Confirmer")
    assert "Index enregistré ✅ Référence : RL-2026-000001" in fatima.text
    assert stored(database)[0][:5] == (45400, 45400, digest(PHOTO_45400.jpeg), 0, None)


@needs_ocr
async def test_telegram_a_photo_being_read_delays_nobody_else(api, tg):
    fatima, youssef = TgUser(api, 1001, "fr"), TgUser(api, 1003, "fr")
    await at_index_step(fatima)
    start = len(api.calls)
    api.photo(1001, "AgAC-meter-45400", lang="fr", data=PHOTO_45400.jpeg)  # the reader's process starts now
    await youssef.send("/start")  # another chat meanwhile: answered without waiting for the read
    answered = len(api.calls)
    suggestion = await api.wait_for(lambda c: c.chat_id == 1001 and "J'y lis" in c.text, after=start, timeout=SLOW)
    assert youssef.text and api.calls.index(suggestion) >= answered


@needs_ocr
async def test_telegram_an_index_typed_over_the_photo_is_recorded_and_flagged_with_both(api, tg):
    database = tg
    fatima = TgUser(api, 1001, "fr")
    await at_index_step(fatima)
    await photo(fatima, "AgAC-meter-45388", PHOTO_45388.jpeg)
    assert "J'y lis l'index 45388" in fatima.text
    await fatima.press("Je le tape")
    assert "Tapez l'index" in fatima.text or "index" in fatima.text.lower()
    await fatima.send("45400")  # the customer's index is the reference
    assert "La photo semble montrer 45388, vous avez tapé 45400 : un agent comparera" in fatima.text
    await fatima.press("Confirmer")
    assert "RL-2026-000001" in fatima.text and "agent" in fatima.text
    ((index, read, sha, review, reason, details),) = stored(database)
    assert (index, read, sha, review, reason) == (45400, 45388, digest(PHOTO_45388.jpeg), 1, "ocr")
    assert json.loads(details)["ocr"] == {"read": 45388, "typed": 45400}
    # The back office's list shows both: the index recorded and what the photo shows.
    done = addad("readings", "list", "--flagged", database=database)
    assert done.returncode == 0, done.stderr
    (line,) = [l for l in done.stdout.splitlines() if "RL-2026-000001" in l]
    assert " 45400 " in line and "photo" in line and line.endswith("to review: ocr (the photo shows 45388)")
    # The billing system's export carries both as well: the index typed, and what the photo showed.
    done = addad("export", "readings", database=database)
    assert done.returncode == 0, done.stderr
    (row,) = [r for r in csv.DictReader(io.StringIO(done.stdout)) if r["reference"] == "RL-2026-000001"]
    assert (row["index"], row["ocr_index"], row["photo_sha256"]) == ("45400", "45388", digest(PHOTO_45388.jpeg))


@needs_ocr
async def test_telegram_a_photo_it_cannot_read_asks_the_index_and_is_kept(api, tg):
    database = tg
    fatima = TgUser(api, 1001, "fr")
    await at_index_step(fatima)
    dark = too_dark(2).jpeg
    await photo(fatima, "AgAC-dark", dark)
    assert "je n'ai pas pu y lire l'index : tapez-le" in fatima.text
    await fatima.send("oui")  # not an index: asked again, nothing guessed
    await fatima.send("45400")
    assert "Photo : jointe" in fatima.text
    await fatima.press("Confirmer")
    ((index, read, sha, review, _reason, _details),) = stored(database)
    assert (index, read, sha, review) == (45400, None, digest(dark), 0)


@pytest.mark.parametrize("tg", ["off"], indirect=True)
async def test_telegram_with_ocr_off_the_photo_is_evidence_only(api, tg):
    database = tg
    fatima = TgUser(api, 1001, "fr")
    await at_index_step(fatima)
    await fatima.send_photo("AgAC-meter-45400", data=PHOTO_45400.jpeg)
    assert "Photo bien reçue 👍 Tapez maintenant l'index" in fatima.text and "J'y lis" not in fatima.text
    await fatima.send("45400")
    await fatima.press("Confirmer")
    assert stored(database)[0][:4] == (45400, None, digest(PHOTO_45400.jpeg), 0)


# ---------------------------------------------------------------------- WhatsApp
async def wa_image(fatima: WaUser, media_id: str, data: bytes) -> None:
    """A signed image webhook, waiting for the reply as long as the first read takes."""
    fatima.graph.media[media_id] = data
    start = len(fatima.graph.sent)
    msg = message(fatima.phone, "image", {"mime_type": "image/jpeg", "sha256": "abc=", "id": media_id})
    assert await fatima.post(delivery([msg])) == 200
    await fatima.graph.wait_for(lambda m: m["to"] == fatima.phone, after=start, timeout=SLOW)
    await asyncio.sleep(0.5)
    fatima.replies = [m for m in fatima.graph.sent[start:] if m["to"] == fatima.phone]


async def wa_at_index_step(fatima: WaUser) -> None:
    await fatima.send("bghit nsift l'index")
    await fatima.send("1000001")
    if "1000002" in fatima.text:
        await fatima.send("1")
    assert "المؤشر" in fatima.text


@needs_ocr
@pytest.mark.parametrize("wa", [{"ocr": "on"}], indirect=True)
async def test_whatsapp_photo_first_then_wah_records_the_index_read(wa, graph):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await wa_at_index_step(fatima)
    await wa_image(fatima, "7770001", PHOTO_45400.jpeg)
    assert "قرأت فيها المؤشر 45400: هل هذا صحيح؟" in fatima.text
    assert [t for _, t in fatima.last_choices()[1]][:2] == ["نعم، صحيح", "سأكتبه"]
    assert graph.media_requests == ["7770001", "lookaside/7770001"]
    await fatima.send("wah")  # a typed yes, in Darija
    assert "45400" in fatima.text
    await fatima.tap("تأكيد")
    assert "RL-2026-000001" in fatima.text
    assert stored(database)[0][:5] == (45400, 45400, digest(PHOTO_45400.jpeg), 0, None)


@needs_ocr
@pytest.mark.parametrize("wa", [{"ocr": "on"}], indirect=True)
async def test_whatsapp_photo_after_the_index_that_shows_another_is_flagged(wa, graph):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await wa_at_index_step(fatima)
    await fatima.send("45400")  # typed first; then the photo the step asks for
    assert "صورة" in fatima.text
    await wa_image(fatima, "7770002", PHOTO_45388.jpeg)
    assert "يبدو أن الصورة تظهر 45388، وكتبت 45400" in fatima.text
    await fatima.tap("تأكيد")
    assert "RL-2026-000001" in fatima.text
    ((index, read, _sha, review, reason, details),) = stored(database)
    assert (index, read, review, reason) == (45400, 45388, 1, "ocr")
    assert json.loads(details)["ocr"] == {"read": 45388, "typed": 45400}
