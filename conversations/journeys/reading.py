"""Meter self-reading. Diagram: docs/flows/reading.md

choose contract → index (validated: dial count, lower than last → rollover or re-check,
outlier vs usual use) → optional photo → summary (date changeable) → confirm → recorded with a
reference, the consumption and a pre-bill band by band (and the correction of estimates).
"""
from __future__ import annotations

from datetime import date, timedelta

from storage import Contract, Reading

from .. import consumption
from ..flow import AGAIN, Flow, Turn
from ..understanding import parse_date, parse_index
from .common import contract_label, forget, linked_contract, pick_contract
from .pricing import describe_correction, describe_prebill

reading = Flow("reading")

OUTLIER_HIGH = 3.0      # × usual daily use
OUTLIER_LOW = 0.2
ROLLOVER_ZONE = 0.9     # last index in the top 10 % of the dials


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
    return await linked_contract(t, "r_contract")


async def last_real_reading(t: Turn, contract: Contract) -> Reading | None:
    """The reading this one is measured from: the last real one, except a customer reading of the
    same cycle, which this one would replace."""
    day = date.fromisoformat(t.data["r_date"]) if t.data.get("r_date") else t.today

    def last_of(history: list[Reading]) -> Reading | None:
        for r in reversed(history):
            if r.source == "actual" or (r.source == "customer" and (r.reading_date.year, r.reading_date.month)
                                        != (day.year, day.month)):
                return r
        return None
    recent = await consumption.recent_readings(t.tx, contract)
    found = last_of(recent)
    if found is None and len(recent) == consumption.RECENT_READINGS:
        # Every recent reading was an estimate (years without a meter reader): look further back.
        found = last_of(await t.tx.readings(contract.contract))
    return found


# ------------------------------------------------------------------ choose the contract
@reading.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    pending_index = t.understood.entities.get("index") if t.understood else None
    pending_date = t.understood.entities.get("date") if t.understood else None
    wanted = t.data.pop("reading_for", None)      # set by a journey that already knows the contract
    forget(t, "r_")
    if pending_index is not None:
        t.data["r_pending_index"] = pending_index
    if pending_date is not None:
        t.data["r_date"] = pending_date.isoformat()
    contracts = [c for c in await t.tx.linked_contracts(t.channel, t.user_id) if not c.is_prepaid]
    if not contracts:
        t.say("reading.only_prepaid")
        return "menu.main"
    if not _in_window(t, t.today):
        w = t.profile.reading_window
        t.say("reading.outside_window", first=t.t.number(w.first_day), last=t.t.number(w.last_day),
              next=t.t.date(_next_window(t, t.today)))
        if not w.accept_outside:
            return "menu.main"
    contracts = [c for c in contracts if c.contract == wanted] or contracts
    if len(contracts) == 1:
        t.data["r_contract"] = contracts[0].contract
        return "reading.index"
    t.ask(t.t("reading.which_contract"),
          [t.button(f"c:{c.contract}", "reading.contract_button", contract=contract_label(t, c)) for c in contracts]
          + [t.button("cmd:cancel", "common.cancel")])
    return None


@reading.handle("start")
async def on_contract(t: Turn) -> str | None:
    return await pick_contract(t, "reading", "r_contract", "reading.index", "reading.pick_contract")


