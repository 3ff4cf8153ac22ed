"""Records of issue 20's back-office work: a customer reading under review, a human handoff,
a line of a chat's recent conversation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .records import Reading


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A customer reading with why it waits for an agent and, once reviewed, the outcome."""

    reading: Reading
    flags: tuple[str, ...]  # 'outlier' (any review_reason), 'rollover', 'replaces'
    replaces_reference: str | None  # the reading of the cycle it replaced
    meter_digits: int
    service: str
    tariff: str
    outcome: str | None = None  # accepted, corrected, rejected; None: not reviewed
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    note: str | None = None
    original_index: int | None = None
    corrected_index: int | None = None

    @property
    def pending(self) -> bool:
        """Waits for a review: flagged, still valid, and not reviewed."""
        return bool(self.flags) and self.outcome is None and self.reading.status == "valid"


@dataclass(frozen=True, slots=True)
class Handoff:
    id: int
    channel: str
    user_id: str
    lang: str
    contract: str | None
    status: str  # waiting, taken, closed
    requested_at: datetime
    taken_by: str | None = None
    taken_at: datetime | None = None
    last_agent_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChatLine:
    at: datetime
    sender: str  # customer, bot, agent
    author: str | None
    text: str  # as said: conversations.handoff.conversation masks it for the agent
