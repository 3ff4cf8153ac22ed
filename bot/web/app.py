"""The workspace application: middlewares (security headers, the session, CSRF, error pages)
and the page modules, mounted under /web by `addad web` and `addad serve`."""

from __future__ import annotations

import importlib
import logging
import secrets
from pathlib import Path

from aiohttp import web

from conversations.profile import Profile
from storage import Store
from storage.clock import Clock

from . import core
from .core import PREFIX, Workspace

log = logging.getLogger("bot.web")

# The page modules, in nav order. Each exposes `setup(app: web.Application) -> None`, which adds
# its routes (relative to /web) and may append to `app[WORKSPACE].nav`. Add yours here.
PAGES = (
    "bot.web.auth",
    "bot.web.requests_pages",
    "bot.web.customers",
    "bot.web.review_pages",
    "bot.web.handoff_pages",
    "bot.web.stats_pages",
    "bot.web.notices_pages",
)

SECRET_SETTING = "web_secret"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


async def resolve_secret(store: Store, configured: str | None) -> bytes:
    """ADDAD_WEB_SECRET, else a key generated on first use and kept in the database (every
    process on the database then signs the same cookies)."""
    if configured:
        return configured.encode()
    async with store.transaction() as tx:
        kept = await tx.set_workspace_setting(SECRET_SETTING, secrets.token_urlsafe(32), if_absent=True)
    return kept.encode()


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies over HTTPS (directly, or through a proxy on this machine that says so), and
    to localhost, which browsers count as a secure origin; a plain-HTTP address elsewhere would
    never get its cookie back (put HTTPS in front of it)."""
    if core.behind_local_proxy(request) and request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return True
    return request.secure or (request.url.host or "") in _LOCAL_HOSTS


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


@web.middleware
async def headers_middleware(request: web.Request, handler: core.Handler) -> web.StreamResponse:
    response = await handler(request)
    for key, value in HEADERS.items():
        response.headers.setdefault(key, value)
    if not request.path.startswith(f"{PREFIX}/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages hold personal data
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: core.Handler) -> web.StreamResponse:
    """Every failure as a page in the visitor's language: never a traceback, never a bare 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404 and core.ACCOUNT not in request:
            raise web.HTTPFound(core.signin_url(request)) from None  # signed out, no page says what exists
        key = {403: "web.error.forbidden", 404: "web.error.not_found", 405: "web.error.method"}.get(
            exc.status, "web.error.bad_request"
        )
        return await core.render(request, "error.html", status=exc.status, message=core.t(request)(key))
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return await core.render(request, "error.html", status=500, message=core.t(request)("web.error.internal"))


@web.middleware
async def session_middleware(request: web.Request, handler: core.Handler) -> web.StreamResponse:
    """Who is signed in (request["account"]); the CSRF check of every POST, before its handler."""
    ws = core.workspace(request)
    token = request.cookies.get(core.SESSION_COOKIE)
    if token and len(token) <= 128:
        async with ws.store.snapshot() as tx:
            acct = await tx.web_session(ws.keyed("session", token), now=ws.clock())
        if acct is not None:
            request[core.ACCOUNT] = acct
            request[core.SESSION_TOKEN] = token
    pre = request.cookies.get(core.PRESESSION_COOKIE)
    fresh_pre = not pre or len(pre) > 128
    request[core.PRESESSION] = secrets.token_urlsafe(24) if fresh_pre or pre is None else pre
    if request.method == "POST":
        form = await request.post()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not secrets.compare_digest(sent, core.csrf_token(request)):
            log.warning("web: %s %s refused: no valid CSRF token", request.method, request.path)
            return await core.render(request, "error.html", status=403, message=core.t(request)("web.error.csrf"))
    response = await handler(request)
    if fresh_pre and core.ACCOUNT not in request and not response.prepared:
        set_cookie(request, response, core.PRESESSION_COOKIE, request[core.PRESESSION], 3600 * 12)
    return response


def make_app(
    store: Store,
    profile: Profile,
    *,
    clock: Clock,
    secret: bytes,
    media_dir: Path | None = None,
) -> web.Application:
    """The workspace, to mount at /web: `root.add_subapp(PREFIX, make_app(...))`."""
    app = web.Application(middlewares=[headers_middleware, errors_middleware, session_middleware])
    app[core.WORKSPACE] = Workspace(store, profile, clock, secret, media_dir)
    app.router.add_static("/static", core.HERE / "static", append_version=True)
    for name in PAGES:
        importlib.import_module(name).setup(app)
    return app


def mount(root: web.Application, workspace_app: web.Application) -> None:
    """The workspace under /web of a server, `/` sending a browser there."""

    async def home(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{PREFIX}/")

    root.add_subapp(PREFIX, workspace_app)
    if not any(getattr(r.resource, "canonical", None) == "/" for r in root.router.routes()):
        root.router.add_get("/", home)


async def build(settings, store: Store, profile: Profile, clock: Clock) -> web.Application:
    """The workspace app from the process's settings (ADDAD_WEB_SECRET, ADDAD_MEDIA_DIR)."""
    configured = settings.web_secret.get_secret_value() if getattr(settings, "web_secret", None) else None
    secret = await resolve_secret(store, configured)
    return make_app(store, profile, clock=clock, secret=secret, media_dir=settings.media_path())
