"""What every workspace page uses: the Workspace (store, profile, clock, templates), the
signed-in account, roles, CSRF, rendering and the audit log. The interface other page modules
build on (bot/web/README.md); keep it stable."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from conversations.i18n import LANGS, Translator, translator
from conversations.profile import Profile
from storage import Store, Tx
from storage.clock import Clock
from storage.records import Account

log = logging.getLogger("bot.web")

PREFIX = "/web"  # every workspace URL starts with it (a sub-application of the bot's server)
ROLES = ("agent", "supervisor", "admin")  # each role may do what the ones before it may
SESSION_COOKIE = "addad_session"
PRESESSION_COOKIE = "addad_pre"  # signed-out visitors' CSRF key (the sign-in form)
LANG_COOKIE = "addad_lang"
HERE = Path(__file__).resolve().parent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Workspace:
    """One per application: what a page needs besides the request."""

    store: Store
    profile: Profile
    clock: Clock
    secret: bytes  # ADDAD_WEB_SECRET, or the one generated and kept in the database
    media_dir: Path | None = None  # meter photos (storage/media.py MediaFiles), for the readings pages
    session_hours: float = 8.0  # a session ends this long after sign-in (a working day)
    templates: jinja2.Environment = field(init=False)
    # Extra nav entries other page modules add in their setup(app): (path, message key, minimum role).
    nav: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a typo in a template fails its test, not silently
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["todatetime"] = datetime.fromisoformat

    def keyed(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of `value` for one purpose (session token hash, CSRF token)."""
        return hmac.new(self.secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


WORKSPACE = web.AppKey("workspace", Workspace)
ACCOUNT = web.RequestKey("account", Account)  # the signed-in account (set by the session middleware)
SESSION_TOKEN = web.RequestKey("session_token", str)
PRESESSION = web.RequestKey("presession", str)


def workspace(request: web.Request) -> Workspace:
    return request.config_dict[WORKSPACE]


def store(request: web.Request) -> Store:
    """The store: `async with store(request).snapshot() as tx` to read, `.transaction()` to write."""
    return workspace(request).store


def account(request: web.Request) -> Account:
    """The signed-in account (only in a handler behind @requires)."""
    found = request.get(ACCOUNT)
    if found is None:
        raise web.HTTPFound(signin_url(request))
    return found


def has_role(acct: Account | None, role: str) -> bool:
    return acct is not None and ROLES.index(acct.role) >= ROLES.index(role)


def actor(acct: Account) -> str:
    """How the audit log and a decision's `decided_by` name a workspace account."""
    return f"web:{acct.name}"


def lang(request: web.Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGS else "fr"


def t(request: web.Request) -> Translator:
    return translator(lang(request))


def csrf_token(request: web.Request) -> str:
    """The token every form of this page carries (`{{ csrf_field() }}` in a template)."""
    ws = workspace(request)
    token = request.get(SESSION_TOKEN)
    if token:
        return ws.keyed("csrf", token)
    return ws.keyed("csrf-pre", request[PRESESSION])


def row_id(request: web.Request) -> int:
    """The `{id}` of the URL as a row id; anything else (letters, 30 digits) is a 404, not a 500."""
    raw = request.match_info["id"]
    if not raw.isdecimal() or len(raw) > 12:
        raise web.HTTPNotFound()
    return int(raw)


def signin_url(request: web.Request) -> str:
    from urllib.parse import quote

    return f"{PREFIX}/signin?next={quote(request.path_qs, safe='')}"


def requires(role: str) -> Callable[[Handler], Handler]:
    """A handler only for a signed-in account of `role` or above: signed out, the browser is sent
    to the sign-in page (and back after); a lower role gets a 403 page."""
    if role not in ROLES:
        raise ValueError(role)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            acct = request.get(ACCOUNT)
            if acct is None:
                raise web.HTTPFound(signin_url(request))
            if not has_role(acct, role):
                return await render(request, "error.html", status=403, message=t(request)("web.error.forbidden"))
            return await handler(request)

        setattr(checked, "required_role", role)  # noqa: B010  (tests check every route says its role)
        return checked

    return wrap


def public(handler: Handler) -> Handler:
    """A handler open to signed-out visitors (sign-in, language): said so on purpose."""
    setattr(handler, "required_role", None)  # noqa: B010
    return handler


async def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page from bot/web/templates/ in the visitor's language; the template sees `t` (messages),
    `lang`, `dir`, `account`, `csrf_field()`, `local()` (a time in the operator's zone), `prefix`."""
    ws = workspace(request)
    tr = t(request)
    acct = request.get(ACCOUNT)
    page = ws.templates.get_template(template)
    body = page.render(
        t=tr,
        lang=tr.lang,
        dir="rtl" if tr.lang == "ar" else "ltr",
        account=acct,
        has_role=lambda role: has_role(acct, role),
        csrf_field=lambda: jinja2.filters.Markup(
            f'<input type="hidden" name="csrf" value="{jinja2.filters.escape(csrf_token(request))}">'
        ),
        local=lambda instant, fmt="%Y-%m-%d %H:%M": ws.profile.local(instant).strftime(fmt) if instant else "",
        prefix=PREFIX,
        path=request.path_qs,
        nav=[n for n in _NAV + ws.nav if has_role(acct, n[2])],
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


# The workspace's own sections; other modules append theirs to Workspace.nav in setup(app).
_NAV: list[tuple[str, str, str]] = [
    (f"{PREFIX}/requests", "web.nav.requests", "agent"),
    (f"{PREFIX}/customers", "web.nav.customers", "agent"),
    (f"{PREFIX}/exports", "web.nav.exports", "supervisor"),
]


async def audit(
    tx: Tx,
    request: web.Request,
    action: str,
    *,
    contract: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """An audit-log entry for what the signed-in account did (in the caller's transaction):
    actor `web:<name>`, with the address it came from."""
    acct = request.get(ACCOUNT)
    who = actor(acct) if acct is not None else "web:-"
    await tx.audit(
        action,
        actor=who,
        channel="web",
        contract=contract,
        details={"address": client_address(request), **(details or {})},
        now=now,
    )


_LOOPBACK = ("127.0.0.1", "::1")


def behind_local_proxy(request: web.Request) -> bool:
    """A reverse proxy on this machine (the HTTPS in front of the workspace): only then are its
    X-Forwarded-* headers believed; from anyone else they are words anyone can write."""
    return request.remote in _LOOPBACK and "X-Forwarded-For" in request.headers


def client_address(request: web.Request) -> str:
    """The peer's address; behind a local proxy, the address it says it serves (the last hop of
    X-Forwarded-For: the one the proxy itself added), so the throttle counts people, not the proxy."""
    if behind_local_proxy(request):
        hops = [h.strip() for h in request.headers["X-Forwarded-For"].split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return request.remote or "-"


def now(request: web.Request) -> datetime:
    return workspace(request).clock()
