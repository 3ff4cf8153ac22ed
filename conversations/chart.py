"""The 13-month consumption chart: the months from a contract's bills (and this month's
customer reading), the chart's inputs as a small JSON spec, and the PNG drawn from it.

The spec is what a turn keeps with its replies (conversations/events.py `Image`): a few hundred
bytes where the PNG is tens of kilobytes, and drawing is deterministic, so a reply sent again
after a crash is the same picture. matplotlib (Agg, no pyplot) is imported only when a chart is
drawn, in one worker thread: the bot's start-up and memory do not pay for it until then, and a
drawing never holds the event loop. Every text uses matplotlib's own DejaVu Sans (it covers
Arabic), by file, never a font of the system; matplotlib's text layout (libraqm, in its wheel
since 3.11) shapes Arabic and orders it right to left, as arabic-reshaper and python-bidi would.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage import Contract, Tx

from .events import Image, Reply

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

MONTHS = 13
SPEC_VERSION = 1
WIDTH, HEIGHT, DPI = 800, 450, 100  # pixels of the PNG
COLOURS = {"read": "#1f6fb4", "estimated": "#f0a030", "customer": "#2ca05a"}
HATCH = {"estimated": "//"}  # estimated months told apart without colour too
LINE_COLOUR, BAND_COLOUR = "#c0392b", "#2ca05a"


@dataclass(frozen=True, slots=True)
class Month:
    first: date  # the month's first day
    units: int | None  # kWh or m³; None: nothing known for that month
    kind: str | None  # "read", "estimated" (bills), "customer" (this month's reading, not billed yet)


def _month(d: date, back: int = 0) -> date:
    n = d.year * 12 + d.month - 1 - back
    return date(n // 12, n % 12 + 1, 1)


async def history(tx: Tx, contract: Contract, today: date, span: int = MONTHS) -> list[Month]:
    """The `span` months up to today's, oldest first: each bill counts for the month its period
    ends in (what the bill's own chart shows), estimated if the bill was; a customer reading made
    after the last bill, in today's month, stands for that month."""
    months = [_month(today, back) for back in range(span - 1, -1, -1)]
    units: dict[date, int] = {}
    estimated: set[date] = set()
    bills = await tx.bills(contract.contract, limit=span + 6)
    for b in bills:
        key = _month(b.period_end)
        units[key] = units.get(key, 0) + b.consumption
        if b.estimated:
            estimated.add(key)
    customer: dict[date, int] = {}
    last_billed = max((b.period_end for b in bills), default=None)
    for r in reversed(await tx.readings(contract.contract, newest=6)):
        if r.source != "customer" or r.consumption is None or r.review or _month(r.reading_date) != months[-1]:
            continue
        if last_billed is None or r.reading_date > last_billed:
            customer.setdefault(months[-1], r.consumption)  # the newest one (reversed: newest first)
    out = []
    for m in months:
        if m in units and m not in customer:
            out.append(Month(m, units[m], "estimated" if m in estimated else "read"))
        elif m in customer:
            out.append(Month(m, customer[m], "customer"))
        else:
            out.append(Month(m, None, None))
    return out


def spec(
    *,
    lang: str,
    title: str,
    unit: str,
    months: list[tuple[str, Month]],
    legend: dict[str, str],
    line: tuple[int, str] | None = None,
    band: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """The chart's inputs as JSON (labels already in the customer's language)."""
    return {
        "v": SPEC_VERSION,
        "lang": lang,
        "title": title,
        "unit": unit,
        "bars": [[label, m.units, m.kind] for label, m in months],
        "legend": legend,
        "line": list(line) if line else None,
        "band": list(band) if band else None,
    }


# ---------------------------------------------------------------------- drawing
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shaped(text: str) -> str:
    """Text as the chart draws it: without the core's bidi isolates (they mean nothing in a
    picture). matplotlib (>= 3.11, libraqm inside its wheel) shapes Arabic (joined forms, لا)
    and lays it out right to left itself: text reshaped beforehand would be reversed twice."""
    return _BIDI_CONTROLS.sub("", text)


@cache
def font_path() -> Path:
    """matplotlib's bundled DejaVu Sans: shipped with the package, the same on every machine."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def figure(data: dict[str, Any]) -> Figure:
    """The chart as a matplotlib figure (tests read its bars and texts)."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # (no pyplot: a Figure and its Agg canvas only)
    from matplotlib.artist import Artist
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    font = FontProperties(fname=font_path(), size=10)
    small = FontProperties(fname=font_path(), size=8)
    title = FontProperties(fname=font_path(), size=12, weight="bold")
    rtl = data["lang"] == "ar"
    bars = data["bars"]
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Arabic reads right to left: the oldest month on the right.
    xs = [len(bars) - 1 - i for i in range(len(bars))] if rtl else list(range(len(bars)))
    top = max([u for _, u, _ in bars if u] + [1])
    band, line = data.get("band"), data.get("line")
    if band:
        ax.axhspan(0, band[0], color=BAND_COLOUR, alpha=0.12, linewidth=0, zorder=0)
    if line:
        ax.axhline(line[0], color=LINE_COLOUR, linestyle="--", linewidth=1.2, zorder=3)
    for x, (_, units, kind) in zip(xs, bars, strict=True):
        if units is None or kind is None:
            continue
        ax.bar(
            x,
            units,
            width=0.7,
            color=COLOURS[kind],
            hatch=HATCH.get(kind),
            edgecolor="white" if kind in HATCH else COLOURS[kind],
            linewidth=0,
            zorder=2,
            gid=kind,
        )
        ax.text(x, units, str(units), ha="center", va="bottom", fontproperties=small, zorder=4)
    ceiling = max(top, (line[0] if line else 0), (band[0] if band else 0)) * 1.15
    ax.set_ylim(0, ceiling)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ticks = [t for t in MaxNLocator(nbins=5, integer=True).tick_values(0, ceiling) if 0 <= t <= ceiling]
    ax.set_yticks(ticks, [f"{int(t)}" for t in ticks], fontproperties=font)
    ax.set_xticks(xs, [shaped(label) for label, _, _ in bars], fontproperties=small)
    ax.set_ylabel(shaped(data["unit"]), fontproperties=font)
    if rtl:
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("right")
    ax.set_title(shaped(data["title"]), fontproperties=title)
    for side in ("top", "left" if rtl else "right"):
        ax.spines[side].set_visible(False)
    kinds = {kind for _, u, kind in bars if u is not None and kind}
    legend = data["legend"]
    handles: list[Artist] = [
        Patch(facecolor=COLOURS[k], hatch=HATCH.get(k), edgecolor="white", label=shaped(legend[k]))
        for k in ("read", "estimated", "customer")
        if k in kinds
    ]
    if line:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color=LINE_COLOUR, linestyle="--", label=shaped(line[1])))
    if band:
        handles.append(Patch(facecolor=BAND_COLOUR, alpha=0.12, label=shaped(band[1])))
    if handles:
        if rtl:
            handles.reverse()  # read from the right
        # Under the month labels: never over a bar.
        ax.legend(
            handles=handles,
            prop=small,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=len(handles),
            frameon=False,
        )
    fig.subplots_adjust(left=0.06 if rtl else 0.09, right=0.91 if rtl else 0.98, top=0.9, bottom=0.22)
    return fig


