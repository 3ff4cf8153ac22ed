"""Push delivery of back-office decisions: once, with back-off, and never twice after a crash."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from conversations.backoffice import decide
from conversations.dispatch import DeliveryUnknown, Dispatcher, HoldForChat, RetryLater, Undeliverable
from conversations.profile import load_profile
from storage import open_store

from .chat import Clock, open_engine
from .test_requests import file_instalment


class RecordingSender:
    """A channel that records what it delivered; `script` says how the next attempts end."""

    channel = "test"
    confirms_delivery = False

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.delivered: list[tuple[str, str]] = []
        self.attempts = 0

    async def send_outbox(self, msg, text):
        self.attempts += 1
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "crash_after_send":
            self.delivered.append((msg.user_id, text))
            raise asyncio.CancelledError()  # the process dies before the mark is written
        if isinstance(outcome, Exception):
            raise outcome
        self.delivered.append((msg.user_id, text))
        return f"ext-{len(self.delivered)}"


@pytest.fixture
async def setup(tmp_path):
    clock = Clock()
    engine = await open_engine(tmp_path / "addad.sqlite3", clock)  # 'test' is a push channel here
    chat = await file_instalment(engine, lang_hint="fr")
    async with engine.store.transaction() as tx:
        await decide(
            tx, "IN-2026-000001", "approved", note="Premier prélèvement le 23", actor="backoffice:amina", now=clock()
        )
    try:
        yield engine, chat, clock, tmp_path / "addad.sqlite3"
    finally:
        await engine.store.close()


def dispatcher(engine, clock, *senders, store=None) -> Dispatcher:
    return Dispatcher(store or engine.store, load_profile(), list(senders), clock=clock)


async def outbox_row(store):
    async with store.snapshot() as tx:
        return await tx.outbox_message(1)


async def test_a_decision_is_pushed_once_in_the_customer_language(setup):
    engine, chat, clock, _ = setup
    sender = RecordingSender()
    d = dispatcher(engine, clock, sender)
    assert await d.dispatch_due() == 1
    assert await d.dispatch_due() == 0
    assert len(sender.delivered) == 1
    user, text = sender.delivered[0]
    assert user == "u1"
    assert "IN-2026-000001" in text and "accept" in text and "Premier prélèvement le 23" in text
    assert (await outbox_row(engine.store)).status == "sent"
    await chat.send("merci")
    assert "IN-2026-000001" not in chat.text  # pushed already: not shown again in the chat


async def test_failures_back_off_then_succeed(setup):
    engine, _, clock, _ = setup
    sender = RecordingSender(RetryLater("HTTP 502"), RetryLater("429", after=30))
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    assert sender.delivered == [] and (await outbox_row(engine.store)).status == "pending"
    assert await d.dispatch_due() == 0  # backing off: 5 s
    clock.advance(seconds=6)
    await d.dispatch_due()  # second failure asks for 30 s (more than 10 s back-off)
    clock.advance(seconds=11)
    assert await d.dispatch_due() == 0
    clock.advance(seconds=20)
    await d.dispatch_due()
    assert len(sender.delivered) == 1 and sender.attempts == 3
    assert (await outbox_row(engine.store)).status == "sent"


async def test_gives_up_after_max_attempts_and_audits(setup):
    engine, _, clock, _ = setup
    sender = RecordingSender(*[RetryLater("HTTP 500")] * 10)
    d = dispatcher(engine, clock, sender)
    d.max_attempts = 3
    for _ in range(5):
        await d.dispatch_due()
        clock.advance(hours=1)
    assert sender.attempts == 3 and sender.delivered == []
    row = await outbox_row(engine.store)
    assert row.status == "failed" and "500" in row.last_error
    async with engine.store.snapshot() as tx:
        assert len(await tx.audit_entries(action="outbox_failed")) == 1


async def test_a_crash_between_sending_and_marking_never_sends_twice(setup):
    engine, chat, clock, path = setup
    sender = RecordingSender("crash_after_send")
    with pytest.raises(asyncio.CancelledError):
        await dispatcher(engine, clock, sender).dispatch_due()
    assert (await outbox_row(engine.store)).status == "sending"  # sent, not marked
    await engine.store.close()

    # A new process on the same file: recovery settles the claim, nothing is sent again.
    store = await open_store(path)
    engine.store = store
    again = RecordingSender()
    d = dispatcher(engine, clock, again, store=store)
    assert await d.recover() == 1
    assert await d.dispatch_due() == 0
    assert again.delivered == [] and len(sender.delivered) == 1
    row = await outbox_row(store)
    assert row.status == "failed" and "not resent" in row.last_error
    await chat.send("bonjour")
    assert "IN-2026-000001" not in chat.text  # nor shown a second time in the chat
    await chat.press("Suivre mes demandes")
    assert "IN-2026-000001" in chat.text and "Premier prélèvement le 23" in chat.text  # still visible


@pytest.mark.parametrize("error", [DeliveryUnknown("read timeout"), Undeliverable("Forbidden: bot was blocked")])
async def test_a_timeout_or_a_blocked_bot_is_not_retried(setup, error):
    engine, _, clock, _ = setup
    sender = RecordingSender(error)
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    clock.advance(hours=2)
    await d.dispatch_due()
    assert sender.attempts == 1 and sender.delivered == []
    row = await outbox_row(engine.store)
    assert row.status == "failed" and str(error) in row.last_error


async def test_held_messages_are_shown_at_the_next_message_exactly_once(setup):
    engine, chat, clock, _ = setup
    sender = RecordingSender(HoldForChat("outside the 24-hour window"))
    d = dispatcher(engine, clock, sender)
    await d.dispatch_due()
    assert sender.delivered == [] and (await outbox_row(engine.store)).status == "held"
    await chat.send("bonjour")
    assert "IN-2026-000001" in chat.text and "Premier prélèvement le 23" in chat.text
    await chat.send("bonjour")
    assert "IN-2026-000001" not in chat.text


async def test_a_channel_that_confirms_deliveries_resends_an_unconfirmed_claim(setup):
    engine, _, clock, _ = setup
    sender = RecordingSender("crash_after_send")
    sender.confirms_delivery = True
    with pytest.raises(asyncio.CancelledError):
        await dispatcher(engine, clock, sender).dispatch_due()
    d = dispatcher(engine, clock, sender)
    assert await d.recover(older_than=timedelta(minutes=5)) == 0  # within the lease: maybe in flight
    clock.advance(minutes=6)
    assert await d.recover(older_than=timedelta(minutes=5)) == 1
    await d.dispatch_due()
    assert (await outbox_row(engine.store)).status == "sent"


async def test_the_run_loop_stops_and_sends_what_is_queued(setup):
    engine, _, clock, _ = setup
    sender = RecordingSender()
    d = dispatcher(engine, clock, sender)
    d.poll_seconds = 0.01
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    for _ in range(200):
        if sender.delivered:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert len(sender.delivered) == 1
