"""One chat's work in arrival order, different chats concurrently.

The engine's lock orders turns, but a turn's replies are sent after it: without this, a fast
second turn of the same chat could be answered before the first. `run` registers the job in its
chat's chain before its first await, so the order of calls is the order of execution.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable
from typing import Any


class ChatSequencer:
    def __init__(self, limit: int = 64) -> None:
        self._slots = asyncio.Semaphore(limit)  # taken only when a chat's turn has come
        self._tails: dict[Hashable, asyncio.Future] = {}

    async def run(self, key: Hashable | None, job: Awaitable[Any]) -> Any:
        if key is None:
            async with self._slots:
                return await job
        previous = self._tails.get(key)
        done = asyncio.get_running_loop().create_future()
        self._tails[key] = done
        try:
            if previous is not None:
                await previous
            async with self._slots:
                return await job
        finally:
            done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]
