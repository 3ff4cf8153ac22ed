"""The requests: the queue (counts, filters, oldest first), a request's page, the decision
(conversations.backoffice.decide, as `addad requests approve|reject`) and the reassignment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from conversations.backoffice import BackOfficeError, decide
from storage.csvio import mask_phone
from storage.records import Request

from . import core
from .core import PREFIX, requires

KINDS = ("deferral", "instalment", "prepaid_advance", "prepaid_visit", "callback")
STATUSES = ("pending", "approved", "rejected", "replaced", "cancelled")
PAGE_SIZE = 50
MAX_NOTE = 1000  # characters; the customer reads it in a chat message
MAX_AGE_DAYS = 3650


def age_text(request: web.Request, since: datetime) -> str:
    """`3 jours` / `5 heures` since `since`, on the workspace's clock."""
    tr = core.t(request)
    seconds = max((core.now(request) - since).total_seconds(), 0)
    if seconds >= 86400:
        return tr.n("web.age.days", int(seconds // 86400))
    if seconds >= 3600:
        return tr.n("web.age.hours", int(seconds // 3600))
    return tr("web.age.now")


def _filters(request: web.Request) -> tuple[dict[str, Any], list[str]]:
    """The queue's filters from the query, and a message for each one that cannot be used."""
    tr = core.t(request)
    q = request.query
    chosen: dict[str, Any] = {"kind": "", "status": "pending", "city": "", "age": ""}
    problems = []
    kind = q.get("kind", "")
    if kind and kind not in KINDS:
        problems.append(tr("web.requests.bad_kind"))
    else:
        chosen["kind"] = kind
    status = q.get("status", "pending")
    if status and status not in STATUSES:
        problems.append(tr("web.requests.bad_status"))
    else:
        chosen["status"] = status
    city = q.get("city", "").strip()
    if len(city) > 100:
        problems.append(tr("web.search.too_long", max=100))
    else:
        chosen["city"] = city
    age = q.get("age", "").strip()
    if age:
        if age.isdecimal() and int(age) <= MAX_AGE_DAYS:
            chosen["age"] = age
        else:
            problems.append(tr("web.requests.bad_age"))
    try:
        chosen["page"] = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        chosen["page"] = 1
    return chosen, problems


@requires("agent")
async def queue(request: web.Request) -> web.StreamResponse:
    chosen, problems = _filters(request)
    now = core.now(request)
    async with core.store(request).snapshot() as tx:
        counts = await tx.request_counts()
        cities = await tx.request_cities()
        rows, total = await tx.request_queue(
            kinds=[chosen["kind"]] if chosen["kind"] else None,
            status=chosen["status"] or None,
            city=chosen["city"] or None,
            filed_before=now - timedelta(days=int(chosen["age"])) if chosen["age"] else None,
            limit=PAGE_SIZE,
            offset=(chosen["page"] - 1) * PAGE_SIZE,
        )
    table: dict[str, dict[str, int]] = {}
    for kind, status, count in counts:
        table.setdefault(kind, {})[status] = count
    return await core.render(
        request,
        "requests.html",
        rows=rows,
        total=total,
        counts=table,
        kinds=KINDS,
        statuses=STATUSES,
        cities=cities,
        chosen=chosen,
        problems=problems,
        pages=max(1, -(-total // PAGE_SIZE)),
        age=lambda since: age_text(request, since),
    )


def usual_bill(bills) -> int | None:
    """The customer's usual bill: the median amount of the last six (None without bills)."""
    amounts = sorted(b.amount for b in bills[:6])
    if not amounts:
        return None
    middle = len(amounts) // 2
    return amounts[middle] if len(amounts) % 2 else (amounts[middle - 1] + amounts[middle]) // 2


async def _request_page(
    request: web.Request, reference: str, *, status: int = 200, error: str | None = None, note: str = ""
) -> web.Response:
    tr = core.t(request)
    acct = core.account(request)
    async with core.store(request).snapshot() as tx:
        req = await tx.request(reference)
        if req is None:
            return await core.render(
                request, "error.html", status=404, message=tr("web.request.unknown", reference=reference[:40])
            )
        contract = await tx.contract(req.contract) if req.contract else None
        bills = await tx.bills(req.contract, limit=12) if req.contract else []
        history: list[Request] = await tx.requests(contract=req.contract) if req.contract else []
        decisions = (
            [e for e in await tx.audit_entries(contract=req.contract) if e["action"].startswith(("request_", "web_"))]
            if req.contract and core.has_role(acct, "supervisor")
            else []
        )
        assignee = await tx.request_assignee(reference)
        accounts = [a for a in await tx.accounts() if not a.disabled] if core.has_role(acct, "supervisor") else []
    usual = usual_bill(bills)
    unpaid = [b for b in bills if b.unpaid]
    phone = req.details.get("phone") or (contract.phone if contract else None)
    return await core.render(
        request,
        "request.html",
        status=status,
        req=req,
        contract=contract,
        phone=mask_phone(phone) if phone else None,  # in full on the customer's page, for supervisors
        bills=bills,
        unpaid=unpaid,
        arrears=sum(b.due for b in unpaid),
        usual=usual,
        history=[r for r in history if r.reference != req.reference],
        decisions=decisions,
        assignee=assignee,
        accounts=accounts,
        error=error,
        note=note,
        done=request.query.get("done", ""),
        age=age_text(request, req.created_at),
        kind_label=tr(f"request.kind_{req.kind}"),
        ratio=lambda amount: f"{amount * 100 // usual} %" if usual else "",
    )


@requires("agent")
async def show(request: web.Request) -> web.StreamResponse:
    return await _request_page(request, request.match_info["reference"].strip().upper()[:40])


@requires("agent")
async def decide_request(request: web.Request) -> web.StreamResponse:
    """Approve or reject: all of it in one transaction (status, the customer's message, the audit
    entry), or nothing with the reason on the page."""
    tr = core.t(request)
    reference = request.match_info["reference"].strip().upper()[:40]
    form = await request.post()
    decision = str(form.get("decision", ""))
    note = str(form.get("note", "")).strip()
    if decision not in ("approved", "rejected"):
        return await _request_page(request, reference, status=400, error=tr("web.request.bad_decision"), note=note)
    if len(note) > MAX_NOTE:
        return await _request_page(
            request, reference, status=400, error=tr("web.request.note_too_long", max=MAX_NOTE), note=note[:MAX_NOTE]
        )
    if decision == "rejected" and not note:
        return await _request_page(request, reference, status=400, error=tr("web.request.note_needed"))
    ws = core.workspace(request)
    acct = core.account(request)
    now = ws.clock()
    try:
        async with ws.store.transaction() as tx:
            req = await tx.request(reference)
            if req is None:
                return await core.render(
                    request, "error.html", status=404, message=tr("web.request.unknown", reference=reference)
                )
            if req.status != "pending":
                raise BackOfficeError(req.status)
            await decide(tx, reference, decision, note=note or None, actor=core.actor(acct), now=now)
    except BackOfficeError:
        async with ws.store.snapshot() as tx:
            current = await tx.request(reference)
        if current is None:
            raise web.HTTPNotFound() from None
        if current.decided_by:
            who = current.decided_by.removeprefix("web:")
            when = ws.profile.local(current.decided_at).strftime("%Y-%m-%d %H:%M") if current.decided_at else ""
            message = tr(
                "web.request.already_decided",
                status=tr(f"request.status_{current.status}"),
                who=who,
                when=when,
            )
        else:
            message = tr("web.request.not_pending", status=tr(f"request.status_{current.status}"))
        return await _request_page(request, reference, status=409, error=message, note=note)
    raise web.HTTPFound(f"{PREFIX}/requests/{reference}?done={decision}")


@requires("supervisor")
async def assign(request: web.Request) -> web.StreamResponse:
    """A supervisor gives a request to an agent (or to nobody)."""
    tr = core.t(request)
    reference = request.match_info["reference"].strip().upper()[:40]
    form = await request.post()
    target = str(form.get("account", "")).strip().lower()[:64] or None
    ws = core.workspace(request)
    async with ws.store.snapshot() as tx:
        known = await tx.request(reference) is not None
        found = await tx.account(target) if target is not None else None
    if not known:
        return await core.render(
            request, "error.html", status=404, message=tr("web.request.unknown", reference=reference)
        )
    if target is not None and (found is None or found.disabled):
        return await _request_page(request, reference, status=400, error=tr("web.request.bad_account"))
    async with ws.store.transaction() as tx:
        req = await tx.request(reference)
        before = await tx.request_assignee(reference)
        await tx.assign_request(reference, target, now=ws.clock())
        await core.audit(
            tx,
            request,
            "web_request_assigned",
            contract=req.contract if req else None,
            details={"reference": reference, "from": before, "to": target},
        )
    raise web.HTTPFound(f"{PREFIX}/requests/{reference}?done=assigned")


def setup(app: web.Application) -> None:
    app.router.add_get("/requests", queue)
    app.router.add_get("/requests/{reference}", show)
    app.router.add_post("/requests/{reference}/decide", decide_request)
    app.router.add_post("/requests/{reference}/assign", assign)
