"""The 13-month consumption chart: asked in words or by the button of a reading or a bill, drawn
as a PNG (matplotlib, Agg, bundled font, Arabic shaped right to left), sent as a photo on
Telegram and WhatsApp, written to a file on the console, and the same after a crash."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
from datetime import date, timedelta

import pytest
from PIL import Image as PILImage

from bot.channels.console import ConsoleChat
from conversations import chart
from conversations.events import Inbound
from conversations.understanding import understand
from storage import Bill, Contract

from .chat import SEEDED_AT, START, Chat
from .telegram_harness import ROOT, TgUser
from .test_telegram import bot  # noqa: F401  (the fixture)
from .test_whatsapp import FATIMA, graph, user, wa  # noqa: F401  (the fixtures)

TODAY = date(2026, 11, 23)
d = date.fromisoformat
# 1000001's monthly consumption before the seed's September (estimated) and October 2026 bills:
# October 2025 to August 2026, February 2026 estimated.
HISTORY = [150, 140, 150, 160, 120, 130, 100, 90, 95, 200, 210]
ESTIMATED = {"2026-02"}
RGB = {k: tuple(int(v[i : i + 2], 16) for i in (1, 3, 5)) for k, v in chart.COLOURS.items()}


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


async def add_history(store) -> None:
    """A year of paid bills for 1000001 before the seed's two (its index chain ends at 44850)."""
    index = 44850 - sum(HISTORY)
    months = [(2025, 10 + i) if i < 3 else (2026, i - 2) for i in range(len(HISTORY))]
    async with store.transaction() as tx:
        for (year, month), used in zip(months, HISTORY, strict=True):
            start = _month_end(year, month - 1) if month > 1 else date(year - 1, 12, 31)  # (the previous month's end)
            end = _month_end(year, month)
            estimated = f"{year}-{month:02d}" in ESTIMATED
            bill = Bill(
                f"H-{year}-{month:02d}",
                "1000001",
                start,
                end,
                end,
                end,
                index,
                index + used,
                used,
                estimated,
                1000,
                1000,
            )
            await tx.upsert_bill(bill, now=SEEDED_AT)
            index += used


async def linked_chat(engine, lang: str = "fr", history: bool = True) -> Chat:
    if history:
        await add_history(engine.store)
    c = Chat(engine, lang_hint=lang, sender_phone="+212612345678")
    await c.send("bonjour" if lang == "fr" else "السلام")
    await c.send("ma consommation" if lang == "fr" else "استهلاكي")
    await c.send("1000001")  # links both of Fatima's contracts
    return c


def image_of(c: Chat):
    images = [r.image for r in c.replies if r.image is not None]
    assert len(images) == 1, [r.text for r in c.replies]
    return images[0]


def colours_in(png: bytes) -> dict[str, int]:
    """Pixels of each bar colour in the picture."""
    picture = PILImage.open(io.BytesIO(png)).convert("RGB")
    counts = dict.fromkeys(RGB, 0)
    for colour, n in ((rgb, n) for n, rgb in picture.getcolors(maxcolors=1 << 16)):
        for kind, rgb in RGB.items():
            if colour == rgb:
                counts[kind] += n
    return counts


def bars_of(spec: dict) -> list[tuple[str, str]]:
    """(kind, hex colour) of each bar matplotlib drew, left to right."""
    from matplotlib.colors import to_hex

    ax = chart.figure(spec).axes[0]
    bars = sorted((p for p in ax.patches if p.get_gid()), key=lambda p: p.get_x())
    return [(p.get_gid(), to_hex(p.get_facecolor())) for p in bars]


# ---------------------------------------------------------------------- in the conversation
async def test_french_chart_of_the_electricity_meter_with_its_text(engine, tmp_path):
    c = await linked_chat(engine)
    assert "Pour quel compteur voulez-vous voir la consommation ?" in c.text
    await c.press("électricité")
    image = image_of(c)
    assert (
        c.replies[0].text
        == "📊 Consommation du contrat 1000001 (électricité, Casablanca), de novembre 2025 à novembre 2026"
    )
    picture = PILImage.open(io.BytesIO(image.png))
    assert picture.format == "PNG" and picture.size == (chart.WIDTH, chart.HEIGHT)
    # 12 months known (November 2025 to October 2026); February and September 2026 estimated.
    bars = bars_of(image.spec)
    assert len(bars) == 12 and [k for k, _ in bars].count("estimated") == 2
    assert {k: h for k, h in bars} == {"read": chart.COLOURS["read"], "estimated": chart.COLOURS["estimated"]}
    assert [b[1] for b in image.spec["bars"]][:3] == [140, 150, 160] and image.spec["bars"][-1][1] is None
    counts = colours_in(image.png)
    assert counts["read"] > 10_000 and counts["estimated"] > 1_000 and counts["customer"] == 0
    assert image.spec["line"] == [150, "Seuil de 150 kWh"] and image.spec["band"] is None  # from the profile
    text = c.text
    assert "Moyenne : 146 kWh par mois, sur 12 mois." in text
    assert "octobre 2026 : 180 kWh, soit 20 % de plus qu'en octobre 2025 (150 kWh)." in text
    assert "5 mois au-dessus de 150 kWh" in text
    assert "2 mois estimés (hachurés)" in text
    await c.no_reminders()  # the journey the link was for is over: the reminders question first
    assert c.buttons and c.buttons[0].payload == "go:reading"  # back at the menu


