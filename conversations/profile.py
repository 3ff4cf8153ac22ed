"""Operator profile: everything that differs between distributors, loaded from TOML.

Tariffs, VAT, fees, contacts and policies live here and never in code. Unit prices are
`Decimal` (DH per kWh or m³ with up to 4 decimals, as published); every amount that results
is rounded to integer centimes line by line, the way a bill prints it.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from storage.values import ValueProblem, parse_amount

Service = Literal["electricity", "water"]


@lru_cache(maxsize=64)
def _local(instant: datetime, timezone: str) -> datetime:
    # A turn asks for its instant's local time and day several times (the understanding's
    # dates, the reading window, the references' year): converted once.
    return instant.astimezone(ZoneInfo(timezone))


def _regular_expression(v: str) -> str:
    """A profile's pattern, refused with the reason if it does not compile."""
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Localized(_Model):
    ar: str
    fr: str

    def get(self, lang: str) -> str:
        return self.ar if lang == "ar" else self.fr


class Contact(_Model):
    phones: list[str] = Field(min_length=1)
    email: str | None = None
    website: str | None = None
    hours: Localized | None = None


class PaymentChannel(_Model):
    key: str
    name: Localized
    how: Localized


class Band(_Model):
    """A consumption band: units from `above` (exclusive) up to `upto` (inclusive, None = no end)."""

    upto: int | None = None
    price: Decimal = Field(gt=0)
    label: Localized | None = None


def _rates(v: dict[int, Decimal]) -> dict[int, Decimal]:
    for year, rate in v.items():
        if not 1900 <= year <= 2200 or not 0 <= rate <= 100:
            raise ValueError(f"vat_by_year: {year} = {rate}: a year and a percentage between 0 and 100")
    return v


def _rate_at(default: Decimal, by_year: dict[int, Decimal], day: date) -> Decimal:
    """The rate of the latest year listed up to `day`'s year; before the first, `default`."""
    years = [y for y in by_year if y <= day.year]
    return by_year[max(years)] if years else default


class Fee(_Model):
    key: str
    name: Localized
    monthly: Decimal = Field(ge=0)  # DH excluding VAT, per month of the billed period
    vat_percent: Decimal = Field(ge=0, le=100)
    # The rate by year where it changed (Finance Law 2024: meter rental 11/15/20 % in 2024/25/26);
    # a bill takes its period's last day's year. Unlisted years before the first: vat_percent.
    vat_by_year: dict[int, Decimal] = Field(default_factory=dict)

    _years = field_validator("vat_by_year")(_rates)

    def vat_at(self, day: date) -> Decimal:
        return _rate_at(self.vat_percent, self.vat_by_year, day)


class Levy(_Model):
    """A tax or levy the operator bills besides VAT (the bill's "Taxes" line holds more than VAT):
    a monthly amount and/or an amount per unit, neither in the HT total nor subject to VAT."""

    key: str
    name: Localized
    monthly: Decimal = Field(default=Decimal(0), ge=0)  # DH per month of the billed period
    per_unit: Decimal = Field(default=Decimal(0), ge=0)  # DH per kWh or m³


class Tariff(_Model):
    """How one tariff code is priced.

    rule "progressive": every unit priced in the band it falls in (water, with its social band).
    rule "progressive_then_selective": as progressive while the month is at or under
    `selective_above` units; above it the *whole* month is priced at the band it falls in
    (ONEE residential electricity: progressive to 150 kWh, selective above).
    Bands are monthly: a longer period is prorated per month before pricing.
    """

    code: str
    service: Service
    name: Localized
    unit: Literal["kWh", "m3"]
    rule: Literal["progressive", "progressive_then_selective"]
    selective_above: int | None = None
    progressive_bands: list[Band] = Field(min_length=1)
    selective_bands: list[Band] = Field(default_factory=list)
    vat_percent: Decimal = Field(ge=0, le=100)
    vat_by_year: dict[int, Decimal] = Field(default_factory=dict)  # as Fee.vat_by_year
    fees: list[Fee] = Field(default_factory=list)
    levies: list[Levy] = Field(default_factory=list)
    # Whether the grid's prices are before tax (None, the default: VAT is added on top) or are
    # tax-inclusive prices kept fixed: the grid price plus VAT at this rate is what the customer
    # pays per unit whatever today's rate, and the HT price shrinks as VAT rises. 0: the grid is
    # published tax-inclusive. 14: prices set under 14 % VAT whose TTC stayed put when VAT rose
    # ("à titre transitoire", Lydec's notice): adding 20 % to them overstates by 1.20/1.14 - 1.
    fixed_ttc_vat_percent: Decimal | None = Field(default=None, ge=0, le=100)

    _years = field_validator("vat_by_year")(_rates)

    def vat_at(self, day: date) -> Decimal:
        return _rate_at(self.vat_percent, self.vat_by_year, day)

    @model_validator(mode="after")
    def _check_bands(self) -> Tariff:
        def check(bands: list[Band], what: str, *, open_end: bool) -> None:
            bounds = [b.upto for b in bands]
            finite = [b for b in bounds if b is not None]
            if finite != sorted(set(finite)) or (None in bounds and bounds[-1] is not None):
                raise ValueError(f"{what}: bands must be in increasing order, the open one last")
            if open_end and bounds[-1] is not None:
                raise ValueError(f"{what}: the last band must have no upper bound (upto omitted)")

        if self.rule == "progressive":
            check(self.progressive_bands, "progressive_bands", open_end=True)
            if self.selective_bands or self.selective_above is not None:
                raise ValueError("a progressive tariff has no selective bands")
        else:
            if self.selective_above is None or not self.selective_bands:
                raise ValueError("progressive_then_selective needs selective_above and selective_bands")
            check(self.progressive_bands, "progressive_bands", open_end=False)
            if self.progressive_bands[-1].upto != self.selective_above:
                raise ValueError("the last progressive band must end at selective_above")
            check(self.selective_bands, "selective_bands", open_end=True)
            if self.selective_bands[0].upto is not None and self.selective_bands[0].upto <= self.selective_above:
                raise ValueError("selective bands start above selective_above")
        return self


