"""Meter photos as evidence (issue 18.7), through the real channels: the Telegram bot against the
fake Bot API (getFile, then the file) and `addad whatsapp` against the fake Graph API (the media
endpoint, then its URL), on 127.0.0.1. A photo is downloaded only at a step of the reading that
takes one, within the size cap, checked to be an image, kept under ADDAD_MEDIA_DIR named by its
SHA-256 (files 0600, folders 0700), its hash on the reading and in the export; the retention
deletes what no kept reading needs."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import sqlite3
import stat
import struct
import subprocess
import sys
import zlib
from datetime import timedelta
from pathlib import Path

import pytest

from conversations.media import NotAnImage, image_format
from conversations.profile import load_profile
from conversations.retention import prune
from storage import open_store
from storage.media import MediaFiles

from .chat import START
from .images import image, jpeg
from .telegram_harness import TgUser, seeded_database, settings_for, start_bot
from .test_whatsapp import graph, user, wa  # noqa: F401 (graph and wa: the WhatsApp fixtures)
from .whatsapp_harness import WaUser

ROOT = Path(__file__).resolve().parent.parent
CAP = 1024 * 1024  # ADDAD_MEDIA_MAX_BYTES in these tests: 1 MB


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kept_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def readings(database: Path) -> list[tuple]:
    con = sqlite3.connect(database)
    try:
        return con.execute(
            "SELECT index_value, photo_ref, photo_sha256 FROM readings WHERE source='customer' ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def export(database: Path, media: Path) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "export", "readings"],
        capture_output=True,
        text=True,
        env={**os.environ, "ADDAD_DATABASE": str(database), "ADDAD_MEDIA_DIR": str(media), "PYTHONPATH": str(ROOT)},
        cwd=database.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0][-2:] == ["photo_sha256", "ocr_index"]  # new columns come last: older readers keep working
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few dozen bytes declaring 10^10 pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------- the image check
def test_only_real_jpeg_png_and_webp_images_pass():
    assert [image_format(image(f)) for f in ("JPEG", "PNG", "WEBP")] == ["JPEG", "PNG", "WEBP"]
    refused = {
        "gif": image("GIF"),
        "random bytes": os.urandom(4000),
        "a jpeg's header then nothing": b"\xff\xd8\xff\xe0 fake jpeg",
        "truncated": image("JPEG", (640, 480))[:900],
        "decompression bomb": bomb_png(),
        "64 Mpx declared by a few bytes": bomb_png(8000, 8000),
    }
    for name, data in refused.items():
        with pytest.raises(NotAnImage):
            image_format(data)
            pytest.fail(name)


# ---------------------------------------------------------------------- Telegram
@pytest.fixture
async def tg(api, tmp_path):
    """The Telegram bot in this event loop (long polling), photos capped at 1 MB and kept in a
    folder of their own (ADDAD_MEDIA_DIR). Yields (database, media folder)."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    media = tmp_path / "evidence"
    task, stop = await start_bot(settings_for(api, database, media_dir=str(media), media_max_bytes=CAP))
    try:
        yield database, media
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def at_photo_step(user: TgUser) -> None:
    await user.send("je veux envoyer mon index")
    await user.send("1000001")
    await user.share_contact("+212612345678")
    assert "est maintenant relié" in user.text
    if "1000002" in user.text:  # both of the phone's contracts are linked: the meter is asked
        await user.press("1000001")
    await user.send("45400")
    assert "Envoyez une photo nette du compteur" in user.text


def file_calls(api) -> list[str]:
    return [c.params["file_id"] for c in api.calls if c.method == "getFile"]


async def test_telegram_photo_at_the_photo_step_is_kept_by_hash_and_exported(api, tg):
    database, media = tg
    fatima = TgUser(api, 1001, "fr")
    await at_photo_step(fatima)
    photo = jpeg(seed=7)
    await fatima.send_photo("AgACAgQ-meter-1", data=photo)
    assert "Photo bien reçue" in fatima.text and "Photo : jointe" in fatima.text
    assert file_calls(api) == ["AgACAgQ-meter-1"] and api.downloads == ["photos/AgACAgQ-meter-1"]
    await fatima.press("Confirmer")
    assert "Index enregistré ✅ Référence : RL-2026-000001" in fatima.text

    kept = media / digest(photo)[:2] / digest(photo)
    assert kept_files(media) == [kept] and kept.read_bytes() == photo
    # Only the bot's user may read the evidence; nothing in a reply names it.
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert {stat.S_IMODE(p.stat().st_mode) for p in (media, kept.parent)} == {0o700}
    said = "\n".join(c.text for c in api.sent(1001))
    assert digest(photo) not in said and str(media) not in said
    assert readings(database) == [(45400, "AgACAgQ-meter-1", digest(photo))]
    (row,) = export(database, media)
    assert (row["reference"], row["photo_ref"]) == ("RL-2026-000001", "AgACAgQ-meter-1")
    assert row["photo_sha256"] == digest(photo)


