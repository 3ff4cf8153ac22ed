"""Issue 20's pages in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), with the real Telegram bot against the fake Bot API on the same database: an agent
reviews a flagged reading beside its meter photo and the customer is told on Telegram; an agent
takes a chat from the handoff queue and his message reaches the customer; the statistics page.

ADDAD_WEB_SCREENSHOTS=1 writes the screenshots to docs/workspace/ (committed); otherwise to the
test's temporary folder (still taken and checked)."""

from __future__ import annotations

import pytest

from storage import open_store

from .images import jpeg
from .telegram_harness import TgUser
from .test_photos import tg  # noqa: F401  (the fixture: the Telegram bot keeping photos in a folder of its own)
from .test_review_web import serve_with_media
from .test_web_browser import _shot as shot
from .test_web_browser import browser, shots  # noqa: F401  (the fixtures: the system's Chromium, docs/workspace/)
from .web_harness import PASSWORD, add_account


@pytest.fixture
async def workspace(tg, process_clock):
    """The workspace on the Telegram bot's database and photo folder, as `addad web` serves it."""
    database, media = tg
    store = await open_store(database, clock=process_clock)
    await add_account(store, "amina", "agent")
    await add_account(store, "karim", "supervisor")
    try:
        async with serve_with_media(store, process_clock, media) as served:
            yield served
    finally:
        await store.close()


async def sign_in(browser, base: str, name: str, *, locale: str = "fr-FR"):
    context = await browser.new_context(locale=locale, viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    await page.goto(base + "/web/signin")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return page


async def test_a_flagged_reading_reviewed_beside_its_photo_and_the_customer_told_on_telegram(
    api, browser, workspace, shots
):
    fatima = TgUser(api, 1001, "fr")
    await fatima.send("je veux envoyer mon index")
    await fatima.send("1000001")
    await fatima.share_contact("+212612345678")
    if "1000002" in fatima.text:
        await fatima.press("1000001")
    await fatima.send("46500")  # ~10 times her usual use
    assert "environ 10 fois votre consommation habituelle" in fatima.text
    await fatima.send_photo("AgAC-meter-outlier", data=jpeg(seed=11, size=(320, 240)))
    await fatima.press("Confirmer")
    assert "un agent la vérifiera avant la facturation" in fatima.text

    page = await sign_in(browser, workspace.url, "amina")
    await page.goto(workspace.url + "/web/readings")
    assert "consommation inhabituelle" in await page.locator("#readings").inner_text()
    await shot(page, shots, "readings")
    await page.click("#readings a >> text=RL-2026-000001")
    await page.wait_for_selector("#meter-photo")
    # The photo is there, served to this session: the browser decoded a 320×240 image.
    assert await page.eval_on_selector("#meter-photo", "img => img.complete && img.naturalWidth") == 320
    assert await page.eval_on_selector("#consumption-chart", "img => img.complete && img.naturalWidth") > 0
    assert await page.locator("#typed-index").inner_text() == "46500"
    await shot(page, shots, "reading")
    # Letters for the index: said on the page, nothing done.
    await page.fill("input[name=index]", "46 5OO")
    await page.click("button[value=corrected]")
    assert "chiffres seulement" in await page.locator("p.error").inner_text()
    await page.fill("input[name=index]", "")
    await page.fill("textarea[name=note]", "Sur la photo, le compteur indique 45 420.")
    await page.click("button[value=rejected]")
    assert "Relevé rejeté" in await page.locator("p.notice").inner_text()
    told = await api.wait_for(
        lambda c: c.chat_id == 1001 and c.method == "sendMessage" and "45 420" in (c.text or ""), timeout=15
    )
    assert "❌ Votre index 46500 (référence RL-2026-000001) n'a pas été retenu." in told.text
    assert "Vous pouvez envoyer à nouveau votre index" in told.text


async def test_an_agent_takes_a_chat_in_the_browser_and_his_message_reaches_telegram(api, browser, workspace, shots):
    fatima = TgUser(api, 1002, "fr")
    await fatima.send("je veux parler à un conseiller")
    assert "Un conseiller a été prévenu" in fatima.text
    page = await sign_in(browser, workspace.url, "amina")
    await page.goto(workspace.url + "/web/handoffs")
    await shot(page, shots, "handoffs")
    await page.click("#handoffs button[type=submit]")
    await page.wait_for_selector("#say")
    await api.wait_for(lambda c: c.chat_id == 1002 and "a pris votre conversation" in (c.text or ""), timeout=15)
    await page.fill("#say textarea", "Bonjour Madame, je regarde votre dossier.")
    await page.click("#say button[type=submit]")
    assert "Message envoyé au client." in await page.locator("p.notice").inner_text()
    told = await api.wait_for(lambda c: c.chat_id == 1002 and "je regarde votre dossier" in (c.text or ""), timeout=15)
    assert told.text == "👤 Conseiller : Bonjour Madame, je regarde votre dossier."
    assert "je veux parler à un conseiller" in await page.locator("#conversation").inner_text()
    await shot(page, shots, "handoff")
    await page.click("#back button[type=submit]")
    await api.wait_for(lambda c: c.chat_id == 1002 and "Le robot vous répond de nouveau" in (c.text or ""), timeout=15)


async def test_the_statistics_page_in_french_and_arabic(api, browser, workspace, shots):
    user = TgUser(api, 1003, "fr")
    await user.send("je veux envoyer mon index")
    await user.send("1000001")
    await user.share_contact("+212612345678")
    if "1000002" in user.text:
        await user.press("1000001")
    await user.send("45400")
    await user.press("Sans photo")
    await user.press("Confirmer")
    stranger = TgUser(api, 1004, "fr")
    for _ in range(2):
        await stranger.send("wach kayn chi promo f lma ?")  # not understood: kept masked, counted
        await stranger.send("/menu")
    page = await sign_in(browser, workspace.url, "karim")
    await page.goto(workspace.url + "/web/stats")
    assert await page.eval_on_selector("#readings-chart", "img => img.complete && img.naturalWidth") > 0
    assert "Part des relevés clients" in await page.locator("#cycle").inner_text()
    assert "wach kayn chi promo f lma ?" in await page.locator("#unrecognised").inner_text()
    await shot(page, shots, "stats")
    await page.click("text=العربية")
    await page.wait_for_selector("html[dir=rtl]")
    assert "الإحصائيات" in await page.locator("h1").inner_text()
    await shot(page, shots, "stats-ar")