class ReadingWindow(_Model):
    """Days of the month when self-readings are expected (inclusive)."""

    first_day: int = Field(ge=1, le=31)
    last_day: int = Field(ge=1, le=31)
    accept_outside: bool = True


class InstalmentTier(_Model):
    min_arrears: int  # centimes
    months: list[int] = Field(min_length=1)

    @field_validator("min_arrears", mode="before")
    @classmethod
    def _money(cls, v: object) -> int:
        return _centimes(v)


class InstalmentPolicy(_Model):
    min_arrears: int
    tiers: list[InstalmentTier] = Field(min_length=1)
    max_deferral_days: int = Field(ge=1)

    @field_validator("min_arrears", mode="before")
    @classmethod
    def _money(cls, v: object) -> int:
        return _centimes(v)

    def months_for(self, arrears_centimes: int) -> list[int]:
        """Month counts offered for these arrears: the highest tier reached."""
        if arrears_centimes < self.min_arrears:
            return []
        chosen: list[int] = []
        for tier in sorted(self.tiers, key=lambda t: t.min_arrears):
            if arrears_centimes >= tier.min_arrears:
                chosen = tier.months
        return sorted(chosen)


class LearningPolicy(_Model):
    """What the bot keeps of the messages it did not understand, for the operator to label."""

    # Days a masked message is kept (law 09-08: no longer than the purpose needs); 0 keeps none.
    keep_days: int = Field(default=30, ge=0, le=365)
    # A message understood with less confidence than this is kept too (a guess worth checking).
    below_confidence: float = Field(default=0.5, ge=0.0, le=1.0)


class LinkingPolicy(_Model):
    """How often a contract's proof may be failed, from every chat and channel together."""

    # Failed proofs (wrong bill amount, wrong phone) on one contract number within `window_hours`
    # before proof by amount is refused and the back office alerted; a vouched phone still links.
    max_failed_proofs: int = Field(default=5, ge=1, le=100)
    window_hours: int = Field(default=24, ge=1, le=24 * 7)


class RetentionPolicy(_Model):
    """How long message contents are kept once answered (law 09-08: no longer than the purpose
    needs). Unanswered inbox rows are never pruned; the key of a handled message (channel,
    message id, time) outlives its contents so a redelivery is still recognised."""

    # A turn's kept replies (they carry amounts, references) are emptied this many days after it.
    replies_days: int = Field(default=30, ge=0, le=3650)
    # Answered inbox rows (the channel's JSON, as received) are deleted this many days after arrival.
    inbox_days: int = Field(default=7, ge=0, le=3650)
    # The key itself is deleted after this: WhatsApp redelivers for up to 7 days, Telegram 1.
    keys_days: int = Field(default=90, ge=8, le=3650)
    # A meter photo kept with a reading is deleted this many days after the reading was sent,
    # unless the reading still awaits review (the evidence of a disputed reading is kept until an
    # agent has checked it). A photo no reading refers to (the customer cancelled) goes after a day.
    photos_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _keys_last(self) -> RetentionPolicy:
        if self.keys_days < max(self.replies_days, self.inbox_days):
            raise ValueError("keys_days must be at least replies_days and inbox_days (the key outlives the contents)")
        return self


