"""Meter self-reading. Diagram: docs/flows/reading.md

choose contract → index (validated: dial count, lower than last → rollover or re-check,
outlier vs usual use) → optional photo → summary (date changeable) → confirm → recorded with a
reference, the consumption and a pre-bill band by band (and the correction of estimates).

A photo sent before the index, read by conversations/ocr.py when it is sure, is offered as a
suggestion ("suggest") the customer confirms or types over; the confirmed or typed index is the
reference, and one that differs from what a photo showed is held for review with both values.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from storage import Contract, Reading

from .. import consumption
from ..events import Button
from ..flow import AGAIN, ContractData, Field, Flow, MenuItem, Turn, ref, take
from ..understanding import normalize, parse_date, parse_index
from . import usage
from .common import contract_button, contract_label, elsewhere, linked_contract, pick_contract
from .pricing import describe_correction, describe_prebill

reading = Flow(
    "reading",
    states=("start", "index", "rollover", "outlier", "extreme", "photo", "date", "summary", "suggest"),
    intents=("reading",),
    menu=MenuItem(1, "menu.reading"),
    pausable=True,
    request=True,
)
READING_START = reading.state("start")
READING_INDEX = reading.state("index")
READING_ROLLOVER = reading.state("rollover")
READING_OUTLIER = reading.state("outlier")
READING_EXTREME = reading.state("extreme")
READING_PHOTO = reading.state("photo")
READING_DATE = reading.state("date")
READING_SUMMARY = reading.state("summary")
READING_SUGGEST = reading.state("suggest")

MENU_MAIN = ref("menu.main")


class ReadingData(ContractData):
    """What the reading journey has gathered (the contract, the index and its checks, photo, date)."""

    key = "reading"
    bad_date = Field[str]()
    choice_index = Field[int]()
    date = Field[str]()
    index = Field[int]()
    ocr_index = Field[int]()  # what the kept photo shows, when the reader was sure (conversations/ocr.py)
    pending_index = Field[int]()
    photo = Field[str]()  # the channel's file id / media id
    photo_sha256 = Field[str]()  # the photo as kept (conversations/media.py), when the channel gave it
    ratio = Field[float]()
    review = Field[str]()
    rollover = Field[bool]()
    suggested = Field[int]()  # the index read from the photo, offered until confirmed or typed over
    wanted = Field[str]()  # the contract another journey (bills) sends the reading for


OUTLIER_HIGH = 3.0  # × usual daily use
OUTLIER_LOW = 0.2
OUTLIER_EXTREME = 20.0  # beyond: a slip or a misread dial, not a use: retype it, or a photo proves it
OUTLIER_MIN_DAYS = 7  # a use is weighed against at least a week of the usual one: a day or two says nothing
OUTLIER_MIN_UNITS = 10  # nor does a handful of units, whatever the usual use
MAX_INDEX_DIGITS = 9  # parse_index reads no longer number: a longer one is a meter's too many digits
_DIGIT_RUN = re.compile(r"\d(?:[\d .'’]*\d)?")
ROLLOVER_ZONE = 0.9  # last index in the top 10 % of the dials


def _in_window(t: Turn, day: date) -> bool:
    w = t.profile.reading_window
    return w.first_day <= day.day <= w.last_day


def _next_window(t: Turn, day: date) -> date:
    w = t.profile.reading_window
    if day.day < w.first_day:
        return day.replace(day=w.first_day)
    first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first_next.replace(day=w.first_day)


async def _contract(t: Turn) -> Contract | None:
    return await linked_contract(t, ReadingData.of(t).contract)


def _reading_day(t: Turn) -> date:
    day = ReadingData.of(t).date
    return date.fromisoformat(day) if day else t.today


async def last_real_reading(t: Turn, contract: Contract, day: date | None = None) -> Reading | None:
    """The reading this one (taken on `day`, by default the chosen date) is measured from: the
    last real one, except a customer reading of the same cycle, which this one would replace,
    and a customer reading held for review (an unchecked outlier is no baseline)."""
    day = day or _reading_day(t)

    def last_of(history: list[Reading]) -> Reading | None:
        for r in reversed(history):
            if r.source == "actual" or (
                r.source == "customer"
                and not r.review
                and (r.reading_date.year, r.reading_date.month) != (day.year, day.month)
            ):
                return r
        return None

    recent = await consumption.recent_readings(t.tx, contract)
    found = last_of(recent)
    if found is None and len(recent) == consumption.RECENT_READINGS:
        # Every recent reading was an estimate (years without a meter reader): look further back,
        # at the latest real ones only (however many estimates came since).
        real = ("actual", "customer")
        older = await t.tx.readings(contract.contract, newest=consumption.RECENT_READINGS, sources=real)
        found = last_of(older)
        if found is None and len(older) == consumption.RECENT_READINGS:  # (two years of reviewed readings)
            found = last_of(await t.tx.readings(contract.contract, sources=real))
    return found


# ------------------------------------------------------------------ choose the contract
@reading.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    # What the customer said when asking (kept across linking): shown back before it is used.
    pending_index, pending_date = t.use_given("index"), t.use_given("date")
    wanted = take(ReadingData.of(t), ReadingData.wanted) or t.use_given(
        "contract"
    )  # a journey or the customer named it
    service = t.use_given("service")
    ReadingData.of(t).clear()
    if pending_index is not None:
        ReadingData.of(t).pending_index = pending_index
    if pending_date is not None:
        ReadingData.of(t).date = pending_date.isoformat()
    contracts = [c for c in await t.tx.linked_contracts(t.channel, t.user_id) if not c.is_prepaid]
    if not contracts:
        t.say("reading.only_prepaid")
        return MENU_MAIN
    if not _in_window(t, t.today):
        w = t.profile.reading_window
        t.say(
            "reading.outside_window",
            first=t.tr.day(w.first_day),
            last=t.tr.day(w.last_day),
            next=t.tr.date(_next_window(t, t.today)),
        )
        if not w.accept_outside:
            return MENU_MAIN
    contracts = (
        [c for c in contracts if c.contract == wanted] or [c for c in contracts if c.service == service] or contracts
    )
    if len(contracts) == 1:
        ReadingData.of(t).contract = contracts[0].contract
        return READING_INDEX
    t.ask(
        t.tr("reading.which_contract"),
        [contract_button(t, c, "reading.contract_button", contract=contract_label(t, c)) for c in contracts]
        + [t.button("cmd:cancel", "common.cancel")],
    )
    return None


@reading.handle("start")
async def on_contract(t: Turn) -> str | None:
    picked = t.choice()
    typed = ReadingData.of(t).choice_index
    if picked and picked.startswith("c:") and typed is not None:
        # The index was typed when the meter was asked: checked on the meter now picked.
        ReadingData.of(t).contract = picked[2:]
        contract = await _contract(t)
        if contract is not None:
            ReadingData.of(t).choice_index = None
            return await _check_index(t, contract, typed)
    if picked is None and t.text and not elsewhere(t, "reading"):
        index = parse_index(t.text, today=t.today)
        if index is not None:
            return await _index_at_choice(t, index)
    return await pick_contract(t, "reading", ReadingData.of(t), READING_INDEX, "reading.pick_contract")


async def _index_at_choice(t: Turn, index: int) -> str | None:
    """An index typed instead of picking a meter: kept. The one meter it is plausible for is
    taken (and named); otherwise the meter is asked again, the index with it."""
    offered = [(p, label) for p, label in t.data.get("_choices", []) if p.startswith("c:")]
    numbers = {p[2:] for p, _ in offered}
    contracts = [c for c in await t.tx.linked_contracts(t.channel, t.user_id) if c.contract in numbers]
    service = t.understood.entities.get("service") if t.understood else None
    contracts = [c for c in contracts if c.service == service] or contracts  # "1325 pour l'eau"
    if all(index > c.meter_max for c in contracts):
        # Longer than every meter (a contract number, a phone): no index to keep.
        return await pick_contract(t, "reading", ReadingData.of(t), READING_INDEX, "reading.pick_contract")
    plausible = [c for c in contracts if await _plausible(t, c, index)]
    take(ReadingData.of(t), ReadingData.pending_index)  # the index typed now is the one
    if len(plausible) == 1:
        contract = plausible[0]
        ReadingData.of(t).contract = contract.contract
        t.say(
            "reading.index_for_meter",
            index=t.tr.ltr(index),
            meter=t.tr.ltr(contract.meter_number),
            contract=contract_label(t, contract),
        )
        return await _check_index(t, contract, index)
    ReadingData.of(t).choice_index = index
    tags = t.data.get("_tags", {})  # the same meters again, still nameable by service or number
    t.ask(
        t.tr("reading.which_contract_for_index", index=t.tr.ltr(index)),
        [
            t.tag(Button(p, label), **tags[p]) if p in tags else Button(p, label)
            for p, label in t.data.get("_choices", [])
        ],
    )
    return None


async def _plausible(t: Turn, contract: Contract, index: int) -> bool:
    """Whether `index` reads as this meter's next index: its dials, not below its last index,
    not an outlier."""
    if index > contract.meter_max:
        return False
    last = await last_real_reading(t, contract)
    if last is None:
        return True
    if index < last.index_value:
        return False
    return (
        _outlier(
            index - last.index_value,
            (_reading_day(t) - last.reading_date).days,
            await consumption.usual_daily_use(t.tx, contract),
        )
        is None
    )


def _take_photo(t: Turn) -> None:
    """The photo of this message is the reading's: its channel id, and its hash once the
    engine kept it (the file the reading will point to)."""
    r = ReadingData.of(t)
    r.photo = t.inbound.photo_ref
    r.photo_sha256 = t.photo.sha256 if t.photo is not None else None
    r.ocr_index = t.photo.read.index if t.photo is not None and t.photo.read is not None else None


def _ocr_disagrees(r: ReadingData) -> bool:
    """The index the customer gave differs from the one the kept photo shows (read for sure)."""
    return r.ocr_index is not None and r.index is not None and r.ocr_index != r.index


def _padded(contract: Contract, index: int) -> str:
    """An index as the dials show it ("04512")."""
    return f"{index:0{contract.meter_digits}d}"


def _photo_before_index(t: Turn, contract: Contract) -> str | None:
    """A photo where the index is asked: kept; its reading, when sure, offered to confirm."""
    _take_photo(t)
    read = t.photo.read if t.photo is not None else None
    if read is None:  # not read (ADDAD_OCR off, or no ocr extra): evidence only
        t.say("reading.photo_then_index")
        return None
    if read.index is None or read.index > contract.meter_max:
        t.say("reading.ocr_unsure")
        return None
    ReadingData.of(t).suggested = read.index
    return READING_SUGGEST


# ------------------------------------------------------------------ the index
@reading.prompt("index")
async def ask_index(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return READING_START
    index = take(ReadingData.of(t), ReadingData.pending_index)
    if index is not None:
        # The customer already wrote the index in the message that started the journey: say
        # which meter it is taken for, then check it like a typed one.
        t.say(
            "reading.index_for_meter",
            index=t.tr.ltr(index),
            meter=t.tr.ltr(contract.meter_number),
            contract=contract_label(t, contract),
        )
        return await _check_index(t, contract, index)
    last = await last_real_reading(t, contract)
    text = t.tr(
        "reading.ask_index",
        meter=t.tr.ltr(contract.meter_number),
        digits=t.tr.number(contract.meter_digits),
        contract=contract_label(t, contract),
    )
    if last:
        text += "\n" + t.tr("reading.last_index", index=t.tr.ltr(last.index_value), date=t.tr.date(last.reading_date))
    t.ask(text, [t.button("cmd:cancel", "common.cancel")], ask="photo")
    return None


@reading.handle("index", expects="number", photo=True)
async def on_index(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return READING_START
    if t.choice() == "cmd:cancel":
        return MENU_MAIN
    if t.inbound.photo_ref:
        return _photo_before_index(t, contract)
    index = parse_index(t.text, today=t.today) if t.text else None
    if index is None:
        if _too_long(t.text):
            return _say_too_many_digits(t, contract)
        t.say("reading.index_not_number")
        return AGAIN
    if t.understood and t.understood.entities.get("date"):
        ReadingData.of(t).date = t.understood.entities["date"].isoformat()
    return await _check_index(t, contract, index)


@reading.prompt("suggest")
async def ask_suggest(t: Turn) -> str | None:
    contract, suggested = await _contract(t), ReadingData.of(t).suggested
    if contract is None:
        return READING_START
    if suggested is None:
        return READING_INDEX
    t.ask(
        t.tr("reading.ocr_suggest", index=t.tr.ltr(_padded(contract, suggested))),
        [
            t.button("yes", "reading.ocr_yes"),
            t.button("no", "reading.ocr_type_it"),
            t.button("cmd:cancel", "common.cancel"),
        ],
        ask="photo",
    )
    return None


@reading.handle("suggest", expects="number", photo=True)
async def on_suggest(t: Turn) -> str | None:
    """Yes takes the index read; "type it", or an index typed, is the customer's own."""
    contract = await _contract(t)
    if contract is None:
        return READING_START
    r = ReadingData.of(t)
    if t.inbound.photo_ref:  # another photo: read again
        r.suggested = None
        return _photo_before_index(t, contract) or READING_INDEX
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    suggested = r.suggested
    if picked == "yes" and suggested is not None:
        r.suggested = None
        return await _check_index(t, contract, suggested)
    if picked == "no":
        r.suggested = None
        return READING_INDEX
    index = parse_index(t.text, today=t.today) if t.text else None
    if index is not None:
        r.suggested = None
        return await _check_index(t, contract, index)
    if t.text and _too_long(t.text):
        return _say_too_many_digits(t, contract)
    t.say("reading.ocr_yes_or_type")
    return AGAIN


