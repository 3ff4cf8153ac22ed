"""Sign-in, sign-out, the language switch and the workspace's home."""

from __future__ import annotations

from datetime import timedelta
from math import ceil

from aiohttp import web

from conversations.i18n import LANGS

from . import accounts, core
from .app import set_cookie
from .core import PREFIX, public, requires


def _next(target: str | None) -> str:
    """Where to go after signing in: a workspace page only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


@public
async def signin_page(request: web.Request) -> web.StreamResponse:
    if core.ACCOUNT in request:
        raise web.HTTPFound(_next(request.query.get("next")))
    return await core.render(request, "signin.html", next=_next(request.query.get("next")), error=None, name="")


@public
async def signin(request: web.Request) -> web.StreamResponse:
    ws = core.workspace(request)
    form = await request.post()
    name = str(form.get("name", ""))[:64]
    password = str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    address = core.client_address(request)
    now = ws.clock()
    tr = core.t(request)
    result = await accounts.sign_in(ws.store, name, password, address, now=now)
    if result.account is None:
        async with ws.store.transaction() as tx:
            await tx.audit(
                "web_signin_" + ("throttled" if result.outcome == "throttled" else "failed"),
                actor=f"web:{name.strip().lower() or '-'}",
                channel="web",
                details={"address": address},
                now=now,
            )
        if result.outcome == "throttled" and result.retry_at is not None:
            minutes = max(1, ceil((result.retry_at - now).total_seconds() / 60))
            error, status = tr.n("web.signin.throttled", minutes), 429
        else:
            error, status = tr("web.signin.wrong"), 401
        return await core.render(request, "signin.html", status=status, next=target, error=error, name=name)
    token = accounts.new_session_token()
    expires = now + timedelta(hours=ws.session_hours)
    async with ws.store.transaction() as tx:
        await tx.add_web_session(ws.keyed("session", token), result.account.name, address, expires_at=expires, now=now)
        await tx.end_web_sessions(now=now)  # (the expired ones)
        await tx.audit(
            "web_signin", actor=core.actor(result.account), channel="web", details={"address": address}, now=now
        )
    response = web.HTTPFound(target)
    set_cookie(request, response, core.SESSION_COOKIE, token, int(ws.session_hours * 3600))
    response.del_cookie(core.PRESESSION_COOKIE, path=PREFIX)
    raise response


@requires("agent")
async def signout(request: web.Request) -> web.StreamResponse:
    ws = core.workspace(request)
    async with ws.store.transaction() as tx:
        await tx.end_web_sessions(token_hash=ws.keyed("session", request[core.SESSION_TOKEN]), now=ws.clock())
        await core.audit(tx, request, "web_signout")
    response = web.HTTPFound(f"{PREFIX}/signin")
    response.del_cookie(core.SESSION_COOKIE, path=PREFIX)
    raise response


@public
async def choose_lang(request: web.Request) -> web.StreamResponse:
    """The language switch: a preference cookie, then back to the page."""
    chosen = request.match_info["lang"]
    if chosen not in LANGS:
        raise web.HTTPNotFound()
    response = web.HTTPFound(_next(request.query.get("next")))
    set_cookie(request, response, core.LANG_COOKIE, chosen, 3600 * 24 * 365)
    raise response


@requires("agent")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/requests")


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    app.router.add_get("/lang/{lang}", choose_lang)


__all__ = ["setup"]
