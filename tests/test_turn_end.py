"""A turn's last writes — its session, its chat lines, its message key — on every backend: what
is kept when the turn ends well, and that nothing of it is kept when its session was changed
meanwhile or its message was handled already. On PostgreSQL the three go to the server as one
statement (storage/postgres/db.py `defer`), inside a group-commit member whose savepoint is
released by the next member's: a member failing at its end must not take the others with it."""

from __future__ import annotations

import asyncio

import pytest

from storage import ConcurrentUpdate, SessionRecord

from .test_storage_contract import NOW, store  # noqa: F401 (store: an empty store of each backend)


class _Redelivered(Exception):
    pass


async def _turn(store, user: str, message_id: str, version: int, *, pause: float = 0.0) -> None:
    """What the engine does at a turn's end (conversations/engine.py `_turn`)."""
    async with store.transaction() as tx:
        await asyncio.sleep(pause)  # (others join the group meanwhile)
        session = SessionRecord("whatsapp", user, "menu.main", {"n": message_id}, "fr", version, None)
        await tx.save_session(session, now=NOW)
        await tx.log_chat("whatsapp", user, [("customer", None, f"q {message_id}"), ("bot", None, "r")], now=NOW)
        if not await tx.record_turn("whatsapp", message_id, '["r"]', now=NOW):
            raise _Redelivered()


async def _kept(store, user: str) -> tuple:
    async with store.snapshot() as tx:
        s = await tx.load_session("whatsapp", user)
        lines = [line.text for line in await tx.chat_log("whatsapp", user)]
        return (s.data.get("n"), s.version) if s else None, lines


async def test_a_turns_end_keeps_its_session_lines_and_key(store):
    await _turn(store, "1", "m1", 0)
    await _turn(store, "1", "m2", 1)
    assert await _kept(store, "1") == (("m2", 2), ["q m1", "r", "q m2", "r"])
    async with store.snapshot() as tx:
        assert await tx.kept_replies("whatsapp", "m2") == '["r"]'


async def test_a_stale_session_or_a_handled_message_keeps_nothing_of_the_turn(store):
    await _turn(store, "1", "m1", 0)
    with pytest.raises(ConcurrentUpdate):
        await _turn(store, "1", "m2", 0)  # another process wrote the session meanwhile
    with pytest.raises(_Redelivered):
        await _turn(store, "1", "m1", 1)  # m1 again: the claim is there
    assert await _kept(store, "1") == (("m1", 1), ["q m1", "r"])
    async with store.snapshot() as tx:
        assert await tx.kept_replies("whatsapp", "m2") is None


async def test_a_member_failing_at_its_end_leaves_the_groups_others_kept(store):
    """Seven turns of seven chats at once (one group on each backend), the third's session stale
    and the seventh's message handled already, both found at their very end: the other five are
    kept whole, those two keep nothing."""
    for user in ("3", "7"):
        await _turn(store, user, f"seed{user}", 0)
    turns = [(user, f"g{user}", 0) for user in ("1", "2", "3", "4", "5", "6")] + [("7", "seed7", 1)]
    results = await asyncio.gather(
        *(_turn(store, user, message_id, version, pause=0.01) for user, message_id, version in turns),
        return_exceptions=True,
    )
    outcomes = [type(r).__name__ for r in results]
    assert outcomes == ["NoneType"] * 2 + ["ConcurrentUpdate"] + ["NoneType"] * 3 + ["_Redelivered"]
    for user in ("1", "2", "4", "5", "6"):
        assert await _kept(store, user) == ((f"g{user}", 1), [f"q g{user}", "r"])
    for user in ("3", "7"):
        assert await _kept(store, user) == ((f"seed{user}", 1), [f"q seed{user}", "r"])
