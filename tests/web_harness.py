"""The web workspace served for real on 127.0.0.1 (aiohttp, the SQLite store of the test), and a
browser-like HTTP client that keeps its cookies and fills in each form's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape

import aiohttp
from aiohttp import web

from bot.web import app as web_app
from bot.web.accounts import hash_password
from bot.web.server import HANDLER_ARGS
from conversations.profile import load_profile
from storage import Store

from .chat import Clock

PASSWORD = "correct horse battery"
_HASH: dict[str, str] = {}


async def add_account(store: Store, name: str, role: str, password: str = PASSWORD) -> None:
    if password not in _HASH:  # argon2 is slow on purpose: hash each test password once
        _HASH[password] = hash_password(password)
    async with store.transaction() as tx:
        await tx.add_account(name, role, _HASH[password])


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    store: Store
    clock: Clock

    def client(self) -> Browserish:
        return Browserish(self.url)


@asynccontextmanager
async def serve_workspace(store: Store, clock: Clock, *, secret: bytes = b"test secret") -> AsyncIterator[Served]:
    root = web.Application()
    web_app.mount(root, web_app.make_app(store, load_profile(), clock=clock, secret=secret))
    runner = web.AppRunner(root, access_log=None, **HANDLER_ARGS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(f"http://127.0.0.1:{port}", store, clock)
    finally:
        await runner.cleanup()


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: dict

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, "the page has no form with a CSRF token"
        return unescape(found.group(1))

    def plain(self) -> str:
        """The page's text without tags (what a person reads), spaces collapsed."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.text, flags=re.S)
        return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()  # (nbsp kept)


class Browserish:
    """An HTTP client with a cookie jar that treats 127.0.0.1 as the secure origin browsers do."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
        self.session = aiohttp.ClientSession(cookie_jar=self.jar)
        self.last: Page | None = None

    async def __aenter__(self) -> Browserish:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def _page(self, response: aiohttp.ClientResponse) -> Page:
        page = Page(response.status, str(response.url), await response.text(), dict(response.headers))
        self.last = page
        return page

    async def get(self, path: str, **kw) -> Page:
        async with self.session.get(self.base + path, **kw) as response:
            return await self._page(response)

    async def post(self, path: str, data: dict, *, csrf: str | None = None, **kw) -> Page:
        """POST a form; `csrf` defaults to the token of the last page fetched."""
        form = dict(data)
        if csrf is not False:
            form.setdefault("csrf", csrf if csrf is not None else (self.last.csrf if self.last else ""))
        async with self.session.post(self.base + path, data=form, **kw) as response:
            return await self._page(response)

    async def sign_in(self, name: str, password: str = PASSWORD) -> Page:
        await self.get("/web/signin")
        return await self.post("/web/signin", {"name": name, "password": password})
