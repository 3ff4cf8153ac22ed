"""Journeys as state machines: each state has a prompt (what the bot says on arriving) and a
handler (what it does with the customer's next message, returning the next state).

    link = Flow("link", states=("contract", "proof"))
    LINK_PROOF = link.state("proof")                         # a declared state: checked here
    MENU_MAIN = ref("menu.main")                             # another flow's: checked at load

    @link.prompt("contract")
    async def ask_contract(t: Turn) -> str | None: ...      # may redirect by returning a state

    @link.handle("contract")
    async def got_contract(t: Turn) -> str | None: ...      # LINK_PROOF, AGAIN, or None

A handler returns the next state (a `State` constant, never a bare string: a misspelt state
then fails when the module loads, not mid-conversation), AGAIN (the current prompt runs
again, after whatever the handler said), or None (stay; the handler said everything).
A journey's own data is a `JourneyData` class of typed `Field`s (`ReadingData.of(t).index`),
kept in the session's JSON under the journey's name and saved with the state in the turn's
transaction; the engine's own keys (`_choices`, `_given`, `_paused`...) sit beside it in `t.data`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar, Generic, NewType, Self, TypeVar, overload

from rapidfuzz import fuzz, process

from storage import SessionRecord, Tx

from .events import Button, Inbound, Reply
from .i18n import Translator, translator
from .media import KeptPhoto
from .profile import Profile
from .understanding import parse_date, parse_months, parse_no_photo, parse_ordinal, parse_service, parse_yes_no

AGAIN = "__again__"
GIVEN = "_given"
# How sure a reading of the rules must be to take the customer from a question to another
# request (engine._digression), or to count as the request said again (journeys/linking.py).
DIGRESSION_CONFIDENCE = 0.6
GIVEN_ENTITIES = frozenset({"index", "date", "contract", "months", "service", "reference", "city", "until"})
DATE_ENTITIES = frozenset({"date", "until"})
Handler = Callable[["Turn"], Awaitable[str | None]]
Answers = Callable[["Turn"], Awaitable[bool]]


# What a state's handler reads from a typed message, so the engine can tell an answer from a
# request for something else: "choice" (buttons, or a word or date standing for one), "number"
# (an index, a contract number, an amount, a phone: a message with a number in it is an answer),
# "text" (a free answer, such as a reason: a clear request is not taken as the answer unasked).
EXPECTS = ("choice", "number", "text")


@dataclass
class StateDef:
    name: str
    prompt: Handler | None = None
    handle: Handler | None = None
    needs_link: bool = False
    expects: str = "choice"
    answers: Answers | None = None  # true when a global word ("safi") is an answer here
    records: bool = False  # its handler records what the customer confirms (a reading, a request)
    photo: bool = False  # its handler takes a photo: the engine downloads one sent here (conversations/media.py)


# A declared state's full name ("reading.index"), as handlers return it: made only by
# `Flow.state` and `ref`, which check it. A plain `str` at run time (the session stores and
# compares it as before, at no cost), a distinct type for mypy.
State = NewType("State", str)


class UndeclaredState(LookupError):
    """A state named in code that no flow declares (a typo): raised when the module loads."""


REGISTRY: dict[str, StateDef] = {}
FLOWS: dict[str, Flow] = {}
_UNCHECKED: list[str] = []  # refs to flows not loaded yet, checked by check_states()


@dataclass(frozen=True, order=True)
class MenuItem:
    """A flow's line in the main menu."""

    rank: int  # position in the menu
    label: str  # catalog key of the button's label
    payload: str = ""  # the button's payload: "go:<flow>" unless told


