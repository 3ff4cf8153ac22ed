"""Issue 20's part of the storage contract (run against every backend through the `store`
fixture): one review per reading and what each outcome changes, one open handoff per chat and
its guarded updates, the chat log bounded per chat and pruned by age."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from .test_storage_contract import NOW


async def customer_reading(tx, index: int, *, day: date, replaces: int | None = None, reference: str) -> int:
    return await tx.add_customer_reading(
        contract="1000001",
        day=day,
        index=index,
        reference=reference,
        channel="telegram",
        user_id="7",
        photo_ref=None,
        previous_index=45210,
        previous_date=date(2026, 10, 31),
        consumption=index - 45210,
        review_reason="outlier" if index > 46000 else None,
        replaces=replaces,
        now=NOW,
    )


async def test_one_review_per_reading_and_a_rejection_restores_the_replaced_one(store):
    async with store.transaction() as tx:
        first = await customer_reading(tx, 45300, day=date(2026, 11, 20), reference="RL-1")
        second = await customer_reading(tx, 46900, day=date(2026, 11, 22), replaces=first, reference="RL-2")
    async with store.snapshot() as tx:
        [item] = await tx.review_items(flagged=True)
        everything = await tx.review_items(flagged=False, newest_first=True)
    assert (item.reading.id, item.flags, item.replaces_reference, item.pending) == (
        second,
        ("outlier", "replaces"),
        "RL-1",
        True,
    )
    assert [i.reading.id for i in everything] == [second, first] and everything[1].flags == ()
    async with store.transaction() as tx:
        await tx.record_review(second, "rejected", actor="web:amina", note="floue", original_index=46900, now=NOW)
    # The domain refuses first (conversations/review.py); the store never keeps two, whatever its error type.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate|constraint"):
        async with store.transaction() as tx:
            await tx.record_review(second, "accepted", actor="web:karim", note=None, original_index=46900, now=NOW)
    async with store.snapshot() as tx:
        done = await tx.review_item(second)
        readings = {r.id: r.status for r in await tx.readings("1000001", include_replaced=True)}
        assert await tx.review_items(flagged=True) == []
    assert (done.outcome, done.reviewed_by, done.note, done.original_index, done.pending) == (
        "rejected",
        "web:amina",
        "floue",
        46900,
        False,
    )
    assert (readings[first], readings[second]) == ("valid", "replaced")


async def test_a_correction_changes_the_index_and_clears_the_flag(store):
    async with store.transaction() as tx:
        rid = await customer_reading(tx, 46900, day=date(2026, 11, 22), reference="RL-3")
        await tx.record_review(
            rid, "corrected", actor="web:amina", note=None, original_index=46900, index=45400, consumption=190, now=NOW
        )
    async with store.snapshot() as tx:
        r = (await tx.review_item(rid)).reading
    assert (r.index_value, r.consumption, r.review, r.status) == (45400, 190, False, "valid")


async def test_one_open_handoff_per_chat_and_updates_only_from_the_expected_status(store):
    async with store.transaction() as tx:
        h = await tx.open_handoff("telegram", "7", lang="fr", contract="1000001", now=NOW)
        assert await tx.open_handoff("telegram", "7", lang="fr", contract=None, now=NOW) is None
        assert await tx.update_handoff(h, expected="waiting", status="taken", taken_by="web:amina", taken_at=NOW)
        assert not await tx.update_handoff(h, expected="waiting", status="taken", taken_by="web:karim", taken_at=NOW)
        taken = await tx.chat_handoff("telegram", "7")
        assert (taken.status, taken.taken_by, taken.taken_at) == ("taken", "web:amina", NOW)
        assert await tx.update_handoff(h, expected="taken", status="closed", closed_at=NOW, close_reason="returned")
        assert await tx.chat_handoff("telegram", "7") is None and await tx.handoffs() == []
        assert await tx.open_handoff("telegram", "7", lang="ar", contract=None, now=NOW) is not None  # again later


async def test_the_chat_log_keeps_the_last_lines_of_each_chat_and_forgets_old_ones(store):
    async with store.transaction() as tx:
        for i in range(12):
            await tx.log_chat("telegram", "7", [("customer", None, f"q{i}"), ("bot", None, f"a{i}")], keep=10, now=NOW)
        await tx.log_chat("telegram", "8", [("agent", "web:amina", "bonjour")], keep=10, now=NOW + timedelta(days=9))
    async with store.snapshot() as tx:
        lines = await tx.chat_log("telegram", "7")
        other = await tx.chat_log("telegram", "8")
    assert [line.text for line in lines] == ["q7", "a7", "q8", "a8", "q9", "a9", "q10", "a10", "q11", "a11"]
    assert [(line.sender, line.author, line.text) for line in other] == [("agent", "web:amina", "bonjour")]
    async with store.transaction() as tx:
        assert await tx.prune_chat_log(older_than=NOW + timedelta(days=1)) == 10
        assert [line.text for line in await tx.chat_log("telegram", "8")] == ["bonjour"]
