"""Journeys as state machines: each state has a prompt (what the bot says on arriving) and a
handler (what it does with the customer's next message, returning the next state).

    flow = Flow("link")

    @flow.prompt("contract")
    async def ask_contract(t: Turn) -> str | None: ...      # may redirect by returning a state

    @flow.handle("contract")
    async def got_contract(t: Turn) -> str | None: ...      # next state, AGAIN, or None

A handler returns the next state's name (its prompt runs), AGAIN (the current prompt runs
again, after whatever the handler said), or None (stay; the handler said everything).
State data lives in `t.data` (JSON-serialisable), saved with the state in the turn's transaction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime
from typing import Any, Awaitable, Callable

from rapidfuzz import fuzz, process

from storage import SessionRecord, Tx

from .events import Button, Inbound, Reply
from .i18n import Translator, translator
from .profile import Profile
from .understanding import parse_yes_no

AGAIN = "__again__"
Handler = Callable[["Turn"], Awaitable[str | None]]


@dataclass
class StateDef:
    name: str
    prompt: Handler | None = None
    handle: Handler | None = None
    needs_link: bool = False


REGISTRY: dict[str, StateDef] = {}


class Flow:
    def __init__(self, name: str) -> None:
        self.name = name

    def _def(self, state: str) -> StateDef:
        full = f"{self.name}.{state}" if state else self.name
        return REGISTRY.setdefault(full, StateDef(full))

    def prompt(self, state: str, *, needs_link: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            d = self._def(state)
            d.prompt, d.needs_link = fn, d.needs_link or needs_link
            return fn
        return register

    def handle(self, state: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._def(state).handle = fn
            return fn
        return register


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
    understand: Callable[[], Any]   # → conversations.understanding.Understood | None, cached by the caller
    session: SessionRecord
    tx: Tx
    profile: Profile
    now: datetime
    replies: list[Reply] = field(default_factory=list)
    _typed: str | None = field(default=None, init=False, repr=False)

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
    def t(self) -> Translator:
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
        self.replies.append(Reply(self.t(key, **params)))

    def say_text(self, text: str) -> None:
        self.replies.append(Reply(text))

    def ask(self, text: str, buttons: list[Button] | tuple[Button, ...] = (), *, ask: str | None = None) -> None:
        """A question with choices; the choices are remembered so typed answers work too."""
        self.replies.append(Reply(text, tuple(buttons), ask=ask))  # type: ignore[arg-type]
        self.data["_choices"] = [[b.payload, b.label] for b in buttons]

    def button(self, payload: str, key: str, /, **params: Any) -> Button:
        return Button(payload, self.t(key, **params))

    def yes_no(self) -> list[Button]:
        return [self.button("yes", "common.yes"), self.button("no", "common.no")]

    # ---- input
    def choice(self) -> str | None:
        """The payload the customer chose among the last offered buttons: pressed, typed as its
        number, typed as (close to) its label, or a yes/no word when yes/no were offered."""
        offered = [(p, label) for p, label in self.data.get("_choices", [])]
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
        if "yes" in payloads or "no" in payloads:
            said = parse_yes_no(raw)
            if said is not None:
                return "yes" if said else "no"
        if len(typed) < 3:
            return None
        # One call over all labels, stopping at none below the cut-off; the first best wins.
        best = process.extractOne(typed, {p: _label_key(label) for p, label in offered}, scorer=fuzz.WRatio,
                                  score_cutoff=86)
        return best[2] if best else None

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
        typed = self.typed()
        for p, label in self.data.get("_choices", ()):
            if _label_key(label) == typed:
                return p
        return None

    def consume_input(self) -> None:
        """This message has done its job (e.g. proved a contract): a journey entered afterwards in
        the same turn must not read it as its own input (a contract number is not an index)."""
        self.understand = lambda: None

    def stale_payload(self) -> bool:
        """A pressed button that is not among the current choices (old message or forged)."""
        return self.inbound.payload is not None and self.choice() is None
