"""The distributor's CSV files in and out (SPEC.md "Data files").

A file is validated whole before anything is written: every problem is reported as
`FILE:LINE: field: reason` (LINE is the physical line, the header being line 1), and a file with
any problem writes nothing. Imports are idempotent upserts in one transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from .protocols import Store, Tx
from .records import Agency, Bill, Contract
from .values import ValueProblem, format_amount_plain, normalize_phone, parse_amount, parse_iso_date, parse_nonneg_int

COLUMNS: dict[str, tuple[set[str], set[str]]] = {  # kind: (required, optional)
    "contracts": (
        {
            "contract",
            "service",
            "holder_name",
            "phone",
            "city",
            "meter_number",
            "meter_kind",
            "meter_digits",
            "last_index",
            "last_index_date",
            "tariff",
        },
        {"language", "low_income"},
    ),
    "bills": (
        {
            "contract",
            "bill_number",
            "period_start",
            "period_end",
            "issue_date",
            "due_date",
            "index_start",
            "index_end",
            "consumption",
            "estimated",
            "amount",
            "paid_amount",
        },
        set(),
    ),
    "readings": ({"contract", "date", "index", "source"}, set()),
    "agencies": ({"city", "name", "address", "phone", "hours"}, {"city_ar", "name_ar", "address_ar", "hours_ar"}),
}


class ImportRejected(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class ImportResult:
    kind: str
    rows: int
    counts: Counter = field(default_factory=Counter)

    def summary(self, name: str) -> str:
        return (
            f"{name}: {self.rows} rows: {self.counts['inserted']} inserted, {self.counts['updated']} updated, "
            f"{self.counts['unchanged']} unchanged"
        )


class _Row:
    """One CSV row being validated; problems are collected, not raised."""

    def __init__(self, name: str, line: int, values: dict[str, str], problems: list[str]) -> None:
        self.name, self.line, self.values, self.problems = name, line, values, problems
        self.ok = True

    def bad(self, column: str, reason: str) -> None:
        self.problems.append(f"{self.name}:{self.line}: {column}: {reason}")
        self.ok = False

    def text(self, column: str, *, required: bool = True) -> str:
        value = (self.values.get(column) or "").strip()
        if required and not value:
            self.bad(column, "empty")
        return value

    def parse(self, column: str, parser: Callable[[str], Any], *, required: bool = True) -> Any:
        raw = self.text(column, required=required)
        if not raw:
            return None
        try:
            return parser(raw)
        except ValueProblem as exc:
            self.bad(column, str(exc))
            return None

    def choice(self, column: str, allowed: Iterable[str], *, required: bool = True) -> str | None:
        raw = self.text(column, required=required)
        allowed = list(allowed)
        if raw and raw not in allowed:
            self.bad(column, f"must be one of {'|'.join(allowed)}, not {raw!r}")
            return None
        return raw or None


def _read(path: Path, kind: str) -> tuple[list[_Row], list[str]]:
    name = path.name
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected([f"{name}:1: (file): not UTF-8 ({exc.reason} at byte {exc.start})"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportRejected([f"{name}:1: (header): the file is empty"]) from None
    required, optional = COLUMNS[kind]
    for column in header:
        if column not in required | optional:
            problems.append(f"{name}:1: {column or '(blank)'}: unknown column")
    for column, count in Counter(header).items():
        if count > 1:
            problems.append(f"{name}:1: {column}: column appears {count} times")
    for column in sorted(required - set(header)):
        problems.append(f"{name}:1: {column}: missing column")
    if problems:
        raise ImportRejected(problems)
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"{name}:{line}: (row): {len(values)} fields, the header has {len(header)}")
            continue
        rows.append(_Row(name, line, dict(zip(header, values, strict=False)), problems))
    return rows, problems


def _duplicates(rows: list[_Row], key: Callable[[_Row], Any], column: str, what: str) -> None:
    first: dict[Any, int] = {}
    for row in rows:
        k = key(row)
        if k is None:
            continue
        if k in first:
            row.bad(column, f"duplicate {what} (first on line {first[k]})")
        else:
            first[k] = row.line


def _contracts(rows: list[_Row], profile) -> list[Contract]:
    out = []
    for r in rows:
        number = r.text("contract")
        if number and not profile.contract_number_ok(number):
            r.bad("contract", f"does not match the operator's contract format {profile.contract_pattern}")
        service = r.choice("service", ("electricity", "water"))
        holder = r.text("holder_name")
        phone = r.parse("phone", normalize_phone)
        language = r.choice("language", ("ar", "fr"), required=False)
        city = r.text("city")
        meter = r.text("meter_number")
        kind = r.choice("meter_kind", ("postpaid", "prepaid"))
        digits = r.parse("meter_digits", lambda v: parse_nonneg_int(v, "number of dials"))
        if digits is not None and not 1 <= digits <= 12:
            r.bad("meter_digits", "must be between 1 and 12")
            digits = None
        last = r.parse("last_index", lambda v: parse_nonneg_int(v, "index"))
        if last is not None and digits is not None and last >= 10**digits:
            r.bad("last_index", f"has more digits than the meter's {digits} dials")
        last_date = r.parse("last_index_date", parse_iso_date)
        tariff = r.text("tariff")
        if tariff:
            if tariff not in profile.tariff_codes:
                r.bad(
                    "tariff",
                    f"unknown tariff {tariff!r} (the operator profile has {', '.join(sorted(profile.tariff_codes))})",
                )
            elif service and profile.tariff(tariff).service != service:
                r.bad("tariff", f"{tariff} is a {profile.tariff(tariff).service} tariff, the contract is {service}")
        low = r.choice("low_income", ("0", "1"), required=False)
        if r.ok:
            out.append(
                Contract(
                    number,
                    cast(str, service),  # required choices: set when the row is ok
                    holder,
                    phone,
                    language,
                    city,
                    meter,
                    cast(str, kind),
                    digits,
                    last,
                    last_date,
                    tariff,
                    low == "1",
                )
            )
    _duplicates(rows, lambda r: r.values.get("contract", "").strip() or None, "contract", "contract")
    return out


def _bills(rows: list[_Row], known: set[str]) -> list[Bill]:
    out = []
    for r in rows:
        contract = r.text("contract")
        if contract and contract not in known:
            r.bad("contract", f"unknown contract {contract} (import contracts first)")
        number = r.text("bill_number")
        dates = {c: r.parse(c, parse_iso_date) for c in ("period_start", "period_end", "issue_date", "due_date")}
        if dates["period_start"] and dates["period_end"] and dates["period_start"] > dates["period_end"]:
            r.bad("period_end", "before period_start")
        if dates["issue_date"] and dates["due_date"] and dates["due_date"] < dates["issue_date"]:
            r.bad("due_date", "before issue_date")
        ints = {c: r.parse(c, _nonneg(c.replace("_", " "))) for c in ("index_start", "index_end", "consumption")}
        estimated = r.choice("estimated", ("0", "1"))
        amount = r.parse("amount", parse_amount)
        paid = r.parse("paid_amount", parse_amount)
        if r.ok:
            out.append(
                Bill(
                    number,
                    contract,
                    dates["period_start"],
                    dates["period_end"],
                    dates["issue_date"],
                    dates["due_date"],
                    ints["index_start"],
                    ints["index_end"],
                    ints["consumption"],
                    estimated == "1",
                    amount,
                    paid,
                )
            )
    _duplicates(rows, lambda r: r.values.get("bill_number", "").strip() or None, "bill_number", "bill number")
    return out


def _nonneg(what: str) -> Callable[[str], int]:
    return lambda v: parse_nonneg_int(v, what)


def _readings(rows: list[_Row], known: set[str]) -> list[tuple[str, date, int, str]]:
    out: list[tuple[str, date, int, str]] = []
    for r in rows:
        contract = r.text("contract")
        if contract and contract not in known:
            r.bad("contract", f"unknown contract {contract} (import contracts first)")
        day = r.parse("date", parse_iso_date)
        index = r.parse("index", lambda v: parse_nonneg_int(v, "index"))
        source = r.choice("source", ("actual", "estimated", "customer"))
        if r.ok:
            out.append((contract, day, index, cast(str, source)))
    _duplicates(
        rows,
        lambda r: (
            r.values.get("contract", "").strip(),
            r.values.get("date", "").strip(),
            r.values.get("source", "").strip(),
        ),
        "date",
        "reading for this contract, date and source",
    )
    return out


def _agencies(rows: list[_Row]) -> list[Agency]:
    out = []
    for r in rows:
        values = [r.text(c) for c in ("city", "name", "address", "phone", "hours")]
        arabic = [r.text(c, required=False) or None for c in ("city_ar", "name_ar", "address_ar", "hours_ar")]
        if values[3] and not re.search(r"\d{6}", re.sub(r"\D", "", values[3]) or ""):
            r.bad("phone", f"not a phone number: {values[3]!r}")
        if r.ok:
            out.append(Agency(*values, *arabic))
    from .values import fold

    _duplicates(
        rows,
        lambda r: (fold(r.values.get("city", "")), r.values.get("name", "").strip()),
        "name",
        "agency in this city",
    )
    return out


async def import_file(
    store: Store, kind: str, path: str | Path, profile, *, now: datetime | None = None
) -> ImportResult:
    """Validate the whole file, then upsert it in one transaction; ImportRejected lists every problem."""
    path = Path(path)
    rows, problems = _read(path, kind)
    async with store.transaction() as tx:
        known = (
            await tx.existing_contracts(r.values.get("contract", "").strip() for r in rows)
            if kind in ("bills", "readings")
            else set()
        )
        if kind == "contracts":
            items: list = _contracts(rows, profile)
        elif kind == "bills":
            items = _bills(rows, known)
        elif kind == "readings":
            items = _readings(rows, known)
        else:
            items = _agencies(rows)
        if problems:
            problems.sort(key=lambda p: int(p.split(":")[1]))
            raise ImportRejected(problems)  # rolls the transaction back: nothing written
        result = ImportResult(kind, len(items))
        now = now or tx.now()
        for item in items:
            if kind == "contracts":
                outcome = await tx.upsert_contract(item, now=now)
            elif kind == "bills":
                outcome = await tx.upsert_bill(item, now=now)
            elif kind == "readings":
                outcome = await tx.upsert_history_reading(*item, now=now)
            else:
                outcome = await tx.upsert_agency(item)
            result.counts[outcome] += 1
        await tx.audit(f"import_{kind}", actor="import", details={"file": path.name, **result.counts}, now=now)
    return result


# ---------------------------------------------------------------------- exports
READING_EXPORT = [
    "contract",
    "meter_number",
    "date",
    "index",
    "source",
    "previous_date",
    "previous_index",
    "consumption",
    "rollover",
    "review",
    "review_reason",
    "photo_ref",
    "channel",
    "reference",
    "submitted_at",
    "status",
    "photo_sha256",
]
REQUEST_EXPORT = [
    "reference",
    "kind",
    "contract",
    "status",
    "created_at",
    "amount",
    "months",
    "defer_until",
    "reason",
    "reason_text",
    "schedule",
    "channel",
    "lang",
    "decided_at",
    "decided_by",
    "decision_note",
    "phone",  # (not in SPEC.md: an addition) the number to call back, masked unless --unmasked
]


def mask_phone(phone: str) -> str:
    """`+2126123••••`: the last four digits hidden, as the bot shows a callback number."""
    return phone[:-4] + "••••" if len(phone) > 4 else "••••"


async def export_readings(tx: Tx, out: io.TextIOBase, *, since: date | None = None) -> int:
    """The customer readings as CSV, written batch by batch as the store's cursor returns them."""
    writer = csv.writer(out, lineterminator="\n")  # (None is written as an empty field)
    writer.writerow(READING_EXPORT)
    count = 0
    async for rows in tx.export_customer_readings(since=since):
        writer.writerows(rows)
        count += len(rows)
    return count


