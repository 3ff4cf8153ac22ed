"""Consumption facts derived from a contract's history: usual daily use,
and the estimated readings written for cycles with no reading."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import date

from storage import Contract, Reading, Tx

RECENT_READINGS = 24  # two years of monthly cycles: what a new reading is checked against


async def recent_readings(tx: Tx, contract: Contract) -> list[Reading]:
    """The latest readings, oldest first: a turn's cost must not grow with years of history."""
    return await tx.readings(contract.contract, newest=RECENT_READINGS)


async def usual_daily_use(tx: Tx, contract: Contract) -> float | None:
    """Median daily use over the recent real periods (readings, else bills that were read). A
    customer reading held for review is no measure until an agent has checked it."""
    real = [
        r
        for r in await recent_readings(tx, contract)
        if r.source == "actual" or (r.source == "customer" and not r.review)
    ]
    rates = []
    for a, b in itertools.pairwise(real):
        days = (b.reading_date - a.reading_date).days
        if days >= 7 and b.index_value >= a.index_value:
            rates.append((b.index_value - a.index_value) / days)
    if len(rates) < 2:
        for bill in await tx.bills(contract.contract, limit=6):
            days = (bill.period_end - bill.period_start).days
            if not bill.estimated and days >= 7:
                rates.append(bill.consumption / days)
    rates = rates[-6:]
    return statistics.median(rates) if rates else None


@dataclass(frozen=True)
class EstimateRun:
    written: list[tuple[str, int, int]]  # (contract, index, consumption)
    skipped_no_history: list[str]
    already_read: int


async def write_estimates(tx: Tx, as_of: date) -> EstimateRun:
    """Estimated readings for postpaid contracts with no reading in the cycle (the calendar
    month of `as_of`): average daily use × days since the last reading of any kind."""
    written, no_history, already = [], [], 0
    for contract in await tx.contracts():
        if contract.is_prepaid:
            continue
        last = await tx.last_reading(contract.contract)
        if last is None:
            no_history.append(contract.contract)
            continue
        if (last.reading_date.year, last.reading_date.month) == (as_of.year, as_of.month) or last.reading_date > as_of:
            already += 1
            continue
        daily = await usual_daily_use(tx, contract)
        if daily is None:
            no_history.append(contract.contract)
            continue
        days = (as_of - last.reading_date).days
        used = round(daily * days)
        index = (last.index_value + used) % (contract.meter_max + 1)
        await tx.add_estimated_reading(
            contract.contract,
            as_of,
            index,
            consumption=used,
            previous_index=last.index_value,
            previous_date=last.reading_date,
            details={"daily_use": round(daily, 3), "days": days},
        )
        await tx.audit(
            "reading_estimated",
            actor="system",
            contract=contract.contract,
            details={"as_of": as_of.isoformat(), "index": index, "consumption": used},
        )
        written.append((contract.contract, index, used))
    return EstimateRun(written, no_history, already)