async def test_arabic_water_chart_shows_the_social_band_right_to_left(engine, tmp_path):
    c = await linked_chat(engine, "ar")
    await c.send("lma")
    image = image_of(c)
    assert image.spec["lang"] == "ar" and image.spec["band"] == [6, "الشطر الاجتماعي (إلى 6 م³)"]
    assert image.spec["line"] is None
    assert image.spec["title"] == "استهلاك العقد 1000002 (م³ في الشهر)"
    assert image.spec["bars"][0][0] == "نونبر\n2025" and image.spec["bars"][-2][0] == "أكتوبر"
    assert "المعدل: 10 م³ في الشهر، على شهر واحد." in c.text
    assert "الشطر الاجتماعي (إلى 6 م³): لا شهر من أصل 1." in c.text
    # Right to left: the one bar (October, the 12th month of 13) is at the left.
    fig = chart.figure(image.spec)
    (bar,) = [p for p in fig.axes[0].patches if p.get_gid()]
    assert bar.get_x() < 2
    assert PILImage.open(io.BytesIO(image.png)).size == (chart.WIDTH, chart.HEIGHT)


def _glyphs(text: str):
    from matplotlib import _text_helpers
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(chart.font_path()))
    font.set_size(12, 72)
    return font, list(_text_helpers.layout(text, font))


async def test_arabic_labels_reach_matplotlib_whole_and_are_drawn_shaped_right_to_left(engine, tmp_path):
    c = await linked_chat(engine, "ar")
    await c.send("الضو")
    spec = image_of(c).spec
    fig = chart.figure(spec)
    ax = fig.axes[0]
    title = ax.get_title()
    assert title == "استهلاك العقد 1000001 (ك.و.س في الشهر)"  # the logical text, no isolates, no pre-shaping
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "نونبر\n2025" and "غشت" in labels
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["حد 150 ك.و.س", "تقديري", "مقروء"]  # read from the right
    # The layout matplotlib draws with: joined forms (not the letters' own glyphs), لا as one
    # ligature, and the first letter rightmost.
    font, items = _glyphs("استهلاك")
    assert next(i.char for i in items) == "ك" and items[-1].char == "ا"  # visual order: first letter last
    assert max(items, key=lambda i: i.x).char == "ا"
    assert "لا" in [i.char for i in items]
    seen = {i.char: i.glyph_index for i in items}
    assert seen["ت"] != font.get_char_index(ord("ت")) and seen["س"] != font.get_char_index(ord("س"))
    # Every text of the chart is drawn with the bundled font, never one of the system's.
    texts = [ax.title, *ax.get_xticklabels(), *ax.get_yticklabels(), ax.yaxis.label, *ax.get_legend().get_texts()]
    texts += [t for t in ax.texts]
    assert {str(t.get_fontproperties().get_file()) for t in texts} == {str(chart.font_path())}
    import matplotlib

    assert chart.font_path().is_relative_to(matplotlib.get_data_path())  # inside the package


async def test_the_same_chart_is_the_same_png(engine, tmp_path):
    c = await linked_chat(engine)
    await c.press("électricité")
    spec = image_of(c).spec
    assert chart.draw(spec) == chart.draw(json.loads(json.dumps(spec))) == image_of(c).png


async def test_after_a_reading_the_button_shows_this_months_reading_in_green(engine, tmp_path):
    c = await linked_chat(engine)
    await c.send("menu")
    await c.send("je veux envoyer mon index")
    await c.press("électricité")
    await c.send("45400")
    await c.press("Sans photo")
    await c.press("Confirmer")
    assert "Index enregistré" in c.text
    chart_button = [b for r in c.replies for b in r.buttons if b.label == "📊 Ma consommation"]
    assert [b.payload for b in chart_button] == ["go:usage:1000001"]
    await c.press_payload("go:usage:1000001")
    image = image_of(c)
    assert image.spec["bars"][-1][1:] == [190, "customer"]
    assert colours_in(image.png)["customer"] > 1_000
    assert "novembre 2026 : 190 kWh, soit 36 % de plus qu'en novembre 2025 (140 kWh)." in c.text
    assert "En vert : votre index de ce mois, pas encore facturé." in c.text


