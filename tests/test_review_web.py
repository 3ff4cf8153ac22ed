"""Issue 20's workspace pages over real HTTP on 127.0.0.1: readings to review (bad input, a
reading reviewed meanwhile by someone else), the handoff queue and conversation, statistics,
the photos and charts only to a signed-in account."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from yarl import URL

from bot.web import app as web_app
from bot.web.server import HANDLER_ARGS
from conversations import handoff
from conversations.profile import load_profile
from storage.media import MediaFiles

from .chat import Chat
from .images import jpeg
from .test_review import send_outlier
from .web_harness import Browserish, Served, add_account


@asynccontextmanager
async def serve_with_media(store, clock, media_dir):
    """The workspace as `addad web` serves it, with the meter photos' folder."""
    root = web.Application()
    web_app.mount(root, web_app.make_app(store, load_profile(), clock=clock, secret=b"test", media_dir=media_dir))
    runner = web.AppRunner(root, access_log=None, **HANDLER_ARGS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Served(f"http://127.0.0.1:{runner.addresses[0][1]}", store, clock)
    finally:
        await runner.cleanup()


@pytest.fixture
async def engine(engine):
    engine.pull_channels = frozenset({"test"})
    await add_account(engine.store, "amina", "agent")
    await add_account(engine.store, "karim", "supervisor")
    return engine


@pytest.fixture
async def served(engine, tmp_path):
    async with serve_with_media(engine.store, engine.clock, tmp_path / "media") as s:
        yield s


async def flagged_id(engine) -> int:
    async with engine.store.snapshot() as tx:
        [item] = await tx.review_items(flagged=True)
    return item.reading.id


async def test_reviewing_a_reading_bad_input_and_someone_else_first(engine, served):
    chat = await send_outlier(engine)
    rid = await flagged_id(engine)
    async with served.client() as amina, served.client() as karim:
        page = await amina.get("/web/readings")
        assert URL(page.url).path == "/web/signin"  # no page without a session
        await amina.sign_in("amina")
        page = await amina.get("/web/readings")
        text = page.plain()
        assert "Relevés des clients à vérifier" in text and "RL-2026-000001" in text
        assert "consommation inhabituelle" in text and "1 relevé" in text
        page = await amina.get(f"/web/readings/{rid}")
        assert "46500" in page.plain() and "Le client n'a pas envoyé de photo." in page.plain()
        for form, message in (
            ({"outcome": "corrected", "index": "45a00"}, "L'index corrigé doit être écrit en chiffres seulement."),
            (
                {"outcome": "corrected", "index": "123456"},
                "Ce compteur ne dépasse pas 99999 : vérifiez l'index corrigé.",
            ),
            ({"outcome": "rejected", "note": "   "}, "Pour rejeter un relevé, écrivez le message au client"),
            ({"outcome": "maybe"}, "Choisissez accepter, corriger ou rejeter."),
        ):
            page = await amina.post(f"/web/readings/{rid}/review", form)
            assert page.status == 400 and message in page.plain(), form
        page = await amina.post(f"/web/readings/{rid}/review", {"outcome": "accepted"}, csrf="forged")
        assert page.status == 403
        # Karim reviews it first; Amina's click then changes nothing and says who did what.
        await karim.sign_in("karim")
        await karim.get(f"/web/readings/{rid}")
        page = await karim.post(f"/web/readings/{rid}/review", {"outcome": "corrected", "index": "45400", "note": ""})
        assert page.status == 200 and "Index corrigé : le client va en être informé." in page.plain()
        page = await amina.post(f"/web/readings/{rid}/review", {"outcome": "rejected", "note": "Photo floue"})
        assert page.status == 409
        assert "Ce relevé a déjà été vérifié entre-temps : corrigé par karim le 2026-11-23 10:00." in page.plain()
        page = await amina.get("/web/readings/999999")
        assert page.status == 404 and "Il n'y a pas de relevé client numéro 999999." in page.plain()
        page = await amina.get("/web/readings?since=hier")
        assert "La date doit s'écrire AAAA-MM-JJ" in page.plain()
    await chat.send("merci")
    assert "notre service l'a corrigé en 45400" in chat.text and "Photo floue" not in chat.text
    async with engine.store.snapshot() as tx:
        assert [a["actor"] for a in await tx.audit_entries(action="reading_corrected")] == ["web:karim"]
        assert await tx.audit_entries(action="reading_rejected") == []


async def test_the_photo_and_the_chart_only_to_a_signed_in_account(engine, served, tmp_path):
    photo = jpeg(seed=4)
    digest = MediaFiles(tmp_path / "media").put(photo)
    async with engine.store.transaction() as tx:
        rid = await tx.add_customer_reading(
            contract="1000001",
            day=engine.clock().date(),
            index=46500,
            reference="RL-2026-000009",
            channel="test",
            user_id="u1",
            photo_ref="file-1",
            previous_index=45210,
            previous_date=None,
            consumption=1290,
            review_reason="outlier",
            photo_sha256=digest,
        )
    async with Browserish(served.url) as stranger:
        page = await stranger.get(f"/web/readings/{rid}/photo", allow_redirects=False)
        assert page.status == 302 and "/web/signin" in page.headers["Location"]
    async with served.client() as amina:
        await amina.sign_in("amina")
        async with amina.session.get(f"{served.url}/web/readings/{rid}/photo") as r:
            assert r.status == 200 and r.content_type == "image/jpeg" and await r.read() == photo
        async with amina.session.get(f"{served.url}/web/readings/{rid}/chart.svg") as r:
            body = await r.text()
            assert r.status == 200 and r.content_type == "image/svg+xml"
            assert "<script" not in body and "http://kozea" not in body and "Consommation par relevé (kWh)" in body
        page = await amina.get(f"/web/readings/{rid}")
        assert f'src="/web/readings/{rid}/photo"' in page.text


async def test_a_typed_index_the_photo_disagrees_with_shows_both_values(engine, served):
    async with engine.store.transaction() as tx:
        rid = await tx.add_customer_reading(
            contract="1000001",
            day=engine.clock().date(),
            index=45400,
            reference="RL-2026-000010",
            channel="test",
            user_id="u1",
            photo_ref="file-2",
            previous_index=45210,
            previous_date=None,
            consumption=190,
            review_reason="ocr",
            details={"ocr": {"read": 45388, "typed": 45400}},
            ocr_index=45388,
        )
    async with served.client() as amina:
        await amina.sign_in("amina")
        page = await amina.get(f"/web/readings/{rid}")
        assert "la photo montre 45388, le client a tapé 45400" in page.plain()
        page = await amina.get("/web/readings")
        assert "RL-2026-000010" in page.plain()


async def test_the_handoff_pages_take_write_and_hand_back(engine, served):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux parler à un conseiller, mon numéro 0612345678")
    async with served.client() as amina, served.client() as karim:
        await amina.sign_in("amina")
        page = await amina.get("/web/handoffs")
        assert "Clients qui demandent un conseiller" in page.plain() and "en attente" in page.plain()
        async with engine.store.snapshot() as tx:
            [h] = await tx.handoffs()
        page = await amina.post(f"/web/handoffs/{h.id}/take", {})
        assert "Conversation prise" in page.plain()
        assert "06••••••78" in page.plain() and "0612345678" not in page.text  # masked
        page = await amina.post(f"/web/handoffs/{h.id}/say", {"text": "  "})
        assert page.status == 409 and "Écrivez un message avant de l'envoyer." in page.plain()
        page = await amina.post(f"/web/handoffs/{h.id}/say", {"text": "Bonjour, je suis Amina."})
        assert "Message envoyé au client." in page.plain() and "Bonjour, je suis Amina." in page.plain()
        await karim.sign_in("karim")
        await karim.get(f"/web/handoffs/{h.id}")
        page = await karim.post(f"/web/handoffs/{h.id}/say", {"text": "Karim ici"})
        assert page.status == 409 and "Cette conversation est prise par amina." in page.plain()
        await chat.send("merci")
        assert "👤 Conseiller : Bonjour, je suis Amina." in chat.text and "Karim ici" not in chat.text
        await amina.get(f"/web/handoffs/{h.id}")
        page = await amina.post(f"/web/handoffs/{h.id}/back", {})
        assert URL(page.url).path == "/web/handoffs" and "Personne n'attend de conseiller." in page.plain()
    await chat.send("menu")
    assert "Le robot vous répond de nouveau" in chat.text


async def test_statistics_for_a_supervisor_only_and_in_arabic_right_to_left(engine, served):
    await send_outlier(engine)
    async with engine.store.transaction() as tx:
        await handoff.expire(tx, engine.clock())
    async with served.client() as amina, served.client() as karim:
        await amina.sign_in("amina")
        assert (await amina.get("/web/stats")).status == 403
        await karim.sign_in("karim")
        page = await karim.get("/web/stats")
        text = page.plain()
        assert "Relevés des clients par jour (30 jours)" in text and "1 relevé en tout · test : 1" in text
        assert "Ce cycle (1er novembre 2026 – 30 novembre 2026)" in text and "100 %" in text
        await karim.get("/web/lang/ar?next=/web/stats")
        page = await karim.get("/web/stats")
        assert 'dir="rtl"' in page.text and "الإحصائيات" in page.plain()
        async with karim.session.get(f"{served.url}/web/stats/readings.svg") as r:
            assert r.status == 200 and "<script" not in await r.text()
            assert r.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