class HandoffPolicy(_Model):
    """A chat handed to a human (issue 20, conversations/handoff.py)."""

    # A taken chat whose agent has written nothing for this long returns to the bot (the
    # customer is told): a forgotten tab must not leave a customer unanswered.
    agent_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Lines kept per chat (customer, bot, agent; masked) for the agent who takes it.
    chat_log_lines: int = Field(default=40, ge=1, le=500)


class PrepaidAdvancePolicy(_Model):
    kwh: int = Field(gt=0)
    low_income_only: bool = True
    max_per_year: int = Field(ge=1)
    decision_hours: int | None = Field(default=None, ge=1)  # a request is answered within this
    delivery: Localized | None = None  # how a granted advance reaches the meter


class WhatsAppTemplates(_Model):
    decision: str | None = None  # approved template name used outside the 24-hour window
    language_ar: str = "ar"
    language_fr: str = "fr"


class ReminderTemplates(_Model):
    """Approved WhatsApp utility templates for reminders sent outside the 24-hour window, one name
    per kind (the same name in each language, Meta's way; codes from [whatsapp_templates]).
    Body parameters, in order: reading (contract, meter, last day of the window), due (bill
    reference, amount, due date), instalment (reference, amount, due date, left after it),
    consumption (contract, percentage above the usual), notice (the notice's text)."""

    reading: str | None = None
    due: str | None = None
    instalment: str | None = None
    consumption: str | None = None
    notice: str | None = None


