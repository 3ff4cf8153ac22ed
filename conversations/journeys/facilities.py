"""Payment facilities: pay later until a date, or split the arrears into monthly instalments.
Diagram: docs/flows/facilities.md"""

from __future__ import annotations

from datetime import date, timedelta

from ..facilities import arrears_of, first_due_date, max_deferral, split_instalments, usual_bill
from ..flow import AGAIN, ContractData, Field, Flow, MenuItem, Turn, ref, take
from ..understanding import parse_date, parse_months, parse_yes_no
from .common import contract_button, contract_label, linked_contract, pick_contract
from .filing import file_request

facilities = Flow(
    "facilities",
    states=("start", "pending_check", "option", "date", "reason", "reason_text", "summary"),
    intents=("deferral",),
    menu=MenuItem(3, "menu.facilities"),
    pausable=True,
    request=True,
)
FACILITIES_START = facilities.state("start")
FACILITIES_PENDING_CHECK = facilities.state("pending_check")
FACILITIES_OPTION = facilities.state("option")
FACILITIES_DATE = facilities.state("date")
FACILITIES_REASON = facilities.state("reason")
FACILITIES_REASON_TEXT = facilities.state("reason_text")
FACILITIES_SUMMARY = facilities.state("summary")

MENU_MAIN = ref("menu.main")


class FacilitiesData(ContractData):
    """What the facilities journey has gathered (the option, months or date, reason)."""

    key = "facilities"
    date_options = Field[list[str]]()
    kind = Field[str]()
    months = Field[int]()
    reason = Field[str]()
    reason_text = Field[str]()
    replaces = Field[str]()
    until = Field[str]()
    wanted_months = Field[int]()
    wanted_until = Field[str]()


KINDS = ("deferral", "instalment")
REASONS = ("job", "illness", "other")


async def _contract(t: Turn):
    return await linked_contract(t, FacilitiesData.of(t).contract)


def _clear(t: Turn) -> None:
    FacilitiesData.of(t).clear()


@facilities.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    # A month count or a date said when asking (kept across linking) preselects the option;
    # the summary shows it back before anything is filed.
    wanted_months, wanted_until = t.use_given("months"), t.use_given("date")
    wanted_contract, wanted_service = t.use_given("contract"), t.use_given("service")
    _clear(t)
    if wanted_months:
        FacilitiesData.of(t).wanted_months = int(wanted_months)
    elif wanted_until:
        FacilitiesData.of(t).wanted_until = wanted_until.isoformat()
    policy = t.profile.instalments
    eligible = []
    for c in await t.tx.linked_contracts(t.channel, t.user_id):
        arrears = arrears_of(await t.tx.bills(c.contract, unpaid_only=True))
        if arrears.total >= policy.min_arrears:
            eligible.append((c, arrears))
    if not eligible:
        t.say("facilities.no_arrears", minimum=t.tr.money(policy.min_arrears))
        return MENU_MAIN
    eligible = (
        [e for e in eligible if e[0].contract == wanted_contract]
        or [e for e in eligible if e[0].service == wanted_service]
        or eligible
    )
    if len(eligible) == 1:
        FacilitiesData.of(t).contract = eligible[0][0].contract
        return FACILITIES_PENDING_CHECK
    t.ask(
        t.tr("facilities.which_contract"),
        [
            contract_button(
                t, c, "facilities.contract_button", contract=contract_label(t, c), amount=t.tr.money(a.total)
            )
            for c, a in eligible
        ]
        + [t.button("cmd:cancel", "common.cancel")],
    )
    return None


@facilities.handle("start")
async def on_contract(t: Turn) -> str | None:
    return await pick_contract(
        t, "facilities", FacilitiesData.of(t), FACILITIES_PENDING_CHECK, "facilities.pick_contract"
    )


@facilities.prompt("pending_check")
async def pending_check(t: Turn) -> str | None:
    contract = await _contract(t)
    pending = await t.tx.requests(status="pending", contract=contract.contract, kinds=KINDS)
    if not pending:
        return FACILITIES_OPTION
    FacilitiesData.of(t).replaces = pending[-1].reference
    t.ask(
        t.tr(
            "facilities.replace_question",
            reference=t.tr.ltr(pending[-1].reference),
            date=t.tr.date(pending[-1].created_at.date()),
        ),
        t.yes_no(),
    )
    return None


