"""Server-side SVG charts of the workspace (pygal: a kept library; no script, nothing remote).
Served as images from the workspace's own routes, each with a CSP of its own (the SVG's styles
are inline)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import pygal
from pygal.style import Style

from conversations.i18n import Translator

# The charts' own CSP: an SVG image needs its inline styles, and nothing else.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#999",
    colors=("#1f6f8b", "#e07a1f", "#5a9e4b", "#8e44ad", "#c0392b"),
    font_family="sans-serif",
)


def _config(**kw) -> pygal.Config:
    settings = {
        "js": [],  # pygal links its tooltips script from a CDN by default: none here
        "style": _STYLE,
        "width": 720,
        "height": 280,
        "explicit_size": True,
        "print_values": False,
        "show_y_guides": True,
        "legend_at_bottom": True,
        "margin": 16,
        "truncate_label": -1,  # "23/11", not "23…"
        **kw,
    }
    return pygal.Config(**settings)


_SCRIPT = re.compile(rb"<script\b.*?</script>", re.S)


def _svg(chart) -> bytes:
    """The chart without the config script pygal always inlines (an image runs no script anyway,
    and the CSP forbids it: nothing is left that could)."""
    return _SCRIPT.sub(b"", chart.render())


def readings_per_day(tr: Translator, days: Sequence[date], per_channel: dict[str, list[int]]) -> bytes:
    chart = pygal.StackedBar(_config(x_label_rotation=0, show_minor_x_labels=False, x_labels_major_every=5))
    chart.title = tr("web.stats.readings_chart")
    chart.x_labels = [d.strftime("%d/%m") for d in days]
    for channel in sorted(per_channel):
        chart.add(channel, per_channel[channel])
    if not per_channel:
        chart.add("-", [0] * len(days))
    return _svg(chart)


def consumption(tr: Translator, points: Sequence[tuple[date, int | None, str]], unit: str) -> bytes:
    """A contract's consumption per reading (date, units, source), oldest first."""
    chart = pygal.Bar(_config(height=220, show_legend=True))
    chart.title = tr("web.review.chart_title", unit=unit)
    chart.x_labels = [d.strftime("%m/%Y") for d, _, _ in points]
    for source in ("actual", "estimated", "customer"):
        values = [u if s == source else None for _, u, s in points]
        if any(v is not None for v in values):
            chart.add(tr(f"web.review.source_{source}"), values)
    return _svg(chart)
