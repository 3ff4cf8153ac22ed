"""My consumption: the 13-month chart of one meter. Diagram: docs/flows/usage.md

"ma consommation" / "شحال استهلكت" / the 📊 button after a reading or a bill → the contract
(asked when the chat holds several, as elsewhere) → the chart (an image reply, drawn after the
turn's commit: conversations/chart.py) and a short text: the average, this month against the
same month last year, the tariff's line (150 kWh) or social band (6 m³), estimated months.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from babel.dates import format_date

from storage import Contract

from .. import chart
from ..events import Button, Image, Reply
from ..flow import ContractData, Field, Flow, Turn, ref, take
from ..i18n import _BABEL_LOCALE
from ..profile import Tariff
from .common import contract_button, contract_label, linked_contract, pick_contract

usage = Flow("usage", states=("start", "show"), intents=("consumption",), request=True)
USAGE_START = usage.state("start")
USAGE_SHOW = usage.state("show")

MENU_MAIN = ref("menu.main")
GO = "go:usage:"  # + a contract number: the chart button after a reading or a bill (journeys/menu.py)


class UsageData(ContractData):
    key = "usage"
    wanted = Field[str]()  # the contract a button named (checked against the chat's links on use)


def button(t: Turn, contract: Contract) -> Button:
    """The "📊 My consumption" button for this contract (shown after a reading or a bill)."""
    return t.button(GO + contract.contract, "usage.button")


def offer(t: Turn, contract: Contract) -> None:
    """The chart button under the last reply (a reading recorded, a bill explained): pressed
    later from the menu; it leaves the choices of the question that follows as they are."""
    if t.replies and not t.replies[-1].buttons and not contract.is_prepaid:
        t.replies[-1] = replace(t.replies[-1], buttons=(button(t, contract),))


async def for_contract(t: Turn, number: str) -> str | None:
    """The button's press, at the menu: that contract's chart."""
    UsageData.of(t).clear()
    UsageData.of(t).wanted = number
    return USAGE_START


@usage.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    wanted = take(UsageData.of(t), UsageData.wanted) or t.use_given("contract")
    service = t.use_given("service")
    UsageData.of(t).clear()
    contracts = await t.tx.linked_contracts(t.channel, t.user_id)
    contracts = (
        [c for c in contracts if c.contract == wanted] or [c for c in contracts if c.service == service] or contracts
    )
    if len(contracts) == 1:
        UsageData.of(t).contract = contracts[0].contract
        return USAGE_SHOW
    t.ask(
        t.tr("usage.which_contract"),
        [contract_button(t, c, "usage.contract_button", contract=contract_label(t, c)) for c in contracts]
        + [t.button("cmd:cancel", "common.cancel")],
    )
    return None


@usage.handle("start")
async def on_contract(t: Turn) -> str | None:
    return await pick_contract(t, "usage", UsageData.of(t), USAGE_SHOW, "usage.pick_contract")


@usage.prompt("show")
async def show(t: Turn) -> str | None:
    contract = await linked_contract(t, UsageData.of(t).contract)
    UsageData.of(t).clear()
    if contract is None:
        t.say("input.stale_button")
        return MENU_MAIN
    # Two years: the chart shows the last 13 months, the text compares the latest with a year before.
    years = await chart.history(t.tx, contract, t.today, span=chart.MONTHS + 12)
    months = years[-chart.MONTHS :]
    known = [m for m in months if m.units is not None]
    label = contract_label(t, contract)
    if not known:
        t.say("usage.no_history", contract=label)
        return MENU_MAIN
    unit = t.tr(f"unit.{contract.service}")
    tariff = _tariff(t, contract)
    line = band = None
    if tariff is not None and tariff.rule == "progressive_then_selective" and tariff.selective_above:
        limit = tariff.selective_above
        line = (limit, t.tr("usage.line", limit=limit, unit=unit))
    elif tariff is not None and tariff.progressive_bands[0].upto and tariff.progressive_bands[0].label:
        first = tariff.progressive_bands[0]
        assert first.upto is not None and first.label is not None
        band = (first.upto, t.tr("usage.band", name=first.label.get(t.lang), limit=first.upto, unit=unit))
    caption = t.tr(
        "usage.caption",
        contract=label,
        first=t.tr.month(months[0].first),
        last=t.tr.month(months[-1].first),
    )
    data = chart.spec(
        lang=t.lang,
        title=t.tr("usage.title", contract=contract.contract, unit=unit),
        unit=unit,
        months=[(_tick(t.lang, m.first, i == 0), m) for i, m in enumerate(months)],
        legend={k: t.tr(f"usage.legend_{k}") for k in ("read", "estimated", "customer")},
        line=line,
        band=band,
    )
    t.replies.append(Reply(caption, image=Image(data, caption)))
    t.say_text(summary(t, months, years, unit, line, band))
    return MENU_MAIN


def _tariff(t: Turn, contract: Contract) -> Tariff | None:
    try:
        return t.profile.tariff(contract.tariff)
    except KeyError:
        return None


def _tick(lang: str, first: date, leading: bool) -> str:
    """A bar's label: the month, and its year under January and the first bar."""
    # Abbreviated, so 13 fit side by side ("sept.", "oct."); fr_MA's "jui." would be June or July.
    month = format_date(first, "LLL", locale=_BABEL_LOCALE[lang]).replace("jui.", "juin")
    return f"{month}\n{first.year}" if leading or first.month == 1 else month


def summary(
    t: Turn,
    months: list[chart.Month],
    years: list[chart.Month],
    unit: str,
    line: tuple[int, str] | None,
    band: tuple[int, str] | None,
) -> str:
    """The chart in words (`months`, the 13 shown; `years`, two years to compare with): average,
    latest month against a year before, the bands, estimates."""
    known = [m for m in months if m.units is not None]
    units = [m.units for m in known if m.units is not None]
    average = round(sum(units) / len(units))
    lines = [t.tr.n("usage.average", len(units), units=t.tr.number(average), unit=unit)]
    latest = known[-1]
    assert latest.units is not None
    year_before = next((m for m in years if m.first == latest.first.replace(year=latest.first.year - 1)), None)
    common = {
        "month": t.tr.month(latest.first),
        "units": t.tr.number(latest.units),
        "unit": unit,
        "last_year": t.tr.month(latest.first.replace(year=latest.first.year - 1)),
    }
    if year_before is None or year_before.units is None:
        lines.append(t.tr("usage.compare_none", **common))
    elif year_before.units == latest.units or year_before.units == 0:
        lines.append(t.tr("usage.compare_same", **common, before=t.tr.number(year_before.units)))
    else:
        change = round(100 * (latest.units - year_before.units) / year_before.units)
        lines.append(
            t.tr(
                "usage.compare_up" if change > 0 else "usage.compare_down",
                **common,
                before=t.tr.number(year_before.units),
                percent=t.tr.number(abs(change)),
            )
        )
    if line is not None:
        over = sum(1 for u in units if u > line[0])
        lines.append(
            t.tr.n("usage.over_line", over, limit=t.tr.number(line[0]), unit=unit)
            if over
            else t.tr("usage.never_over", limit=t.tr.number(line[0]), unit=unit)
        )
    if band is not None:
        within = sum(1 for u in units if u <= band[0])
        lines.append(t.tr.n("usage.in_band", within, name=band[1], total=t.tr.number(len(units))))
    estimated = sum(1 for m in known if m.kind == "estimated")
    if estimated:
        lines.append(t.tr.n("usage.estimated", estimated))
    if latest.kind == "customer":
        lines.append(t.tr("usage.this_reading"))
    return "\n".join(lines)
