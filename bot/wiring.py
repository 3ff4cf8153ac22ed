"""Composition root: open the store, load the profile, build the engine; close on the way out."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from bot.config import Settings
from conversations.engine import Engine
from conversations.profile import Profile, load_profile
from storage import Store

CHECKPOINT_EVERY = 0.5   # seconds; WAL checkpoints off the turns' path (storage/db.py)


async def open_store(path: str) -> Store:
    """The store as the long-running bot opens it (benches measure this one too)."""
    return await Store.open(path, checkpoint_every=CHECKPOINT_EVERY)


@asynccontextmanager
async def open_engine(settings: Settings, *, database: str | None = None,
                      profile: Profile | None = None) -> AsyncIterator[Engine]:
    from conversations.understanding import warm_up
    warm_up()  # load dateparser now, not on a customer's first dated message
    profile = profile or load_profile(settings.operator)
    store = await open_store(database or settings.database)
    try:
        yield Engine(store, profile, idle_minutes=settings.session_idle_minutes)
    finally:
        await store.close()
