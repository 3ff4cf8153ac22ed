"""Two processes on one PostgreSQL database, each with its read cache (storage/sqlite/cache.py):
what one commits is what the other's next write transaction reads, for every cached kind, and a
commit forgets in the other only the keys it wrote (storage/postgres/db.py, the change log).

Two stores opened on one database are two processes to the server (each its connection and its
writer id). The cache's own re-check (`ReadCache.verify`, on in the rest of the suite) is off
here: what is asserted is what the bot would read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest

from storage import SessionRecord, open_store
from storage.sqlite.cache import ReadCache

from . import pg

pytest.importorskip("asyncpg", reason=pg.NO_DRIVER)

from storage.postgres import db as pgdb  # (after the skip: needs the driver)

from .test_storage_contract import C1, NOW, _bill

CHAT = ("telegram", "42")
OTHER = ("telegram", "43")


@pytest.fixture
async def two(monkeypatch):
    """Two stores (two processes) on one fresh database holding C1, linked to CHAT."""
    monkeypatch.setattr(ReadCache, "verify", False)
    with pg.fresh() as url:
        a = await open_store(url, clock=lambda: NOW)
        b = await open_store(url, clock=lambda: NOW)
        try:
            async with a.transaction() as tx:
                await tx.upsert_contract(C1)
                await tx.link_chat(*CHAT, C1.contract, "phone")
            yield a, b
        finally:
            await a.close()
            await b.close()


async def _reading(tx: Any) -> None:
    await tx.add_customer_reading(
        contract=C1.contract, day=date(2026, 11, 22), index=45300, reference="RD-2026-000001", channel=CHAT[0],
        user_id=CHAT[1], photo_ref=None, previous_index=45210, previous_date=date(2026, 10, 31), consumption=90,
    )  # fmt: skip


async def _request(tx: Any) -> None:
    await tx.add_request(
        reference="DF-2026-000001", kind="deferral", contract=C1.contract, channel=CHAT[0], user_id=CHAT[1],
        lang="fr", defer_until=date(2026, 12, 15), now=NOW,
    )  # fmt: skip


async def _decide(tx: Any) -> None:  # the back office approves it
    await _request(tx)
    assert await tx.set_request_status("DF-2026-000001", "approved", expected="pending", decided_by="agent")


async def _session(tx: Any) -> None:
    loaded = await tx.load_session(*CHAT)
    await tx.save_session(SessionRecord(*CHAT, "menu.main", {"from": "b"}, "fr", loaded.version, None))


async def _handoff_taken(tx: Any) -> None:  # an agent takes the chat
    opened = await tx.open_handoff(*CHAT, lang="fr", contract=C1.contract, now=NOW)
    assert await tx.update_handoff(opened, expected="waiting", status="taken", taken_by="agent", taken_at=NOW)


async def _outbox(tx: Any) -> None:
    await tx.enqueue_outbox(channel=CHAT[0], user_id=CHAT[1], lang="fr", kind="decision", payload={}, now=NOW)


async def _unlink(tx: Any) -> None:
    assert await tx.unlink_chat(*CHAT, C1.contract)


# Per cached kind: what the first process reads, what the other one writes, what is read then.
KINDS: dict[str, tuple[Callable[[Any], Awaitable[Any]], Callable[[Any], Awaitable[None]], Any, Any]] = {
    "readings": (lambda tx: tx.readings(C1.contract), _reading, [45210], [45210, 45300]),
    "bills": (lambda tx: tx.bills(C1.contract), lambda tx: tx.upsert_bill(_bill("F-1", 12000)), [], ["F-1"]),
    "links": (lambda tx: tx.linked_contracts(*CHAT), _unlink, [C1.contract], []),
    "session": (lambda tx: tx.load_session(*CHAT), _session, None, {"from": "b"}),
    "outbox": (lambda tx: tx.outbox_for_chat(*CHAT), _outbox, [], ["decision"]),
    "handoff": (lambda tx: tx.chat_handoff(*CHAT), _handoff_taken, None, "taken"),
    "requests": (lambda tx: tx.requests(contract=C1.contract), _decide, [], ["approved"]),
}


def _shown(kind: str, value: Any) -> Any:
    """What a customer's turn would act on, of the value read."""
    if kind in ("session", "handoff"):
        if value is None:
            return None
        return value.data if kind == "session" else value.status
    field = {
        "readings": "index_value",
        "bills": "bill_number",
        "links": "contract",
        "outbox": "kind",
        "requests": "status",
    }
    return [getattr(v, field[kind]) for v in value]