@facilities.handle("pending_check")
async def on_pending(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "yes":
        return FACILITIES_OPTION
    if picked == "no":
        t.say("facilities.kept", reference=t.tr.ltr(FacilitiesData.of(t).replaces))
        _clear(t)
        return MENU_MAIN
    t.say("common.answer_yes_no")
    return AGAIN


async def _arrears(t: Turn):
    contract = await _contract(t)
    return contract, arrears_of(await t.tx.bills(contract.contract, unpaid_only=True))


@facilities.prompt("option")
async def ask_option(t: Turn) -> str | None:
    contract, arrears = await _arrears(t)
    allowed = t.profile.instalments.months_for(arrears.total)
    wanted = take(FacilitiesData.of(t), FacilitiesData.wanted_months)
    if wanted in allowed:
        d = FacilitiesData.of(t)
        d.kind, d.months = "instalment", wanted
        return FACILITIES_REASON
    until = take(FacilitiesData.of(t), FacilitiesData.wanted_until)
    latest = max_deferral(t.profile.instalments, t.today)
    if until and t.today < date.fromisoformat(until) <= latest:
        d = FacilitiesData.of(t)
        d.kind, d.until = "deferral", until
        return FACILITIES_REASON
    header = t.tr.n(
        "facilities.arrears", arrears.count, contract=contract_label(t, contract), amount=t.tr.money(arrears.total)
    )
    if wanted:
        header += "\n" + t.tr("facilities.months_not_allowed", months=t.tr.n("common.months", wanted))
    elif until and date.fromisoformat(until) > latest:
        header += "\n" + t.tr(
            "facilities.date_too_late",
            latest=t.tr.date(latest),
            days=t.tr.n("common.days", t.profile.instalments.max_deferral_days),
        )
    buttons = [t.button("defer", "facilities.opt_defer", date=t.tr.date(max_deferral(t.profile.instalments, t.today)))]
    buttons += [
        t.tag(
            t.button(
                f"m{m}",
                "facilities.opt_months",
                months=t.tr.n("common.months", m),
                amount=t.tr.money(arrears.total // m),
            ),
            months=m,
        )
        for m in allowed
    ]
    t.ask(header + "\n" + t.tr("facilities.ask_option"), [*buttons, t.button("cmd:cancel", "common.cancel")])
    return None


@facilities.handle("option")
async def on_option(t: Turn) -> str | None:
    _, arrears = await _arrears(t)
    allowed = t.profile.instalments.months_for(arrears.total)
    picked = t.choice()
    if picked is None and t.text:
        months = parse_months(t.text)
        if months in allowed:
            picked = f"m{months}"
        elif months:
            t.say("facilities.months_not_allowed", months=t.tr.n("common.months", months))
            return AGAIN
    if picked == "cmd:cancel":
        return MENU_MAIN
    if picked == "defer":
        FacilitiesData.of(t).kind = "deferral"
        return FACILITIES_DATE
    if picked and picked.startswith("m") and picked[1:].isdigit() and int(picked[1:]) in allowed:
        d = FacilitiesData.of(t)
        d.kind, d.months = "instalment", int(picked[1:])
        return FACILITIES_REASON
    t.say("facilities.pick_option")
    return AGAIN


@facilities.prompt("date")
async def ask_date(t: Turn) -> str | None:
    latest = max_deferral(t.profile.instalments, t.today)
    options = sorted({min(t.today + timedelta(days=15), latest), min(t.today + timedelta(days=30), latest), latest})
    FacilitiesData.of(t).date_options = [d.isoformat() for d in options]
    t.ask(
        t.tr("facilities.ask_date", latest=t.tr.date(latest)),
        [
            t.tag(t.button(f"d{i}", "facilities.date_button", date=t.tr.date(d)), date=d.isoformat())
            for i, d in enumerate(options)
        ],
    )
    return None


@facilities.handle("date")
async def on_date(t: Turn) -> str | None:
    picked = t.choice()
    options = t.data.get("f_date_options", [])
    day: date | None
    if picked and picked.startswith("d") and picked[1:].isdigit() and int(picked[1:]) < len(options):
        day = date.fromisoformat(options[int(picked[1:])])
    else:
        day = parse_date(t.text, t.lang, today=t.today, prefer="future") if t.text else None
    latest = max_deferral(t.profile.instalments, t.today)
    if day is None:
        t.say("facilities.date_not_understood")
        return AGAIN
    if day <= t.today:
        t.say("facilities.date_past")
        return AGAIN
    if day > latest:
        t.say(
            "facilities.date_too_late",
            latest=t.tr.date(latest),
            days=t.tr.n("common.days", t.profile.instalments.max_deferral_days),
        )
        return AGAIN
    FacilitiesData.of(t).until = day.isoformat()
    return FACILITIES_REASON


@facilities.prompt("reason")
async def ask_reason(t: Turn) -> str | None:
    t.ask(t.tr("facilities.ask_reason"), [t.button(f"r:{r}", f"facilities.reason_{r}") for r in REASONS])
    return None


@facilities.handle("reason", expects="text")
async def on_reason(t: Turn) -> str | None:
    picked = t.choice()
    if picked in ("r:job", "r:illness"):
        FacilitiesData.of(t).reason = picked[2:]
        return FACILITIES_SUMMARY
    if picked == "r:other":
        FacilitiesData.of(t).reason = "other"
        return FACILITIES_REASON_TEXT
    if t.text and len(t.text) >= 3 and parse_yes_no(t.text) is None:  # "wakha", "ok", "non" give no reason
        d = FacilitiesData.of(t)
        d.reason, d.reason_text = "other", t.text[:500]
        return FACILITIES_SUMMARY
    t.say("facilities.pick_reason")
    return AGAIN


@facilities.prompt("reason_text")
async def ask_reason_text(t: Turn) -> str | None:
    t.ask(t.tr("facilities.ask_reason_text"), [t.button("skip", "facilities.skip_reason")])
    return None


@facilities.handle("reason_text", expects="text")
async def on_reason_text(t: Turn) -> str | None:
    if t.choice() == "skip":
        return FACILITIES_SUMMARY
    if not t.text:
        t.say("facilities.reason_text_expected")
        return AGAIN
    FacilitiesData.of(t).reason_text = t.text[:500]
    return FACILITIES_SUMMARY


def _plan(t: Turn) -> date | int | None:
    """The option chosen: a deferral's date, an instalment plan's month count, or None (not
    chosen yet)."""
    d = FacilitiesData.of(t)
    if d.kind == "deferral" and d.until:
        return date.fromisoformat(d.until)
    if d.kind == "instalment" and d.months is not None:
        return d.months
    return None


def _schedule(t: Turn, total: int, months: int):
    return split_instalments(total, months, first_due_date(t.today))


@facilities.prompt("summary")
async def summary(t: Turn) -> str | None:
    contract, arrears = await _arrears(t)
    lines = [
        t.tr("facilities.summary_contract", contract=contract_label(t, contract)),
        t.tr.n("facilities.summary_bills", arrears.count, amount=t.tr.money(arrears.total)),
    ]
    plan = _plan(t)
    if plan is None:
        return FACILITIES_START  # (an option is chosen before the summary: a session from elsewhere)
    if isinstance(plan, date):
        lines.append(t.tr("facilities.summary_deferral", date=t.tr.date(plan)))
    else:
        usual = usual_bill(await t.tx.bills(contract.contract))
        lines.append(t.tr("facilities.summary_schedule", months=t.tr.n("common.months", plan)))
        for line in _schedule(t, arrears.total, plan):
            text = t.tr(
                "facilities.schedule_line",
                seq=t.tr.number(line.seq),
                date=t.tr.date(line.due_date),
                amount=t.tr.money(line.amount),
            )
            if usual:
                text += t.tr(
                    "facilities.schedule_with_bill", bill=t.tr.money(usual), total=t.tr.money(line.amount + usual)
                )
            lines.append(text)
    reason = t.tr(f"facilities.reason_{FacilitiesData.of(t).reason}")
    if FacilitiesData.of(t).reason_text:
        reason += f" — {FacilitiesData.of(t).reason_text}"
    lines.append(t.tr("facilities.summary_reason", reason=reason))
    if FacilitiesData.of(t).replaces:
        lines.append(t.tr("facilities.summary_replaces", reference=t.tr.ltr(FacilitiesData.of(t).replaces)))
    t.ask(
        t.tr("facilities.summary", lines="\n".join(lines)),
        [t.button("yes", "facilities.confirm"), t.button("cmd:cancel", "common.cancel")],
    )
    return None


@facilities.handle("summary", records=True)
async def on_summary(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel" or picked == "no":
        _clear(t)
        t.say("cancel.done")
        return MENU_MAIN
    if picked != "yes":
        t.say("facilities.confirm_or_cancel")
        return AGAIN
    contract, arrears = await _arrears(t)
    plan = _plan(t)
    if plan is None:
        return FACILITIES_START
    replaced = FacilitiesData.of(t).replaces
    if replaced:
        await t.tx.set_request_status(replaced, "replaced", expected="pending", now=t.now)
    await file_request(
        t,
        "deferral" if isinstance(plan, date) else "instalment",
        contract=contract.contract,
        replaces=replaced,
        recorded="facilities.recorded",
        amount=arrears.total,
        months=None if isinstance(plan, date) else plan,
        defer_until=plan if isinstance(plan, date) else None,
        reason=FacilitiesData.of(t).reason,
        reason_text=FacilitiesData.of(t).reason_text,
        details={"bills": [b.bill_number for b in arrears.bills], "replaces": replaced},
        lines=[] if isinstance(plan, date) else _schedule(t, arrears.total, plan),
    )
    _clear(t)
    return MENU_MAIN
