"""Long-running services: `addad telegram` (polling or webhook), `addad whatsapp` and `addad serve`,
each a list of channels (base.ChannelService) composed here with the outbox dispatcher, until
SIGINT/SIGTERM. The web server (webhooks and the health route) is written once, for whichever
channels have routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.channels.base import ChannelService, pull_channels
from bot.config import Settings
from bot.errors import ConfigError
from bot.wiring import open_engine, tune_gc
from conversations.dispatch import Dispatcher
from conversations.engine import Engine
from conversations.reminders import DailyReminders
from conversations.retention import Daily

if TYPE_CHECKING:
    from bot.channels.flood import FloodGuard
    from bot.channels.webhook import BodyGate

__all__ = ["ConfigError", "run_channels", "run_telegram", "run_whatsapp"]

log = logging.getLogger(__name__)

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

# Builds a channel on the process's engine and dispatcher.
ChannelFactory = Callable[[Engine, Dispatcher], ChannelService]


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _prune_daily(daily: Daily, stop: asyncio.Event, every: float) -> None:
    """Retention once a day by the store's clock, looked at every `every` seconds."""
    while not stop.is_set():
        try:
            await daily.due()
        except Exception:
            log.exception("retention: could not prune (tried again later)")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def run_channels(
    settings: Settings,
    factories: list[ChannelFactory],
    *,
    listen: str,
    port: int,
    stop: asyncio.Event | None = None,
    ready: Callable[[], object] | None = None,
    gc_tuning: bool = False,
    pull_channels: frozenset[str] = frozenset(),
    prune_every: float = 3600.0,
    workspace: bool = False,
) -> None:
    """One process serving these channels: the engine, the dispatcher (with each channel's
    sender), a web server if any channel has webhook routes (with `/healthz`), until `stop`.
    `gc_tuning` is for the long-running bot commands only (bot/wiring.tune_gc); `workspace`
    mounts the web workspace (bot/web/) under /web of the same server."""
    from aiohttp import web

    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    async with open_engine(settings, pull_channels=pull_channels) as engine:
        dispatcher = Dispatcher(engine.store, engine.profile, [])
        channels = [make(engine, dispatcher) for make in factories]
        opened: list[ChannelService] = []
        tasks: list[asyncio.Task] = []
        runner = None
        try:
            for channel in channels:
                await channel.open()
                opened.append(channel)
                if channel.sender is not None:
                    dispatcher.add(channel.sender)
            web_app = web.Application(client_max_size=settings.webhook_max_body)
            for channel in channels:
                channel.routes(web_app)
            if workspace:
                from bot.web import app as workspace_app

                workspace_app.mount(
                    web_app, await workspace_app.build(settings, engine.store, engine.profile, engine.clock)
                )
            if len(web_app.router.routes()):

                async def health(request: web.Request) -> web.Response:
                    return web.Response(text="ok")

                web_app.router.add_get("/healthz", health)
                runner = web.AppRunner(web_app, access_log=None, **_handler_args(workspace))
                await runner.setup()
                await web.TCPSite(runner, listen, port).start()
                log.info("listening on %s:%d", listen, port)
            for channel in channels:
                await channel.start(stop)
            tasks.append(asyncio.create_task(dispatcher.run(stop), name="outbox"))
            # The day's reminders at the profile's local time, by the store's clock (issue 22).
            remind = DailyReminders(engine.store, engine.profile, on_queued=dispatcher.wake.set)
            tasks.append(asyncio.create_task(remind.run(stop), name="reminders"))
            daily = Daily(engine.store, engine.profile, engine.media.files if engine.media else None)
            tasks.append(asyncio.create_task(_prune_daily(daily, stop, prune_every), name="retention"))
            if gc_tuning:
                tune_gc()
            log.info("serving %s", ", ".join(c.name for c in channels))
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
            for channel in reversed(opened):
                await channel.close()


def _handler_args(workspace: bool) -> dict[str, Any]:
    """The workspace's longer request lines (bot/web/server.py) when it is served too."""
    if not workspace:
        return {}
    from bot.web.server import HANDLER_ARGS

    return HANDLER_ARGS


# ---------------------------------------------------------------------- the channels' settings
def _gate(settings: Settings) -> BodyGate:
    """The server's one gate for webhook bodies (both channels' webhooks share its slots)."""
    from bot.channels.webhook import BodyGate

    return BodyGate(settings.webhook_max_body, settings.webhook_max_reads, settings.webhook_read_timeout)


def _flood(settings: Settings, engine: Engine) -> FloodGuard:
    """A channel's per-chat flood limit (bot/channels/flood.py), on the engine's clock."""
    from bot.channels.flood import FloodGuard

    return FloodGuard(engine.clock, burst=settings.flood_burst, rate=settings.flood_rate)


