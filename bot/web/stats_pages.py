"""Statistics (issue 20): readings per day by channel (an SVG chart), customer readings against
estimates this cycle, requests by kind and status with their decision times, arrears under
plans, linking failures and lockouts, the most frequent unrecognised messages (masked)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from conversations.statistics import DAYS, DECIDED_DAYS, Figures, figures

from . import charts, core
from .core import PREFIX, requires

STATUSES = ("pending", "approved", "rejected", "replaced", "cancelled")
# The figures are counted over a month of a distributor's data (~0.3 s on 100k contracts): kept
# for a minute per workspace, shared by the page and its chart, so a page view costs a render.
FRESH_FOR = timedelta(seconds=60)
_KEPT = web.AppKey("stats_figures", dict)


async def _figures(request: web.Request) -> Figures:
    ws = core.workspace(request)
    kept = request.config_dict[_KEPT]
    now = ws.clock()
    if kept.get("figures") is None or not (kept["at"] <= now < kept["at"] + FRESH_FOR):
        async with ws.store.snapshot() as tx:
            kept["figures"] = await figures(tx, ws.profile, now)
        kept["at"] = now
    return kept["figures"]


@requires("supervisor")
async def page(request: web.Request) -> web.StreamResponse:
    f = await _figures(request)
    share = f.customer_share
    return await core.render(
        request,
        "stats.html",
        f=f,
        statuses=STATUSES,
        share=None if share is None else round(share * 100),
        days=DAYS,
        decided_days=DECIDED_DAYS,
        total_per_day=[sum(f.per_day[c][i] for c in f.channels) for i in range(len(f.days))],
        counted_at=request.config_dict[_KEPT]["at"],
    )


@requires("supervisor")
async def readings_chart(request: web.Request) -> web.StreamResponse:
    f = await _figures(request)
    svg = charts.readings_per_day(core.t(request), f.days, f.per_day)
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Content-Security-Policy": charts.CSP})


def setup(app: web.Application) -> None:
    app[_KEPT] = {}
    app.router.add_get("/stats", page)
    app.router.add_get("/stats/readings.svg", readings_chart)
    app[core.WORKSPACE].nav.append((f"{PREFIX}/stats", "web.nav.stats", "supervisor"))
