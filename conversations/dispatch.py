"""Push delivery of queued messages (back-office decisions) on channels that can write first.

Each message goes: pending → claimed ('sending', committed) → sent through the channel → marked
'sent' with the channel's message id. A send that failed before reaching the channel goes back to
'pending' with exponential back-off (or the channel's retry_after), up to `max_attempts`.

The window between the channel accepting a message and the database marking it cannot be closed
for a channel with no idempotency key (Telegram). A message found still 'sending' after a restart,
or whose send ended in a timeout, may have been delivered: it is NOT sent again (the customer
must never get a decision twice); it is marked 'failed' with the reason and audited, and the
decision stays visible through request tracking. A channel that confirms deliveries by itself
(`confirms_delivery`, e.g. WhatsApp statuses carrying our id) gets such messages back to
'pending' after the lease instead, since a delivered one would have been confirmed by then.

Every outbox change a channel causes goes through the dispatcher too (`queue_replies` for replies
it could not send, `apply_reports` for its delivery reports): the adapters write no outbox row.
(The engine marks sent, in the turn's transaction, what a turn shows itself.)
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from storage import Clock, OutboxMessage, Store

from .backoffice import render_outbox
from .profile import Profile
from .reminders import PROACTIVE, Lane, quiet_end, still_wanted
from .workers import chat_locks

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The channel did not take the message (connection refused, 429, 5xx): safe to send again."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class DeliveryUnknown(Exception):
    """The request may have reached the channel (e.g. a read timeout): never resent."""


class Undeliverable(Exception):
    """The channel refused for good (bot blocked, chat gone)."""


class HoldForChat(Exception):
    """The channel may not write first now (WhatsApp's 24-hour window, no template): shown at the
    customer's next message instead."""


class Sender(Protocol):
    channel: str
    confirms_delivery: bool

    async def send_outbox(self, msg: OutboxMessage, text: str) -> str | None:
        """Deliver `text`; return the channel's message id. Raise one of the exceptions above."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a channel reports later about a message it was given (WhatsApp statuses)."""

    external_id: str  # the channel's message id
    outbox_id: int | None = None  # our outbox id, when the channel carries it back
    # accepted: sent, delivered or read; the others: a failed delivery, held for the chat's next
    # message, sent again after `retry_in`, or given up (audited with `details`).
    outcome: Literal["accepted", "held", "retry", "failed"] = "accepted"
    error: str = ""
    retry_in: timedelta = timedelta(seconds=30)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DispatchStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        profile: Profile,
        senders: list[Sender],
        *,
        clock: Clock | None = None,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=5),
        max_delay: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(minutes=5),
        poll_seconds: float = 2.0,
        concurrency: int | None = None,
    ) -> None:
        self.store, self.profile = store, profile
        self.senders = {s.channel: s for s in senders}
        self.clock = clock or store.clock
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.lease, self.poll_seconds = lease, poll_seconds
        # Sends in flight. Each holds its slot for a round trip, so the reminders' rate needs
        # rate x round trip of them: 8, or enough for 100 ms at the profile's rate (25 at 250/s;
        # at 8, 50 ms capped a campaign at ~130/s). Replies never take these.
        self._slots = asyncio.Semaphore(concurrency or max(8, math.ceil(profile.reminders.rate / 10)))
        self.stats = DispatchStats()
        self.wake = asyncio.Event()  # set by whoever queues a message in this process
        self._lane = Lane(profile.reminders.rate)
        # Several workers on one database (PostgreSQL): claims name their worker, whose liveness
        # the others can ask (storage/postgres/locks.py); None on SQLite (one process).
        self._workers = chat_locks(store)

    def add(self, sender: Sender) -> None:
        """A channel's sender, once the channel is built (its client may need the dispatcher)."""
        self.senders[sender.channel] = sender

    # ------------------------------------------------------------------ what adapters call
    async def queue_replies(self, channel: str, user_id: str, lang: str, payloads: list[dict[str, Any]]) -> None:
        """Replies a channel could not send now, queued to be sent again (kind 'reply')."""
        async with self.store.transaction() as tx:
            for payload in payloads:
                await tx.enqueue_outbox(channel=channel, user_id=user_id, lang=lang, kind="reply", payload=payload)

    async def last_customer_turn(self, channel: str, user_id: str) -> datetime | None:
        """When the person last wrote (a channel's window for writing first)."""
        async with self.store.snapshot() as tx:
            last = await tx.last_customer_turn(channel, user_id)
        return last

    async def apply_reports(self, channel: str, reports: list[DeliveryReport]) -> None:
        """A channel's delivery reports: a send whose answer was lost is confirmed by our id; a
        failed delivery is held, retried or given up."""
        now = self.clock()
        async with self.store.transaction() as tx:
            for r in reports:
                msg = await tx.outbox_by_external_id(channel, r.external_id)
                if msg is None and r.outbox_id is not None:
                    msg = await tx.outbox_message(r.outbox_id)
                    if (
                        msg is not None
                        and msg.channel == channel
                        and msg.status == "sending"
                        and r.outcome == "accepted"
                    ):
                        await tx.mark_outbox_sent(msg.id, external_id=r.external_id, now=now)  # its answer was lost
                        continue
                if msg is None or r.outcome == "accepted":
                    continue
                if r.outcome == "held" and msg.kind not in PROACTIVE:
                    await tx.settle_outbox(msg.id, "held", error=r.error)
                elif r.outcome == "retry":
                    await tx.settle_outbox(msg.id, "pending", error=r.error, next_attempt_at=now + r.retry_in)
                else:
                    await tx.settle_outbox(msg.id, "failed", error=r.error)
                    await tx.audit(
                        "outbox_failed",
                        actor="system",
                        channel=channel,
                        user_id=msg.user_id,
                        details={"outbox_id": msg.id, **r.details},
                        now=now,
                    )

    async def recover(self, *, older_than: timedelta | None = None) -> int:
        """Settle messages left 'sending' by a dispatcher that stopped between send and mark.
        At start-up every claim is from a dead process (one dispatcher per channel), so the
        default looks at all of them (with several workers on one database, all but the claims
        of a live worker within the lease); a periodic sweep passes the lease."""
        now = self.clock()
        cutoff = now - older_than if older_than is not None else now + timedelta(seconds=1)
        settled = 0
        async with self.store.transaction() as tx:
            interrupted = await tx.interrupted_outbox(channels=self.senders, claimed_before=cutoff)
            if self._workers is not None and older_than is None and interrupted:
                # Another worker's claim within its lease is a send in flight if that worker lives.
                claimers = await tx.outbox_claimers(m.id for m in interrupted)
                live = {w: await self._workers.alive(w) for w in set(claimers.values()) if w is not None}
                expired = {
                    m.id for m in await tx.interrupted_outbox(channels=self.senders, claimed_before=now - self.lease)
                }
                interrupted = [m for m in interrupted if m.id in expired or not live.get(claimers.get(m.id) or "")]
            for msg in interrupted:
                sender = self.senders[msg.channel]
                if sender.confirms_delivery or msg.kind == "reply":
                    # A conversation reply said twice is better than one never said.
                    await tx.settle_outbox(
                        msg.id, "pending", error="interrupted; not confirmed by the channel", next_attempt_at=now
                    )
                else:
                    await tx.settle_outbox(
                        msg.id,
                        "failed",
                        error="interrupted while sending: delivery unknown, not resent to avoid a duplicate",
                    )
                    await tx.audit(
                        "outbox_unconfirmed",
                        actor="system",
                        channel=msg.channel,
                        user_id=msg.user_id,
                        details={"outbox_id": msg.id, "kind": msg.kind},
                        now=now,
                    )
                settled += 1
        return settled

    async def dispatch_due(self) -> int:
        """Send every message due now; returns how many were attempted."""
        async with self.store.snapshot() as tx:
            due = await tx.outbox_due(now=self.clock(), channels=self.senders, limit=100)
        if due:
            await asyncio.gather(*(self._deliver(msg) for msg in due))
        return len(due)

    async def _not_now(self, tx, msg: OutboxMessage) -> bool:
        """A reminder or notice at send time: in quiet hours it waits for their end; to a chat that
        said stop or no longer holds the contract it is not sent (conversations/reminders.py)."""
        wait = quiet_end(self.profile, self.clock())
        if wait is not None:
            await tx.settle_outbox(msg.id, "pending", error="quiet hours", next_attempt_at=wait)
            return True
        if not await still_wanted(tx, msg):
            await tx.settle_outbox(msg.id, "failed", error="not sent: reminders stopped or contract unlinked")
            return True
        return False

    async def _deliver(self, msg: OutboxMessage) -> None:
        if msg.kind in PROACTIVE:
            # Their own lane: at most the profile's reminder rate per channel, one a second per
            # chat, waiting before a slot is taken, so customers' messages never queue behind them.
            await self._lane.wait(msg.channel, msg.user_id)
        async with self._slots:
            if self._workers is not None:
                await self._workers.ensure()  # our own lock re-taken if its connection broke (a restart)
            async with self.store.transaction() as tx:
                if msg.kind in PROACTIVE and await self._not_now(tx, msg):
                    return
                if not await tx.claim_outbox(msg.id, now=self.clock(), by=self._claimant):
                    return  # someone else took it, or a chat turn showed it
                session = await tx.load_session(msg.channel, msg.user_id)
            if session is not None and session.lang and session.lang != msg.lang:
                msg = replace(msg, lang=session.lang)  # the language the chat speaks now, not at filing
            sender = self.senders[msg.channel]
            try:
                external_id = await sender.send_outbox(msg, render_outbox(msg, self.profile))
            except RetryLater as exc:
                delay = self._backoff(msg.attempts + 1, exc.after)
                async with self.store.transaction() as tx:
                    status = await tx.retry_outbox(
                        msg.id, error=str(exc), delay=delay, max_attempts=self.max_attempts, now=self.clock()
                    )
                    if status == "failed":
                        await tx.audit(
                            "outbox_failed",
                            actor="system",
                            channel=msg.channel,
                            user_id=msg.user_id,
                            details={"outbox_id": msg.id, "error": str(exc)[:200]},
                        )
                if status == "failed":
                    self.stats.failed += 1
                else:
                    self.stats.retried += 1
                return
            except HoldForChat as exc:
                await self._settle(msg, "held", str(exc))
                self.stats.held += 1
                return
            except DeliveryUnknown as exc:
                if sender.confirms_delivery:
                    # Left 'sending': the channel's status report will mark it sent, or the
                    # sweep after the lease sends it again.
                    log.info("outbox %s: outcome unknown (%s); waiting for the channel's status", msg.id, exc)
                    return
                await self._settle(msg, "failed", f"{type(exc).__name__}: {exc}")
                self.stats.failed += 1
                return
            except Undeliverable as exc:
                await self._settle(msg, "failed", f"{type(exc).__name__}: {exc}")
                self.stats.failed += 1
                return
            async with self.store.transaction() as tx:
                await tx.mark_outbox_sent(msg.id, external_id=external_id, now=self.clock())
            self.stats.sent += 1

    @property
    def _claimant(self) -> str | None:
        return self._workers.worker_id if self._workers is not None else None

    async def _settle(self, msg: OutboxMessage, status: str, error: str) -> None:
        async with self.store.transaction() as tx:
            await tx.settle_outbox(msg.id, status, error=error)
            if status == "failed":
                await tx.audit(
                    "outbox_failed",
                    actor="system",
                    channel=msg.channel,
                    user_id=msg.user_id,
                    details={"outbox_id": msg.id, "error": error[:200]},
                )

    def _backoff(self, attempt: int, after: float | None) -> timedelta:
        delay = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        if after is not None:
            delay = max(delay, timedelta(seconds=after))
        return delay

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: recover, then send what is due, polling (other processes queue decisions)."""
        if self._workers is not None:
            await self._workers.ensure()  # this worker's own lock held before it claims anything
        await self.recover()
        sweep = self.clock()
        while not stop.is_set():
            full = False
            try:
                full = await self.dispatch_due() >= 100  # a full batch (a campaign): the next one at once
                if self.clock() - sweep > self.lease:
                    await self.recover(older_than=self.lease)
                    sweep = self.clock()
            except Exception:
                log.exception("outbox dispatch failed; trying again")
            if full:
                continue
            self.wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
