"""A service notice written in a real headless Chromium (tests/test_web_browser.py's fixtures:
the real Telegram bot against the fake Bot API and the workspace on one database) reaches an
opted-in Telegram customer, once. ADDAD_WEB_SCREENSHOTS=1 writes docs/workspace/notices.png."""

from __future__ import annotations

import asyncio

from .test_reminders_channels import link_on_telegram
from .test_web_browser import _shot, _sign_in, browser, shots, workspace  # noqa: F401  (fixtures)

FR = "Coupure d'eau mardi de 9 h à 13 h (travaux sur la conduite)."
AR = "انقطاع الماء يوم الثلاثاء من 9 إلى 13 (أشغال على القناة)."


async def test_a_supervisor_sends_a_notice_in_the_browser_and_the_telegram_customer_gets_it_once(
    browser,
    workspace,
    api,
    shots,
):
    fatima = await link_on_telegram(api, 9401, "1000001", "+212612345678", "remind:all")
    assert "C'est noté : vous recevrez ici les rappels" in fatima.text
    await link_on_telegram(api, 9402, "1000003", "+212661234567", "remind:none")  # Rabat, said no
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(workspace.url + "/web/notices")
    await _sign_in(page, workspace.url, "karim")
    await page.wait_for_url("**/web/notices")
    await page.fill("input[name=city]", "casa")
    await page.select_option("select[name=service]", "water")
    await page.fill("textarea[name=ar]", AR)
    await page.fill("textarea[name=fr]", FR)
    await page.click("#draft button[type=submit]")
    await page.wait_for_url("**/web/notices/preview")
    preview = await page.locator("#preview").inner_text()
    assert "Cet avis ira à 1 client de Casablanca qui a accepté les avis." in preview and "Eau seulement" in preview
    await _shot(page, shots, "notices")
    start = len(api.calls)
    await page.click("#confirm button")
    await page.wait_for_url("**/web/notices?queued=1&of=1")
    assert "Avis mis en file pour 1 client" in await page.locator("#result").inner_text()
    pushed = await api.wait_for(lambda c: c.chat_id == 9401 and FR in c.text, after=start, timeout=15)
    assert "Casablanca" in pushed.text and "« stop »" in pushed.text
    # Sent again (a second tab, a double click): nothing more for the customer, and the page says so.
    await page.fill("input[name=city]", "Casablanca")
    await page.select_option("select[name=service]", "water")
    await page.fill("textarea[name=ar]", AR)
    await page.fill("textarea[name=fr]", FR)
    await page.click("#draft button[type=submit]")
    await page.click("#confirm button")
    await page.wait_for_url("**/web/notices?queued=0&of=1")
    assert "déjà été envoyé" in await page.locator("#result").inner_text()
    await asyncio.sleep(2)  # more than a dispatcher poll
    assert len([c for c in api.sent(9401, after=start) if FR in c.text]) == 1
    assert [c for c in api.sent(9402, after=start) if FR in c.text] == []
    await context.close()