# ------------------------------------------------------------------ the index
@reading.prompt("index")
async def ask_index(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return "reading.start"
    if "r_pending_index" in t.data:
        # The customer already wrote the index in the message that started the journey.
        return await _check_index(t, contract, int(t.data.pop("r_pending_index")))
    last = await last_real_reading(t, contract)
    text = t.t("reading.ask_index", meter=t.t.ltr(contract.meter_number), digits=t.t.number(contract.meter_digits),
               contract=contract_label(t, contract))
    if last:
        text += "\n" + t.t("reading.last_index", index=t.t.ltr(last.index_value), date=t.t.date(last.reading_date))
    t.ask(text, [t.button("cmd:cancel", "common.cancel")], ask="photo")
    return None


@reading.handle("index")
async def on_index(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return "reading.start"
    if t.choice() == "cmd:cancel":
        return "menu.main"
    if t.inbound.photo_ref:
        t.data["r_photo"] = t.inbound.photo_ref
        t.say("reading.photo_then_index")
        return None
    index = parse_index(t.text, today=t.today) if t.text else None
    if index is None:
        t.say("reading.index_not_number")
        return AGAIN
    if t.understood and t.understood.entities.get("date"):
        t.data["r_date"] = t.understood.entities["date"].isoformat()
    return await _check_index(t, contract, index)


async def _check_index(t: Turn, contract: Contract, index: int) -> str | None:
    if index > contract.meter_max:
        t.say("reading.too_many_digits", digits=t.t.number(contract.meter_digits), max=t.t.ltr(contract.meter_max))
        return "reading.index"
    t.data["r_index"] = index
    t.data.pop("r_rollover", None)
    t.data.pop("r_review", None)
    last = await last_real_reading(t, contract)
    if last is not None and index < last.index_value:
        wrapped = contract.meter_max + 1 - last.index_value + index
        usual = await consumption.usual_daily_use(t.tx, contract)
        days = max((t.today - last.reading_date).days, 1)
        plausible = usual is None or wrapped <= max(usual * days * OUTLIER_HIGH, 50)
        if last.index_value >= contract.meter_max * ROLLOVER_ZONE and plausible:
            return "reading.rollover"
        t.say("reading.lower_than_last", index=t.t.ltr(index), last=t.t.ltr(last.index_value),
              date=t.t.date(last.reading_date))
        t.data.pop("r_index", None)
        return "reading.index"
    return await _check_outlier(t, contract)


async def _consumption(t: Turn, contract: Contract) -> tuple[int, Reading | None, date]:
    last = await last_real_reading(t, contract)
    day = date.fromisoformat(t.data["r_date"]) if t.data.get("r_date") else t.today
    index = int(t.data["r_index"])
    if last is None:
        return 0, None, day
    if t.data.get("r_rollover"):
        return contract.meter_max + 1 - last.index_value + index, last, day
    return index - last.index_value, last, day


async def _check_outlier(t: Turn, contract: Contract) -> str | None:
    used, last, day = await _consumption(t, contract)
    usual = await consumption.usual_daily_use(t.tx, contract)
    if last is not None and usual:
        days = max((day - last.reading_date).days, 1)
        ratio = (used / days) / usual
        if ratio > OUTLIER_HIGH or (ratio < OUTLIER_LOW and days >= 14):
            t.data["r_ratio"] = round(ratio, 1)
            return "reading.outlier"
    return "reading.photo" if "r_photo" not in t.data else "reading.summary"


@reading.prompt("rollover")
async def ask_rollover(t: Turn) -> str | None:
    contract = await _contract(t)
    last = await last_real_reading(t, contract)
    used = contract.meter_max + 1 - last.index_value + int(t.data["r_index"])
    t.ask(t.t("reading.rollover_question", index=t.t.ltr(t.data["r_index"]), last=t.t.ltr(last.index_value),
              max=t.t.ltr(contract.meter_max), used=t.t.number(used), unit=t.t(f"unit.{contract.service}")),
          t.yes_no())
    return None


async def _confirmed_or_recheck(t: Turn, on_yes) -> str | None:
    """A yes/no about a doubtful index: yes goes on, no asks for the index again."""
    picked = t.choice()
    if picked == "yes":
        return await on_yes()
    if picked == "no":
        t.data.pop("r_index", None)
        t.say("reading.check_again")
        return "reading.index"
    t.say("common.answer_yes_no")
    return AGAIN


@reading.handle("rollover")
async def on_rollover(t: Turn) -> str | None:
    async def wrapped() -> str | None:
        t.data["r_rollover"] = True
        return await _check_outlier(t, await _contract(t))
    return await _confirmed_or_recheck(t, wrapped)


@reading.prompt("outlier")
async def ask_outlier(t: Turn) -> str | None:
    contract = await _contract(t)
    used, last, day = await _consumption(t, contract)
    facts = dict(used=t.t.number(used), unit=t.t(f"unit.{contract.service}"),
                 days=t.t.n("common.days", max((day - last.reading_date).days, 1)))
    if t.data["r_ratio"] > 1:
        text = t.t("reading.outlier_high", times=t.t.n("reading.times", round(t.data["r_ratio"])), **facts)
    else:
        text = t.t("reading.outlier_low", **facts)
    t.ask(text, t.yes_no())
    return None


@reading.handle("outlier")
async def on_outlier(t: Turn) -> str | None:
    async def confirmed() -> str | None:
        t.data["r_review"] = "outlier"
        return "reading.photo" if "r_photo" not in t.data else "reading.summary"
    return await _confirmed_or_recheck(t, confirmed)


# ------------------------------------------------------------------ photo, date, summary
@reading.prompt("photo")
async def ask_photo(t: Turn) -> str | None:
    t.ask(t.t("reading.ask_photo"), [t.button("skip", "reading.skip_photo"), t.button("cmd:cancel", "common.cancel")],
          ask="photo")
    return None


@reading.handle("photo")
async def on_photo(t: Turn) -> str | None:
    if t.inbound.photo_ref:
        t.data["r_photo"] = t.inbound.photo_ref
        t.say("reading.photo_received")
        return "reading.summary"
    picked = t.choice()
    if picked == "skip":
        return "reading.summary"
    if picked == "cmd:cancel":
        return "menu.main"
    t.say("reading.photo_expected")
    return AGAIN


@reading.prompt("date")
async def ask_date(t: Turn) -> str | None:
    t.ask(t.t("reading.ask_date"), [t.button("today", "reading.today"), t.button("yesterday", "reading.yesterday")])
    return None


@reading.handle("date")
async def on_date(t: Turn) -> str | None:
    picked = t.choice()
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
    last = await last_real_reading(t, contract)
    if day > t.today:
        t.say("reading.date_future")
        return AGAIN
    if last and day < last.reading_date:
        t.say("reading.date_before_last", date=t.t.date(last.reading_date))
        return AGAIN
    t.data["r_date"] = day.isoformat()
    return "reading.summary"


async def _same_cycle(t: Turn, contract: Contract, day: date) -> Reading | None:
    for r in reversed(await consumption.recent_readings(t.tx, contract)):
        if r.source == "customer" and (r.reading_date.year, r.reading_date.month) == (day.year, day.month):
            return r
    return None


@reading.prompt("summary")
async def summary(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None or "r_index" not in t.data:
        return "reading.start"
    used, last, day = await _consumption(t, contract)
    if last and day < last.reading_date:
        t.data.pop("r_date", None)
        used, last, day = await _consumption(t, contract)
    lines = [t.t("reading.summary_contract", contract=contract_label(t, contract)),
             t.t("reading.summary_index", index=t.t.ltr(t.data["r_index"]), date=t.t.date(day))]
    if last:
        lines.append(t.t("reading.summary_consumption", used=t.t.number(used), unit=t.t(f"unit.{contract.service}"),
                         last=t.t.ltr(last.index_value), date=t.t.date(last.reading_date)))
    if t.data.get("r_rollover"):
        lines.append(t.t("reading.summary_rollover"))
    lines.append(t.t("reading.summary_photo_yes" if t.data.get("r_photo") else "reading.summary_photo_no"))
    previous = await _same_cycle(t, contract, day)
    if previous:
        lines.append(t.t("reading.summary_replaces", index=t.t.ltr(previous.index_value),
                         date=t.t.date(previous.reading_date), reference=t.t.ltr(previous.reference)))
    t.ask(t.t("reading.summary", lines="\n".join(lines)),
          [t.button("yes", "reading.confirm"), t.button("date", "reading.change_date"),
           t.button("index", "reading.change_index"), t.button("cmd:cancel", "common.cancel")])
    return None


@reading.handle("summary")
async def on_summary(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "date":
        return "reading.date"
    if picked == "index":
        t.data.pop("r_index", None)
        return "reading.index"
    if picked == "no" or picked == "cmd:cancel":
        return "menu.main"
    if t.inbound.photo_ref:
        t.data["r_photo"] = t.inbound.photo_ref
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
        if units is None:                          # as write_estimates steps an index
            units = (r.index_value - previous) % (contract.meter_max + 1)
        out.append((r.reading_date.replace(day=1), int(units)))
        previous = r.index_value
    return out


async def _record(t: Turn) -> str:
    contract = await _contract(t)
    used, last, day = await _consumption(t, contract)
    previous = await _same_cycle(t, contract, day)
    tariff = t.profile.tariff(contract.tariff)
    details: dict = {}
    prebill_text = correction_text = None
    if last is not None and used >= 0:
        history = await consumption.recent_readings(t.tx, contract)
        if all(r.id != last.id for r in history):       # (by id: `in` would compare every field)
            history = await t.tx.readings(contract.contract)
        estimates = _estimated_units(contract, last, history)
        prebill_text, details["prebill"] = describe_prebill(t, tariff, last.reading_date, day, used)
        if estimates:
            correction_text, details["correction"] = await describe_correction(t, contract, tariff, last, day, used,
                                                                               estimates)
    reference = await t.tx.next_reference("RL", day.year)
    await t.tx.add_customer_reading(
        contract=contract.contract, day=day, index=int(t.data["r_index"]), reference=reference, channel=t.channel,
        user_id=t.user_id, photo_ref=t.data.get("r_photo"), previous_index=last.index_value if last else None,
        previous_date=last.reading_date if last else None, consumption=used if last else None,
        rollover=bool(t.data.get("r_rollover")), review_reason=t.data.get("r_review"), details=details,
        replaces=previous.id if previous else None, now=t.now)
    await t.tx.audit("reading_recorded", channel=t.channel, user_id=t.user_id, contract=contract.contract,
                     details={"reference": reference, "replaces": previous.reference if previous else None}, now=t.now)
    t.say("reading.recorded", reference=t.t.ltr(reference))
    if t.data.get("r_review"):
        t.say("reading.flagged")
    for text in (prebill_text, correction_text):
        if text:
            t.say_text(text)
    forget(t, "r_")
    return "menu.main"