class Flow:
    """One journey, declared in one place: its states (handlers and targets may only name
    these), its entry state, the understood intents that start it, its menu item, and whether
    the engine keeps it when the customer leaves it midway."""

    def __init__(
        self,
        name: str,
        states: tuple[str, ...],
        *,
        entry: str | None = None,
        intents: tuple[str, ...] = (),
        menu: MenuItem | None = None,
        pausable: bool = False,
        request: bool = False,
    ) -> None:
        """`entry`: the state `go:<name>` and `intents` lead to (the first state unless told);
        `pausable`: its gathered answers are offered back when left midway; `request`: entering
        it keeps what the starting message said (`Turn.given`) and supersedes a paused run of it."""
        if name in FLOWS:
            raise ValueError(f"flow {name!r} declared twice")
        if not states or len(set(states)) != len(states):
            raise ValueError(f"flow {name!r}: states {states!r} must be distinct and not empty")
        self.name = name
        self.states = {s: State(f"{name}.{s}") for s in states}
        self.entry = self.state(entry or states[0])
        self.intents, self.menu, self.pausable, self.request = intents, menu, pausable, request
        FLOWS[name] = self

    def state(self, state: str) -> State:
        """The declared state `state` of this flow (a short name: "index")."""
        try:
            return self.states[state]
        except KeyError:
            raise UndeclaredState(
                f"flow {self.name!r} declares no state {state!r} ({', '.join(self.states)})"
            ) from None

    def _def(self, state: str) -> StateDef:
        full = self.state(state)
        return REGISTRY.setdefault(full, StateDef(full))

    def prompt(self, state: str, *, needs_link: bool = False) -> Callable[[Handler], Handler]:
        d = self._def(state)

        def register(fn: Handler) -> Handler:
            d.prompt, d.needs_link = fn, d.needs_link or needs_link
            return fn

        return register

    def handle(
        self,
        state: str,
        *,
        expects: str = "choice",
        answers: Answers | None = None,
        records: bool = False,
        photo: bool = False,
    ) -> Callable[[Handler], Handler]:
        """`expects`: what the handler reads (EXPECTS); `answers`: whether a message that is also
        a global word (menu, cancel) is this question's answer instead; `records`: the handler
        records what the customer confirms there (a failed turn there recorded nothing); `photo`:
        the handler takes a photo (`Turn.photo`), the only states where one is downloaded."""
        if expects not in EXPECTS:
            raise ValueError(f"{self.name}.{state}: expects {expects!r} is not one of {EXPECTS}")
        d = self._def(state)

        def register(fn: Handler) -> Handler:
            d.handle, d.expects, d.answers, d.records, d.photo = fn, expects, answers, records, photo
            return fn

        return register


def ref(full: str) -> State:
    """Another flow's state ("menu.main"), checked now if that flow is loaded, else by
    `check_states()` once every journey is (journeys refer to each other in circles)."""
    flow, _, state = full.partition(".")
    if flow in FLOWS:
        return FLOWS[flow].state(state)
    _UNCHECKED.append(full)
    return State(full)


def check_states() -> None:
    """Run when every journey has loaded: every ref names a declared state, and every declared
    state has a prompt or a handler (a state nothing defines is a typo or left over)."""
    while _UNCHECKED:
        full = _UNCHECKED.pop()
        flow = FLOWS.get(full.partition(".")[0])
        if flow is None:
            raise UndeclaredState(f"no flow declares the state {full!r}")
        flow.state(full.partition(".")[2])
    for flow in FLOWS.values():
        for full in flow.states.values():
            if full not in REGISTRY:
                raise UndeclaredState(f"state {full!r} is declared but has no prompt or handler")


T = TypeVar("T")


class Field(Generic[T]):
    """One item of a journey's session data (see JourneyData): None when absent; setting None
    removes it, so the session's JSON holds only what the journey has gathered."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Field[T]: ...
    @overload
    def __get__(self, obj: JourneyData, owner: type) -> T | None: ...
    def __get__(self, obj: JourneyData | None, owner: type) -> Field[T] | T | None:
        if obj is None:
            return self
        own = obj.data.get(obj.key)
        return own.get(self.name) if own else None

    def __set__(self, obj: JourneyData, value: T | None) -> None:
        if value is not None:
            obj.data.setdefault(obj.key, {})[self.name] = value
        elif obj.key in obj.data:
            obj.data[obj.key].pop(self.name, None)
            if not obj.data[obj.key]:
                del obj.data[obj.key]


class JourneyData:
    """A journey's own session data, typed: each `Field` is an item of the JSON object
    `session.data[key]`, read and written in place (nothing to save or forget to save; paused,
    resumed and cleared with the rest of the session). The engine's own keys (`_choices`,
    `_tags`, `_given`, `_paused`, `_digress`, `_lang_return`, `after_link`) sit beside them."""

    key: ClassVar[str]

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def of(cls, t: Turn) -> Self:
        data = t.session.data
        view = t._views.get(cls)
        if view is None or view.data is not data:  # (made anew when the session's data is replaced)
            view = t._views[cls] = cls(data)
        return view

    def clear(self) -> None:
        """Drop everything the journey gathered (it ends or starts again)."""
        self.data.pop(self.key, None)


def take(data: JourneyData, field: Field[T]) -> T | None:
    """A field's value, removed: the journey takes it over (`take(r, ReadingData.index)`)."""
    value = field.__get__(data, type(data))
    field.__set__(data, None)
    return value