async def test_telegram_photos_from_a_stranger_at_the_menu_are_never_downloaded(api, tg):
    _database, media = tg
    stranger = TgUser(api, 6666, "fr")
    await stranger.send("/start")
    for i in range(5):
        await stranger.send_photo(f"AgAC-stranger-{i}", data=jpeg(seed=i))
        assert "Pour envoyer la photo de votre compteur, choisissez d'abord" in stranger.text  # the usual answer
    await stranger.send_document("BQAC-stranger-doc", "image/jpeg", jpeg(seed=99))
    # Asking for the reading does not make an unlinked chat's photo worth fetching either.
    await stranger.send("je veux envoyer mon index")
    await stranger.send_photo("AgAC-stranger-linking", data=jpeg(seed=50))
    # A linked customer at the menu: not at the photo step, nothing fetched.
    fatima = TgUser(api, 1001, "fr")
    await fatima.send("/start")
    await fatima.press("Mes factures")
    await fatima.send("1000001")
    await fatima.share_contact("+212612345678")
    await fatima.send("menu")
    await fatima.send_photo("AgAC-fatima-menu", data=jpeg(seed=51))
    assert "choisissez d'abord" in fatima.text
    assert file_calls(api) == [] and api.downloads == []  # not one getFile, not one file
    assert kept_files(media) == []


async def test_telegram_photo_too_big_is_refused_with_a_way_on(api, tg):
    database, media = tg
    fatima = TgUser(api, 1001, "fr")
    await at_photo_step(fatima)
    # Declared above the cap by getFile: refused without downloading it.
    api.declared_sizes["AgAC-huge"] = 15_700_000
    await fatima.send_photo("AgAC-huge", data=jpeg(seed=1))
    assert "Cette photo est trop lourde (plus de 1 Mo)" in fatima.text
    assert "Envoyez une photo nette du compteur" in fatima.text  # the question again, with its way on
    assert next(b["text"] for b in fatima.last_keyboard_message().inline_buttons()) == "Sans photo"
    assert api.downloads == []
    # Declared small, sent big: the download stops past the cap.
    api.declared_sizes["AgAC-liar"] = 1000
    await fatima.send_photo("AgAC-liar", data=jpeg(seed=2) + os.urandom(CAP))
    assert "trop lourde" in fatima.text
    assert kept_files(media) == []
    await fatima.press("Sans photo")
    assert "Photo : aucune" in fatima.text
    await fatima.press("Confirmer")
    assert readings(database)[0][2] is None


async def test_telegram_a_file_that_is_no_image_is_refused(api, tg):
    _database, media = tg
    fatima = TgUser(api, 1001, "fr")
    await at_photo_step(fatima)
    await fatima.send_document("BQAC-fake-jpg", "image/jpeg", os.urandom(5000))  # random bytes named compteur.jpg
    assert "Ce fichier n'est pas une photo que nous pouvons lire" in fatima.text
    await fatima.send_photo("AgAC-bomb", data=bomb_png())
    assert "n'est pas une photo que nous pouvons lire" in fatima.text
    assert kept_files(media) == []
    await fatima.send_photo("AgAC-real", data=jpeg(seed=3))  # then a real one is taken
    assert "Photo bien reçue" in fatima.text
    assert len(kept_files(media)) == 1


# ---------------------------------------------------------------------- WhatsApp
async def wa_at_photo_step(fatima: WaUser) -> None:
    await fatima.send("bghit nsift l'index")
    await fatima.send("1000001")
    assert "مربوط الآن" in fatima.text or "relié" in fatima.text
    if "1000002" in fatima.text:
        await fatima.send("1")
    await fatima.send("45400")
    assert "صورة" in fatima.text or "photo" in fatima.text.lower()


async def test_whatsapp_image_at_the_photo_step_is_fetched_from_the_graph_api_and_kept(wa, graph, tmp_path):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await wa_at_photo_step(fatima)
    photo = jpeg(seed=11)
    await fatima.send_image("1322815968542613", data=photo)
    assert "توصلنا بالصورة" in fatima.text or "Photo bien reçue" in fatima.text
    # GET /{media-id} with the token, then the URL it gave, with the token.
    assert graph.media_requests == ["1322815968542613", "lookaside/1322815968542613"]
    await fatima.tap("تأكيد" if "تأكيد" in str(fatima.last_choices()) else "Confirmer")
    assert "RL-2026-000001" in fatima.text
    media = database.parent / "media"  # the default: beside the database
    kept = media / digest(photo)[:2] / digest(photo)
    assert kept.read_bytes() == photo and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert readings(database) == [(45400, "1322815968542613", digest(photo))]
    assert export(database, media)[0]["photo_sha256"] == digest(photo)