def _too_long(text: str) -> bool:
    """A number longer than any meter ("123456789012345678901234567890"), which parse_index
    does not take for an index: the answer is the dial count, not "type only the digits"."""
    return any(sum(c.isdigit() for c in m.group()) > MAX_INDEX_DIGITS for m in _DIGIT_RUN.finditer(normalize(text)))


def _say_too_many_digits(t: Turn, contract: Contract) -> str:
    t.say("reading.too_many_digits", digits=t.tr.number(contract.meter_digits), max=t.tr.ltr(contract.meter_max))
    return READING_INDEX


async def _check_index(t: Turn, contract: Contract, index: int) -> str | None:
    if index > contract.meter_max:
        return _say_too_many_digits(t, contract)
    if ReadingData.of(t).date and await _refuse_date(t, contract, _reading_day(t), say=False):
        # Not measured against a date that cannot be: the summary says why and asks the date.
        ReadingData.of(t).bad_date = take(ReadingData.of(t), ReadingData.date)
    ReadingData.of(t).index = index
    ReadingData.of(t).rollover = None
    ReadingData.of(t).review = None
    last = await last_real_reading(t, contract)
    if last is not None and index < last.index_value:
        wrapped = contract.meter_max + 1 - last.index_value + index
        usual = await consumption.usual_daily_use(t.tx, contract)
        days = max((t.today - last.reading_date).days, 1)
        plausible = usual is None or wrapped <= max(usual * days * OUTLIER_HIGH, 50)
        if last.index_value >= contract.meter_max * ROLLOVER_ZONE and plausible:
            return READING_ROLLOVER
        t.say(
            "reading.lower_than_last",
            index=t.tr.ltr(index),
            last=t.tr.ltr(last.index_value),
            date=t.tr.date(last.reading_date),
        )
        ReadingData.of(t).index = None
        return READING_INDEX
    return await _check_outlier(t, contract, index)