async def test_after_a_read_bill_the_button_shows_its_meter(engine, tmp_path):
    c = await linked_chat(engine)
    await c.send("combien je dois")
    await c.press("1000002")
    buttons = [b for r in c.replies for b in r.buttons if b.payload.startswith("go:usage:")]
    assert [b.payload for b in buttons] == ["go:usage:1000002"]
    await c.press_payload("go:usage:1000002")
    assert image_of(c).spec["title"] == "Consommation du contrat 1000002 (m³ par mois)"


async def test_a_forged_chart_button_for_a_contract_not_held_shows_nothing(engine, tmp_path):
    c = await linked_chat(engine)
    await c.press("Annuler")
    await c.press_payload("go:usage:1000003")  # Youssef's
    assert not any(r.image for r in c.replies)
    assert "1000003" not in c.text


async def test_fewer_than_13_months_and_no_history_at_all(engine, tmp_path):
    c = await linked_chat(engine, history=False)
    await c.press("électricité")
    image = image_of(c)
    assert len(image.spec["bars"]) == 13 and len(bars_of(image.spec)) == 2
    assert "Moyenne : 180 kWh par mois, sur 2 mois." in c.text
    assert "octobre 2026 : 180 kWh (rien à comparer pour octobre 2025)." in c.text
    async with c.engine.store.transaction() as tx:
        await tx.upsert_contract(
            Contract(
                "1000009",
                "water",
                "Fatima Zahra Bennani",
                "+212612345678",
                "ar",
                "Casablanca",
                "W-99009",
                "postpaid",
                5,
                10,
                d("2026-11-01"),
                "EAU-RES",
                False,
            ),
            now=SEEDED_AT,
        )
        await tx.link_chat("test", "u1", "1000009", "bill_amount")
    await c.send("ma consommation")
    await c.press("1000009")
    assert not any(r.image for r in c.replies)
    assert "Nous n'avons encore aucune consommation pour le contrat 1000009 (eau, Casablanca)" in c.text
    await c.send("/language")
    await c.press_payload("lang:ar")
    await c.send("شحال استهلكت")
    await c.press("1000009")
    assert "ليس لدينا بعد أي استهلاك لـالعقد 1000009" in c.text


# ---------------------------------------------------------------------- understanding
@pytest.mark.parametrize(
    "text",
    [
        "ma consommation",
        "historique de consommation",
        "شحال استهلكت",
        "استهلاكي",
        "chhal stahlakt",
        "l'istihlak dyali",
        "ch7al stahlakt had chhar",
        "évolution de ma consommation",
        "الاستهلاك ديالي",
    ],
)
def test_consumption_is_understood_by_rules_over_the_model(text):
    u = understand(text, today=TODAY)
    assert (u.intent, u.source, u.confidence) == ("consumption", "rules", 0.9)


@pytest.mark.parametrize(
    "text, intent",
    [
        ("je veux envoyer ma consommation", "reading"),
        ("consommation 45210", "reading"),
        ("bghit nkhelles ma consommation", "balance"),
        ("chhal khassni nkhelles", "balance"),
        ("je veux declarer ma consommation", "reading"),
        ("أريد تسجيل استهلاكي", "reading"),
        ("مبلغ الفاتورة لا يتناسب مع استهلاكي", "balance"),
        ("بغيت نشوف الاستهلاك ديالي والفاتورة", "balance"),
    ],
)
def test_sending_or_paying_stays_with_its_journey(text, intent):
    assert understand(text, today=TODAY).intent == intent


# ---------------------------------------------------------------------- durability, start-up
async def test_a_reply_sent_again_after_a_crash_is_the_same_picture(engine, tmp_path):
    c = await linked_chat(engine)
    inbound = Inbound("test", "u1", "chart-1", payload=next(b.payload for b in c.buttons if "1000001" in b.payload))
    first = await c.engine.respond(inbound)
    again = await c.engine.respond(inbound, resend=True)
    png = [r.image.png for r in first.replies if r.image]
    assert png and png == [r.image.png for r in again.replies if r.image]
    con = sqlite3.connect(tmp_path / "addad.sqlite3")
    (kept,) = con.execute("SELECT replies FROM processed_messages WHERE message_id='chart-1'").fetchone()
    con.close()
    assert '"image":{"spec"' in kept and "PNG" not in kept and len(kept) < 4000  # the inputs, not the picture


