"""A chat's handoff opened from two sessions at the same instant (issue 23's last targets): two
workers, or an agent's action in the workspace and a bot turn, meet on the one-open-handoff
index. The second takes the open one (`open_handoff` → None: the bot says the chat is still
queued) instead of failing; after an agent closed the open one meanwhile, the second opens a new
one. On both backends: SQLite's writers run one after the other, PostgreSQL's at once (the
INSERT … ON CONFLICT waits for the first's commit, then re-checks the index)."""

from __future__ import annotations

import asyncio

from conversations import handoff
from storage import open_store

from .test_storage_contract import NOW


async def _two(url: str):
    return await open_store(url, clock=lambda: NOW), await open_store(url, clock=lambda: NOW)


async def _open_rows(store) -> list[tuple[str, str, str]]:
    async with store.snapshot() as tx:
        return [(h.channel, h.user_id, h.status) for h in await tx.handoffs()]


async def _meet(first, second) -> tuple[object, object, bool]:
    """`first(release)` holds its transaction open until released; `second()` starts meanwhile.
    Returns both results, and whether the second was still waiting when the first was let go."""
    release = asyncio.Event()
    one = asyncio.create_task(first(release))
    await asyncio.sleep(0.1)  # the first's write is made, not committed
    two = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    waited = not two.done()
    release.set()
    return await one, await two, waited


async def test_two_sessions_opening_one_chats_handoff_at_once_share_it(backend):
    a, b = await _two(backend)
    try:

        async def first(release: asyncio.Event):
            async with a.transaction() as tx:
                opened = await tx.open_handoff("whatsapp", "212600000009", lang="fr", contract=None, now=NOW)
                await release.wait()
                return opened

        async def second():
            async with b.transaction() as tx:
                return await tx.open_handoff("whatsapp", "212600000009", lang="ar", contract=None, now=NOW)

        opened, again, waited = await _meet(first, second)
        assert isinstance(opened, int)
        assert again is None  # the open one is the chat's: not an error, not a second row
        assert waited  # the second waited for the first's commit (no unique-index failure after)
        assert await _open_rows(a) == [("whatsapp", "212600000009", "waiting")]
        async with b.snapshot() as tx:
            h = await tx.chat_handoff("whatsapp", "212600000009")
        assert h is not None and (h.id, h.lang) == (opened, "fr")
    finally:
        await a.close()
        await b.close()


async def _agent_meets_bot(a, b, user: str, act) -> tuple:
    """A waiting handoff; the agent's `act` on it (store a) meets the bot's `open_handoff` for the
    same chat (store b): (the agent's handoff status, what the bot's open returned, the old id)."""
    async with a.transaction() as tx:
        old = await tx.open_handoff("whatsapp", user, lang="fr", contract=None, now=NOW)
    assert old is not None

    async def agent(release: asyncio.Event):
        async with a.transaction() as tx:
            h = await act(tx, old, actor="web:amina", now=NOW)
            await release.wait()
            return h.status

    async def bot():
        async with b.transaction() as tx:
            return await tx.open_handoff("whatsapp", user, lang="fr", contract=None, now=NOW)

    status, opened, _ = await _meet(agent, bot)
    return status, opened, old


async def test_an_agent_closing_the_handoff_while_the_bot_opens_one_leaves_the_new_one(backend):
    """The agent dismisses the waiting chat (the workspace) while the customer asks for a human
    again (the bot's turn): once the dismissal commits, the bot's INSERT finds no open handoff and
    opens one — the customer is queued again, one open row."""
    a, b = await _two(backend)
    try:
        status, opened, old = await _agent_meets_bot(a, b, "212600000008", handoff.dismiss)
        assert status == "closed"
        assert isinstance(opened, int) and opened != old
        assert await _open_rows(a) == [("whatsapp", "212600000008", "waiting")]
    finally:
        await a.close()
        await b.close()


async def test_an_agent_taking_the_chat_while_the_bot_opens_one_keeps_the_agents(backend):
    """The agent takes the waiting chat while the bot's turn asks to open one: the bot takes the
    open (now taken) handoff, the agent keeps the chat."""
    a, b = await _two(backend)
    try:
        status, opened, _ = await _agent_meets_bot(a, b, "212600000007", handoff.take)
        assert (status, opened) == ("taken", None)
        assert await _open_rows(a) == [("whatsapp", "212600000007", "taken")]
    finally:
        await a.close()
        await b.close()