def _telegram(settings: Settings, webhook_url: str | None, gate: BodyGate | None = None) -> ChannelFactory:
    from bot.channels.telegram import TelegramChannel

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

    def make(engine: Engine, dispatcher: Dispatcher) -> ChannelService:
        limit, rate = settings.telegram_rate_limit, engine.profile.reminders.rate
        if limit and rate >= limit:
            # Replies and reminders share PTB's rate limiter: at or above it, a reply waits
            # behind the reminders in flight (bench/README.md, "A whole campaign").
            log.warning("reminders' rate %g/s is not below the Telegram limit %g/s: replies will wait", rate, limit)
        return TelegramChannel(
            engine,
            dispatcher,
            token=token,
            api_url=settings.telegram_api_url,
            rate_limit=settings.telegram_rate_limit,
            webhook_url=webhook_url,
            secret=secret,
            gate=gate or _gate(settings),
            flood=_flood(settings, engine),
        )

    return make


def _whatsapp(settings: Settings, gate: BodyGate) -> ChannelFactory:
    from bot.channels.whatsapp import GraphClient, WhatsAppService

    values = {
        "ADDAD_WHATSAPP_TOKEN": settings.whatsapp_token,
        "ADDAD_WHATSAPP_PHONE_NUMBER_ID": settings.whatsapp_phone_number_id,
        "ADDAD_WHATSAPP_APP_SECRET": settings.whatsapp_app_secret,
        "ADDAD_WHATSAPP_VERIFY_TOKEN": settings.whatsapp_verify_token,
    }
    conf = {k: (v if isinstance(v, str) or v is None else v.get_secret_value()) or "" for k, v in values.items()}
    missing = [k for k, v in conf.items() if not v]
    if missing:
        raise ConfigError(f"WhatsApp needs {', '.join(missing)}")

    def make(engine: Engine, dispatcher: Dispatcher) -> ChannelService:
        client = GraphClient(
            settings.whatsapp_api_url, conf["ADDAD_WHATSAPP_PHONE_NUMBER_ID"], conf["ADDAD_WHATSAPP_TOKEN"]
        )
        return WhatsAppService(
            engine,
            client,
            dispatcher,
            app_secret=conf["ADDAD_WHATSAPP_APP_SECRET"],
            verify_token=conf["ADDAD_WHATSAPP_VERIFY_TOKEN"],
            gate=gate,
            flood=_flood(settings, engine),
        )

    return make


# ---------------------------------------------------------------------- the commands
async def run_telegram(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "0.0.0.0",
    port: int = 8443,
    stop: asyncio.Event | None = None,
    ready: Callable[[], object] | None = None,
    gc_tuning: bool = False,
) -> None:
    """`addad telegram`: long polling, or the webhook at `webhook_url`'s path."""
    from bot.channels.telegram import TelegramAdapter

    async with _sole_poller(settings, webhook_url):
        await _run_telegram(settings, webhook_url, listen, port, stop, ready, gc_tuning, TelegramAdapter)


def _sole_poller(settings: Settings, webhook_url: str | None):
    """On PostgreSQL, one `addad telegram` polls at a time (Telegram refuses two getUpdates): a
    second one waits as a standby, then starts (the inbox replayed, as after a restart) once the
    first has stopped or died (docs/deploy.md "Two workers"). On SQLite, or with a webhook: no lock."""
    if webhook_url is not None or not settings.database.lower().startswith(("postgresql://", "postgres://")):
        return contextlib.nullcontext()
    from storage.postgres.db import POLL_LOCK, sole_worker

    def waiting() -> None:
        log.warning("another worker polls Telegram on this database: standing by until it stops")

    return sole_worker(settings.database, POLL_LOCK, waiting)


async def _run_telegram(settings, webhook_url, listen, port, stop, ready, gc_tuning, TelegramAdapter) -> None:
    await run_channels(
        settings,
        [_telegram(settings, webhook_url)],
        listen=listen,
        port=port,
        stop=stop,
        ready=ready,
        gc_tuning=gc_tuning,
        pull_channels=pull_channels(TelegramAdapter),
    )


async def run_whatsapp(
    settings: Settings,
    *,
    listen: str = "127.0.0.1",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    ready: Callable[[], object] | None = None,
    telegram_webhook_url: str | None = None,
    gc_tuning: bool = False,
    workspace: bool = False,
) -> None:
    """`addad whatsapp` (and `addad serve`, which adds the Telegram webhook and the web workspace
    to the same server)."""
    from bot.channels.telegram import TelegramAdapter
    from bot.channels.whatsapp import WhatsAppService

    gate = _gate(settings)
    factories = [_whatsapp(settings, gate)]
    if telegram_webhook_url is not None:
        token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
        if not (token and secret and _SECRET.fullmatch(secret)):
            raise ConfigError(
                "the Telegram webhook needs ADDAD_TELEGRAM_TOKEN and ADDAD_TELEGRAM_WEBHOOK_SECRET "
                "(1-256 characters among A-Z a-z 0-9 _ -)"
            )
        factories.append(_telegram(settings, telegram_webhook_url, gate))
    await run_channels(
        settings,
        factories,
        listen=listen,
        port=port,
        stop=stop,
        ready=ready,
        gc_tuning=gc_tuning,
        pull_channels=pull_channels(WhatsAppService, TelegramAdapter),
        workspace=workspace,
    )