def _schedule(lines: str) -> str:
    """`2026-12-23:33333;…` (centimes, as stored) → `2026-12-23:333.33;…`."""
    out = []
    for line in lines.split(";"):
        due, cents = line.split(":")
        out.append(f"{due}:{format_amount_plain(int(cents))}")
    return ";".join(out)


async def export_requests(tx: Tx, out: io.TextIOBase, *, status: str | None = None, unmasked: bool = False) -> int:
    """The requests as CSV, streamed; `phone` (the number to call back: the one the customer gave,
    else the contract's) masked unless `unmasked`."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REQUEST_EXPORT)
    count = 0
    async for rows in tx.export_requests(status=status):
        for r in rows:
            # r: id, reference, kind, contract, channel, user_id, lang, status, amount, months, defer_until,
            # reason, reason_text, details, created_at, updated_at, decided_at, decided_by, decision_note,
            # schedule (due:centimes;…), phone
            schedule = _schedule(r[19]) if r[19] else ""
            phone = r[20] or ""
            writer.writerow(
                (
                    r[1],
                    r[2],
                    r[3],
                    r[7],
                    r[14],
                    "" if r[8] is None else format_amount_plain(r[8]),
                    r[9] or "",
                    r[10],
                    r[11],
                    r[12],
                    schedule,
                    r[4],
                    r[6],
                    r[16],
                    r[17],
                    r[18],
                    phone if unmasked or not phone else mask_phone(phone),
                )
            )
        count += len(rows)
    return count
