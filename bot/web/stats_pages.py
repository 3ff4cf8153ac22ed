"""Statistics (issue 20): readings per day by channel (an SVG chart), customer readings against
estimates this cycle, requests by kind and status with their decision times, arrears under
plans, linking failures and lockouts, the most frequent unrecognised messages (masked)."""

from __future__ import annotations

from aiohttp import web

from conversations.statistics import DAYS, DECIDED_DAYS, figures

from . import charts, core
from .core import PREFIX, requires

STATUSES = ("pending", "approved", "rejected", "replaced", "cancelled")


@requires("supervisor")
async def page(request: web.Request) -> web.StreamResponse:
    ws = core.workspace(request)
    async with ws.store.snapshot() as tx:
        f = await figures(tx, ws.profile, ws.clock())
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
    )


@requires("supervisor")
async def readings_chart(request: web.Request) -> web.StreamResponse:
    ws = core.workspace(request)
    async with ws.store.snapshot() as tx:
        f = await figures(tx, ws.profile, ws.clock())
    svg = charts.readings_per_day(core.t(request), f.days, f.per_day)
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Content-Security-Policy": charts.CSP})


def setup(app: web.Application) -> None:
    app.router.add_get("/stats", page)
    app.router.add_get("/stats/readings.svg", readings_chart)
    app[core.WORKSPACE].nav.append((f"{PREFIX}/stats", "web.nav.stats", "supervisor"))
