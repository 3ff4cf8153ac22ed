"""Readings to review (issue 20): the flagged customer readings, a reading's page (the meter
photo beside the typed index, the last readings and a consumption chart), and the review itself
(conversations/review.py, as `addad readings review`): accept, correct the index, or reject
with a message to the customer."""

from __future__ import annotations

from aiohttp import web

from conversations.review import OUTCOMES, ReviewError, parse_index, review
from storage.media import MediaFiles
from storage.review_records import ReviewItem
from storage.values import ValueProblem, parse_iso_date

from . import charts, core
from .core import PREFIX, requires

MAX_NOTE = 500  # characters; the customer reads it in a chat message
PAGE = 100  # readings listed at once (the oldest waiting first)
HISTORY = 13  # readings shown and charted (a year of monthly readings and this one)
_FORMATS = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"RIFF": "image/webp"}


@requires("agent")
async def queue(request: web.Request) -> web.StreamResponse:
    tr = core.t(request)
    show_all = request.query.get("all") == "1"
    since_text = request.query.get("since", "").strip()[:20]
    problems, since = [], None
    if since_text:
        try:
            since = parse_iso_date(since_text)
        except ValueProblem:
            problems.append(tr("web.readings.bad_since"))
    async with core.store(request).snapshot() as tx:
        # The oldest waiting first; when everything is listed, the newest first.
        items = await tx.review_items(flagged=not show_all, since=since, limit=PAGE, newest_first=show_all)
    return await core.render(
        request,
        "readings.html",
        items=items,
        show_all=show_all,
        page_size=PAGE,
        since=since_text,
        problems=problems,
        flag_label=lambda item, flag: _flag(tr, item, flag),
    )


def _flag(tr, item: ReviewItem, flag: str) -> str:
    if flag == "replaces":
        return tr("web.readings.flag_replaces", reference=item.replaces_reference or "")
    seen = item.reading.details.get("ocr") if flag in ("ocr", "outlier") else None
    if isinstance(seen, dict) and "read" in seen:  # the photo shows another index (issue 21)
        return tr("web.readings.flag_ocr", read=seen["read"], typed=seen.get("typed", item.reading.index_value))
    if flag in ("outlier", "rollover"):
        return tr(f"web.readings.flag_{flag}")
    return flag


async def _history(tx, item: ReviewItem) -> list[tuple]:
    """The contract's last readings with the use since the one before (across zero if the
    dials wrapped): (reading, units or None)."""
    readings = await tx.readings(item.reading.contract, newest=HISTORY + 1)
    if all(r.id != item.reading.id for r in readings):
        readings.append(item.reading)  # a rejected or replaced reading, shown where it stands
        readings.sort(key=lambda r: (r.reading_date, r.id))
    limit = 10**item.meter_digits
    out, previous = [], None
    for r in readings:
        units = r.consumption
        if units is None and previous is not None:
            units = (r.index_value - previous.index_value) % limit
        out.append((r, units))
        if r.status == "valid":
            previous = r
    return out[-HISTORY:]


async def _page(
    request: web.Request, reading_id: int, *, status: int = 200, error: str | None = None, form: dict | None = None
) -> web.Response:
    tr = core.t(request)
    async with core.store(request).snapshot() as tx:
        item = await tx.review_item(reading_id)
        if item is None:
            return await core.render(
                request, "error.html", status=404, message=tr("web.readings.unknown", id=reading_id)
            )
        history = await _history(tx, item)
        contract = await tx.contract(item.reading.contract)
    return await core.render(
        request,
        "reading.html",
        status=status,
        item=item,
        r=item.reading,
        contract=contract,
        history=history,
        unit=tr(f"unit.{item.service}"),
        flags=[_flag(tr, item, f) for f in item.flags],
        has_photo=bool(item.reading.photo_sha256 and core.workspace(request).media_dir),
        error=error,
        form=form or {},
        done=request.query.get("done", ""),
        max_note=MAX_NOTE,
    )


@requires("agent")
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request, core.row_id(request))


_ERRORS = {
    "unknown": "web.readings.unknown",
    "reviewed": "web.readings.already_reviewed",
    "replaced": "web.readings.replaced",
    "note_needed": "web.readings.note_needed",
    "index_digits": "web.readings.index_digits",
    "index_range": "web.readings.index_range",
    "index_same": "web.readings.index_same",
}


