"""Issue 20: the statistics page's figures, from what customers did through the engine."""

from __future__ import annotations

from datetime import date

from conversations.backoffice import decide
from conversations.statistics import figures

from .chat import Chat
from .test_requests import engine, file_instalment  # noqa: F401  (the fixture)


async def test_the_figures_count_readings_requests_plans_failures_and_unrecognised_messages(engine):
    chat = await file_instalment(engine)  # IN-2026-000001 on 1000001, 462,07 DH over 3 months
    engine.clock.advance(hours=5)
    async with engine.store.transaction() as tx:
        await decide(tx, "IN-2026-000001", "approved", note=None, actor="backoffice:amina", now=engine.clock())
    await chat.send("/menu")
    await chat.press("Envoyer mon index")
    await chat.press("1000001")
    await chat.send("45300")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    stranger = Chat(engine, user="u9", sender_phone="+212699999999")
    await stranger.send("bonjour")
    await stranger.send("mon index")
    await stranger.send("1000003")
    await stranger.send("999,99")  # a wrong amount: a failed proof
    for _ in range(2):
        await stranger.send("/menu")
        await stranger.send("wach kayn chi promo f lma ?")  # nothing the bot knows: kept masked
    async with engine.store.snapshot() as tx:
        f = await figures(tx, engine.profile, engine.clock())
    assert f.today == date(2026, 11, 23) and f.cycle == (date(2026, 11, 1), date(2026, 11, 30))
    assert f.per_day["test"][-1] == 1 and sum(f.per_day["test"]) == 1
    assert f.sources["customer"] == 1 and f.sources["postpaid"] >= 3
    assert f.customer_share == 1.0  # no estimate this cycle
    assert f.requests["instalment"] == {"approved": 1}
    count, median, p90 = f.decision_hours["instalment"]
    assert count == 1 and round(median, 1) == 5.0 and round(p90, 1) == 5.0
    assert f.plans["instalment"] == 1 and f.plans["instalment_amount"] == 46207
    assert f.plans["scheduled_ahead"] == 46207  # no date passed yet
    assert f.security["link_failed"] == 1 and f.security["link_locked"] == 0
    assert ("wach kayn chi promo f lma ?", "ar", 2) in f.unrecognised
