"""Service notices from the workspace (issue 22) over real HTTP on 127.0.0.1: a supervisor's
page, the preview that counts the opted-in customers (the dry run), the confirmation that queues
it as `addad notify` does (once per customer), bad input, CSRF, roles, the audit log."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from bot.cli import main
from conversations.backoffice import render_outbox
from conversations.profile import load_profile

from .test_reminders import opted
from .web_harness import add_account, serve_workspace

PROFILE = load_profile()
AR = "انقطاع الماء يوم الأحد من 8 إلى 14"
FR = "Coupure d'eau dimanche de 8 h à 14 h"


@pytest.fixture
async def served(engine):
    await add_account(engine.store, "amina", "agent")
    await add_account(engine.store, "karim", "supervisor")
    async with serve_workspace(engine.store, engine.clock) as s:
        yield s


async def pending_notices(engine, user: str) -> list:
    async with engine.store.snapshot() as tx:
        return [m for m in await tx.outbox_for_chat("telegram", user, statuses=("pending",)) if m.kind == "notice"]


async def test_a_supervisor_previews_then_sends_a_notice_once_per_customer(
    engine, served, database, monkeypatch, capsys
):
    await opted(engine)  # Fatima (two contracts in Casablanca) said yes; Youssef (Rabat) said no
    async with served.client() as karim:
        await karim.sign_in("karim")
        page = await karim.get("/web/notices")
        assert page.status == 200 and "Avis de service aux clients" in page.plain()
        assert '<option value="Casablanca">' in page.text  # the profile's cities offered
        draft = {"city": "casa", "service": "", "ar": AR, "fr": FR}
        page = await karim.post("/web/notices/preview", draft)
        text = page.plain()
        assert page.status == 200
        assert "Cet avis ira à 1 client de Casablanca qui a accepté les avis." in text  # two contracts, one chat
        assert AR in text and FR in text and "Envoyer à 1 client" in text
        assert await pending_notices(engine, "f1") == []  # a preview queues nothing
        page = await karim.post("/web/notices/send", draft)
        assert URL(page.url).path == "/web/notices"
        assert "Avis mis en file pour 1 client : il part dès que les heures calmes le permettent." in page.plain()
        [msg] = await pending_notices(engine, "f1")
        shown = render_outbox(msg, PROFILE)
        assert FR in shown and "Casablanca" in shown and "stop" in shown
        assert await pending_notices(engine, "y1") == []
        # The same notice again (a second click, another tab): nothing new, and the page says so.
        await karim.post("/web/notices/preview", draft)
        page = await karim.post("/web/notices/send", draft)
        assert "Cet avis a déjà été envoyé à ces clients : rien de nouveau n'a été mis en file." in page.plain()
        assert len(await pending_notices(engine, "f1")) == 1
        # The same notice typed on the command line is the same notice: queued for nobody again.
        monkeypatch.setenv("ADDAD_DATABASE", str(database))
        assert await asyncio.to_thread(main, ["notify", "--city", "Casablanca", "--ar", AR, "--fr", FR]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "notice for Casablanca: queued 0"
        # Rabat: Youssef said no, so nobody; the preview offers no button.
        page = await karim.post("/web/notices/preview", {**draft, "city": "الرباط"})
        assert "Aucun client de Rabat n'a accepté les avis : cet avis n'irait à personne." in page.plain()
        assert 'action="/web/notices/send"' not in page.text
    async with engine.store.snapshot() as tx:
        entries = await tx.audit_entries(action="notice_queued")
    assert [(e["actor"], e["details"]["city"], e["details"]["queued"], e["details"]["reached"]) for e in entries] == [
        ("web:karim", "Casablanca", 1, 1),
        ("web:karim", "Casablanca", 0, 1),
    ]


async def test_bad_input_gets_a_clear_message_and_queues_nothing(engine, served):
    await opted(engine)
    async with served.client() as karim:
        await karim.sign_in("karim")
        await karim.get("/web/notices")
        for form, messages in (
            ({"city": "Atlantis", "ar": AR, "fr": FR}, ["« Atlantis » n'est pas une ville desservie"]),
            ({"city": "", "ar": AR, "fr": FR}, ["Indiquez la ville de l'avis."]),
            ({"city": "Casablanca", "ar": "  ", "fr": ""}, ["en arabe.", "Écrivez le texte de l'avis en français."]),
            ({"city": "Casablanca", "ar": AR, "fr": "x" * 901}, ["Le texte français fait 901 caractères"]),
            ({"city": "Casablanca", "service": "gaz", "ar": AR, "fr": FR}, ["Choisissez l'eau, l'électricité"]),
            ({"city": "x" * 5000, "ar": AR, "fr": FR}, ["n'est pas une ville desservie"]),
        ):
            for step in ("preview", "send"):
                page = await karim.post(f"/web/notices/{step}", form)
                assert page.status == 400, (step, form)
                assert all(m in page.plain() for m in messages), (step, form, page.plain()[:600])
        forged = await karim.post("/web/notices/send", {"city": "casa", "ar": AR, "fr": FR}, csrf="forged")
        assert forged.status == 403
        # in Arabic, the same refusal in Arabic
        await karim.get("/web/lang/ar?next=/web/notices")
        await karim.get("/web/notices")
        page = await karim.post("/web/notices/preview", {"city": "Atlantis", "ar": "", "fr": FR})
        assert page.status == 400 and 'dir="rtl"' in page.text
        assert "«Atlantis» ليست مدينة نخدمها" in page.plain() and "اكتب نص الإشعار بالعربية." in page.plain()
    assert await pending_notices(engine, "f1") == []
    async with engine.store.snapshot() as tx:
        assert await tx.audit_entries(action="notice_queued") == []


async def test_an_agent_may_not_send_notices_and_the_arabic_page_counts_in_arabic(engine, served):
    await opted(engine)
    async with served.client() as amina, served.client() as karim:
        await amina.sign_in("amina")
        assert (await amina.get("/web/notices")).status == 403
        assert "/web/notices" not in (await amina.get("/web/requests")).text  # no nav entry either
        page = await amina.post("/web/notices/send", {"city": "casa", "ar": AR, "fr": FR})
        assert page.status == 403
        await karim.sign_in("karim")
        await karim.get("/web/lang/ar?next=/web/notices")
        await karim.get("/web/notices")
        page = await karim.post("/web/notices/preview", {"city": "Casablanca", "service": "water", "ar": AR, "fr": FR})
        assert "سيصل هذا الإشعار إلى زبون واحد من الدار البيضاء قبل الإشعارات." in page.plain()
        page = await karim.post("/web/notices/send", {"city": "Casablanca", "service": "water", "ar": AR, "fr": FR})
        assert "وُضع الإشعار في قائمة الإرسال لزبون واحد" in page.plain()
    [msg] = await pending_notices(engine, "f1")
    assert msg.payload["service"] == "water" and msg.payload["contract"] == "1000002"  # her water contract
