"""Composition root: open the store, load the profile, build the engine; close on the way out."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import storage
from bot.config import Settings
from conversations.engine import Engine
from conversations.profile import Profile, load_profile
from storage import Clock, Store

CHECKPOINT_EVERY = 0.5  # seconds; WAL checkpoints off the turns' path (storage/sqlite/db.py)
# Allocations between young collections (CPython's default: 700). A young collection scans
# every object of the turns in flight (dozens at once in a burst): at 20,000 they cost ~5 % of
# an engine turn, at 100,000 nothing measurable, for at most ~100,000 young objects more.
# (bench/README.md "Telegram throughput 2")
GC_GEN0 = 100_000


def tune_gc() -> None:
    """For the long-running bot commands only (telegram, whatsapp, serve: bot/runtime.py), once
    loaded; not the demo, the console or the tests: what start-up built (modules, catalogs, the
    understanding tables, dateparser) is frozen out of the cyclic collector's scans, and young
    collections run ~30× less often. A turn allocates a few thousand objects and leaves almost
    no cycles, so each collection found little and cost its scan (bench/README.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0, 20, 20)


async def open_store(path: str, clock: Clock | None = None) -> Store:
    """The store as the long-running bot opens it (benches measure this one too)."""
    return await storage.open_store(path, checkpoint_every=CHECKPOINT_EVERY, clock=clock)


@asynccontextmanager
async def open_engine(
    settings: Settings,
    *,
    database: str | None = None,
    profile: Profile | None = None,
    pull_channels: frozenset[str] = frozenset(),
) -> AsyncIterator[Engine]:
    """The engine on the settings' store, profile and clock (ADDAD_CLOCK): the engine, the
    store and everything built on them read this one clock. `pull_channels`: the channels
    served that cannot write first (base.Channel.pull)."""
    from conversations import ocr
    from conversations.media import MediaKeeper
    from conversations.understanding import warm_up
    from storage.media import MediaFiles

    clock = settings.make_clock()
    profile = profile or load_profile(settings.operator)
    warm_up(profile.today(clock()))  # load dateparser now, not on a customer's first dated message
    store = await open_store(database or settings.database, clock)
    # The index read from meter photos: its process starts on the first photo to read, not here.
    reader = ocr.OcrWorker() if ocr.enabled(settings.ocr) else None
    try:
        yield Engine(
            store,
            profile,
            idle_minutes=settings.session_idle_minutes,
            clock=clock,
            pull_channels=pull_channels,
            media=MediaKeeper(MediaFiles(settings.media_path()), max_bytes=settings.media_max_bytes, ocr=reader),
        )
    finally:
        if reader is not None:
            await asyncio.to_thread(reader.close)
        await store.close()