class ContractData(JourneyData):
    """The data of a journey about one of the chat's contracts (the number; proven on use)."""

    contract = Field[str]()


# Session keys of the code before JourneyData (journey data as prefixed top-level keys): a
# session saved by it (a conversation in flight during a deploy) starts again at the menu.
LEGACY_PREFIXES = ("r_", "f_", "p_", "cb_", "b_", "link_", "agency_", "reading_for")


def legacy_data(data: dict[str, Any]) -> bool:
    return any(k.startswith(LEGACY_PREFIXES) for k in data)


_MARKS = re.compile(r"[\u064B-\u065F\u0640\u200e\u200f\u2066-\u2069]")
_FOLD = str.maketrans("أإآ٠١٢٣٤٥٦٧٨٩’", "ااا0123456789'")
_GAPS = re.compile(r"[\s.!?؟,،]+")
_LEAD = re.compile(r"^[^\w]+")


def _norm(text: str) -> str:
    text = _MARKS.sub("", text.strip().casefold()).translate(_FOLD)
    return _GAPS.sub(" ", text).strip()


@lru_cache(maxsize=2048)
def _label_key(label: str) -> str:
    """A button label as typed text is compared with it (no leading emoji). Labels come from
    the catalogs, so the same few hundred recur: cached."""
    return _norm(_LEAD.sub("", label))


