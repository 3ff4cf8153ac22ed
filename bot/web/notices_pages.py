"""Service notices from the workspace (issue 22): a supervisor writes a notice for a city (works,
a water cut) in Arabic and French, sees how many opted-in customers it will reach (the dry run
of `addad notify`), then confirms; it is queued exactly as `addad notify` queues it
(conversations/reminders.py `queue_notice`: once per customer, the same notice again queues
nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.remind_cli import MAX_NOTICE
from conversations import reminders
from conversations.places import city_label, places_of

from . import core
from .core import PREFIX, requires

SERVICES = ("", "electricity", "water")  # "" = every contract of the city
MAX_CITY = 100  # characters typed in the city field (longer is no city name)


@dataclass
class Draft:
    city: str  # as typed
    service: str
    ar: str
    fr: str
    place: str | None = None  # the profile's name of the city, once recognised


def _draft(form) -> Draft:
    def field(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    return Draft(field("city")[: MAX_CITY * 2], field("service"), field("ar"), field("fr"))


def _problems(request: web.Request, d: Draft) -> list[str]:
    """What is wrong with the draft, in the visitor's language (empty: it can be sent); sets
    `d.place` to the profile's name of the city."""
    tr = core.t(request)
    profile = core.workspace(request).profile
    problems = []
    places = places_of(profile)
    found = None
    if d.city and len(d.city) <= MAX_CITY:
        found = places.named(d.city) or places.find(d.city, expected=True)
    if not d.city:
        problems.append(tr("web.notices.no_city"))
    elif found is None:
        problems.append(tr("web.notices.unknown_city", city=d.city[:MAX_CITY]))
    else:
        d.place = found.name
    if d.service not in SERVICES:
        problems.append(tr("web.notices.bad_service"))
    for lang, text in (("ar", d.ar), ("fr", d.fr)):
        if not text:
            problems.append(tr(f"web.notices.empty_{lang}"))
        elif len(text) > MAX_NOTICE:
            problems.append(tr(f"web.notices.too_long_{lang}", max=MAX_NOTICE, length=len(text)))
    return problems


def _cities(request: web.Request) -> list[str]:
    return sorted({c.name for c in core.workspace(request).profile.cities})


async def _form(request: web.Request, d: Draft, *, status: int = 200, errors: list[str] | None = None, **extra):
    return await core.render(
        request,
        "notices.html",
        status=status,
        d=d,
        errors=errors or [],
        cities=_cities(request),
        max_text=MAX_NOTICE,
        queued=extra.pop("queued", None),
        reached=extra.pop("reached", None),
        preview=extra.pop("preview", None),
        city_shown=extra.pop("city_shown", ""),
    )


@requires("supervisor")
async def page(request: web.Request) -> web.StreamResponse:
    queued = reached = None
    q, r = request.query.get("queued", ""), request.query.get("of", "")
    if q.isdecimal() and r.isdecimal() and len(q) < 10 and len(r) < 10:  # after a confirmation (PRG)
        queued, reached = int(q), int(r)
    return await _form(request, Draft("", "", "", ""), queued=queued, reached=reached)


async def _targets(request: web.Request, d: Draft) -> int:
    ws = core.workspace(request)
    city, service = d.place or d.city, d.service or None
    found = await reminders.queue_notice(
        ws.store, ws.profile, city=city, service=service, text_ar=d.ar, text_fr=d.fr, dry_run=True
    )
    return len(found)


@requires("supervisor")
async def preview(request: web.Request) -> web.StreamResponse:
    d = _draft(await request.post())
    problems = _problems(request, d)
    if problems:
        return await _form(request, d, status=400, errors=problems)
    count = await _targets(request, d)
    tr = core.t(request)
    return await _form(
        request, d, preview=count, city_shown=city_label(core.workspace(request).profile, tr, d.place or d.city)
    )


@requires("supervisor")
async def send(request: web.Request) -> web.StreamResponse:
    d = _draft(await request.post())
    problems = _problems(request, d)
    if problems:
        return await _form(request, d, status=400, errors=problems)
    ws = core.workspace(request)
    reached = await _targets(request, d)
    queued = await reminders.queue_notice(
        ws.store, ws.profile, city=d.place or d.city, service=d.service or None, text_ar=d.ar, text_fr=d.fr
    )
    async with ws.store.transaction() as tx:
        await core.audit(
            tx,
            request,
            "notice_queued",
            details={
                "city": d.place,
                "service": d.service or None,
                "key": reminders.notice_key(d.place or d.city, d.service or None, d.ar, d.fr),
                "queued": len(queued),
                "reached": reached,
            },
            now=ws.clock(),
        )
    raise web.HTTPFound(f"{PREFIX}/notices?queued={len(queued)}&of={reached}")


def setup(app: web.Application) -> None:
    app.router.add_get("/notices", page)
    app.router.add_post("/notices/preview", preview)
    app.router.add_post("/notices/send", send)
    app[core.WORKSPACE].nav.append((f"{PREFIX}/notices", "web.nav.notices", "supervisor"))
