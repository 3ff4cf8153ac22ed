"""Payment facilities: exact instalment schedules and deferral limits from the profile's policy."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from storage import Bill, InstalmentLine

from .profile import InstalmentPolicy


def add_months(day: date, months: int) -> date:
    """Same day-of-month `months` later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_instalments(total: int, months: int, first_due: date) -> list[InstalmentLine]:
    """`total` centimes in `months` equal monthly lines; the rounding remainder goes on the last
    line, so the lines add up to the total to the centime (1,000.01 DH in 3 → 333.33, 333.33, 333.35)."""
    if months < 1 or total < months:
        raise ValueError("need at least one centime per instalment")
    base = total // months
    lines = [InstalmentLine(i + 1, add_months(first_due, i), base) for i in range(months)]
    last = lines[-1]
    lines[-1] = InstalmentLine(last.seq, last.due_date, base + total - base * months)
    return lines


@dataclass(frozen=True)
class Arrears:
    bills: tuple[Bill, ...]
    total: int  # centimes

    @property
    def count(self) -> int:
        return len(self.bills)


def arrears_of(bills: list[Bill]) -> Arrears:
    unpaid = tuple(sorted((b for b in bills if b.unpaid), key=lambda b: b.period_end))
    return Arrears(unpaid, sum(b.due for b in unpaid))


def usual_bill(bills: list[Bill]) -> int | None:
    """What a month's bill usually comes to (median of the last six), to show beside instalments."""
    recent = sorted(bills, key=lambda b: b.period_end)[-6:]
    if not recent:
        return None
    amounts = sorted(b.amount for b in recent)
    return amounts[len(amounts) // 2]


def max_deferral(policy: InstalmentPolicy, today: date) -> date:
    from datetime import timedelta

    return today + timedelta(days=policy.max_deferral_days)


def first_due_date(today: date) -> date:
    """First instalment a month from today: time to organise, and never before the request is decided."""
    return add_months(today, 1)
