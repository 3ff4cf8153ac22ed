"""Consumption facts derived from a contract's history: usual daily use,
and the estimated readings written for cycles with no reading."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import date

from storage import Bill, Contract, Reading, Tx
from storage.protocols import EstimatedReading

RECENT_READINGS = 24  # two years of monthly cycles: what a new reading is checked against


async def recent_readings(tx: Tx, contract: Contract) -> list[Reading]:
    """The latest readings, oldest first: a turn's cost must not grow with years of history."""
    return await tx.readings(contract.contract, newest=RECENT_READINGS)


def _real_rates(recent: list[Reading]) -> list[float]:
    """Daily use between consecutive real readings (a customer reading held for review is no
    measure until an agent has checked it)."""
    real = [r for r in recent if r.source == "actual" or (r.source == "customer" and not r.review)]
    rates = []
    for a, b in itertools.pairwise(real):
        days = (b.reading_date - a.reading_date).days
        if days >= 7 and b.index_value >= a.index_value:
            rates.append((b.index_value - a.index_value) / days)
    return rates


def _bill_rates(bills: list[Bill]) -> list[float]:
    return [
        bill.consumption / days
        for bill in bills
        if not bill.estimated and (days := (bill.period_end - bill.period_start).days) >= 7
    ]


def _usual(rates: list[float]) -> float | None:
    rates = rates[-6:]
    return statistics.median(rates) if rates else None


BILLS_FOR_USE = 6  # the latest bills, when the readings give fewer than two periods


async def usual_daily_use(tx: Tx, contract: Contract) -> float | None:
    """Median daily use over the recent real periods (readings, else bills that were read)."""
    rates = _real_rates(await recent_readings(tx, contract))
    if len(rates) < 2:
        rates += _bill_rates(await tx.bills(contract.contract, limit=BILLS_FOR_USE))
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
    postpaid = [c for c in await tx.contracts() if not c.is_prepaid]
    for start in range(0, len(postpaid), ESTIMATE_BATCH):
        batch = postpaid[start : start + ESTIMATE_BATCH]
        recent = await tx.recent_readings_of([c.contract for c in batch], newest=RECENT_READINGS)
        todo: list[tuple[Contract, Reading, list[float]]] = []
        for contract in batch:
            history = recent.get(contract.contract)
            if not history:
                no_history.append(contract.contract)
                continue
            last = history[-1]  # (what tx.last_reading gives: the newest valid reading of any source)
            if (last.reading_date.year, last.reading_date.month) == (as_of.year, as_of.month) or (
                last.reading_date > as_of
            ):
                already += 1
                continue
            todo.append((contract, last, _real_rates(history)))
        short = [c.contract for c, _, rates in todo if len(rates) < 2]
        bills = await tx.bills_of(short, limit=BILLS_FOR_USE) if short else {}
        rows: list[EstimatedReading] = []
        audits: list[tuple[str | None, dict]] = []
        for contract, last, rates in todo:
            if len(rates) < 2:
                rates = rates + _bill_rates(bills.get(contract.contract, []))
            daily = _usual(rates)
            if daily is None:
                no_history.append(contract.contract)
                continue
            days = (as_of - last.reading_date).days
            used = round(daily * days)
            index = (last.index_value + used) % (contract.meter_max + 1)
            details = {"daily_use": round(daily, 3), "days": days}
            rows.append((contract.contract, as_of, index, used, last.index_value, last.reading_date, details))
            audits.append((contract.contract, {"as_of": as_of.isoformat(), "index": index, "consumption": used}))
            written.append((contract.contract, index, used))
        if rows:
            await tx.add_estimated_readings(rows)
            await tx.audit_many("reading_estimated", audits, actor="system")
    return EstimateRun(written, no_history, already)