def test_matplotlib_is_not_imported_until_a_chart_is_drawn(tmp_path):
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(ROOT)!r})
import bot.cli, bot.runtime, bot.channels.telegram, bot.channels.whatsapp, conversations.engine
from tests.chat import Chat, open_engine
async def main():
    e = await open_engine({str(tmp_path / "a.sqlite3")!r})
    c = Chat(e, sender_phone="+212612345678")
    await c.send("bonjour"); await c.send("chhal khassni nkhelles"); await c.send("1000001")
    assert "matplotlib" not in sys.modules, "imported before any chart"
    await c.send("ma consommation"); await c.send("lma")
    assert any(r.image and r.image.png for r in c.replies)
    assert "matplotlib" in sys.modules
    await e.store.close()
asyncio.run(main())
print("ok")
"""
    env = {"ADDAD_CLOCK": START.isoformat(), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]


# ---------------------------------------------------------------------- the channels
async def test_console_writes_the_chart_to_a_file_and_prints_its_path(engine, tmp_path):
    chat = ConsoleChat(engine, user="console", phone="+212612345678", lang="fr", charts=tmp_path / "charts")
    await chat.send("/start")
    await chat.send("ma consommation")
    await chat.send("1000001")
    shown = await chat.send("2")  # the water meter, by its number
    (path,) = (tmp_path / "charts").glob("chart-*.png")
    assert f"🖼️ Image enregistrée : {path}" in shown
    with PILImage.open(path) as picture:
        assert picture.size == (chart.WIDTH, chart.HEIGHT)


async def test_telegram_sends_the_chart_with_send_photo(api, bot):
    u = TgUser(api, 3003, "fr")
    await u.send("ma consommation")
    await u.send("1000001")
    await u.share_contact("+212612345678")
    start = len(api.calls)
    await u.press("eau")
    for _ in range(100):
        if api.photos(3003, after=start):
            break
        await asyncio.sleep(0.05)
    (photo,) = api.photos(3003, after=start)
    assert photo.params["caption"].startswith("📊 Consommation du contrat 1000002 (eau, Casablanca)")
    picture = PILImage.open(io.BytesIO(photo.params["photo"]))
    assert picture.format == "PNG" and picture.size == (chart.WIDTH, chart.HEIGHT)
    assert colours_in(photo.params["photo"])["read"] > 1_000
    assert "Tranche sociale (jusqu'à 6 m³) : 0 mois sur 1." in u.text
    # The photo comes before its text, the text before the menu.
    methods = [c.method for c in api.calls[start:] if c.chat_id == 3003 and c.method in ("sendPhoto", "sendMessage")]
    assert methods[:1] == ["sendPhoto"] and methods.count("sendMessage") >= 1


async def test_whatsapp_uploads_the_chart_then_sends_it_by_media_id(wa, graph):
    fatima = user(wa, graph)
    await fatima.send("شحال استهلكت")
    await fatima.send("1000001")
    await fatima.send("الضو")  # (the contracts' labels are too long for buttons: numbered text)
    images = [m for m in fatima.replies if m.get("type") == "image"]
    assert len(images) == 1
    media_id = images[0]["image"]["id"]
    kind, png = graph.uploads[media_id]
    assert kind == "image/png" and PILImage.open(io.BytesIO(png)).size == (chart.WIDTH, chart.HEIGHT)
    caption = images[0]["image"]["caption"].replace("\u2066", "").replace("\u2069", "")
    assert caption == "📊 استهلاك العقد 1000001 (الكهرباء، الدار البيضاء)، من نونبر 2025 إلى نونبر 2026"
    assert "المعدل: 180 ك.و.س في الشهر، على شهرين." in fatima.text
    assert colours_in(png)["estimated"] > 500 and colours_in(png)["read"] > 500


async def test_a_chart_whatsapp_will_not_take_goes_as_its_caption(wa, graph):
    graph.refuse_uploads = True
    fatima = user(wa, graph)
    await fatima.send("ma consommation")
    await fatima.send("1000001")
    await fatima.send("lma")
    assert not [m for m in fatima.replies if m.get("type") == "image"] and not graph.uploads
    assert "📊 Consommation du contrat 1000002 (eau, Casablanca)" in fatima.text
    assert "Moyenne : 10 m³ par mois, sur 1 mois." in fatima.text


async def test_a_chart_that_cannot_be_drawn_leaves_its_text(engine, monkeypatch):
    def broken(data):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(chart, "draw", broken)
    c = await linked_chat(engine, history=False)
    await c.press("eau")
    assert not any(r.image for r in c.replies)
    assert "📊 Consommation du contrat 1000002" in c.text and "Moyenne : 10 m³ par mois, sur 1 mois." in c.text