async def _consumption(t: Turn, contract: Contract, index: int) -> tuple[int, Reading | None, date]:
    last = await last_real_reading(t, contract)
    day = _reading_day(t)
    if last is None:
        return 0, None, day
    if ReadingData.of(t).rollover:
        return contract.meter_max + 1 - last.index_value + index, last, day
    return index - last.index_value, last, day


def _outlier(used: int, days: int, usual: float | None) -> tuple[float, bool] | None:
    """(times the usual daily use, extreme?) when `used` over `days` is out of the ordinary; None
    when it is ordinary or too little to tell. High is judged over at least a week of usual use
    (1 m³ in a day is not "4 times the usual"); the ratio said is the period's own."""
    if not usual:
        return None
    days = max(days, 1)
    ratio = (used / days) / usual
    weighed = used / (usual * max(days, OUTLIER_MIN_DAYS))
    if weighed > OUTLIER_HIGH and used >= OUTLIER_MIN_UNITS:
        return ratio, weighed > OUTLIER_EXTREME
    if ratio < OUTLIER_LOW and days >= 14:
        return ratio, False
    return None


async def _check_outlier(t: Turn, contract: Contract, index: int) -> str | None:
    used, last, day = await _consumption(t, contract, index)
    if last is not None:
        found = _outlier(used, (day - last.reading_date).days, await consumption.usual_daily_use(t.tx, contract))
        if found:
            ReadingData.of(t).ratio = round(found[0], 1)
            return READING_EXTREME if found[1] else READING_OUTLIER
    return READING_PHOTO if ReadingData.of(t).photo is None else READING_SUMMARY


