"""One chat's work in arrival order, different chats concurrently.

The engine's lock orders turns, but a turn's replies are sent after it: without this, a fast
second turn of the same chat could be answered before the first. `run` registers the job in its
chat's chain before its first await, so the order of calls is the order of execution.

`admit` (the inbox's, conversations/inbox.py) is awaited by a chat's job once the chat's previous
job is done and before it takes a slot: a new message of a chat whose backlog is still being
replayed waits there for it, holding no slot, so other chats are not held up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ChatSequencer:
    def __init__(self, limit: int = 64, *, admit: Callable[[Hashable], Awaitable[None]] | None = None) -> None:
        self._slots = asyncio.Semaphore(limit)  # taken only when a chat's turn has come
        self._tails: dict[Hashable, asyncio.Future] = {}
        self.admit = admit

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
            if self.admit is not None:
                try:
                    await self.admit(key)
                except BaseException:  # not admitted (the channel is closing): the job never runs
                    if asyncio.iscoroutine(job):
                        job.close()
                    raise
            async with self._slots:
                return await job
        finally:
            done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]
