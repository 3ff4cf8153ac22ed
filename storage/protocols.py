"""What a storage backend is: one typed protocol per aggregate, `Tx` combining them, `Store`.

Conversation code is written against these (`tx.readings(...)`, `tx.link_chat(...)`); the
SQLite backend (storage/sqlite/) implements them, and tests/test_storage_contract.py is the
executable definition a second backend must pass. Methods taking `now` stamp with it, else
with the store's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from .clock import Clock
from .records import (
    Account,
    Agency,
    Bill,
    ChatLink,
    Contract,
    InstalmentLine,
    OutboxMessage,
    QueueRow,
    Reading,
    ReminderConsent,
    ReminderTarget,
    Request,
    SessionRecord,
)
from .review_records import ChatLine, Handoff, ReviewItem

Upsert = Literal["inserted", "updated", "unchanged"]
# Where an inbox row stands in arrival order: (received_at, rowid).
InboxKey = tuple[str, int]


# (contract, day, index, consumption, previous_index, previous_date, details): add_estimated_readings
EstimatedReading = tuple[str, date, int, int, int, date, dict[str, Any]]
# (reading_date, index_value, source, review): reading_points_of
ReadingPoint = tuple[date, int, str, bool]
# (period_start, period_end, consumption, estimated): bill_periods_of
BillPeriod = tuple[date, date, int, bool]


class ConcurrentUpdate(Exception):
    """The session changed since it was loaded (another process handled the same chat)."""


class WriteConflict(ConcurrentUpdate):
    """The database rolled the transaction back for a conflict with another process's (a
    deadlock, a serialization failure: PostgreSQL without the global writers' lock); nothing of
    it was kept, so running it again doubles nothing."""


class StoreUnavailable(Exception):
    """The store cannot be opened for use (a read-only file or folder, a journal that cannot be
    created, a file that is not a database); the message says which file and why, in one line."""


class ConnectionLost(StoreUnavailable):
    """The connection to the database server broke before the transaction committed: the
    server rolled all of it back, so running it again (once reconnected) doubles nothing."""


class ContractRepository(Protocol):
    """Contracts: the distributor's customer records, imported."""

    async def upsert_contract(self, c: Contract, *, now: datetime | None = None) -> Upsert:
        """Insert or update a contract, and record its last index as an actual reading."""
        ...

    async def contract(self, number: str) -> Contract | None: ...

    async def contracts(self, numbers: Iterable[str] | None = None) -> list[Contract]: ...

    async def contracts_with_phone(self, phone_e164: str) -> list[Contract]: ...

    async def meters(self, kind: str) -> list[tuple[str, int]]:
        """(contract, meter_digits) of every contract with a `kind` (postpaid, prepaid) meter, by contract."""
        ...

    async def existing_contracts(self, numbers: Iterable[str]) -> set[str]: ...

    async def count_contracts(self) -> int: ...


class LinkRepository(Protocol):
    """Which contracts a chat has proved it may see."""

    async def link_chat(
        self, channel: str, user_id: str, contract: str, method: str, *, now: datetime | None = None
    ) -> None: ...

    async def unlink_chat(self, channel: str, user_id: str, contract: str) -> bool: ...

    async def chat_links(self, channel: str, user_id: str) -> list[ChatLink]: ...

    async def linked_contracts(self, channel: str, user_id: str) -> list[Contract]: ...

    async def is_linked(self, channel: str, user_id: str, contract: str) -> bool: ...