@reading.prompt("rollover")
async def ask_rollover(t: Turn) -> str | None:
    contract = await _contract(t)
    last = await last_real_reading(t, contract) if contract is not None else None
    index = ReadingData.of(t).index
    if contract is None or last is None or index is None:
        return READING_START  # unlinked, or the reading measured from is gone since: start over
    used = contract.meter_max + 1 - last.index_value + index
    t.ask(
        t.tr(
            "reading.rollover_question",
            index=t.tr.ltr(index),
            last=t.tr.ltr(last.index_value),
            max=t.tr.ltr(contract.meter_max),
            used=t.tr.number(used),
            unit=t.tr(f"unit.{contract.service}"),
        ),
        t.yes_no(),
    )
    return None


async def _confirmed_or_recheck(t: Turn, on_yes) -> str | None:
    """A yes/no about a doubtful index: yes goes on, no asks for the index again."""
    picked = t.choice()
    if picked == "yes":
        return await on_yes()
    if picked == "no":
        ReadingData.of(t).index = None
        t.say("reading.check_again")
        return READING_INDEX
    t.say("common.answer_yes_no")
    return AGAIN


@reading.handle("rollover")
async def on_rollover(t: Turn) -> str | None:
    async def wrapped() -> str | None:
        contract, index = await _contract(t), ReadingData.of(t).index
        if contract is None or index is None:
            return READING_START
        ReadingData.of(t).rollover = True
        return await _check_outlier(t, contract, index)

    return await _confirmed_or_recheck(t, wrapped)