@pytest.mark.parametrize("kind", list(KINDS))
async def test_what_another_process_commits_is_read_by_the_next_transaction(two, kind):
    a, b = two
    read, write, before, after = KINDS[kind]
    if kind == "session":  # the chat has a session, as after its first turn
        async with a.transaction() as tx:
            await tx.save_session(SessionRecord(*CHAT, "menu.main", {"from": "a"}, "fr", 0, None))
        before = {"from": "a"}
    for _ in range(2):  # read twice: the second is the cache's
        async with a.transaction() as tx:
            assert _shown(kind, await read(tx)) == before
    assert kind in a.cache._kinds, f"{kind} is not cached: this test would prove nothing"
    async with b.transaction() as tx:
        await write(tx)
    async with a.transaction() as tx:
        assert _shown(kind, await read(tx)) == after


async def test_a_commit_forgets_in_the_other_process_only_what_it_wrote(two):
    """Another chat's turn (its session, its chat lines, its message key) leaves this process's
    bills, links and session cached; a write to this chat's session forgets that session alone."""
    a, b = two
    async with a.transaction() as tx:
        await tx.upsert_bill(_bill("F-1", 12000))
        await tx.save_session(SessionRecord(*CHAT, "menu.main", {}, "fr", 0, None))
    async with a.transaction() as tx:
        await tx.bills(C1.contract)
        await tx.linked_contracts(*CHAT)
        await tx.load_session(*CHAT)
    cached = {kind: set(keys) for kind, keys in a.cache._kinds.items()}
    assert cached == {"bills": {C1.contract}, "links": {CHAT}, "session": {CHAT}}
    async with b.transaction() as tx:  # another chat's turn
        await tx.save_session(SessionRecord(*OTHER, "menu.main", {}, "fr", 0, None))
        await tx.record_turn("telegram", "m-1", "[]", now=NOW)
    async with a.transaction() as tx:
        assert {kind: set(keys) for kind, keys in a.cache._kinds.items()} == cached
    async with b.transaction() as tx:  # this chat's session, written elsewhere
        loaded = await tx.load_session(*CHAT)
        await tx.save_session(SessionRecord(*CHAT, "link.contract", {}, "fr", loaded.version, None))
    async with a.transaction() as tx:
        assert {kind: set(keys) for kind, keys in a.cache._kinds.items()} == {
            "bills": {C1.contract},
            "links": {CHAT},
            "session": set(),
        }
        assert (await tx.load_session(*CHAT)).state == "link.contract"


async def test_the_change_log_is_pruned_and_a_cache_older_than_the_pruning_starts_empty(two, monkeypatch):
    a, b = two
    monkeypatch.setattr(pgdb, "PRUNE_EVERY", 3)
    async with a.transaction() as tx:
        assert [c.city for c in await tx.linked_contracts(*CHAT)] == ["Casablanca"]
    for city in ("Rabat", "Fès", "Tanger"):  # the third commit prunes the log
        if city == "Tanger":
            # The prune keeps what any open snapshot of the server may still need, other
            # databases' included (tests running beside this one): every row older than the
            # oldest snapshot seen just before the pruning commit must be gone (all but the last
            # commits' when nothing else runs).
            xmin = await b.db.pg.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())")
            logged = await b.db.pg.fetchval("SELECT count(*) FROM addad_changes WHERE xid < $1", xmin)
        async with b.transaction() as tx:
            await tx.upsert_contract(C1.__class__(*(city if f == "city" else getattr(C1, f) for f in C1.__slots__)))
    left = await b.db.pg.fetchval("SELECT count(*) FROM addad_changes WHERE xid < $1", xmin)
    assert left == 0, f"{left} of the {logged} rows older than every snapshot left after pruning"
    async with a.transaction() as tx:
        assert [c.city for c in await tx.linked_contracts(*CHAT)] == ["Tanger"]


async def test_more_changes_than_are_read_empty_the_cache(two):
    a, b = two
    async with a.transaction() as tx:
        assert await tx.bills(C1.contract) == []
    for i in range(pgdb.CHANGES_MAX + 1):
        async with b.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", f"x{i}", "menu.main", {}, "fr", 0, None))
    async with b.transaction() as tx:
        await tx.upsert_bill(_bill("F-1", 12000))
    async with a.transaction() as tx:
        assert [bill.bill_number for bill in await tx.bills(C1.contract)] == ["F-1"]
    assert a.db.remote_flushes == 1
