"""Plain records that repositories return. Money fields are integer centimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Contract:
    contract: str
    service: str
    holder_name: str
    phone: str
    language: str | None
    city: str
    meter_number: str
    meter_kind: str
    meter_digits: int
    last_index: int
    last_index_date: date
    tariff: str
    low_income: bool

    @property
    def is_prepaid(self) -> bool:
        return self.meter_kind == "prepaid"

    @property
    def meter_max(self) -> int:
        """The highest index the dials show before wrapping to 0."""
        return 10**self.meter_digits - 1


@dataclass(frozen=True, slots=True)
class Bill:
    bill_number: str
    contract: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    index_start: int
    index_end: int
    consumption: int
    estimated: bool
    amount: int
    paid_amount: int

    @property
    def due(self) -> int:
        return max(self.amount - self.paid_amount, 0)

    @property
    def unpaid(self) -> bool:
        return self.paid_amount < self.amount


@dataclass(frozen=True, slots=True)
class Reading:
    id: int
    contract: str
    reading_date: date
    index_value: int
    source: str
    status: str
    reference: str | None = None
    channel: str | None = None
    user_id: str | None = None
    photo_ref: str | None = None
    previous_index: int | None = None
    previous_date: date | None = None
    consumption: int | None = None
    rollover: bool = False
    review: bool = False
    review_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    submitted_at: datetime | None = None
    photo_sha256: str | None = None  # the kept meter photo (storage/media.py), evidence for the reading


@dataclass(frozen=True, slots=True)
class Agency:
    city: str
    name: str
    address: str
    phone: str
    hours: str
    # Optional Arabic versions (agencies.csv city_ar, name_ar, address_ar, hours_ar), None if absent.
    city_ar: str | None = None
    name_ar: str | None = None
    address_ar: str | None = None
    hours_ar: str | None = None


@dataclass(frozen=True, slots=True)
class ChatLink:
    channel: str
    user_id: str
    contract: str
    method: str
    verified_at: datetime


@dataclass(slots=True)
class SessionRecord:
    channel: str
    user_id: str
    state: str
    data: dict[str, Any]
    lang: str | None
    version: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class InstalmentLine:
    seq: int
    due_date: date
    amount: int


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    reference: str
    kind: str
    contract: str | None
    channel: str
    user_id: str
    lang: str
    status: str
    amount: int | None
    months: int | None
    defer_until: date | None
    reason: str | None
    reason_text: str | None
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    lines: tuple[InstalmentLine, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    channel: str
    user_id: str
    lang: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Account:
    """A web workspace account (bot/web/): `role` is agent, supervisor or admin."""

    name: str
    role: str
    password_hash: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A request as the workspace's queue lists it: with its contract's holder and city."""

    request: Request
    holder_name: str | None
    city: str | None
    assigned_to: str | None


@dataclass(frozen=True, slots=True)
class ReminderConsent:
    """What a chat agreed to receive first (issue 22): kinds empty = nothing (stopped, or asked
    and not answered yet: `answered_at` None)."""

    channel: str
    user_id: str
    kinds: tuple[str, ...]
    asked_at: datetime
    answered_at: datetime | None
    how: str | None


@dataclass(frozen=True, slots=True)
class ReminderTarget:
    """A chat that agreed to a kind of message, and one contract it holds."""

    channel: str
    user_id: str
    contract: str
    lang: str
    linked_at: datetime
    city: str = ""  # the contract's, as imported