@reading.prompt("outlier")
async def ask_outlier(t: Turn) -> str | None:
    contract, r = await _contract(t), ReadingData.of(t)
    if contract is None or r.index is None or r.ratio is None:
        return READING_START
    used, last, day = await _consumption(t, contract, r.index)
    if last is None:
        return READING_START  # no reading to measure from any more: nothing is out of the ordinary
    facts = dict(
        used=t.tr.number(used),
        unit=t.tr(f"unit.{contract.service}"),
        days=t.tr.n("common.days", max((day - last.reading_date).days, 1)),
    )
    if r.ratio > 1:
        text = t.tr("reading.outlier_high", times=t.tr.n("reading.times", round(r.ratio)), **facts)
    else:
        text = t.tr("reading.outlier_low", **facts)
    t.ask(text, t.yes_no(), ask="photo")
    return None


@reading.handle("outlier", photo=True)
async def on_outlier(t: Turn) -> str | None:
    if t.inbound.photo_ref:  # the meter shown instead of a "yes": the proof, for review
        _take_photo(t)
        ReadingData.of(t).review = "outlier"
        t.say("reading.extreme_photo")
        return READING_SUMMARY

    async def confirmed() -> str | None:
        ReadingData.of(t).review = "outlier"
        return READING_PHOTO if ReadingData.of(t).photo is None else READING_SUMMARY

    return await _confirmed_or_recheck(t, confirmed)


