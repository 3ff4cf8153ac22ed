"""`addad web`: the workspace on its own server (`addad serve` mounts it beside the webhooks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.config import Settings
from conversations.profile import load_profile

from . import app as web_app

log = logging.getLogger("bot.web")

# aiohttp refuses a request line above 8190 bytes with a bare 400; the pages answer a long search
# themselves (a clear message), so the server accepts a longer line and leaves the rest to them.
HANDLER_ARGS: dict[str, Any] = {"max_line_size": 32 * 1024, "max_field_size": 16 * 1024}


async def run_web(
    settings: Settings,
    *,
    listen: str = "127.0.0.1",
    port: int = 8090,
    stop: asyncio.Event | None = None,
    ready: Callable[[], object] | None = None,
) -> None:
    from bot.wiring import open_store

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    clock = settings.make_clock()
    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock)
    runner = None
    try:
        root = web.Application()
        web_app.mount(root, await web_app.build(settings, store, profile, clock))

        async def health(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        root.router.add_get("/healthz", health)
        runner = web.AppRunner(root, access_log=None, **HANDLER_ARGS)
        await runner.setup()
        await web.TCPSite(runner, listen, port).start()
        log.info("workspace on http://%s:%d/web/", listen, port)
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await store.close()
