"""The human handoff (issue 20): the queue of chats whose customer asked for an adviser, and a
chat's page: its recent conversation (masked), the agent's messages sent through the bot, the
hand-back (conversations/handoff.py)."""

from __future__ import annotations

from aiohttp import web

from conversations import handoff
from conversations.handoff import MAX_AGENT_TEXT, HandoffError

from . import core
from .core import PREFIX, requires


@requires("agent")
async def queue(request: web.Request) -> web.StreamResponse:
    ws = core.workspace(request)
    now = ws.clock()
    async with ws.store.snapshot() as tx:
        rows = await tx.handoffs()
    if any(handoff.idle(h, now, ws.profile) for h in rows):  # chats whose agent went silent: closed first (a write)
        async with ws.store.transaction() as tx:
            rows = await handoff.queue(tx, now, ws.profile)
    return await core.render(
        request, "handoffs.html", rows=rows, me=core.actor(core.account(request)), done=request.query.get("done", "")
    )


async def _page(
    request: web.Request, handoff_id: int, *, status: int = 200, error: str | None = None, text: str = ""
) -> web.Response:
    tr = core.t(request)
    async with core.store(request).snapshot() as tx:
        h = await tx.handoff(handoff_id)
        if h is None:
            return await core.render(request, "error.html", status=404, message=tr("web.handoff.unknown"))
        lines = await handoff.conversation(tx, h, profile=core.workspace(request).profile)
    return await core.render(
        request,
        "handoff.html",
        status=status,
        h=h,
        lines=lines,
        mine=h.status == "taken" and h.taken_by == core.actor(core.account(request)),
        dismissed=handoff.dismissed(h),
        error=error,
        text=text,
        done=request.query.get("done", ""),
        max_text=MAX_AGENT_TEXT,
    )


@requires("agent")
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request, core.row_id(request))


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    tr = core.t(request)
    handoff_id = core.row_id(request)
    data = await request.post()
    text = str(data.get("text", ""))
    ws = core.workspace(request)
    who = core.actor(core.account(request))
    try:
        async with ws.store.transaction() as tx:
            if action == "take":
                await handoff.take(tx, handoff_id, actor=who, now=ws.clock(), profile=ws.profile)
            elif action == "say":
                await handoff.say(tx, handoff_id, text, actor=who, now=ws.clock(), profile=ws.profile)
            elif action == "dismiss":
                await handoff.dismiss(tx, handoff_id, actor=who, now=ws.clock())
            else:
                await handoff.hand_back(tx, handoff_id, actor=who, now=ws.clock())
    except HandoffError as exc:
        if exc.code == "unknown":
            return await core.render(request, "error.html", status=404, message=tr("web.handoff.unknown"))
        async with ws.store.snapshot() as tx:
            h = await tx.handoff(handoff_id)
        key = {"empty": "web.handoff.empty", "too_long": "web.handoff.too_long"}.get(exc.code)
        if key:
            message = tr(key, max=MAX_AGENT_TEXT)
        elif h is not None and h.status == "taken":
            message = tr("web.handoff.taken_by", who=(h.taken_by or "").removeprefix("web:"))
        elif h is not None and h.status == "closed":
            message = tr("web.handoff.closed")
        else:
            message = tr("web.handoff.take_first")
        return await _page(request, handoff_id, status=409, error=message, text=text[:MAX_AGENT_TEXT])
    if action in ("back", "dismiss"):
        raise web.HTTPFound(f"{PREFIX}/handoffs?done={action}")
    raise web.HTTPFound(f"{PREFIX}/handoffs/{handoff_id}?done={action}")


@requires("agent")
async def take(request: web.Request) -> web.StreamResponse:
    return await _act(request, "take")


@requires("agent")
async def say(request: web.Request) -> web.StreamResponse:
    return await _act(request, "say")


@requires("agent")
async def back(request: web.Request) -> web.StreamResponse:
    return await _act(request, "back")


@requires("agent")
async def dismiss(request: web.Request) -> web.StreamResponse:
    return await _act(request, "dismiss")


def setup(app: web.Application) -> None:
    app.router.add_get("/handoffs", queue)
    app.router.add_get("/handoffs/{id}", show)
    app.router.add_post("/handoffs/{id}/take", take)
    app.router.add_post("/handoffs/{id}/say", say)
    app.router.add_post("/handoffs/{id}/back", back)
    app.router.add_post("/handoffs/{id}/close", dismiss)
    app[core.WORKSPACE].nav.append((f"{PREFIX}/handoffs", "web.nav.handoffs", "agent"))