@reading.prompt("extreme")
async def ask_extreme(t: Turn) -> str | None:
    """Far beyond any use: not a yes/no question but "type it again, or show us"."""
    contract, r = await _contract(t), ReadingData.of(t)
    if contract is None or r.index is None or r.ratio is None:
        return READING_START
    used, last, day = await _consumption(t, contract, r.index)
    if last is None:
        return READING_START
    t.ask(
        t.tr(
            "reading.outlier_extreme",
            used=t.tr.number(used),
            unit=t.tr(f"unit.{contract.service}"),
            days=t.tr.n("common.days", max((day - last.reading_date).days, 1)),
            times=t.tr.n("reading.times", round(r.ratio)),
        ),
        [
            t.button("no", "reading.retype_index"),
            t.button("yes", "reading.index_is_right"),
            t.button("cmd:cancel", "common.cancel"),
        ],
        ask="photo",
    )
    return None


@reading.handle("extreme", photo=True)
async def on_extreme(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return READING_START
    if t.inbound.photo_ref:
        _take_photo(t)
        ReadingData.of(t).review = "outlier"
        t.say("reading.extreme_photo")
        return READING_SUMMARY
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    if picked == "no":
        ReadingData.of(t).index = None
        t.say("reading.check_again")
        return READING_INDEX
    if picked == "yes":
        # Kept as the customer insists, but never as a plain valid reading: an agent checks it.
        ReadingData.of(t).review = "outlier"
        t.say("reading.extreme_kept", index=t.tr.ltr(ReadingData.of(t).index))
        return READING_PHOTO if ReadingData.of(t).photo is None else READING_SUMMARY
    index = parse_index(t.text, today=t.today) if t.text else None
    if index is not None:  # the index typed again
        return await _check_index(t, contract, index)
    if t.text and _too_long(t.text):
        return _say_too_many_digits(t, contract)
    t.say("reading.extreme_expected")
    return AGAIN


# ------------------------------------------------------------------ photo, date, summary
@reading.prompt("photo")
async def ask_photo(t: Turn) -> str | None:
    t.ask(
        t.tr("reading.ask_photo"),
        [t.button("skip", "reading.skip_photo"), t.button("cmd:cancel", "common.cancel")],
        ask="photo",
    )
    return None


@reading.handle("photo", photo=True)
async def on_photo(t: Turn) -> str | None:
    if t.inbound.photo_ref:
        _take_photo(t)
        t.say("reading.photo_received")
        return READING_SUMMARY
    picked = t.choice()
    if picked == "skip":
        return READING_SUMMARY
    if picked == "cmd:cancel":
        return MENU_MAIN
    t.say("reading.photo_expected")
    return AGAIN


@reading.prompt("date")
async def ask_date(t: Turn) -> str | None:
    t.ask(t.tr("reading.ask_date"), [t.button("today", "reading.today"), t.button("yesterday", "reading.yesterday")])
    return None


@reading.handle("date")
async def on_date(t: Turn) -> str | None:
    picked = t.choice()
    day: date | None
    if picked == "today":
        day = t.today
    elif picked == "yesterday":
        day = t.today - timedelta(days=1)
    else:
        day = parse_date(t.text, t.lang, today=t.today) if t.text else None
    if day is None:
        t.say("reading.date_not_understood")
        return AGAIN
    contract = await _contract(t)
    if contract is None:
        return READING_START
    if await _refuse_date(t, contract, day):
        return AGAIN
    ReadingData.of(t).date = day.isoformat()
    return READING_SUMMARY


async def _refuse_date(t: Turn, contract: Contract, day: date, *, say: bool = True) -> bool:
    """Whether the reading cannot be dated `day` (and says why). Checked against the reading it
    would be measured from *for that date*: a customer reading of another month may be the last
    one then (dated 30 November, a reading sent on 1 December comes after it)."""
    if day > t.today:
        if say:
            t.say("reading.date_future")
        return True
    last = await last_real_reading(t, contract, day)
    if last is None or day >= last.reading_date:
        return False
    if not say:
        return True
    if last.source == "customer":
        t.say(
            "reading.date_before_own",
            date=t.tr.date(last.reading_date),
            index=t.tr.ltr(last.index_value),
            reference=t.tr.ltr(last.reference or ""),
        )
    else:
        t.say("reading.date_before_last", date=t.tr.date(last.reading_date))
    return True


async def _same_cycle(t: Turn, contract: Contract, day: date) -> Reading | None:
    for r in reversed(await consumption.recent_readings(t.tx, contract)):
        if r.source == "customer" and (r.reading_date.year, r.reading_date.month) == (day.year, day.month):
            return r
    return None


@reading.prompt("summary")
async def summary(t: Turn) -> str | None:
    contract, index = await _contract(t), ReadingData.of(t).index
    if contract is None or index is None:
        return READING_START
    if ReadingData.of(t).date and await _refuse_date(t, contract, _reading_day(t), say=False):
        # (no longer possible: a reading came in since)
        ReadingData.of(t).bad_date = take(ReadingData.of(t), ReadingData.date)
    bad_date = take(ReadingData.of(t), ReadingData.bad_date)
    if bad_date:
        # A date given with the index or in the first message that cannot be: why, then the question.
        await _refuse_date(t, contract, date.fromisoformat(bad_date))
        return READING_DATE
    used, last, day = await _consumption(t, contract, index)
    lines = [
        t.tr("reading.summary_contract", contract=contract_label(t, contract)),
        t.tr("reading.summary_index", index=t.tr.ltr(index), date=t.tr.date(day)),
    ]
    if last:
        lines.append(
            t.tr(
                "reading.summary_consumption",
                used=t.tr.number(used),
                unit=t.tr(f"unit.{contract.service}"),
                last=t.tr.ltr(last.index_value),
                date=t.tr.date(last.reading_date),
            )
        )
    if ReadingData.of(t).rollover:
        lines.append(t.tr("reading.summary_rollover"))
    if _ocr_disagrees(ReadingData.of(t)):
        read = ReadingData.of(t).ocr_index or 0
        lines.append(t.tr("reading.summary_ocr_differs", read=t.tr.ltr(_padded(contract, read)), index=t.tr.ltr(index)))
    elif ReadingData.of(t).review:
        lines.append(t.tr("reading.summary_review"))
    lines.append(t.tr("reading.summary_photo_yes" if ReadingData.of(t).photo else "reading.summary_photo_no"))
    previous = await _same_cycle(t, contract, day)
    if previous:
        lines.append(
            t.tr(
                "reading.summary_replaces",
                index=t.tr.ltr(previous.index_value),
                date=t.tr.date(previous.reading_date),
                reference=t.tr.ltr(previous.reference),
            )
        )
    t.ask(
        t.tr("reading.summary", lines="\n".join(lines)),
        [
            t.button("yes", "reading.confirm"),
            t.button("date", "reading.change_date"),
            t.button("index", "reading.change_index"),
            t.button("cmd:cancel", "common.cancel"),
        ],
    )
    return None


@reading.handle("summary", records=True, photo=True)
async def on_summary(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "date":
        return READING_DATE
    if picked == "index":
        ReadingData.of(t).index = None
        return READING_INDEX
    if picked == "no" or picked == "cmd:cancel":
        return MENU_MAIN
    if t.inbound.photo_ref:
        _take_photo(t)
        t.say("reading.photo_received")
        return AGAIN
    if picked != "yes":
        t.say("reading.confirm_or_change")
        return AGAIN
    return await _record(t)


def _estimated_units(contract: Contract, last: Reading, history: list[Reading]) -> list[tuple[date, int]]:
    """(month, units) of each estimate since the last real reading. An estimate imported from the
    billing system's history has an index but no consumption: it is the step from the reading
    before it (across zero if the dials wrapped)."""
    out, previous = [], last.index_value
    for r in history:
        if r.source != "estimated" or r.reading_date <= last.reading_date:
            continue
        units = r.consumption
        if units is None:  # as write_estimates steps an index
            units = (r.index_value - previous) % (contract.meter_max + 1)
        out.append((r.reading_date.replace(day=1), int(units)))
        previous = r.index_value
    return out


async def _record(t: Turn) -> str:
    contract, index = await _contract(t), ReadingData.of(t).index
    if contract is None or index is None:
        return READING_START
    used, last, day = await _consumption(t, contract, index)
    previous = await _same_cycle(t, contract, day)
    tariff = t.profile.tariff(contract.tariff)
    details: dict = {}
    prebill_text = correction_text = None
    if last is not None and used >= 0:
        history = await consumption.recent_readings(t.tx, contract)
        if all(r.id != last.id for r in history):  # (by id: `in` would compare every field)
            history = await t.tx.readings(contract.contract, since=last.reading_date)  # the estimates since
        estimates = _estimated_units(contract, last, history)
        prebill_text, details["prebill"] = describe_prebill(t, tariff, last.reading_date, day, used)
        if estimates:
            correction_text, details["correction"] = await describe_correction(
                t, contract, tariff, last, day, used, estimates
            )
    r = ReadingData.of(t)
    if _ocr_disagrees(r):
        # The customer's index is recorded; an agent compares it with the photo.
        r.review = r.review or "ocr"
        details["ocr"] = {"read": r.ocr_index, "typed": index}
    reference = await t.tx.next_reference("RL", day.year)
    await t.tx.add_customer_reading(
        contract=contract.contract,
        day=day,
        index=index,
        reference=reference,
        channel=t.channel,
        user_id=t.user_id,
        photo_ref=ReadingData.of(t).photo,
        photo_sha256=ReadingData.of(t).photo_sha256,
        ocr_index=ReadingData.of(t).ocr_index,
        previous_index=last.index_value if last else None,
        previous_date=last.reading_date if last else None,
        consumption=used if last else None,
        rollover=bool(ReadingData.of(t).rollover),
        review_reason=ReadingData.of(t).review,
        details=details,
        replaces=previous.id if previous else None,
        now=t.now,
    )
    await t.tx.audit(
        "reading_recorded",
        channel=t.channel,
        user_id=t.user_id,
        contract=contract.contract,
        details={"reference": reference, "replaces": previous.reference if previous else None},
        now=t.now,
    )
    t.say("reading.recorded", reference=t.tr.ltr(reference))
    if ReadingData.of(t).review:
        t.say("reading.flagged")
    for text in (prebill_text, correction_text):
        if text:
            t.say_text(text)
    usage.offer(t, contract)  # 📊 this meter's 13 months, with this reading
    ReadingData.of(t).clear()
    return MENU_MAIN