def draw(data: dict[str, Any]) -> bytes:
    """The PNG (WIDTH × HEIGHT): the same bytes for the same spec (no date or version in it)."""
    import io

    buffer = io.BytesIO()
    # zlib level 1: a third of the encoding time of the default 6 for a few KiB more (bench/README.md).
    figure(data).savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


_worker: ThreadPoolExecutor | None = None


async def render(data: dict[str, Any]) -> bytes:
    """`draw` in the one chart thread: a turn waits for its chart, the event loop does not (and
    charts asked at once are drawn one after the other, bounding the CPU and memory they take)."""
    global _worker
    if _worker is None:
        _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
    return await asyncio.get_running_loop().run_in_executor(_worker, draw, data)


async def drawn(replies: list[Reply]) -> list[Reply]:
    """The replies with their pictures drawn (after the turn's commit). A picture that cannot be
    drawn goes as its text alone: the customer still reads what it says."""
    if not any(r.image is not None and not r.image.png for r in replies):
        return replies
    out = []
    for r in replies:
        if r.image is not None and not r.image.png:
            try:
                r = replace(r, image=Image(r.image.spec, r.image.alt, await render(r.image.spec)))
            except Exception:
                log.exception("chart not drawn; its text is sent alone")
                r = replace(r, image=None)
        out.append(r)
    return out
