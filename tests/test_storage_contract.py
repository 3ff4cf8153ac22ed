"""The storage contract: the definition of a backend. Every test here runs against every
implementation of storage.Store (the `backend` fixture of tests/conftest.py, parametrised over
BACKENDS); a backend is whatever passes them all. Only SQLite exists today: a PostgreSQL backend
(issue 23) joins by adding its name to BACKENDS and its URL to `backend`."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from storage import Agency, Bill, ConcurrentUpdate, Contract, InstalmentLine, SessionRecord, fold, open_store

BACKENDS = ["sqlite", "postgresql"]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
C1 = Contract(
    "1000001",
    "electricity",
    "Fatima",
    "+212612345678",
    "ar",
    "Casablanca",
    "E-1",
    "postpaid",
    5,
    45210,
    date(2026, 10, 31),
    "BT-RES",
    False,
)


@pytest.fixture
async def store(backend):
    """An empty store of each backend (conftest.py's `store` holds a contract already)."""
    s = await open_store(backend, clock=lambda: NOW)
    try:
        yield s
    finally:
        await s.close()


async def test_upserts_report_what_they_did(store):
    async with store.transaction() as tx:
        assert await tx.upsert_contract(C1) == "inserted"
        assert await tx.upsert_contract(C1) == "unchanged"
        moved = Contract(
            *[getattr(C1, f) for f in C1.__slots__[:5]], "Rabat", *[getattr(C1, f) for f in C1.__slots__[6:]]
        )
        assert await tx.upsert_contract(moved) == "updated"
        assert (await tx.contract("1000001")).city == "Rabat"
        bill = Bill(
            "F-1",
            "1000001",
            date(2026, 9, 1),
            date(2026, 9, 30),
            date(2026, 10, 5),
            date(2026, 10, 25),
            1,
            2,
            1,
            False,
            24317,
            0,
        )
        assert await tx.upsert_bill(bill) == "inserted"
        assert await tx.upsert_bill(bill) == "unchanged"
        assert [b.due for b in await tx.bills("1000001", unpaid_only=True)] == [24317]
        assert await tx.upsert_agency(Agency("Fès", "A", "addr", "0535", "h")) == "inserted"
        assert await tx.upsert_agency(Agency("FES", "A", "addr", "0535", "h")) == "updated"  # same city, folded
        assert [a.name for a in await tx.agencies("fès")] == ["A"]
        # the contract's last index is its first actual reading
        assert (await tx.last_reading("1000001")).index_value == 45210


async def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.upsert_contract(C1)
            raise RuntimeError("boom")
    async with store.snapshot() as tx:
        assert await tx.contract("1000001") is None


async def test_message_ids_are_claimed_once_per_channel(store):
    async with store.transaction() as tx:
        assert await tx.record_turn("telegram", "1", "[]") is True
        assert await tx.record_turn("telegram", "1", "[]") is False
        assert await tx.record_turn("whatsapp", "1", "[]") is True


async def test_references_are_sequences_per_prefix_and_year(store):
    async with store.transaction() as tx:
        assert [await tx.next_reference("DF", 2026) for _ in range(2)] == ["DF-2026-000001", "DF-2026-000002"]
        assert await tx.next_reference("IN", 2026) == "IN-2026-000001"
        assert await tx.next_reference("DF", 2027) == "DF-2027-000001"


async def test_sessions_refuse_a_stale_version(store):
    s = SessionRecord("telegram", "42", "menu.main", {"a": 1}, "ar", 0, None)
    async with store.transaction() as tx:
        assert await tx.save_session(s) == 1
    stale = SessionRecord("telegram", "42", "link.contract", {}, "ar", 0, None)
    with pytest.raises(ConcurrentUpdate):
        async with store.transaction() as tx:
            await tx.save_session(stale)
    async with store.snapshot() as tx:
        loaded = await tx.load_session("telegram", "42")
    assert (loaded.state, loaded.data, loaded.version) == ("menu.main", {"a": 1}, 1)


async def test_requests_keep_their_schedule_and_status_changes_are_guarded(store):
    lines = [InstalmentLine(1, date(2026, 12, 23), 33333), InstalmentLine(2, date(2027, 1, 23), 33335)]
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
        await tx.add_request(
            reference="IN-2026-000001",
            kind="instalment",
            contract="1000001",
            channel="telegram",
            user_id="42",
            lang="ar",
            amount=66668,
            months=2,
            lines=lines,
            now=NOW,
        )
    async with store.transaction() as tx:
        req = await tx.request("IN-2026-000001")
        assert req.lines == tuple(lines) and req.status == "pending" and req.created_at == NOW
        assert await tx.set_request_status("IN-2026-000001", "approved", expected="pending", decided_by="a")
        assert not await tx.set_request_status("IN-2026-000001", "rejected", expected="pending")
        assert (await tx.request("IN-2026-000001")).status == "approved"


async def test_outbox_dedupes_claims_once_and_gives_up_after_max_attempts(store):
    async with store.transaction() as tx:
        first = await tx.enqueue_outbox(
            channel="telegram", user_id="42", lang="fr", kind="k", payload={"x": 1}, dedupe_key="decision:A", now=NOW
        )
        assert first is not None
        assert (
            await tx.enqueue_outbox(
                channel="telegram", user_id="42", lang="fr", kind="k", payload={}, dedupe_key="decision:A", now=NOW
            )
            is None
        )
        assert [m.id for m in await tx.outbox_due(now=NOW)] == [first]
        assert await tx.claim_outbox(first, now=NOW) is True
        assert await tx.claim_outbox(first, now=NOW) is False
        assert (
            await tx.retry_outbox(first, error="429", delay=timedelta(seconds=5), max_attempts=2, now=NOW) == "pending"
        )
        assert await tx.outbox_due(now=NOW) == []  # backing off
        assert await tx.claim_outbox(first, now=NOW + timedelta(seconds=6))
        assert (
            await tx.retry_outbox(first, error="500", delay=timedelta(seconds=5), max_attempts=2, now=NOW) == "failed"
        )
        second = await tx.enqueue_outbox(channel="telegram", user_id="42", lang="fr", kind="k", payload={}, now=NOW)
        await tx.claim_outbox(second, now=NOW)
        await tx.mark_outbox_sent(second, external_id="m-1", now=NOW)
        assert (await tx.outbox_message(second)).status == "sent"


async def test_links_and_audit(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
        await tx.link_chat("whatsapp", "2126", "1000001", "phone", now=NOW)
        assert await tx.is_linked("whatsapp", "2126", "1000001")
        assert not await tx.is_linked("whatsapp", "other", "1000001")
        for _ in range(3):
            await tx.audit("link_failed", channel="telegram", user_id="9", now=NOW)
        assert await tx.count_audit("link_failed", channel="telegram", user_id="9", since=NOW) == 3
        assert (
            await tx.count_audit("link_failed", channel="telegram", user_id="9", since=NOW + timedelta(seconds=1)) == 0
        )
        assert await tx.unlink_chat("whatsapp", "2126", "1000001")
        assert await tx.linked_contracts("whatsapp", "2126") == []


async def test_media_rows_are_pruned_unless_a_kept_reading_needs_them(store):
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
        for sha in (a, b, c):
            await tx.keep_media(sha, size=100, format="JPEG", now=NOW - timedelta(days=3))
        await tx.keep_media(c, size=100, format="JPEG", now=NOW)  # the same bytes again: the later arrival counts
        await tx.add_customer_reading(
            contract="1000001",
            day=date(2026, 11, 20),
            index=45400,
            reference="RL-2026-000001",
            channel="telegram",
            user_id="1",
            photo_ref="tg-file",
            photo_sha256=b,
            previous_index=None,
            previous_date=None,
            consumption=None,
            now=NOW - timedelta(days=3),
        )
        assert (await tx.readings("1000001"))[-1].photo_sha256 == b
        # a: unused and old; b: its reading is recent enough; c: arrived again just now.
        assert await tx.prune_media(unused_before=NOW - timedelta(days=1), kept_before=NOW - timedelta(days=30)) == [a]
        assert await tx.prune_media(unused_before=NOW - timedelta(days=1), kept_before=NOW - timedelta(days=2)) == [b]
        assert await tx.prune_media(unused_before=NOW + timedelta(days=1), kept_before=NOW) == [c]


async def test_transactions_from_many_coroutines_do_not_interleave(store):
    async def bump():
        async with store.transaction() as tx:
            await tx.next_reference("X", 2026)  # read-increment-write
            await asyncio.sleep(0)  # let others try to slip in
            await tx.record_turn("t", str(id(asyncio.current_task())), "[]")

    await asyncio.gather(*(bump() for _ in range(50)))
    async with store.transaction() as tx:
        assert await tx.next_reference("X", 2026) == "X-2026-000051"


async def test_a_second_connection_sees_committed_data_only(store, backend):
    other = await open_store(backend, clock=lambda: NOW)
    try:
        async with store.transaction() as tx:
            await tx.upsert_contract(C1)
            async with other.snapshot() as tx2:
                assert await tx2.contract("1000001") is None  # not committed yet
        async with other.snapshot() as tx2:
            assert (await tx2.contract("1000001")).holder_name == "Fatima"
        from storage.sqlite.schema import migrations

        assert await other.schema_version() == migrations()[-1][0]
    finally:
        await other.close()


async def test_dead_letters_are_parked_once_listed_newest_first_and_pruned(store):
    async with store.transaction() as tx:
        assert await tx.park_message("whatsapp", "wamid.A", "text: not an object", '{"a":1}', notified=True, now=NOW)
        assert not await tx.park_message("whatsapp", "wamid.A", "again", "{}", notified=False, now=NOW)
        later = NOW + timedelta(hours=1)
        assert await tx.park_message("telegram", "noid:ab", "update: not an object", "[]", notified=False, now=later)
    async with store.snapshot() as tx:
        assert await tx.count_dead_letters() == 2
        newest, oldest = await tx.dead_letters()
    assert (newest["channel"], newest["message_id"], newest["notified"]) == ("telegram", "noid:ab", False)
    assert (oldest["reason"], oldest["body"], oldest["notified"], oldest["parked_at"]) == (
        "text: not an object",
        '{"a":1}',
        True,
        NOW,
    )
    async with store.transaction() as tx:
        assert await tx.prune_dead_letters(older_than=NOW + timedelta(minutes=1)) == 1
        assert [d["message_id"] for d in await tx.dead_letters()] == ["noid:ab"]


async def test_a_failing_turn_undoes_only_its_own_writes_in_a_shared_commit(store):
    async def turn(i: int) -> None:
        async with store.transaction() as tx:
            await tx.save_session(SessionRecord("telegram", str(i), "menu.main", {}, "fr", 0, None), now=NOW)
            await asyncio.sleep(0)
            if i % 3 == 0:
                raise ValueError(f"turn {i} failed")

    results = await asyncio.gather(*(turn(i) for i in range(30)), return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, ValueError)] == list(range(0, 30, 3))
    async with store.snapshot() as tx:
        kept = [i for i in range(30) if await tx.load_session("telegram", str(i)) is not None]
    assert kept == [i for i in range(30) if i % 3]


def test_the_sqlite_transaction_implements_exactly_the_tx_protocol():
    """What conversation code may call (storage.Tx) and what the backend offers do not drift
    apart (mypy checks the signatures: open_store returns a SqliteStore as a Store)."""
    from storage import Tx
    from storage.sqlite.repositories import SqliteTx

    def public(cls):
        return {n for c in cls.__mro__ if c is not object for n in vars(c) if not n.startswith("_")}

    assert public(SqliteTx) == public(Tx)


async def test_unanswered_inbound_pages_oldest_first_up_to_a_mark(store):
    """The inbox's backlog read in keyset pages (received_at, then arrival), answered rows left
    out, rows kept after `last_inbound` left out when it is the bound."""
    async with store.transaction() as tx:
        assert await tx.last_inbound() == 0
        for i in range(7):  # two rows share each instant: the arrival order decides
            await tx.accept_inbound("whatsapp", f"w{i}", f"body {i}", now=NOW + timedelta(seconds=i // 2))
        await tx.accept_inbound("telegram", "t1", "other channel", now=NOW)
        await tx.mark_answered("whatsapp", ["w2"])
        await tx.record_turn("whatsapp", "w3", "[]")
        mark = await tx.last_inbound()
        await tx.accept_inbound("whatsapp", "later", "after the mark", now=NOW - timedelta(days=1))
    seen: list[tuple[str, str, bool]] = []
    after = None
    async with store.snapshot() as tx:
        while True:
            page = await tx.unanswered_inbound("whatsapp", after=after, upto=mark, limit=2)
            seen += [(m, body, processed) for m, body, processed, _ in page]
            if len(page) < 2:
                break
            after = page[-1][3]
        everything = [m for m, *_ in await tx.unanswered_inbound("whatsapp")]
    assert seen == [
        ("w0", "body 0", False),
        ("w1", "body 1", False),
        ("w3", "body 3", True),
        ("w4", "body 4", False),
        ("w5", "body 5", False),
        ("w6", "body 6", False),
    ]
    assert everything == ["later", "w0", "w1", "w3", "w4", "w5", "w6"]


async def test_batch_reads_and_writes_give_what_the_one_contract_calls_give(store):
    c2 = Contract("1000002", *[getattr(C1, f) for f in C1.__slots__[1:]])
    async with store.transaction() as tx:
        for c in (C1, c2):
            await tx.upsert_contract(c)
        for k in range(5):  # 1000001: five more readings; 1000002 only its last index
            await tx.upsert_history_reading("1000001", date(2026, 5 + k, 1), 44000 + 100 * k, "actual")
        for k in range(8):
            await tx.upsert_bill(
                Bill(
                    f"F-{k}", "1000001", date(2026, k + 1, 1), date(2026, k + 1, 28), date(2026, k + 2, 1),
                    date(2026, k + 2, 20), 1, 2, 1, k % 2 == 0, 1000 + k, 0,
                )
            )  # fmt: skip
        points = await tx.reading_points_of(["1000001", "1000002", "9999999"], newest=3)
        assert points == {
            c: [(r.reading_date, r.index_value, r.source, r.review) for r in await tx.readings(c, newest=3)]
            for c in ("1000001", "1000002")
        }
        assert len(points["1000001"]) == 3 and points["1000002"] == [(date(2026, 10, 31), 45210, "actual", False)]
        periods = await tx.bill_periods_of(["1000001", "1000002"], limit=4)
        newest = await tx.bills("1000001", limit=4)
        assert periods == {"1000001": [(b.period_start, b.period_end, b.consumption, b.estimated) for b in newest]}
        assert await tx.meters("postpaid") == [("1000001", 5), ("1000002", 5)] and await tx.meters("prepaid") == []
        assert [b.bill_number for b in await tx.bills("1000001", since=date(2026, 6, 1))] == ["F-7", "F-6", "F-5"]
        assert [r.index_value for r in await tx.readings("1000001", since=date(2026, 8, 1), sources=("actual",))] == [
            44300,
            44400,
            45210,
        ]
        await tx.add_estimated_readings(
            [("1000002", date(2026, 11, 30), 45300, 90, 45210, date(2026, 10, 31), {"days": 30})]
        )
        await tx.audit_many("reading_estimated", [("1000002", {"index": 45300})])
        last = await tx.last_reading("1000002")
        assert (last.source, last.index_value, last.consumption, last.previous_date, last.details) == (
            "estimated", 45300, 90, date(2026, 10, 31), {"days": 30},
        )  # fmt: skip
        assert [e["details"] for e in await tx.audit_entries(contract="1000002", action="reading_estimated")] == [
            {"index": 45300}
        ]


async def test_exports_stream_in_batches_in_the_listing_order(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
        for k in range(7):
            await tx.upsert_history_reading("1000001", date(2026, 11, 1 + k), 45300 + k, "customer")
        for k in range(3):
            await tx.add_request(
                reference=f"CB-2026-00000{k}", kind="callback", contract="1000001" if k else None, channel="t",
                user_id="1", lang="fr", details={"phone": "+212600000000"} if k == 2 else {},
            )  # fmt: skip
    async with store.snapshot() as tx:
        batches = [b async for b in tx.export_customer_readings(since=date(2026, 11, 2), batch=4)]
        assert [len(b) for b in batches] == [4, 2]
        assert [row[3] for b in batches for row in b] == [r.index_value for r in await tx.customer_readings()][1:]
        assert batches[0][0][:5] == ("1000001", "E-1", "2026-11-02", 45301, "customer")
        rows = [row for b in [b async for b in tx.export_requests(batch=2)] for row in b]
        assert [r[1] for r in rows] == [r.reference for r in await tx.requests()]
        assert [r[-1] for r in rows] == [None, "+212612345678", "+212600000000"]  # given, else the contract's


# --------------------------------------------------------------- bulk imports (ImportRepository)
# A staged row is (line, key, *values), the values in the order of the kind's columns: what
# storage/csvio.py stages (dates as ISO text, amounts in centimes, booleans as 0/1).
def _staged_contract(line: int, c: Contract) -> tuple:
    return (
        line, c.contract, c.contract, c.service, c.holder_name, c.phone, c.language, c.city, c.meter_number,
        c.meter_kind, c.meter_digits, c.last_index, c.last_index_date.isoformat(), c.tariff, int(c.low_income),
    )  # fmt: skip


def _staged_bill(line: int, b: Bill) -> tuple:
    return (
        line, b.bill_number, b.bill_number, b.contract, b.period_start.isoformat(), b.period_end.isoformat(),
        b.issue_date.isoformat(), b.due_date.isoformat(), b.index_start, b.index_end, b.consumption,
        int(b.estimated), b.amount, b.paid_amount,
    )  # fmt: skip


def _bill(number: str, amount: int, paid: int = 0) -> Bill:
    return Bill(
        number, "1000001", date(2026, 9, 1), date(2026, 9, 30), date(2026, 10, 5), date(2026, 10, 25),
        45000, 45210, 210, False, amount, paid,
    )  # fmt: skip


async def _stage(store, kind: str, rows: list[tuple]) -> list[tuple[int, int]]:
    """Stage `rows` under a snapshot as the import does; the (line, first line) duplicates."""
    async with store.snapshot() as tx:
        await tx.stage_open(kind)
        await tx.stage_rows(rows[:1])  # in several chunks, as the import stages them
        await tx.stage_rows(rows[1:])
        await tx.stage_rows([])
        repeated, total = await tx.stage_duplicates(100)
        assert total == len(repeated)
        return repeated


async def _merge(store, kind: str) -> dict[str, int]:
    async with store.transaction() as tx:
        try:
            return await tx.merge_stage(kind, now=NOW)
        finally:
            await tx.stage_close()


async def test_staged_bills_are_merged_in_one_transaction_and_counted(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
    first, second = _bill("F-1", 24317), _bill("F-2", 10000, 10000)
    assert await _stage(store, "bills", [_staged_bill(2, first), _staged_bill(3, second)]) == []
    async with store.snapshot() as tx:  # staged is not written: the tables are untouched until the merge
        assert await tx.bills("1000001") == []
    assert await _merge(store, "bills") == {"inserted": 2, "updated": 0, "unchanged": 0}
    async with store.snapshot() as tx:
        assert await tx.bill("F-1") == first and await tx.bill("F-2") == second
        assert [b.due for b in await tx.bills("1000001", unpaid_only=True)] == [24317]
    # the same file again, one bill now paid: one update, one unchanged, nothing inserted
    paid = _bill("F-1", 24317, 24317)
    await _stage(store, "bills", [_staged_bill(2, paid), _staged_bill(3, second)])
    assert await _merge(store, "bills") == {"inserted": 0, "updated": 1, "unchanged": 1}
    async with store.snapshot() as tx:
        assert await tx.bill("F-1") == paid and await tx.bills("1000001", unpaid_only=True) == []


async def test_staged_contracts_write_the_contract_and_its_last_index_as_a_reading(store):
    c2 = Contract("1000002", "water", *[getattr(C1, f) for f in C1.__slots__[2:]])
    await _stage(store, "contracts", [_staged_contract(2, C1), _staged_contract(3, c2)])
    assert await _merge(store, "contracts") == {"inserted": 2, "updated": 0, "unchanged": 0}
    async with store.snapshot() as tx:
        assert await tx.contracts(["1000001", "1000002"]) == [C1, c2]
        last = await tx.last_reading("1000002")
        assert (last.reading_date, last.index_value, last.source) == (date(2026, 10, 31), 45210, "actual")
        assert await tx.contract_dials(["1000001", "1000002", "9999999"]) == {"1000001": 5, "1000002": 5}
    moved = Contract(*[getattr(C1, f) for f in C1.__slots__[:5]], "Rabat", *[getattr(C1, f) for f in C1.__slots__[6:]])
    await _stage(store, "contracts", [_staged_contract(2, moved), _staged_contract(3, c2)])
    assert await _merge(store, "contracts") == {"inserted": 0, "updated": 1, "unchanged": 1}
    async with store.snapshot() as tx:
        assert (await tx.contract("1000001")).city == "Rabat"
        assert [r.index_value for r in await tx.readings("1000001")] == [45210]  # its last index, once


async def test_staged_readings_are_keyed_by_contract_day_and_source(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
    rows = [(2, "k1", "1000001", "2026-11-05", 45300, "actual"), (3, "k2", "1000001", "2026-11-05", 45290, "estimated")]
    await _stage(store, "readings", rows)
    assert await _merge(store, "readings") == {"inserted": 2, "updated": 0, "unchanged": 0}
    await _stage(store, "readings", [(2, "k1", "1000001", "2026-11-05", 45310, "actual"), rows[1]])
    assert await _merge(store, "readings") == {"inserted": 0, "updated": 1, "unchanged": 1}
    async with store.snapshot() as tx:
        got = await tx.readings("1000001", since=date(2026, 11, 1))
        assert sorted((r.index_value, r.source) for r in got) == [(45290, "estimated"), (45310, "actual")]


async def test_staged_agencies_are_keyed_by_the_folded_city_and_the_name(store):
    row = ("Fès", "Agence Centre", "1 av. X", "0535000000", "8h-16h", "فاس", None, None, None, fold("Fès"))
    await _stage(store, "agencies", [(2, "fes\x1fAgence Centre", *row)])
    assert await _merge(store, "agencies") == {"inserted": 1, "updated": 0, "unchanged": 0}
    await _stage(store, "agencies", [(2, "fes\x1fAgence Centre", "FES", *row[1:4], "8h-17h", *row[5:])])
    assert await _merge(store, "agencies") == {"inserted": 0, "updated": 1, "unchanged": 0}
    async with store.snapshot() as tx:
        [agency] = await tx.agencies("fès")
        assert (agency.city, agency.name, agency.hours, agency.city_ar) == ("FES", "Agence Centre", "8h-17h", "فاس")


async def test_the_stage_lists_repeated_keys_with_their_first_line(store):
    blank = (None,) * 12  # a row that failed its checks keeps only its key
    rows = [
        (2, "F-1", *blank), (3, "F-2", *blank), (5, "F-1", *blank), (6, None, *blank), (7, None, *blank),
        (8, "F-2", *blank), (9, "F-1", *blank),
    ]  # fmt: skip
    assert await _stage(store, "bills", rows) == [(5, 2), (8, 3), (9, 2)]  # a missing key is no duplicate
    async with store.snapshot() as tx:
        assert await tx.stage_duplicates(2) == ([(5, 2), (8, 3)], 3)  # the first `limit`, and how many in all
        await tx.stage_close()


async def test_a_rejected_file_writes_nothing(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
    # rejected after staging (the import's checks found a bad row): the stage is closed, not merged
    await _stage(store, "bills", [_staged_bill(2, _bill("F-1", 100))])
    async with store.snapshot() as tx:
        await tx.stage_close()
    await _stage(store, "bills", [_staged_bill(2, _bill("F-9", 900))])  # the next file starts empty
    assert await _merge(store, "bills") == {"inserted": 1, "updated": 0, "unchanged": 0}
    # a merge whose transaction fails afterwards writes nothing either
    await _stage(store, "bills", [_staged_bill(2, _bill("F-2", 200)), _staged_bill(3, _bill("F-9", 999))])
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            assert await tx.merge_stage("bills", now=NOW) == {"inserted": 1, "updated": 1, "unchanged": 0}
            raise RuntimeError("the audit failed")
    async with store.transaction() as tx:
        await tx.stage_close()
    async with store.snapshot() as tx:
        assert [(b.bill_number, b.amount) for b in await tx.bills("1000001")] == [("F-9", 900)]
        # a new stage holds none of the closed one's rows
        await tx.stage_open("bills")
        assert await tx.stage_duplicates(10) == ([], 0)
        await tx.stage_close()
    assert await _merge_empty(store) == {"inserted": 0, "updated": 0, "unchanged": 0}


async def _merge_empty(store) -> dict[str, int]:
    async with store.snapshot() as tx:
        await tx.stage_open("bills")
    return await _merge(store, "bills")


# ---------------------------------------------------------------------- the web workspace (issue 20)
async def test_workspace_accounts_sessions_and_the_sign_in_failures(store):
    later = NOW + timedelta(hours=9)
    async with store.transaction() as tx:
        assert await tx.add_account("amina", "agent", "$argon2id$x") is True
        assert await tx.add_account("amina", "admin", "$argon2id$y") is False  # names are unique
        await tx.add_web_session("h1", "amina", "127.0.0.1", expires_at=NOW + timedelta(hours=8))
        await tx.add_signin_failure("amina", "10.0.0.1", now=NOW - timedelta(minutes=20))
        await tx.add_signin_failure("amina", "10.0.0.1", now=NOW - timedelta(minutes=5))
        await tx.add_signin_failure("omar", "10.0.0.1", now=NOW - timedelta(minutes=1))
    async with store.snapshot() as tx:
        assert (await tx.account("amina")).role == "agent"
        assert [a.name for a in await tx.accounts()] == ["amina"]
        assert (await tx.web_session("h1")).name == "amina"
        assert await tx.web_session("h1", now=later) is None  # expired
        assert await tx.web_session("nope") is None
        since = NOW - timedelta(minutes=15)
        assert await tx.signin_failures(since=since, account="amina") == (1, NOW - timedelta(minutes=5))
        assert (await tx.signin_failures(since=since, address="10.0.0.1"))[0] == 2
    async with store.transaction() as tx:
        assert await tx.update_account("amina", disabled=True)
        await tx.clear_signin_failures("amina", older_than=NOW - timedelta(minutes=15))
    async with store.snapshot() as tx:
        assert await tx.web_session("h1") is None  # a disabled account has no session
        assert (await tx.signin_failures(since=NOW - timedelta(hours=1), address="10.0.0.1"))[0] == 1
    async with store.transaction() as tx:
        assert await tx.end_web_sessions(account="amina") == 1
        assert await tx.set_workspace_setting("k", "first", if_absent=True) == "first"
        assert await tx.set_workspace_setting("k", "second", if_absent=True) == "first"
        assert await tx.set_workspace_setting("k", "third") == "third"


async def test_workspace_queue_assignment_and_customer_search(store):
    async with store.transaction() as tx:
        await tx.upsert_contract(C1)
        await tx.add_account("omar", "agent", "$argon2id$x")
        for i, (kind, at) in enumerate((("instalment", NOW), ("callback", NOW - timedelta(days=2)))):
            await tx.add_request(
                reference=f"R-{i}", kind=kind, contract="1000001", channel="t", user_id="u", lang="fr", now=at
            )
        await tx.link_chat("telegram", "42", "1000001", "phone")
        assert await tx.assign_request("R-0", "omar")
    async with store.snapshot() as tx:
        assert sorted(await tx.request_counts()) == [("callback", "pending", 1), ("instalment", "pending", 1)]
        rows, total = await tx.request_queue(status="pending")
        assert total == 2 and [r.request.reference for r in rows] == ["R-1", "R-0"]  # oldest first
        assert rows[0].holder_name == "Fatima" and rows[0].city == "Casablanca" and rows[1].assigned_to == "omar"
        rows, total = await tx.request_queue(kinds=["instalment"], city="casablanca")
        assert total == 1 and rows[0].request.reference == "R-0"
        assert (await tx.request_queue(filed_before=NOW - timedelta(days=1)))[1] == 1
        assert (await tx.request_queue(city="Rabat"))[1] == 0
        assert await tx.request_assignee("R-0") == "omar" and await tx.request_cities() == ["Casablanca"]
        assert [c.contract for c in await tx.search_contracts(number="10000")] == ["1000001"]
        assert [c.contract for c in await tx.search_contracts(phone="+212612345678")] == ["1000001"]
        assert [c.contract for c in await tx.search_contracts(name="fati")] == ["1000001"]
        assert await tx.search_contracts(name="%") == []
        assert [(l.channel, l.user_id, l.method) for l in await tx.links_of_contract("1000001")] == [
            ("telegram", "42", "phone")
        ]
