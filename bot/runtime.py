"""Long-running services: `addad telegram` (polling or webhook), with the outbox dispatcher
beside it, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from telegram import Update
from telegram.error import InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.channels.inbox import AnsweredMarks
from bot.channels.telegram import (
    ALLOWED_UPDATES,
    CHANNEL,
    TelegramAdapter,
    TelegramSender,
    build_application,
    webhook_handler,
)
from bot.config import Settings
from bot.wiring import open_engine
from conversations.dispatch import Dispatcher
from storage import Store

log = logging.getLogger(__name__)

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ConfigError(Exception):
    """A setting that prevents starting; the message says which and why."""


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def poll_updates(
    app, store: Store, stop: asyncio.Event, *, timeout: int = 25, replaying: set[str] | None = None
) -> None:
    """getUpdates, with every fetched update written to the inbox before the next call confirms it
    to Telegram: a kill between fetching and answering loses nothing (it is replayed at start;
    an update whose turn ran gets the replies that turn kept)."""
    async with store.transaction() as tx:
        await tx.prune_inbox(CHANNEL, older_than=store.clock() - timedelta(days=2))
        pending = await tx.unanswered_inbound(CHANNEL)
    for message_id, body, processed in pending:
        if processed and replaying is not None:
            replaying.add(message_id)
        await app.update_queue.put(Update.de_json(json.loads(body), app.bot))
    if pending:
        log.info("replaying %d update(s) accepted before the last stop", len(pending))
    await app.bot.delete_webhook()
    offset = None
    failures = 0
    while not stop.is_set():
        try:
            updates = await app.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES, read_timeout=timeout + 10
            )
            failures = 0
        except RetryAfter as exc:
            after = exc.retry_after  # a timedelta (PTB_TIMEDELTA) or seconds
            await asyncio.sleep(after.total_seconds() if isinstance(after, timedelta) else float(after))
            continue
        except (NetworkError, TelegramError) as exc:
            failures += 1
            log.warning("getUpdates failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(0.5 * 2**failures, 30))
            continue
        if not updates:
            continue
        now = store.clock()
        async with store.transaction() as tx:
            for u in updates:
                await tx.accept_inbound(CHANNEL, str(u.update_id), json.dumps(u.to_dict(), ensure_ascii=False), now=now)
        offset = updates[-1].update_id + 1
        for u in updates:
            await app.update_queue.put(u)


async def run_telegram(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "0.0.0.0",
    port: int = 8443,
    stop: asyncio.Event | None = None,
    ready=None,
) -> None:
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    if not token:
        raise ConfigError("ADDAD_TELEGRAM_TOKEN is not set (the token @BotFather gave you)")
    secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
    if webhook_url is not None:
        if not secret:
            # Without it anyone who finds the URL can post updates in any customer's name.
            raise ConfigError("webhook mode needs ADDAD_TELEGRAM_WEBHOOK_SECRET")
        if not _SECRET.fullmatch(secret):
            raise ConfigError("ADDAD_TELEGRAM_WEBHOOK_SECRET: 1-256 characters among A-Z a-z 0-9 _ -")
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    async with open_engine(settings) as engine:
        media = Path(settings.database).expanduser().resolve().parent / "media"  # noqa: ASYNC240 (start-up)
        answered = AnsweredMarks(engine.store, CHANNEL) if webhook_url is None else None
        adapter = TelegramAdapter(engine, media_dir=media, answered=answered)
        app = build_application(
            token, settings.telegram_api_url, adapter, updater=False, rate_limit=settings.telegram_rate_limit
        )
        try:
            await app.initialize()  # getMe: checks the token and the API URL
        except InvalidToken:
            raise ConfigError("Telegram refused ADDAD_TELEGRAM_TOKEN (invalid token)") from None
        except NetworkError as exc:
            raise ConfigError(f"cannot reach the Bot API at {settings.telegram_api_url} ({exc})") from None
        tasks: list[asyncio.Task] = []
        runner = None
        try:
            await adapter.set_commands(app.bot)
            await app.start()
            dispatcher = Dispatcher(engine.store, engine.profile, [TelegramSender(app.bot)])
            tasks.append(asyncio.create_task(dispatcher.run(stop), name="outbox"))
            if webhook_url is None:
                tasks.append(
                    asyncio.create_task(
                        poll_updates(app, engine.store, stop, replaying=adapter.replaying), name="polling"
                    )
                )
                log.info("Telegram bot @%s polling", app.bot.username)
            else:
                from aiohttp import web

                path = urlparse(webhook_url).path or "/telegram"
                web_app = web.Application()

                async def on_post(request: web.Request) -> web.Response:
                    return await webhook_handler(app, secret, request)

                async def health(request: web.Request) -> web.Response:
                    return web.Response(text="ok")

                web_app.router.add_post(path, on_post)
                web_app.router.add_get("/healthz", health)
                runner = web.AppRunner(web_app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, listen, port).start()
                await app.bot.set_webhook(webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
                log.info("Telegram bot @%s webhook on %s:%d%s", app.bot.username, listen, port, path)
            if ready is not None:
                ready()
            await stop.wait()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            if app.running:
                await app.stop()  # lets the updates in hand finish their turn
            if answered is not None:
                await answered.close()
            await app.shutdown()


def _whatsapp_config(settings: Settings) -> dict[str, str]:
    values = {
        "ADDAD_WHATSAPP_TOKEN": settings.whatsapp_token,
        "ADDAD_WHATSAPP_PHONE_NUMBER_ID": settings.whatsapp_phone_number_id,
        "ADDAD_WHATSAPP_APP_SECRET": settings.whatsapp_app_secret,
        "ADDAD_WHATSAPP_VERIFY_TOKEN": settings.whatsapp_verify_token,
    }
    plain = {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v) or "" for k, v in values.items()}
    missing = [k for k, v in plain.items() if not v]
    if missing:
        raise ConfigError(f"WhatsApp needs {', '.join(missing)}")
    return plain


async def run_whatsapp(
    settings: Settings,
    *,
    listen: str = "127.0.0.1",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    ready=None,
    telegram_webhook_url: str | None = None,
) -> None:
    """`addad whatsapp` (and `addad serve`, which adds the Telegram webhook to the same server)."""
    from aiohttp import web

    from bot.channels.whatsapp import GraphClient, WhatsAppSender, WhatsAppService

    conf = _whatsapp_config(settings)
    tg_token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    tg_secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
    if telegram_webhook_url is not None and not (tg_token and tg_secret and _SECRET.fullmatch(tg_secret)):
        raise ConfigError(
            "the Telegram webhook needs ADDAD_TELEGRAM_TOKEN and ADDAD_TELEGRAM_WEBHOOK_SECRET "
            "(1-256 characters among A-Z a-z 0-9 _ -)"
        )
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    async with open_engine(settings) as engine:
        client = GraphClient(
            settings.whatsapp_api_url, conf["ADDAD_WHATSAPP_PHONE_NUMBER_ID"], conf["ADDAD_WHATSAPP_TOKEN"]
        )
        await client.start()
        service = WhatsAppService(
            engine,
            client,
            app_secret=conf["ADDAD_WHATSAPP_APP_SECRET"],
            verify_token=conf["ADDAD_WHATSAPP_VERIFY_TOKEN"],
        )
        web_app = web.Application(client_max_size=4 * 1024 * 1024)
        service.routes(web_app)

        async def health(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        web_app.router.add_get("/healthz", health)
        senders: list = [WhatsAppSender(client, engine.store, engine.profile)]
        tg_app = None
        if telegram_webhook_url is not None:
            adapter = TelegramAdapter(engine, media_dir=Path(settings.database).expanduser().resolve().parent / "media")  # noqa: ASYNC240
            tg_app = build_application(
                tg_token, settings.telegram_api_url, adapter, updater=False, rate_limit=settings.telegram_rate_limit
            )
            await tg_app.initialize()
            await adapter.set_commands(tg_app.bot)
            await tg_app.start()

            async def on_telegram(request: web.Request) -> web.Response:
                return await webhook_handler(tg_app, tg_secret, request)

            web_app.router.add_post(urlparse(telegram_webhook_url).path or "/telegram", on_telegram)
            senders.append(TelegramSender(tg_app.bot))
        runner = web.AppRunner(web_app, access_log=None)
        tasks: list[asyncio.Task] = []
        try:
            await runner.setup()
            await web.TCPSite(runner, listen, port).start()
            replayed = await service.replay()
            if replayed:
                log.info("replaying %d WhatsApp message(s) accepted before the last stop", replayed)
            if tg_app is not None:
                await tg_app.bot.set_webhook(
                    telegram_webhook_url, secret_token=tg_secret, allowed_updates=ALLOWED_UPDATES
                )
            dispatcher = Dispatcher(engine.store, engine.profile, senders)
            tasks.append(asyncio.create_task(dispatcher.run(stop), name="outbox"))
            log.info("WhatsApp webhook on %s:%d/whatsapp%s", listen, port, " and Telegram webhook" if tg_app else "")
            if ready is not None:
                ready()
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
            await service.drain()
            if tg_app is not None:
                if tg_app.running:
                    await tg_app.stop()
                await tg_app.shutdown()
            await client.close()