@dataclass
class Turn:
    inbound: Inbound
    understand: Callable[[], Any]  # → conversations.understanding.Understood | None, cached by the caller
    session: SessionRecord
    tx: Tx
    profile: Profile
    now: datetime
    replies: list[Reply] = field(default_factory=list)
    # The photo of this message as the engine fetched it, at a state that takes one (else None).
    photo: KeptPhoto | None = None
    _typed: str | None = field(default=None, init=False, repr=False)
    # choice() for the choices it was computed against (the list itself: ask() makes a new one).
    _choice_of: tuple[Any, str | None] | None = field(default=None, init=False, repr=False)
    # typed_label() likewise (the engine's commands and choice() both ask).
    _label_of: tuple[Any, str | None] | None = field(default=None, init=False, repr=False)
    consumed: bool = field(default=False, init=False)
    _tags: dict[str, dict] = field(default_factory=dict, init=False, repr=False)
    # JourneyData.of(t) per class, over the session data it was made on (a journey asks ~13 times a turn).
    _views: dict[type, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def understood(self) -> Any:
        """What the message says. Computed only when asked: a pressed button, or a button's
        label typed back, needs no language understanding."""
        return self.understand()

    # ---- identity and language
    @property
    def channel(self) -> str:
        return self.inbound.channel

    @property
    def user_id(self) -> str:
        return self.inbound.user_id

    @property
    def today(self) -> date:
        """The operator's day (local, not UTC's): reading window, due dates, references' year."""
        return self.profile.today(self.now)

    def local(self, instant: datetime) -> datetime:
        """An instant as the customer's wall-clock time, for showing it."""
        return self.profile.local(instant)

    @property
    def lang(self) -> str:
        return self.session.lang or "fr"

    @property
    def tr(self) -> Translator:
        return translator(self.lang)

    @property
    def data(self) -> dict[str, Any]:
        return self.session.data

    @property
    def state(self) -> str:
        return self.session.state

    @property
    def text(self) -> str:
        return (self.inbound.text or "").strip()

    # ---- output
    def say(self, key: str, /, **params: Any) -> None:
        self.replies.append(Reply(self.tr(key, **params)))

    def say_text(self, text: str) -> None:
        self.replies.append(Reply(text))

    def ask(self, text: str, buttons: list[Button] | tuple[Button, ...] = (), *, ask: str | None = None) -> None:
        """A question with choices; the choices are remembered so typed answers work too."""
        self.replies.append(Reply(text, tuple(buttons), ask=ask))  # type: ignore[arg-type]
        self.data["_choices"] = [[b.payload, b.label] for b in buttons]
        tags = {b.payload: self._tags[b.payload] for b in buttons if b.payload in self._tags}
        if tags:
            self.data["_tags"] = tags
        else:
            self.data.pop("_tags", None)

    def tag(self, button: Button, /, **facts: Any) -> Button:
        """What a button stands for, so a typed answer can name it: service and number/meter of
        a contract, months of an instalment option, date (ISO) of a date option."""
        self._tags[button.payload] = facts
        return button

    def button(self, payload: str, key: str, /, **params: Any) -> Button:
        return Button(payload, self.tr(key, **params))

    def yes_no(self) -> list[Button]:
        return [self.button("yes", "common.yes"), self.button("no", "common.no")]

    # ---- input
    def choice(self) -> str | None:
        """The payload the customer chose among the last offered buttons: pressed, typed as its
        number, typed as (close to) its label, or a yes/no word when yes/no were offered.
        Computed once per message and set of choices (the engine and the handler both ask)."""
        choices = self.data.get("_choices")
        if self._choice_of is not None and self._choice_of[0] is choices:
            return self._choice_of[1]
        picked = self._choice(choices or [])
        self._choice_of = (choices, picked)
        return picked

    def _choice(self, choices: list) -> str | None:
        offered = [(p, label) for p, label in choices]
        payloads = [p for p, _ in offered]
        if self.inbound.payload is not None:
            return self.inbound.payload if self.inbound.payload in payloads else None
        raw = self.text
        if not raw or not offered:
            return None
        typed = self.typed()
        digits = typed.lstrip("#")
        if digits.isdecimal() and 1 <= int(digits) <= len(offered) and len(digits) <= 2:
            return offered[int(digits) - 1][0]
        exact = self.typed_label()
        if exact is not None:
            return exact
        named = self._named(raw, typed, payloads)
        if named is not None:
            return named
        if "yes" in payloads or "no" in payloads:
            said = parse_yes_no(raw)
            if said is not None:
                return "yes" if said else "no"
        elif "skip" in payloads and (parse_no_photo(raw) or parse_yes_no(raw) is False):
            return "skip"  # "bla tswira", "non merci" where the step can be skipped
        if len(typed) < 3:
            return None
        # One call over all labels, stopping at none below the cut-off; the first best wins.
        best = process.extractOne(
            typed, {p: _label_key(label) for p, label in offered}, scorer=fuzz.WRatio, score_cutoff=86
        )
        return best[2] if best else None

    def _named(self, raw: str, typed: str, payloads: list[str]) -> str | None:
        """The offered choice a typed answer names by what it stands for: a contract's number
        (or its unique last digits), meter or service, a month count, a date, or a position in
        words ("le deuxième", "التاني", "lowel")."""
        tags: dict[str, dict] = self.data.get("_tags", {})
        facts = {p: {**tags.get(p, {}), **({"number": p[2:]} if p.startswith("c:") else {})} for p in payloads}

        def only(ps: list[str]) -> str | None:
            return ps[0] if len(set(ps)) == 1 else None

        numbered = {p: f for p, f in facts.items() if "number" in f or "meter" in f}
        if numbered and not self._asks_elsewhere():
            runs = re.findall(r"\d{3,}", re.sub(r"(?<=\d)[\s.-](?=\d)", "", typed))
            for run in runs:
                hits = [
                    p
                    for p, f in numbered.items()
                    for n in (f.get("number"), re.sub(r"\D", "", f.get("meter") or ""))
                    if n and (n == run or (len(run) >= 4 and n.endswith(run)))
                ]
                if only(hits):
                    return hits[0]
            service = parse_service(raw) if not runs else None
            if service:
                hit = only([p for p, f in numbered.items() if f.get("service") == service])
                if hit:
                    return hit
        if any("months" in f for f in facts.values()):
            months = parse_months(raw)
            hit = only([p for p, f in facts.items() if months and f.get("months") == months])
            if hit:
                return hit
        dated = {p: f["date"] for p, f in facts.items() if "date" in f}
        if dated:
            future = min(dated.values()) >= self.today.isoformat()
            day = parse_date(raw, self.lang, today=self.today, prefer="future" if future else "past")
            hit = only([p for p, d in dated.items() if day and d == day.isoformat()])
            if hit:
                return hit
        if "yes" in payloads or "no" in payloads:
            return None  # a position means nothing in a yes/no (and "tani" is also "again")
        position = parse_ordinal(raw)
        options = [p for p in payloads if not p.startswith("cmd:")] or payloads
        if position == -1:
            return options[-1]
        if position and position <= len(options):
            return options[position - 1]
        return None

    def _asks_elsewhere(self) -> bool:
        """The message is a clear request for another journey ("combien je dois pour l'eau ?" at the
        meter choice): a service or number in it does not answer this choice."""
        if len(self.typed().split()) <= 3:
            return False
        u = self.understood
        if u is None or u.confidence < 0.6 or u.intent in ("unknown", "greeting", "help", "cancel"):
            return False
        if u.source != "rules":
            return False  # a guess of the trained model does not override a named choice
        from .journeys import INTENT_ENTRY

        target = INTENT_ENTRY.get(u.intent)
        return target is not None and target.split(".")[0] != self.state.split(".")[0]

    def typed(self) -> str:
        """The message's text as labels are compared with it (several checks of a turn ask)."""
        if self._typed is None:
            self._typed = _norm(self.inbound.text or "")
        return self._typed

    def typed_label(self) -> str | None:
        """The payload of the offered button whose label this text is, exactly (as a reply
        keyboard sends it, or typed back): the same as pressing it."""
        if self.inbound.payload is not None or not self.inbound.text:
            return None
        choices = self.data.get("_choices", ())
        if self._label_of is not None and self._label_of[0] is choices:
            return self._label_of[1]
        typed = self.typed()
        picked = next((p for p, label in choices if _label_key(label) == typed), None)
        self._label_of = (choices, picked)
        return picked

    def consume_input(self) -> None:
        """This message has done its job (e.g. proved a contract): a journey entered afterwards in
        the same turn must not read it as its own input (a contract number is not an index)."""
        self.understand = lambda: None
        self.consumed = True

    # ---- what the customer said when the journey started
    def given(self, name: str) -> Any:
        """An entity of the message that started the current journey (an index, a date, a month
        count, a service, a reference, a city...), kept across linking, contract choices and any
        question in between until the journey uses it or ends. Journeys show it back before
        acting on it."""
        value = self.data.get(GIVEN, {}).get(name)
        if value is not None and name in DATE_ENTITIES:
            return date.fromisoformat(value)
        return value

    def use_given(self, name: str) -> Any:
        """`given(name)`, which the journey now takes over (it is not offered again)."""
        value = self.given(name)
        self.data.get(GIVEN, {}).pop(name, None)
        return value

    def keep_given(self) -> None:
        """Remember the entities of this message as what started the journey being entered."""
        if self.consumed:
            return  # the message was an answer (a contract number): keep what started it
        entities = self._given_entities()
        if entities:
            self.data[GIVEN] = entities
        else:
            self.data.pop(GIVEN, None)

    def add_given(self, *, without: frozenset[str] = frozenset()) -> None:
        """Add this message's entities to what started the journey (the request said again)."""
        given = self.data.setdefault(GIVEN, {})
        given.update({k: v for k, v in self._given_entities().items() if k not in without})

    def _given_entities(self) -> dict[str, Any]:
        u = self.understood
        return {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in (u.entities.items() if u is not None else ())
            if k in GIVEN_ENTITIES
        }

    def stale_payload(self) -> bool:
        """A pressed button that is not among the current choices (old message or forged)."""
        return self.inbound.payload is not None and self.choice() is None