@requires("agent")
async def decide(request: web.Request) -> web.StreamResponse:
    """One review in one transaction, or none with the reason on the page."""
    tr = core.t(request)
    reading_id = core.row_id(request)
    data = await request.post()
    outcome = str(data.get("outcome", ""))
    note = str(data.get("note", "")).strip()
    index_text = str(data.get("index", "")).strip()[:40]
    form = {"outcome": outcome, "note": note[:MAX_NOTE], "index": index_text}
    if outcome not in OUTCOMES:
        return await _page(request, reading_id, status=400, error=tr("web.readings.bad_outcome"), form=form)
    if len(note) > MAX_NOTE:
        return await _page(
            request, reading_id, status=400, error=tr("web.readings.note_too_long", max=MAX_NOTE), form=form
        )
    ws = core.workspace(request)
    acct = core.account(request)
    try:
        index = parse_index(index_text) if outcome == "corrected" else None
        async with ws.store.transaction() as tx:
            await review(
                tx,
                reading_id,
                outcome,
                actor=core.actor(acct),
                profile=ws.profile,
                note=note,
                index=index,
                now=ws.clock(),
            )
    except ReviewError as exc:
        message = await _error_text(request, reading_id, exc)
        return await _page(request, reading_id, status=409 if exc.code == "reviewed" else 400, error=message, form=form)
    raise web.HTTPFound(f"{PREFIX}/readings/{reading_id}?done={outcome}")


async def _error_text(request: web.Request, reading_id: int, exc: ReviewError) -> str:
    tr = core.t(request)
    if exc.code == "reviewed":  # reviewed meanwhile by someone else: who, when, what
        async with core.store(request).snapshot() as tx:
            item = await tx.review_item(reading_id)
        if item is not None and item.outcome:
            return tr(
                "web.readings.already_reviewed",
                outcome=tr(f"web.readings.outcome_{item.outcome}"),
                who=(item.reviewed_by or "").removeprefix("web:"),
                when=core.workspace(request).profile.local(item.reviewed_at).strftime("%Y-%m-%d %H:%M")
                if item.reviewed_at
                else "",
            )
    if exc.code == "index_range":
        async with core.store(request).snapshot() as tx:
            item = await tx.review_item(reading_id)
        return tr("web.readings.index_range", max=10 ** (item.meter_digits if item else 1) - 1)
    return tr(_ERRORS.get(exc.code, "web.error.bad_request"), id=reading_id)


@requires("agent")
async def photo(request: web.Request) -> web.StreamResponse:
    """The meter photo of a reading, to a signed-in account only (never a static file)."""
    reading_id = core.row_id(request)
    ws = core.workspace(request)
    async with ws.store.snapshot() as tx:
        item = await tx.review_item(reading_id)
    if item is None or not item.reading.photo_sha256 or ws.media_dir is None:
        raise web.HTTPNotFound()
    path = MediaFiles(ws.media_dir).path(item.reading.photo_sha256)
    try:
        data = path.read_bytes()
    except OSError:
        raise web.HTTPNotFound() from None
    kind = next((mime for magic, mime in _FORMATS.items() if data.startswith(magic)), "application/octet-stream")
    return web.Response(body=data, content_type=kind, headers={"Cache-Control": "private, no-store"})


@requires("agent")
async def chart(request: web.Request) -> web.StreamResponse:
    """The contract's consumption per reading, as an SVG image."""
    tr = core.t(request)
    reading_id = core.row_id(request)
    async with core.store(request).snapshot() as tx:
        item = await tx.review_item(reading_id)
        if item is None:
            raise web.HTTPNotFound()
        history = await _history(tx, item)
    points = [(r.reading_date, units, r.source) for r, units in history if r.status == "valid" or r.id == reading_id]
    svg = charts.consumption(tr, points, tr(f"unit.{item.service}"))
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Content-Security-Policy": charts.CSP})


def setup(app: web.Application) -> None:
    app.router.add_get("/readings", queue)
    app.router.add_get("/readings/{id}", show)
    app.router.add_post("/readings/{id}/review", decide)
    app.router.add_get("/readings/{id}/photo", photo)
    app.router.add_get("/readings/{id}/chart.svg", chart)
    app[core.WORKSPACE].nav.append((f"{PREFIX}/readings", "web.nav.readings", "agent"))