class ReadingRepository(Protocol):
    """Meter readings: the distributor's history and the customers' own."""

    async def upsert_history_reading(
        self, contract: str, day: date, index: int, source: str, *, now: datetime | None = None
    ) -> Upsert:
        """A reading from the distributor's history (actual, estimated or customer), keyed by day and source."""
        ...

    async def add_customer_reading(
        self,
        *,
        contract: str,
        day: date,
        index: int,
        reference: str,
        channel: str,
        user_id: str,
        photo_ref: str | None,
        previous_index: int | None,
        previous_date: date | None,
        consumption: int | None,
        rollover: bool = False,
        review_reason: str | None = None,
        details: dict[str, Any] | None = None,
        replaces: int | None = None,
        now: datetime | None = None,
        photo_sha256: str | None = None,
        ocr_index: int | None = None,  # what the photo showed, when the reader was sure (issue 21)
    ) -> int:
        """Record a confirmed customer reading; `replaces` marks an earlier one of the cycle as replaced."""
        ...

    async def readings(
        self,
        contract: str,
        *,
        include_replaced: bool = False,
        newest: int | None = None,
        sources: tuple[str, ...] | None = None,
        since: date | None = None,
    ) -> list[Reading]:
        """Readings of a contract, oldest first; with `newest`, only that many of the latest; with
        `sources`, only those; with `since`, only those dated that day or later."""
        ...

    async def last_reading(
        self, contract: str, *, sources: tuple[str, ...] = ("actual", "customer", "estimated")
    ) -> Reading | None: ...

    async def customer_readings(self, *, since: date | None = None, include_replaced: bool = False) -> list[Reading]:
        """Customer readings for the billing system, by reading date then submission."""
        ...

    def export_customer_readings(self, *, since: date | None = None, batch: int = 2000) -> AsyncIterator[list[tuple]]:
        """Every customer reading (replaced ones too), in `customer_readings`' order, as batches
        of rows in the columns of storage/csvio.py READING_EXPORT (None for an empty field),
        yielded as the cursor returns them: memory does not grow with the table."""
        ...

    async def reading_points_of(self, contracts: Sequence[str], *, newest: int) -> dict[str, list[ReadingPoint]]:
        """What `readings(c, newest=newest)` says of a contract's use, for many contracts in one read
        (a contract with no reading is absent): (reading_date, index_value, source, review), oldest first."""
        ...

    async def add_estimated_readings(self, rows: Iterable[EstimatedReading], *, now: datetime | None = None) -> None:
        """Many `add_estimated_reading`s in one statement."""
        ...

    async def add_estimated_reading(
        self,
        contract: str,
        day: date,
        index: int,
        *,
        consumption: int,
        previous_index: int,
        previous_date: date,
        details: dict[str, Any],
        now: datetime | None = None,
    ) -> int: ...


class BillRepository(Protocol):
    """Bills, imported."""

    async def upsert_bill(self, b: Bill, *, now: datetime | None = None) -> Upsert: ...

    async def bills(
        self, contract: str, *, unpaid_only: bool = False, limit: int | None = None, since: date | None = None
    ) -> list[Bill]:
        """Bills of a contract, newest period first; with `since`, those whose period starts that day or later."""
        ...

    async def bill_periods_of(self, contracts: Sequence[str], *, limit: int) -> dict[str, list[BillPeriod]]:
        """What `bills(c, limit=limit)` says of a contract's use, for many contracts in one read (a
        contract with no bill is absent): (period_start, period_end, consumption, estimated), newest first."""
        ...

    async def bill(self, bill_number: str) -> Bill | None: ...


class SessionRepository(Protocol):
    """Conversation sessions, and the turns already handled (inbound de-duplication)."""

    async def load_session(self, channel: str, user_id: str) -> SessionRecord | None:
        # The row is what is cached, not the record: a turn changes its session's data in place.
        ...

    async def save_session(self, s: SessionRecord, *, now: datetime | None = None) -> int:
        """Write the session if nobody changed it since it was loaded; returns the new version."""
        ...

    async def last_customer_turn(self, channel: str, user_id: str) -> datetime | None:
        """When this person last wrote (sessions are written only by their own messages)."""
        ...

    async def record_turn(self, channel: str, message_id: str, replies: str, *, now: datetime | None = None) -> bool:
        """Claim a message at the end of its turn, with the turn's replies (JSON, sent again if a
        crash comes before them). False if it was already handled: the caller rolls back."""
        ...

    async def kept_replies(self, channel: str, message_id: str) -> str | None: ...


