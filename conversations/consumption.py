"""Consumption facts derived from a contract's history: usual daily use,
and the estimated readings written for cycles with no reading."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from storage import Contract, Reading, Tx
from storage.protocols import BillPeriod, EstimatedReading, ReadingPoint

RECENT_READINGS = 24  # two years of monthly cycles: what a new reading is checked against


async def recent_readings(tx: Tx, contract: Contract) -> list[Reading]:
    """The latest readings, oldest first: a turn's cost must not grow with years of history."""
    return await tx.readings(contract.contract, newest=RECENT_READINGS)


def _real_rates(recent: Iterable[ReadingPoint]) -> list[float]:
    """Daily use between consecutive real readings (a customer reading held for review is no
    measure until an agent has checked it)."""
    real = [
        (day, index)
        for day, index, source, review in recent
        if source == "actual" or (source == "customer" and not review)
    ]
    rates = []
    for (day_a, index_a), (day_b, index_b) in itertools.pairwise(real):
        days = (day_b - day_a).days
        if days >= 7 and index_b >= index_a:
            rates.append((index_b - index_a) / days)
    return rates


def _bill_rates(bills: Iterable[BillPeriod]) -> list[float]:
    return [used / days for start, end, used, estimated in bills if not estimated and (days := (end - start).days) >= 7]


def _usual(rates: list[float]) -> float | None:
    rates = rates[-6:]
    return statistics.median(rates) if rates else None


BILLS_FOR_USE = 6  # the latest bills, when the readings give fewer than two periods


async def usual_daily_use(tx: Tx, contract: Contract) -> float | None:
    """Median daily use over the recent real periods (readings, else bills that were read)."""
    rates = _real_rates(
        (r.reading_date, r.index_value, r.source, r.review) for r in await recent_readings(tx, contract)
    )
    if len(rates) < 2:
        bills = await tx.bills(contract.contract, limit=BILLS_FOR_USE)
        rates += _bill_rates((b.period_start, b.period_end, b.consumption, b.estimated) for b in bills)
    return _usual(rates)


@dataclass(frozen=True)
class EstimateRun:
    written: list[tuple[str, int, int]]  # (contract, index, consumption)
    skipped_no_history: list[str]
    already_read: int


ESTIMATE_BATCH = 500  # contracts read and written per round: two reads and two writes each


async def write_estimates(tx: Tx, as_of: date) -> EstimateRun:
    """Estimated readings for postpaid contracts with no reading in the cycle (the calendar
    month of `as_of`): average daily use × days since the last reading of any kind. Contracts
    go by batches: one read for their recent readings, one for the bills of those whose readings
    tell too little, one write for the estimates and one for their audit entries."""
    written: list[tuple[str, int, int]] = []
    no_history: list[str] = []
    already = 0
    meters = await tx.meters("postpaid")
    cycle = (as_of.year, as_of.month)
    for start in range(0, len(meters), ESTIMATE_BATCH):
        batch = meters[start : start + ESTIMATE_BATCH]
        recent = await tx.reading_points_of([number for number, _ in batch], newest=RECENT_READINGS)
        todo: list[tuple[str, int, ReadingPoint, list[float]]] = []
        for number, digits in batch:
            history = recent.get(number)
            if not history:
                no_history.append(number)
                continue
            last = history[-1]  # (what tx.last_reading gives: the newest valid reading of any source)
            if (last[0].year, last[0].month) == cycle or last[0] > as_of:
                already += 1
                continue
            todo.append((number, digits, last, _real_rates(history)))
        short = [number for number, _, _, rates in todo if len(rates) < 2]
        bills = await tx.bill_periods_of(short, limit=BILLS_FOR_USE) if short else {}
        rows: list[EstimatedReading] = []
        audits: list[tuple[str | None, dict]] = []
        for number, digits, (last_day, last_index, _, _), rates in todo:
            if len(rates) < 2:
                rates = rates + _bill_rates(bills.get(number, ()))
            daily = _usual(rates)
            if daily is None:
                no_history.append(number)
                continue
            days = (as_of - last_day).days
            used = round(daily * days)
            index = (last_index + used) % 10**digits  # (the dials wrap to 0 after 10^digits - 1)
            rows.append(
                (number, as_of, index, used, last_index, last_day, {"daily_use": round(daily, 3), "days": days})
            )
            audits.append((number, {"as_of": as_of.isoformat(), "index": index, "consumption": used}))
            written.append((number, index, used))
        if rows:
            await tx.add_estimated_readings(rows)
            await tx.audit_many("reading_estimated", audits, actor="system")
    return EstimateRun(written, no_history, already)