class RemindersPolicy(_Model):
    """When and how the bot writes first (issue 22), in the operator's time zone."""

    time: str = "10:00"  # the day's reminders are queued at this local time
    quiet_start: str = "21:00"  # nothing proactive is sent from here…
    quiet_end: str = "08:30"  # …to here (local); what falls inside waits for the end
    days_before_due: int = Field(default=3, ge=0, le=30)  # bills and instalments
    # A new real reading whose daily use is this many times the usual one (earlier periods) is told.
    consumption_above: float = Field(default=1.5, ge=1.0)
    rate: float = Field(default=20.0, gt=0)  # reminders/s per channel: the rest of the channel's rate is for replies
    templates: ReminderTemplates = ReminderTemplates()

    @field_validator("time", "quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"{v!r}: write a local time as HH:MM")
        return v


class City(_Model):
    """A city as customers name it: `name` (canonical, French), `ar` (shown in Arabic replies) and
    the spellings customers type. Several entries with one name are merged (an operator extends
    the table by adding aliases). `everyday` aliases are also common words ("safi" is "enough" in
    Darija): they name the city only where a city is expected or after "f", "à", "في"."""

    name: str = Field(min_length=1)
    ar: str | None = None
    aliases: list[str] = Field(default_factory=list)
    everyday: list[str] = Field(default_factory=list)
    # A town with no agency of its own: the city (another entry's `name`) whose agencies serve
    # it, shown when a customer asks for an agency there ("f sidi slimane" → Kénitra's).
    near: str | None = None


class Operator(_Model):
    code: str
    name: Localized
    short_name: Localized
    # "of the operator", the whole phrase as each language writes it: French elides and takes an
    # article ("de l'ONEE", "de la Lydec", "d'Amendis"), which no rule on the name can guess.
    of_short_name: Localized | None = None

    def of(self, lang: str) -> str:
        if self.of_short_name is not None:
            return self.of_short_name.get(lang)
        return f"ديال {self.short_name.ar}" if lang == "ar" else f"de {self.short_name.fr}"


class LegacyOperator(_Model):
    """A distributor this operator replaced (law 83-21: Lydec, Redal, Amendis, ONEE, the régies),
    whose references customers still hold on old bills (`addad import legacy`)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")  # legacy.csv's legacy_operator, e.g. "lydec"
    name: Localized
    replaced_on: date | None = None
    # The reference's digits, once spaces, dashes and dots are dropped (Lydec: "0193 017 183").
    reference_pattern: str = r"^[0-9]{6,12}$"

    @field_validator("reference_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _regular_expression(v)

    def reference_ok(self, digits: str) -> bool:
        return re.fullmatch(self.reference_pattern, digits) is not None


class ConnectionPolicy(_Model):
    """Connection and subscription requests (issue 24), still done at the agencies: the
    documents to bring for each, and whether an appointment or a callback can be asked for."""

    connection: list[Localized] = Field(min_length=1)  # a new meter (branchement)
    transfer: list[Localized] = Field(min_length=1)  # a subscription taken over (mutation)
    note: Localized | None = None  # e.g. how long it takes, what is paid at the agency


class Profile(_Model):
    operator: Operator
    contact: Contact
    payment_channels: list[PaymentChannel] = Field(min_length=1)
    contract_pattern: str
    reading_window: ReadingWindow
    tariffs: list[Tariff] = Field(min_length=1)
    instalments: InstalmentPolicy
    prepaid_advance: PrepaidAdvancePolicy
    whatsapp_templates: WhatsAppTemplates = WhatsAppTemplates()
    learning: LearningPolicy = LearningPolicy()
    linking: LinkingPolicy = LinkingPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    reminders: RemindersPolicy = RemindersPolicy()
    handoff: HandoffPolicy = HandoffPolicy()
    cities: list[City] = Field(default_factory=list)
    # The distributors this one replaced, and what to tell a customer who asks whether the old
    # one is still theirs ("wach lydec mazal?"); an operator that replaced none lists none.
    legacy_operators: list[LegacyOperator] = Field(default_factory=list)
    transition: Localized | None = None
    connections: ConnectionPolicy | None = None
    # The operator's time zone (IANA name; the tzdata package provides it where the system has
    # no zone files). Timestamps are stored in UTC; every day and time seen is this zone's.
    timezone: str = "Africa/Casablanca"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f'unknown time zone {v!r} (an IANA name such as "Africa/Casablanca")') from None
        return v

    # ---- local time: the one place an instant becomes the operator's day and hour
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches its instances

    def local(self, instant: datetime) -> datetime:
        """An aware instant as the operator's wall-clock time."""
        if instant.tzinfo is None:
            raise ValueError("naive datetime")
        return _local(instant, self.timezone)

    def today(self, instant: datetime) -> date:
        """The operator's calendar day at this instant (23:30 UTC on 30 November is already
        1 December in Casablanca)."""
        if instant.tzinfo is None:
            raise ValueError("naive datetime")
        return _local(instant, self.timezone).date()

    @field_validator("contract_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _regular_expression(v)

    @field_validator("contact")
    @classmethod
    def _phones(cls, v: Contact) -> Contact:
        for p in v.phones:
            if not re.fullmatch(r"[0-9 +]{6,20}", p):
                raise ValueError(f"contact phone {p!r} is not digits and spaces")
        return v

    @model_validator(mode="after")
    def _unique_codes(self) -> Profile:
        codes = [t.code for t in self.tariffs]
        if len(codes) != len(set(codes)):
            raise ValueError("tariff codes must be unique")
        from .places import alias_conflicts  # one spelling must not name two cities

        clash = alias_conflicts(self.cities)
        if clash:
            raise ValueError(f"cities: {clash}")
        named = {c.name for c in self.cities}
        for c in self.cities:
            if c.near is not None and (c.near not in named or c.near == c.name):
                raise ValueError(f"cities: {c.name!r} is near {c.near!r}, which is not another city of the list")
        legacy = [o.code for o in self.legacy_operators]
        if len(legacy) != len(set(legacy)):
            raise ValueError("legacy_operators: codes must be unique")
        if self.legacy_operators and self.transition is None:
            raise ValueError("legacy_operators: a transition text is needed to explain them to customers")
        return self

    def legacy_operator(self, code: str) -> LegacyOperator | None:
        return next((o for o in self.legacy_operators if o.code == code), None)

    def tariff(self, code: str) -> Tariff:
        for t in self.tariffs:
            if t.code == code:
                return t
        raise KeyError(code)

    @property
    def tariff_codes(self) -> frozenset[str]:
        return frozenset(t.code for t in self.tariffs)

    def contract_number_ok(self, number: str) -> bool:
        return re.fullmatch(self.contract_pattern, number) is not None


class ProfileError(Exception):
    """The operator profile cannot be used; the message says which file and which field."""


def _centimes(v: object) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        raise ValueError('write money as a string of dirhams, e.g. "500.00"')
    try:
        return parse_amount(str(v))
    except ValueProblem as exc:
        raise ValueError(str(exc)) from None


def default_profile_path() -> Path:
    return Path(str(resources.files("profiles").joinpath("onee.toml")))


def bundled_profiles() -> list[str]:
    """The names of the profiles shipped in profiles/ (`onee`, `srm-cs`)."""
    return sorted(e.name[:-5] for e in resources.files("profiles").iterdir() if e.name.endswith(".toml"))


def profile_path(name_or_path: str | Path | None) -> Path:
    """ADDAD_OPERATOR: a bundled profile's name (`srm-cs`) or a TOML file's path; None: ONEE."""
    if not name_or_path:
        return default_profile_path()
    text = str(name_or_path)
    if re.fullmatch(r"[a-z][a-z0-9-]*", text) and not Path(text).exists():
        if text not in bundled_profiles():
            raise ProfileError(f"{text}: no such bundled operator profile (bundled: {', '.join(bundled_profiles())})")
        return Path(str(resources.files("profiles").joinpath(f"{text}.toml")))
    return Path(text)


def load_profile(path: str | Path | None = None) -> Profile:
    path = profile_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: operator profile not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProfileError(f"{path}: {where}: {first['msg']}{more}") from None
