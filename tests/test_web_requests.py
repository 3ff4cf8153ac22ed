"""The workspace's requests and customers over real HTTP: the queue, a request's page, a decision
the customer then receives in his chat, bad input, reassignment, the search and the exports."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.web import app as web_app
from conversations.backoffice import decide

from .test_requests import engine, file_instalment  # noqa: F401  (the fixture)
from .web_harness import add_account, serve_workspace


@pytest.fixture
async def served(engine):
    await add_account(engine.store, "amina", "agent")
    await add_account(engine.store, "omar", "agent")
    await add_account(engine.store, "karim", "supervisor")
    async with serve_workspace(engine.store, engine.clock) as s:
        yield s


async def test_the_queue_counts_filters_and_shows_the_oldest_first_with_its_age(engine, served):
    await file_instalment(engine)
    engine.clock.advance(days=3, hours=2)
    async with engine.store.transaction() as tx:  # Youssef, in Rabat, three days later
        await tx.add_request(
            reference="DF-2026-000002",
            kind="deferral",
            contract="1000003",
            channel="test",
            user_id="youssef",
            lang="fr",
            amount=17262,
            defer_until=date(2026, 12, 10),
            reason="job",
        )
    async with engine.store.snapshot() as tx:
        kinds = [(r.reference, r.kind) for r in await tx.requests()]
    assert len(kinds) == 2, kinds
    async with served.client() as c:
        await c.sign_in("amina")
        page = await c.get("/web/requests")
        text = page.plain()
        assert "Demandes des clients" in text and "2 demandes" in text
        first, second = kinds[0][0], kinds[1][0]
        assert text.index(first) < text.index(second)  # oldest first
        assert "Fatima Zahra Bennani" in text and "Casablanca" in text and "3 jours" in text
        assert "462,07\u00a0DH" in text  # the arrears covered
        page = await c.get("/web/requests?kind=instalment")
        assert first in page.plain() and second not in page.plain() and "1 demande" in page.plain()
        page = await c.get("/web/requests?age=2")  # filed at least two days ago
        assert first in page.plain() and second not in page.plain()
        page = await c.get("/web/requests?city=rabat")
        assert first not in page.plain() and second in page.plain() and "Youssef El Amrani" in page.plain()
        page = await c.get("/web/requests?kind=bogus&age=abc&status=lost")
        text = page.plain()
        assert page.status == 200
        assert "Ce type de demande n'existe pas" in text and "L'ancienneté se donne en jours" in text
        assert "Cet état n'existe pas" in text
        page = await c.get("/web/lang/ar?next=/web/requests")
        text = page.plain()
        assert '<html lang="ar" dir="rtl">' in page.text and "طلبات الزبناء" in text and "3 أيام" in text


async def test_a_request_page_shows_the_contract_the_schedule_and_the_history(engine, served):
    await file_instalment(engine)
    async with served.client() as c:
        await c.sign_in("amina")
        page = await c.get("/web/requests/in-2026-000001")
        text = page.plain()
        assert "IN-2026-000001 · Échelonnement des arriérés" in text
        assert "Fatima Zahra Bennani" in text and "+21261234••••" in text and "+212612345678" not in text
        assert "462,07\u00a0DH (2 factures impayées)" in text
        # the schedule against the usual bill (the median of 243,17 and 218,90)
        assert "Facture habituelle (médiane des 6 dernières) 231,03\u00a0DH" in text
        assert "23 décembre 2026 154,02\u00a0DH 66 %" in text
        assert "C'est sa première demande." in text
        assert "Qui a fait quoi" not in text  # the decisions log is the supervisors'
        await c.sign_in("karim")
        page = await c.get("/web/requests/IN-2026-000001")
        assert "+21261234••••" in page.plain()  # masked here for everyone (in full on the customer page)
        page = await c.get("/web/requests/IN-2099-999999")
        assert page.status == 404 and "Aucune demande ne porte la référence IN-2099-999999" in page.plain()


async def test_an_agent_approves_and_the_customer_is_told_with_the_schedule(engine, served):
    chat = await file_instalment(engine)
    async with served.client() as c:
        await c.sign_in("amina")
        await c.get("/web/requests/IN-2026-000001")
        page = await c.post(
            "/web/requests/IN-2026-000001/decide", {"decision": "approved", "note": "Merci de respecter les dates"}
        )
        assert page.url.endswith("/web/requests/IN-2026-000001?done=approved")
        text = page.plain()
        assert "Demande acceptée. Le client en est informé" in text and "acceptée" in text
        assert "amina — « Merci de respecter les dates »" in text
    await chat.send("merci")
    assert "Bonne nouvelle : votre demande IN-2026-000001 (Échelonnement des arriérés) est acceptée." in chat.text
    assert "  • Échéance 1, le 23 décembre 2026 : 154,02\u00a0DH" in chat.text
    async with engine.store.snapshot() as tx:
        r = await tx.request("IN-2026-000001")
        entries = await tx.audit_entries(action="request_approved")
    assert r.status == "approved" and r.decided_by == "web:amina"
    assert entries[-1]["actor"] == "web:amina"


async def test_bad_decisions_say_why_and_change_nothing(engine, served):
    await file_instalment(engine)
    async with served.client() as c:
        await c.sign_in("amina")
        await c.get("/web/requests/IN-2026-000001")
        page = await c.post("/web/requests/IN-2026-000001/decide", {"decision": "rejected", "note": "   "})
        assert page.status == 400 and "Un refus doit être expliqué" in page.plain()
        page = await c.post("/web/requests/IN-2026-000001/decide", {"decision": "maybe"})
        assert page.status == 400 and "Choisissez « Accepter » ou « Refuser »." in page.plain()
        page = await c.post("/web/requests/IN-2026-000001/decide", {"decision": "approved", "note": "x" * 5000})
        assert page.status == 400 and "La note dépasse 1000 caractères" in page.plain()
        page = await c.post("/web/requests/IN-2099-000001/decide", {"decision": "approved"})
        assert page.status == 404 and "Aucune demande ne porte la référence IN-2099-000001" in page.plain()
        async with engine.store.snapshot() as tx:
            assert (await tx.request("IN-2026-000001")).status == "pending"
            queued = await tx.outbox_due(now=engine.clock() + timedelta(days=1))
            assert [m for m in queued if m.kind == "request_decision"] == []  # the customer is told nothing
        # someone else decides first (the CLI, or a colleague's tab)
        await c.get("/web/requests/IN-2026-000001")
        async with engine.store.transaction() as tx:
            await decide(tx, "IN-2026-000001", "rejected", note="Dossier incomplet", actor="web:omar")
        page = await c.post("/web/requests/IN-2026-000001/decide", {"decision": "approved"})
        assert page.status == 409
        assert "Cette demande a déjà été traitée (refusée ❌) par omar le 2026-11-23 10:00" in page.plain()
        page = await c.get("/web/requests?status=rejected")
        assert "Décidée par" not in page.plain()  # who decided what: the supervisors' column
        await c.sign_in("karim")
        page = await c.get("/web/requests?status=rejected")
        assert "Décidée par" in page.plain() and "refusée omar" in page.plain()
    async with engine.store.snapshot() as tx:
        r = await tx.request("IN-2026-000001")
        approved = await tx.audit_entries(action="request_approved")
    assert r.status == "rejected" and r.decided_by == "web:omar" and approved == []


async def test_a_supervisor_reassigns_and_an_agent_may_not(engine, served):
    await file_instalment(engine)
    async with served.client() as c:
        await c.sign_in("amina")
        page = await c.get("/web/requests/IN-2026-000001")
        assert "Confier la demande" not in page.plain()
        page = await c.post("/web/requests/IN-2026-000001/assign", {"account": "amina"})
        assert page.status == 403 and "Votre rôle ne donne pas accès à cette page." in page.plain()
        await c.sign_in("karim")
        page = await c.get("/web/requests/IN-2026-000001")
        assert "Confier la demande" in page.plain()
        page = await c.post("/web/requests/IN-2026-000001/assign", {"account": "nobody"})
        assert page.status == 400 and "Ce compte n'existe pas ou est désactivé" in page.plain()
        page = await c.post("/web/requests/IN-2026-000001/assign", {"account": "omar"})
        assert "La demande a été confiée." in page.plain() and "Confiée à omar" in page.plain()
        page = await c.get("/web/requests")
        assert "omar" in page.plain()
    async with engine.store.snapshot() as tx:
        entries = await tx.audit_entries(action="web_request_assigned")
    assert entries[-1]["actor"] == "web:karim" and entries[-1]["details"]["to"] == "omar"


async def test_the_customer_search_by_number_phone_and_name(engine, served):
    async with engine.store.transaction() as tx:
        await tx.link_chat("telegram", "555123456", "1000001", "phone")
    async with served.client() as c:
        await c.sign_in("amina")
        for query in ("1000001", "06 12 34 56 78", "bennani", "FATIMA zahra"):
            page = await c.get("/web/customers", params={"q": query})
            assert "1000001" in page.plain() and "Fatima Zahra Bennani" in page.plain(), query
        page = await c.get("/web/customers", params={"q": "100000"})  # a prefix: all three
        assert all(n in page.plain() for n in ("1000001", "1000002", "1000003"))
        page = await c.get("/web/customers", params={"q": "Nobody"})
        assert "Aucun client ne correspond à « Nobody »." in page.plain()
        page = await c.get("/web/customers", params={"q": "%_"})  # LIKE's own characters are literal
        assert "Aucun client ne correspond" in page.plain()
        page = await c.get("/web/customers", params={"q": "a" * 5000})
        assert page.status == 200 and "Cette recherche est trop longue (plus de 100 caractères)" in page.plain()
        page = await c.get("/web/customers/1000001")
        text = page.plain()
        assert "+21261234••••" in text and "+212612345678" not in text and "555••••56" in text
        assert "numéro de téléphone confirmé par la messagerie" in text
        assert "F-2026-10-1" in text and "218,90\u00a0DH" in text and "1000002" in text
        page = await c.get("/web/customers/9999999")
        assert page.status == 404 and "Aucun contrat 9999999." in page.plain()
        await c.sign_in("karim")
        page = await c.get("/web/customers/1000001")
        assert "+212612345678" in page.plain() and "555123456" in page.plain()


async def test_exports_are_streamed_audited_and_for_supervisors(engine, served):
    await file_instalment(engine)
    async with served.client() as c:
        await c.sign_in("amina")
        page = await c.get("/web/exports/requests.csv")
        assert page.status == 403
        await c.sign_in("karim")
        page = await c.get("/web/exports")
        assert "Exports CSV" in page.plain()
        async with c.session.get(served.url + "/web/exports/requests.csv?status=pending") as r:
            assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
            assert 'filename="addad-requests-2026-11-23.csv"' in r.headers["Content-Disposition"]
            body = await r.text()
        lines = body.splitlines()
        assert lines[0].startswith("reference,kind,contract,status") and lines[1].startswith("IN-2026-000001,")
        assert "+21261234••••" in lines[1]
        async with c.session.get(served.url + "/web/exports/readings.csv") as r:
            assert (await r.text()).startswith("contract,meter_number,date,index")
        page = await c.get("/web/exports/readings.csv?since=yesterday")
        assert page.status == 400 and "AAAA-MM-JJ" in page.plain()
    async with engine.store.snapshot() as tx:
        entries = await tx.audit_entries(action="web_export")
    assert [e["details"]["kind"] for e in entries] == ["requests", "readings"]
    assert entries[0]["actor"] == "web:karim"


def test_every_route_says_which_role_it_needs():

    from conversations.profile import load_profile

    from .chat import Clock

    class _Store:  # the routes are only listed, never called
        pass

    app = web_app.make_app(_Store(), load_profile(), clock=Clock(), secret=b"x")  # type: ignore[arg-type]
    checked = 0
    for route in app.router.routes():
        handler = route.handler
        if route.resource is not None and route.resource.canonical.startswith("/static"):
            continue
        assert hasattr(handler, "required_role"), f"{route.method} {route.resource.canonical} has no @requires"
        checked += 1
    assert checked >= 10


async def test_addad_serve_mounts_the_workspace_beside_the_whatsapp_webhook(tmp_path, process_clock):
    """What `addad serve` runs: one server; a decision taken in its workspace reaches a WhatsApp
    customer through the same process's dispatcher, in Arabic (outside WhatsApp's 24-hour window:
    the decision template, bot/channels/whatsapp.py)."""
    import asyncio
    import socket

    import aiohttp

    from bot.runtime import run_whatsapp
    from storage import open_store

    from .telegram_harness import seeded_database
    from .web_harness import Browserish
    from .whatsapp_harness import VERIFY_TOKEN, FakeGraphAPI, text_of, whatsapp_settings

    graph = await FakeGraphAPI().start()
    database = await seeded_database(tmp_path / "addad.sqlite3")
    store = await open_store(database, clock=process_clock)
    await add_account(store, "amina", "agent")
    async with store.transaction() as tx:
        await tx.add_request(
            reference="DF-2026-000001",
            kind="deferral",
            contract="1000001",
            channel="whatsapp",
            user_id="212612345678",
            lang="ar",
            amount=46207,
            defer_until=date(2026, 12, 10),
            reason="illness",
        )
    await store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = whatsapp_settings(database, graph.url, clock=process_clock.setting)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_whatsapp(settings, listen="127.0.0.1", port=port, stop=stop, ready=ready.set, workspace=True)
    )
    try:
        await asyncio.wait_for(ready.wait(), 30)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:  # the webhook is still there
            params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
            async with http.get(base + "/whatsapp", params=params) as r:
                assert r.status == 200 and await r.text() == "42"
        async with Browserish(base) as c:
            page = await c.get("/")
            assert "/web/signin" in page.url
            await c.sign_in("amina")
            page = await c.get("/web/requests/DF-2026-000001")
            assert "Report de paiement" in page.plain() and "10 décembre 2026" in page.plain()
            page = await c.post("/web/requests/DF-2026-000001/decide", {"decision": "approved"})
            assert page.url.endswith("?done=approved")
        sent = await graph.wait_for(lambda m: m["to"] == "212612345678", timeout=15)
        assert sent["type"] == "template" and sent["template"]["name"] == "addad_request_decision"
        assert "DF-2026-000001" in text_of(sent) and "مقبول" in text_of(sent)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await graph.stop()


async def test_a_rejection_with_its_note_reaches_the_customer_and_a_session_expires(engine, served):
    chat = await file_instalment(engine, lang_hint="ar")
    async with served.client() as c:
        await c.sign_in("amina")
        await c.get("/web/requests/IN-2026-000001")
        page = await c.post("/web/requests/IN-2026-000001/decide", {"decision": "rejected", "note": "الملف ناقص"})
        assert "Demande refusée" in page.plain()
        engine.clock.advance(hours=8, minutes=1)  # a working day later the session is over
        page = await c.get("/web/requests")
        assert "/web/signin" in page.url
    await chat.send("شكرا")
    assert "IN-2026-000001" in chat.text and "الملف ناقص" in chat.text
