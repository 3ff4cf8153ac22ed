"""Customers: the search (contract number, phone, name), a customer's page (linked chats,
readings, requests, bills) and the CSV downloads of the exports (storage/csvio.py, streamed)."""

from __future__ import annotations

import asyncio
import io
import re
from typing import cast

from aiohttp import web

from storage.csvio import export_readings, export_requests, mask_phone
from storage.values import ValueProblem, normalize_phone, parse_iso_date

from . import core
from .core import requires

MAX_QUERY = 100  # characters: longer is no contract, phone or name
_DIGITS = re.compile(r"^\d{1,20}$")


def _mask_chat(user_id: str) -> str:
    """A chat's id partly hidden (a Telegram id or a WhatsApp number is personal data too)."""
    return user_id[:3] + "•" * max(len(user_id) - 5, 2) + user_id[-2:] if len(user_id) > 5 else "•••"


@requires("agent")
async def search(request: web.Request) -> web.StreamResponse:
    tr = core.t(request)
    query = request.query.get("q", "")
    error = None
    found = []
    if len(query) > MAX_QUERY:
        error, query = tr("web.search.too_long", max=MAX_QUERY), ""
    query = query.strip()
    if query:
        async with core.store(request).snapshot() as tx:
            compact = re.sub(r"[\s.\-]", "", query)
            if _DIGITS.match(compact) and not compact.startswith(("0", "212", "00")):
                found = await tx.search_contracts(number=compact)
            else:
                try:
                    phone = normalize_phone(query)
                except ValueProblem:
                    phone = None
                if phone:
                    found = await tx.search_contracts(phone=phone)
                if not found and _DIGITS.match(compact):
                    found = await tx.search_contracts(number=compact)
                if not found and not phone:
                    found = await tx.search_contracts(name=query)
        if not found:
            error = tr("web.search.nothing", query=query)
    acct = core.account(request)
    return await core.render(
        request,
        "customers.html",
        query=query,
        found=found,
        error=error,
        phone=lambda p: p if core.has_role(acct, "supervisor") else mask_phone(p),
    )


@requires("agent")
async def customer(request: web.Request) -> web.StreamResponse:
    tr = core.t(request)
    number = request.match_info["contract"].strip()[:20]
    acct = core.account(request)
    async with core.store(request).snapshot() as tx:
        contract = await tx.contract(number)
        if contract is None:
            return await core.render(
                request, "error.html", status=404, message=tr("web.customer.unknown", contract=number)
            )
        links = await tx.links_of_contract(number)
        readings = await tx.readings(number, newest=12, include_replaced=True)
        requests = await tx.requests(contract=number)
        bills = await tx.bills(number, limit=12)
        others = [c for c in await tx.contracts_with_phone(contract.phone) if c.contract != number]
    personal = core.has_role(acct, "supervisor")
    return await core.render(
        request,
        "customer.html",
        contract=contract,
        phone=contract.phone if personal else mask_phone(contract.phone),
        links=links,
        chat_id=(lambda u: u) if personal else _mask_chat,
        readings=list(reversed(readings)),
        requests=list(reversed(requests)),
        bills=bills,
        others=others,
        arrears=sum(b.due for b in bills if b.unpaid),
    )


class _Chunks(io.TextIOBase):
    """A text stream whose writes are queued for the HTTP response (csvio writes synchronously)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def take(self) -> bytes:
        data, self.parts = "".join(self.parts).encode(), []
        return data


@requires("supervisor")
async def export(request: web.Request) -> web.StreamResponse:
    """`addad export readings|requests` as a download, written as the cursor returns rows: the
    export runs in a task and the response sends what it has written between batches."""
    tr = core.t(request)
    kind = request.match_info["kind"]
    since = None
    if kind not in ("readings", "requests"):
        raise web.HTTPNotFound()
    if request.query.get("since"):
        try:
            since = parse_iso_date(request.query["since"][:20])
        except ValueProblem:
            return await core.render(request, "error.html", status=400, message=tr("web.export.bad_date"))
    status = request.query.get("status") or None
    if status not in (None, "pending", "approved", "rejected"):
        return await core.render(request, "error.html", status=400, message=tr("web.requests.bad_status"))
    ws = core.workspace(request)
    async with ws.store.transaction() as tx:
        await core.audit(tx, request, "web_export", details={"kind": kind, "since": str(since or ""), "status": status})
    day = ws.profile.today(ws.clock()).isoformat()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="addad-{kind}-{day}.csv"',
        }
    )
    await response.prepare(request)
    out = _Chunks()
    done = asyncio.Event()

    async def produce() -> None:
        try:
            async with ws.store.snapshot() as snap:
                stream = cast(io.TextIOBase, out)
                if kind == "readings":
                    await export_readings(snap, stream, since=since)
                else:
                    await export_requests(snap, stream, status=status)  # the callback phone masked
        finally:
            done.set()

    task = asyncio.create_task(produce())
    finished = asyncio.ensure_future(done.wait())
    while True:
        ended, _ = await asyncio.wait([finished], timeout=0.05)
        chunk = out.take()
        if chunk:
            await response.write(chunk)
        if ended:
            break
    await task  # (re-raises a failed export: the download ends short rather than looking complete)
    await response.write_eof()
    return response


@requires("supervisor")
async def exports_page(request: web.Request) -> web.StreamResponse:
    return await core.render(request, "exports.html")


def setup(app: web.Application) -> None:
    app.router.add_get("/customers", search)
    app.router.add_get("/customers/{contract}", customer)
    app.router.add_get("/exports", exports_page)
    app.router.add_get("/exports/{kind}.csv", export)