async def test_whatsapp_images_outside_the_photo_step_are_never_requested(wa, graph):
    _url, _http, database = wa
    stranger = user(wa, graph, phone="212699999999")  # a number no contract has
    await stranger.send("salam")
    for i in range(3):
        await stranger.send_image(f"90000000000{i}", data=jpeg(seed=20 + i))
    fatima = user(wa, graph)
    await fatima.send("salam")
    await fatima.send_image("900000000009", data=jpeg(seed=30))  # at the menu
    assert graph.media_requests == []
    assert kept_files(database.parent / "media") == []


@pytest.mark.parametrize("wa", [{"media_max_bytes": CAP}], indirect=True)
async def test_whatsapp_too_big_and_not_an_image_are_refused(wa, graph):
    _url, _http, database = wa
    fatima = user(wa, graph)
    await wa_at_photo_step(fatima)
    graph.declared_sizes["555000111"] = 15_700_000
    await fatima.send_image("555000111", data=jpeg(seed=40))
    assert "كبيرة جدا" in fatima.text or "trop lourde" in fatima.text
    assert graph.media_requests == ["555000111"]  # the size was asked; the file never fetched
    await fatima.send_image("555000222", data=os.urandom(3000))
    assert "ليس صورة" in fatima.text or "n'est pas une photo" in fatima.text
    assert kept_files(database.parent / "media") == []


# ---------------------------------------------------------------------- retention
async def test_prune_keeps_what_a_reading_needs_and_deletes_the_rest(tmp_path):
    from .chat import seed

    store = await open_store(tmp_path / "addad.sqlite3", clock=lambda: START)
    await seed(store)
    files = MediaFiles(tmp_path / "media")
    profile = load_profile(None)
    days = profile.retention.photos_days
    photos = {name: files.put(jpeg(seed=i)) for i, name in enumerate(("fresh", "unused", "recent", "old", "disputed"))}
    ago = {"fresh": timedelta(hours=2), "unused": timedelta(days=2), "recent": timedelta(days=10)}
    ago |= {"old": timedelta(days=days + 5), "disputed": timedelta(days=days + 5)}
    async with store.transaction() as tx:
        for name, sha in photos.items():
            await tx.keep_media(sha, size=10, format="JPEG", now=START - ago[name])
        for i, name in enumerate(("recent", "old", "disputed")):
            await tx.add_customer_reading(
                contract="1000001",
                day=(START - ago[name]).date() + timedelta(days=i),
                index=45300 + i,
                reference=f"RL-2026-00009{i}",
                channel="telegram",
                user_id="1001",
                photo_ref=f"ref-{name}",
                photo_sha256=photos[name],
                previous_index=None,
                previous_date=None,
                consumption=None,
                review_reason="outlier" if name == "disputed" else None,
                now=START - ago[name],
            )
    async with store.transaction() as tx:
        pruned = await prune(tx, profile, START, files)
    assert pruned.photos == 2 and "2 meter photo(s) deleted" in str(pruned)
    left = {name for name, sha in photos.items() if files.path(sha).exists()}
    # A photo nobody refers to goes after a day; one proving a reading after photos_days, except
    # while that reading awaits review.
    assert left == {"fresh", "recent", "disputed"}
    async with store.transaction() as tx:
        assert (await prune(tx, profile, START, files)).photos == 0
    await store.close()


# ---------------------------------------------------------------------- the console
async def test_console_photo_path_is_checked_and_kept_like_a_channel_photo(tmp_path):
    from .chat import seed
    from .test_console import run_addad

    store = await open_store(tmp_path / "addad.sqlite3")
    await seed(store)
    await store.close()
    (tmp_path / "meter.jpg").write_bytes(jpeg(seed=5))
    (tmp_path / "notes.jpg").write_bytes(b"not a photo " * 100)
    lines = ["je veux envoyer mon index", "1000001", "1", "45400"]
    lines += [f"/photo {tmp_path / 'notes.jpg'}", f"/photo {tmp_path / 'meter.jpg'}", "1"]
    done = run_addad(
        ["console", "--phone", "+212612345678", "--lang", "fr"],
        lines,
        tmp_path,
        ADDAD_DATABASE=str(tmp_path / "addad.sqlite3"),
    )
    assert done.returncode == 0, done.stderr
    assert "Ce fichier n'est pas une photo que nous pouvons lire" in done.stdout
    assert "Photo bien reçue" in done.stdout and "RL-2026-000001" in done.stdout
    sha = digest(jpeg(seed=5))
    assert kept_files(tmp_path / "media") == [tmp_path / "media" / sha[:2] / sha]
    assert readings(tmp_path / "addad.sqlite3")[0][2] == sha
