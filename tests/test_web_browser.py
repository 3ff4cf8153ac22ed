"""The workspace in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
sign-in and its throttle, a page without a session, an agent approving a request that the
customer then receives on Telegram (the real bot against the fake Bot API), an Arabic page laid
out right to left, a phone-sized screen, and the screenshots in docs/workspace/.

ADDAD_WEB_SCREENSHOTS=1 writes the screenshots to docs/workspace/ (committed); otherwise to the
test's temporary folder (still taken and checked)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from storage import open_store

from .fake_botapi import FakeBotAPI
from .telegram_harness import TgUser, seeded_database, settings_for, start_bot
from .web_harness import PASSWORD, add_account, serve_workspace

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags, Chromium's own calls home fail on a closed network.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    # Not skipped when missing: these are the workspace's proof (.ci/run installs the package).
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = ROOT / "docs" / "workspace" if os.environ.get("ADDAD_WEB_SCREENSHOTS") else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _shot(page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000, name  # a real page, not a blank one


@pytest.fixture
async def workspace(api: FakeBotAPI, tmp_path, process_clock):
    """The real Telegram bot (long polling against the fake Bot API) and the workspace on the
    same database, as `addad telegram` and `addad web` would run them; a request from a Telegram
    customer waiting."""
    database = await seeded_database(tmp_path / "addad.sqlite3")
    task, stop = await start_bot(settings_for(api, database))
    store = await open_store(database, clock=process_clock)
    await add_account(store, "amina", "agent")
    await add_account(store, "karim", "supervisor")
    try:
        async with serve_workspace(store, process_clock) as served:
            yield served
    finally:
        await store.close()
        stop.set()
        await asyncio.wait_for(task, 20)


async def _file_by_telegram(api: FakeBotAPI) -> TgUser:
    user = TgUser(api, 9300, "fr")
    await user.send("/start")
    await user.press("Facilités de paiement")
    await user.send("1000001")
    await user.share_contact("+212612345678")
    await user.press("3 mois")
    await user.press("Perte d'emploi")
    await user.press("Envoyer la demande")
    assert "IN-2026-000001" in user.text
    return user


async def _sign_in(page, base: str, name: str, password: str = PASSWORD) -> None:
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def test_sign_in_a_wrong_password_throttled_and_no_page_without_a_session(browser, workspace, shots):
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await page.goto(workspace.url + "/web/customers/1000001")
    assert "/web/signin" in page.url  # no session: the sign-in page, which brings you back after
    await _shot(page, shots, "signin")
    for _ in range(5):
        await _sign_in(page, workspace.url, "amina", "not-the-password")
        assert await page.locator("p.error").inner_text() == "Identifiant ou mot de passe incorrect."
    await _sign_in(page, workspace.url, "amina")  # the right password, too late
    assert await page.locator("p.error").inner_text() == "Trop d'essais. Réessayez dans 15 minutes."
    assert "/web/signin" in page.url
    workspace.clock.advance(minutes=16)
    await _sign_in(page, workspace.url, "amina")
    await page.wait_for_url("**/web/customers/1000001")
    assert "Fatima Zahra Bennani" in await page.locator("h1").inner_text()
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["addad_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # no script can read the session
    await context.close()


async def test_an_agent_approves_in_the_browser_and_the_customer_gets_the_schedule_on_telegram(
    browser, workspace, api, shots
):
    user = await _file_by_telegram(api)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(workspace.url + "/web/")
    await _sign_in(page, workspace.url, "amina")
    await page.wait_for_url("**/web/requests")
    row = page.locator("table.queue tbody tr").first
    assert "IN-2026-000001" in await row.inner_text() and "Fatima Zahra Bennani" in await row.inner_text()
    await _shot(page, shots, "requests")
    await row.locator("a").first.click()
    await page.wait_for_url("**/web/requests/IN-2026-000001")
    schedule = await page.locator("table.schedule").inner_text()
    assert "23 décembre 2026" in schedule and "154,02\u00a0DH" in schedule
    await _shot(page, shots, "request")
    start = len(api.calls)
    await page.fill("textarea[name=note]", "Premier prélèvement le 23 décembre")
    await page.click("button[value=approved]")
    await page.wait_for_url("**/web/requests/IN-2026-000001?done=approved")
    assert "Demande acceptée" in await page.locator("p.notice").inner_text()
    pushed = await api.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == user.chat_id and "IN-2026-000001" in c.text,
        after=start,
        timeout=15,
    )
    assert "Bonne nouvelle : votre demande IN-2026-000001 (Échelonnement des arriérés) est acceptée." in pushed.text
    assert "Échéance 1, le 23 décembre 2026 : 154,02\u00a0DH" in pushed.text
    assert "Échéance 3, le 23 février 2027 : 154,03\u00a0DH" in pushed.text
    assert "Premier prélèvement le 23 décembre" in pushed.text
    # the customer page, and the search that leads there
    await page.goto(workspace.url + "/web/customers?q=bennani")
    await _shot(page, shots, "customers")
    await page.click("text=1000001")
    await page.wait_for_url("**/web/customers/1000001")
    assert "telegram" in await page.locator("table.chats").inner_text()
    await _shot(page, shots, "customer")
    await context.close()


async def test_an_arabic_page_is_laid_out_right_to_left_and_fits_a_phone(browser, workspace, api, shots):
    await _file_by_telegram(api)
    context = await browser.new_context(
        locale="ar-MA", viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = await context.new_page()
    await page.goto(workspace.url + "/web/signin")
    await page.click("text=العربية")
    await _sign_in(page, workspace.url, "karim")
    await page.wait_for_url("**/web/requests")
    assert await page.evaluate("getComputedStyle(document.documentElement).direction") == "rtl"
    assert await page.locator("h1").inner_text() == "طلبات الزبناء"
    # right to left: the brand, first in the header, is on the right; the tools on the left
    brand = await page.locator(".brand").bounding_box()
    tools = await page.locator(".tools").bounding_box()
    assert brand and tools and brand["x"] > tools["x"]
    # a phone: the page itself does not scroll sideways (wide tables scroll in their own box)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await _shot(page, shots, "requests-ar-phone")
    await page.goto(workspace.url + "/web/requests/IN-2026-000001")
    assert "تقسيط المتأخرات" in await page.locator("h1").inner_text()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await _shot(page, shots, "request-ar-phone")
    await page.click("text=التصديرات")  # the supervisor's exports
    await page.wait_for_url("**/web/exports")
    assert await page.locator("h1").inner_text() == "تصدير CSV"
    await _shot(page, shots, "exports-ar-phone")
    await context.close()