class RequestRepository(Protocol):
    """Requests customers file (instalments, deferrals, callbacks …)."""

    async def add_request(
        self,
        *,
        reference: str,
        kind: str,
        contract: str | None,
        channel: str,
        user_id: str,
        lang: str,
        amount: int | None = None,
        months: int | None = None,
        defer_until: date | None = None,
        reason: str | None = None,
        reason_text: str | None = None,
        details: dict[str, Any] | None = None,
        lines: Iterable[InstalmentLine] = (),
        now: datetime | None = None,
    ) -> int: ...

    async def request(self, reference: str) -> Request | None: ...

    async def requests(
        self,
        *,
        status: str | None = None,
        contract: str | None = None,
        chat: tuple[str, str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Request]: ...

    def export_requests(self, *, status: str | None = None, batch: int = 500) -> AsyncIterator[list[tuple]]:
        """Requests as `requests(status=...)` orders them, in batches as the cursor returns them, each
        row: the request's columns as `Request` orders them (`id` … `decision_note`, text as stored),
        then its schedule as `due_date:centimes` joined by `;` (None without one), then the
        phone to call back: the one the customer gave (callbacks), else the contract's (None)."""
        ...

    async def set_request_status(
        self,
        reference: str,
        status: str,
        *,
        expected: str | None = None,
        decided_by: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Change a request's status; with `expected`, only from that status. True if it changed."""
        ...


class OutboxRepository(Protocol):
    """Messages queued for customers."""

    async def enqueue_outbox(
        self,
        *,
        channel: str,
        user_id: str,
        lang: str,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str | None = None,
        now: datetime | None = None,
    ) -> int | None:
        """Queue a message for a customer; a repeated dedupe_key queues nothing and returns None."""
        ...

    async def outbox_due(
        self, *, now: datetime | None = None, channels: Iterable[str] | None = None, limit: int = 50
    ) -> list[OutboxMessage]: ...

    async def outbox_for_chat(
        self, channel: str, user_id: str, *, statuses: tuple[str, ...] = ("pending", "held")
    ) -> list[OutboxMessage]: ...

    async def outbox_message(self, message_id: int) -> OutboxMessage | None: ...

    async def claim_outbox(self, message_id: int, *, now: datetime | None = None, by: str | None = None) -> bool:
        """pending → sending; False if someone else has it or it is done."""
        ...

    async def outbox_claimers(self, ids: Iterable[int]) -> dict[int, str | None]:
        """The worker that claimed each message (None: claimed by one process alone)."""
        ...

    async def mark_outbox_sent(
        self, message_id: int, *, external_id: str | None = None, now: datetime | None = None
    ) -> None: ...

    async def interrupted_outbox(self, *, channels: Iterable[str], claimed_before: datetime) -> list[OutboxMessage]:
        """Messages a dispatcher claimed and never marked: it stopped between claiming and marking."""
        ...

    async def settle_outbox(
        self, message_id: int, status: str, *, error: str, next_attempt_at: datetime | None = None
    ) -> None:
        """A message leaves 'sending' for good ('failed'), for the chat ('held'), or for a resend ('pending')."""
        ...

    async def outbox_by_external_id(self, channel: str, external_id: str) -> OutboxMessage | None: ...

    async def retry_outbox(
        self, message_id: int, *, error: str, delay: timedelta, max_attempts: int, now: datetime | None = None
    ) -> str:
        """After a failed send: back to pending after `delay`, or failed for good; returns the new status."""
        ...


class AuditRepository(Protocol):
    """The audit log."""

    async def audit(
        self,
        action: str,
        *,
        actor: str = "customer",
        channel: str | None = None,
        user_id: str | None = None,
        contract: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None: ...

    async def audit_many(
        self,
        action: str,
        entries: Iterable[tuple[str | None, dict[str, Any]]],
        *,
        actor: str = "system",
        now: datetime | None = None,
    ) -> None:
        """One `audit` per (contract, details) entry, in one statement."""
        ...

    async def count_audit(self, action: str, *, channel: str, user_id: str, since: datetime) -> int: ...

    async def count_contract_audit(self, action: str, *, contract: str, since: datetime) -> int:
        """Entries of `action` on a contract (or a number typed as one) since `since`, from every chat."""
        ...

    async def last_audit_at(self, action: str, *, channel: str, user_id: str) -> datetime | None: ...

    async def audit_entries(
        self, *, contract: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]: ...


class InboxRepository(Protocol):
    """Updates kept before they are acknowledged to the channel."""

    async def accept_inbound(
        self, channel: str, message_id: str, body: str, *, now: datetime | None = None, chat: str | None = None
    ) -> bool:
        """Keep an update before acknowledging it to the channel; False if it was already kept.
        `chat` (several workers: conversations/workers.py) lets any worker take the chat's rows."""
        ...

    async def chat_unanswered(self, channel: str, chat: str, *, limit: int = 20) -> list[tuple[str, str, bool]]:
        """(message_id, body, processed) of one chat's unanswered rows, in arrival order (rowid)."""
        ...

    async def unanswered_chats(self, channel: str, *, upto: int | None = None, limit: int = 200) -> list[str]:
        """The chats with an unanswered row (up to the row `upto`), the oldest waiting first."""
        ...

    async def name_chats(self, channel: str, chats: Iterable[tuple[str, str]]) -> None:
        """Give (message_id, chat) rows kept without a chat their chat (several workers)."""
        ...

    async def inbound_answered(self, channel: str, message_id: str) -> bool:
        """Whether a kept update is answered (or gone: pruned once answered)."""
        ...

    async def unanswered_inbound(
        self, channel: str, *, after: InboxKey | None = None, upto: int | None = None, limit: int = 500
    ) -> list[tuple[str, str, bool, InboxKey]]:
        """(message_id, body, processed, key) of kept updates not answered yet, oldest first (by
        key: (received_at, rowid)), after the key `after`, among the rows up to `upto` (a
        `last_inbound` value): either their turn never ran, or it ran and its replies may not
        have been sent."""
        ...

    async def last_inbound(self) -> int:
        """Where the inbox ends now: every row kept later is above it (`unanswered_inbound`'s `upto`)."""
        ...

    async def mark_answered(self, channel: str, message_ids: Iterable[str], *, now: datetime | None = None) -> None: ...

    async def prune_inbox(self, channel: str | None = None, *, older_than: datetime) -> int:
        """Delete kept updates answered and received before `older_than` (one channel's, or all);
        an unanswered update is never deleted."""
        ...

    async def forget_replies(self, *, older_than: datetime) -> int:
        """Empty the kept replies of messages handled before `older_than` whose inbox row (if any)
        is answered; the key stays, so a redelivery is still recognised."""
        ...

    async def prune_processed(self, *, older_than: datetime) -> int:
        """Delete the keys of messages handled before `older_than` with no unanswered inbox row."""
        ...


class DeadLetterRepository(Protocol):
    """Messages a channel delivered that the bot cannot read, parked for the back office."""

    async def park_message(
        self, channel: str, message_id: str, reason: str, body: str, *, notified: bool, now: datetime | None = None
    ) -> bool:
        """Park a message (once: False if it was parked before)."""
        ...

    async def dead_letters(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: channel, message_id, reason, body, notified, parked_at."""
        ...

    async def count_dead_letters(self) -> int: ...

    async def prune_dead_letters(self, *, older_than: datetime) -> int: ...


class AgencyRepository(Protocol):
    """Agencies (offices) by city."""

    async def upsert_agency(self, a: Agency) -> Upsert: ...

    async def agencies(self, city: str | None = None) -> list[Agency]: ...

    async def agency_cities(self) -> list[str]: ...


class LegacyRepository(Protocol):
    """The previous operators' references (issue 24, `addad import legacy`), by their digits."""

    async def legacy_reference(self, key: str) -> tuple[str, str, str] | None:
        """(legacy_operator, the reference as printed, today's contract) for these digits
        (storage.legacy.reference_key), if the distributor imported them."""
        ...


class LearningRepository(Protocol):
    """Messages the bot did not understand, masked, kept a while for the operator to label."""

    async def keep_unrecognised(
        self,
        text: str,
        *,
        lang: str,
        intent: str,
        confidence: float,
        channel: str,
        state: str,
        now: datetime | None = None,
    ) -> None: ...

    async def unrecognised(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Oldest first: text, lang, intent, confidence, channel, state, seen_at."""
        ...

    async def prune_unrecognised(self, *, older_than: datetime) -> int: ...


class MediaRepository(Protocol):
    """Meter photos kept as files named by their SHA-256 (storage/media.py): when each arrived."""

    async def keep_media(self, sha256: str, *, size: int, format: str, now: datetime | None = None) -> None:
        """These bytes arrived now (again: the later arrival counts)."""
        ...

    async def prune_media(self, *, unused_before: datetime, kept_before: datetime) -> list[str]:
        """Forget, and return, the photos that arrived before `unused_before` that no reading
        still needs: a reading needs its photo while it awaits review, or if submitted at or
        after `kept_before`."""
        ...


class ReferenceRepository(Protocol):
    """Per-prefix, per-year reference sequences."""

    async def next_reference(self, prefix: str, year: int) -> str:
        """`DF-2026-000123`: a per-prefix, per-year sequence, allocated inside the caller's transaction."""
        ...


class ImportRepository(Protocol):
    """Bulk loads of the distributor's files (storage/csvio.py): the rows of one file are staged
    outside the database's tables (a snapshot may stage), checked there, and merged in one write
    transaction. A staged row is `(line, key, *values)`, `values` in the order of the kind's
    columns (all None for a row that failed its checks: only its key is kept, for duplicates)."""

    async def stage_open(self, kind: str) -> None:
        """Start an empty stage for a file of `kind` (contracts, bills, readings, agencies, legacy)."""
        ...

    async def stage_rows(self, rows: Sequence[tuple]) -> None: ...

    async def stage_duplicates(self, limit: int) -> tuple[list[tuple[int, int]], int]:
        """(line, first line with the same key) of the first `limit` repeated keys, and how many in all."""
        ...

    async def contract_dials(self, numbers: Iterable[str]) -> dict[str, int]:
        """The number of dials of each of these contracts' meters that exists."""
        ...

    async def merge_stage(self, kind: str, *, now: datetime) -> dict[str, int]:
        """Upsert the staged rows (a write transaction); counts of inserted, updated, unchanged."""
        ...

    async def stage_close(self) -> None: ...


class ReviewRepository(Protocol):
    """Issue 20: customer readings a back-office agent checks (storage/review_records.py)."""

    async def review_items(
        self, *, flagged: bool = True, since: date | None = None, limit: int = 500, newest_first: bool = False
    ) -> list[ReviewItem]:
        """Customer readings by submission, oldest first (or newest first), at most `limit`: with
        `flagged`, only those awaiting a review (an outlier, a rollover, or replacing another
        reading; valid; not reviewed)."""
        ...

    async def review_item(self, reading_id: int) -> ReviewItem | None: ...

    async def reading_id_of(self, reference: str) -> int | None:
        """The id of the customer reading the customer was told as `reference` (RL-2026-000001)."""
        ...

    async def record_review(
        self,
        reading_id: int,
        outcome: str,
        *,
        actor: str,
        note: str | None,
        original_index: int,
        index: int | None = None,
        consumption: int | None = None,
        rollover: bool = False,
        now: datetime | None = None,
    ) -> None:
        """Keep the outcome (one per reading) and apply it: accepted (checked), corrected (index,
        consumption, rollover), rejected (no longer valid; the reading it replaced valid again)."""
        ...


class HandoffRepository(Protocol):
    """Issue 20: chats handed to a human, and each chat's last messages (masked)."""

    async def open_handoff(
        self, channel: str, user_id: str, *, lang: str, contract: str | None, now: datetime | None = None
    ) -> int | None: ...

    async def handoff(self, handoff_id: int) -> Handoff | None: ...

    async def chat_handoff(self, channel: str, user_id: str) -> Handoff | None: ...

    async def handoffs(self, *, statuses: Iterable[str] = ("waiting", "taken"), limit: int = 200) -> list[Handoff]: ...

    async def update_handoff(self, handoff_id: int, *, expected: str, **fields: Any) -> bool: ...

    async def log_chat(
        self, channel: str, user_id: str, lines: Iterable[tuple[str, str | None, str]], *, now: datetime
    ) -> None:
        """Append lines to the chat's recent log (on every turn: one statement). SQLite holds
        a chat's lines in memory until its handoff opens (storage/sqlite/chatlog.py)."""
        ...

    async def chat_log(self, channel: str, user_id: str, *, limit: int = 50) -> list[ChatLine]: ...

    async def prune_chat_log(self, *, older_than: datetime, keep: int) -> int:
        """Forget lines older than `older_than`, and all but each chat's last `keep` (daily)."""
        ...


class StatisticsRepository(Protocol):
    """Issue 20: the figures of the workspace's statistics page (grouped reads)."""

    async def readings_by_day(self, *, since: datetime) -> list[tuple[str, str, int]]: ...

    async def cycle_sources(self, *, first: date, last: date) -> dict[str, int]: ...

    async def request_figures(self, *, decided_since: datetime) -> dict[str, Any]: ...

    async def plan_figures(self, *, today: date) -> dict[str, int]: ...

    async def audit_counts(self, actions: Iterable[str], *, since: datetime) -> dict[str, int]: ...

    async def frequent_unrecognised(self, *, since: datetime, limit: int = 10) -> list[tuple[str, str, int]]: ...


class WorkspaceRepository(Protocol):
    """The web workspace (bot/web/): accounts, web sessions, the sign-in throttle, its settings,
    the request queue and the customer search."""

    async def add_account(self, name: str, role: str, password_hash: str, *, now: datetime | None = None) -> bool:
        """False if an account of that name exists."""
        ...

    async def account(self, name: str) -> Account | None: ...

    async def accounts(self) -> list[Account]: ...

    async def update_account(
        self, name: str, *, password_hash: str | None = None, disabled: bool | None = None, now: datetime | None = None
    ) -> bool: ...

    async def add_web_session(
        self, token_hash: str, account: str, address: str, *, expires_at: datetime, now: datetime | None = None
    ) -> None: ...

    async def web_session(self, token_hash: str, *, now: datetime | None = None) -> Account | None:
        """The account of a session that has not expired, if the account is not disabled."""
        ...

    async def end_web_sessions(
        self, *, token_hash: str | None = None, account: str | None = None, now: datetime | None = None
    ) -> int:
        """Delete one session, every session of an account, and (always) the expired ones."""
        ...

    async def add_signin_failure(self, account: str, address: str, *, now: datetime | None = None) -> None: ...

    async def signin_failures(
        self, *, since: datetime, account: str | None = None, address: str | None = None
    ) -> tuple[int, datetime | None]:
        """How many failures since `since` for that account name (or from that address), and the oldest's time."""
        ...

    async def clear_signin_failures(self, account: str, *, older_than: datetime) -> None: ...

    async def workspace_setting(self, name: str) -> str | None: ...

    async def set_workspace_setting(self, name: str, value: str, *, if_absent: bool = False) -> str:
        """Store a setting (with `if_absent`, only if none is kept yet); returns the value kept."""
        ...

    async def request_counts(self) -> list[tuple[str, str, int]]:
        """(kind, status, count) of every kind and status that has requests."""
        ...

    async def request_queue(
        self,
        *,
        kinds: Iterable[str] | None = None,
        status: str | None = None,
        city: str | None = None,
        filed_before: datetime | None = None,
        assigned_to: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[QueueRow], int]:
        """Requests oldest first with their holder and city, filtered; and how many match in all."""
        ...

    async def request_assignee(self, reference: str) -> str | None: ...

    async def assign_request(self, reference: str, account: str | None, *, now: datetime | None = None) -> bool: ...

    async def request_cities(self) -> list[str]:
        """The contracts' cities, in order (the queue's city filter)."""
        ...

    async def search_contracts(
        self, *, number: str | None = None, phone: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[Contract]: ...

    async def links_of_contract(self, contract: str) -> list[ChatLink]: ...


class ReminderRepository(Protocol):
    """Consent to proactive messages, and which reminders were queued (issue 22)."""

    async def reminder_consent(self, channel: str, user_id: str) -> ReminderConsent | None: ...

    async def set_reminder_consent(
        self, channel: str, user_id: str, kinds: Sequence[str], *, how: str, now: datetime | None = None
    ) -> None:
        """The chat's answer (kinds agreed to; none = stop), stamped; `how`='asked' only notes the
        question is owed (an answer already given is kept); 'shown' / 'shown_twice' note when it was
        put to the chat, unanswered (conversations/reminders.py: asked at most twice)."""
        ...

    async def reminder_targets(
        self, kind: str, *, after: str | None = None, limit: int | None = None
    ) -> list[ReminderTarget]:
        """Every linked (chat, contract) whose chat agreed to `kind`, by contract, the newest link
        first; a page of `limit` rows after contract `after` (keyset: memory follows the page)."""
        ...

    async def queue_reminder(
        self,
        *,
        contract: str,
        occasion: str,
        target: ReminderTarget,
        kind: str,
        payload: dict[str, Any],
        not_before: datetime,
        now: datetime | None = None,
    ) -> int | None:
        """The outbox row of a reminder and its (contract, occasion) key, together; None (and
        nothing queued) if that occasion was queued before."""
        ...

    async def reminder_allowed(self, channel: str, user_id: str, contract: str | None, kind: str) -> bool:
        """The chat still agrees to `kind` and still holds the contract (any contract for None)."""
        ...

    async def add_notice(
        self, *, key: str, city: str, service: str | None, text_ar: str, text_fr: str, now: datetime | None = None
    ) -> int:
        """The notice's id (the one already stored under `key`, if any)."""
        ...

    async def notice_targets(self, service: str | None) -> list[ReminderTarget]:
        """Every linked (chat, contract) whose chat agreed to notices (contracts of `service`), by chat."""
        ...

    async def reminder_queued(self, contract: str, occasion: str) -> bool: ...

    async def queue_notice(
        self,
        notice_id: int,
        target: ReminderTarget,
        *,
        payload: dict[str, Any],
        not_before: datetime,
        now: datetime | None = None,
    ) -> int | None:
        """The chat's copy of a notice; None if it has it already."""
        ...


class Tx(
    ContractRepository,
    LinkRepository,
    ReadingRepository,
    BillRepository,
    SessionRepository,
    RequestRepository,
    OutboxRepository,
    AuditRepository,
    InboxRepository,
    DeadLetterRepository,
    AgencyRepository,
    LegacyRepository,
    LearningRepository,
    MediaRepository,
    ReferenceRepository,
    ImportRepository,
    ReviewRepository,
    HandoffRepository,
    StatisticsRepository,
    WorkspaceRepository,
    ReminderRepository,
    Protocol,
):
    """Every repository, bound to one open transaction: what `async with store.transaction()`
    (all or nothing, durable once it returns) and `store.snapshot()` (read only) hand out."""

    def now(self) -> datetime:
        """The store's clock (for code given a transaction and no `now`)."""
        ...


class Store(Protocol):
    """A storage backend: open it with `storage.open_store(url)`."""

    # The process's one clock (storage/clock.py): stamps writes given no `now`, and is what the
    # engine, the dispatcher and the channels built on this store read.
    @property
    def clock(self) -> Clock: ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction: its writes commit together or not at all, and it returns once
        they are durable; an exception undoes them."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only snapshot of what is committed (no write lock); writes through it fail."""
        ...

    async def upgrade(self) -> list[str]:
        """Apply the schema migrations not applied yet; returns their names."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...
