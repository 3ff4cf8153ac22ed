"""Issue 20: the figures of the workspace's statistics page, in the operator's days."""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from storage import Tx

from .profile import Profile

DAYS = 30  # the window of the per-day and per-action figures
DECIDED_DAYS = 90  # the window of the decision times
AUDITED = ("link_failed", "link_locked", "proof_locked")


@dataclass(frozen=True)
class Figures:
    today: date
    days: list[date]  # the window, oldest first
    channels: list[str]
    per_day: dict[str, list[int]]  # channel -> readings per day of `days`
    cycle: tuple[date, date]
    sources: dict[str, int]  # customer, estimated, actual, postpaid (contracts)
    requests: dict[str, dict[str, int]]  # kind -> status -> count
    decision_hours: dict[str, tuple[int, float, float]]  # kind -> (decided, median, 90th percentile)
    plans: dict[str, int]
    security: dict[str, int]  # AUDITED action -> count in the window
    unrecognised: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def customer_share(self) -> float | None:
        """Customer readings among the cycle's customer readings and estimates (None: neither)."""
        read, guessed = self.sources.get("customer", 0), self.sources.get("estimated", 0)
        return read / (read + guessed) if read + guessed else None


def _start(day: date, profile: Profile) -> datetime:
    return datetime.combine(day, time(), profile.zone)


async def figures(tx: Tx, profile: Profile, now: datetime) -> Figures:
    today = profile.today(now)
    first = today - timedelta(days=DAYS - 1)
    days = [first + timedelta(days=i) for i in range(DAYS)]
    per_day: dict[str, list[int]] = {}
    index = {d.isoformat(): i for i, d in enumerate(days)}
    for day, channel, count in await tx.readings_by_day(since=_start(first, profile)):
        if day in index:
            per_day.setdefault(channel, [0] * DAYS)[index[day]] += count
    cycle_first = today.replace(day=1)
    cycle_last = (cycle_first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    sources = await tx.cycle_sources(first=cycle_first, last=cycle_last)
    found = await tx.request_figures(decided_since=now - timedelta(days=DECIDED_DAYS))
    requests: dict[str, dict[str, int]] = {}
    for kind, status, count in found["counts"]:
        requests.setdefault(kind, {})[status] = count
    hours: dict[str, list[float]] = {}
    for kind, h in found["hours"]:
        hours.setdefault(kind, []).append(max(h, 0.0))
    decision_hours: dict[str, tuple[int, float, float]] = {}
    for kind, values in sorted(hours.items()):
        values.sort()
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        decision_hours[kind] = (len(values), stats.median(values), p90)
    since = now - timedelta(days=DAYS)
    return Figures(
        today=today,
        days=days,
        channels=sorted(per_day),
        per_day=per_day,
        cycle=(cycle_first, cycle_last),
        sources=sources,
        requests=requests,
        decision_hours=decision_hours,
        plans=await tx.plan_figures(today=today),
        security=await tx.audit_counts(AUDITED, since=since),
        unrecognised=await tx.frequent_unrecognised(since=since),
    )


def as_rows(f: Figures) -> dict[str, Any]:
    """The figures as plain rows (for a CSV download or a JSON dump)."""
    return {
        "readings_per_day": [
            {"day": d.isoformat(), **{c: f.per_day[c][i] for c in f.channels}} for i, d in enumerate(f.days)
        ],
        "cycle": {"first": f.cycle[0].isoformat(), "last": f.cycle[1].isoformat(), **f.sources},
        "requests": f.requests,
        "decision_hours": {k: {"decided": n, "median": m, "p90": p} for k, (n, m, p) in f.decision_hours.items()},
        "plans": f.plans,
        "security": f.security,
        "unrecognised": [{"text": t, "lang": lang, "times": n} for t, lang, n in f.unrecognised],
    }
