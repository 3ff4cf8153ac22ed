"""The terminal channel: `addad console` and `addad demo`.

Buttons are shown as numbered choices; typing a choice's number presses it. `/photo PATH`
sends a photo, `/contact` shares the phone given with --phone, Ctrl-D quits. A picture (the
consumption chart) is written as a PNG file, `charts/` beside the database, and its path printed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, TextIO

from bot.config import Settings
from conversations.events import Button, Inbound, Reply
from conversations.i18n import translator
from conversations.media import TooLarge, Unavailable

from .base import Limits, numbered, pull_channels

CHANNEL = "console"
LIMITS = Limits(text=1 << 20)  # no buttons: choices are numbered text
DEMO_FOLDER = Path("addad-demo")
DEMO_PERSONA = {"name": "Fatima Zahra Bennani", "phone": "+212612345678", "contract": "1000001"}


# Direction marks (the core's LRI … PDI around references, and any other embedding, isolate or
# mark) steer chat apps' bidi layout; a terminal prints them as stray glyphs or garbage.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)


def render(replies: list[Reply]) -> tuple[str, list[Button]]:
    """Replies as terminal text; the buttons of the last reply that has any are numbered. An
    earlier reply's (a chart offered after a reading) are bullets: a typed "1" answers the last
    question only, so only its choices carry numbers."""
    out, buttons = [], []
    last = max((i for i, r in enumerate(replies) if r.buttons), default=-1)
    for i, r in enumerate(replies):
        out.append(plain(r.text))
        if r.buttons and i < last:
            out.extend(f"  • {plain(b.label)}" for b in r.buttons)
        elif r.buttons:
            buttons = list(r.buttons)
            out.extend(numbered(buttons, indent="  ", clean=plain))
    return "\n".join(out), buttons


class LocalFiles:
    """The console's MediaFetcher: `/photo PATH` is a file on this machine (the person at the
    terminal runs the bot), read within the cap and checked like a channel's photo."""

    async def fetch(self, ref: str, max_bytes: int) -> bytes:
        path = Path(ref[len("file:") :]) if ref.startswith("file:") else None
        if path is None or not path.is_file():
            raise Unavailable("no such file")
        if path.stat().st_size > max_bytes:
            raise TooLarge(f"{path.stat().st_size} bytes")
        with path.open("rb") as f:
            return await asyncio.to_thread(f.read, max_bytes + 1)


class ConsoleChat:
    """One person talking to the engine from a terminal (or a test's pipe) (base.Channel)."""

    name: ClassVar[str] = CHANNEL
    limits: ClassVar[Limits] = LIMITS
    pull: ClassVar[bool] = True  # nothing pushes to a terminal: queued messages come at the next turn

    def __init__(self, engine, *, user: str, phone: str | None, lang: str | None, charts: Path | None = None) -> None:
        self.engine = engine
        # Where pictures are written (named by their content: the same chart, the same file).
        self.charts = charts or Path(tempfile.gettempdir()) / "addad-charts"
        self.user = user
        self.phone = phone
        self.lang = lang
        self.session_id = uuid.uuid4().hex[:12]
        self.counter = 0
        self.buttons: list[Button] = []
        self.lang_now: str | None = None  # the language the last turn ended in

    def _inbound(self, **kw) -> Inbound:
        self.counter += 1
        return Inbound(
            channel=CHANNEL,
            user_id=self.user,
            message_id=f"{self.session_id}-{self.counter}",
            sender_phone=self.phone,
            lang_choice=self.lang if self.counter == 1 else None,
            **kw,
        )

    def to_inbound(self, line: str) -> Inbound:
        return self.parse(line)

    def parse(self, line: str) -> Inbound:
        text = line.strip()
        if text.isdecimal() and self.buttons and 1 <= int(text) <= len(self.buttons) and len(text) <= 2:
            return self._inbound(payload=self.buttons[int(text) - 1].payload)
        if text.startswith("/photo"):
            path = text[len("/photo") :].strip()
            ref = f"file:{Path(path).expanduser().resolve()}" if path else f"file:console-{uuid.uuid4().hex[:8]}"
            return self._inbound(photo_ref=ref)
        if text == "/contact":
            return self._inbound(contact_phone=self.phone, contact_is_own=self.phone is not None)
        return self._inbound(text=line)

    async def send(self, line: str) -> str:
        outcome = await self.engine.respond(self.parse(line), media=LOCAL_FILES)
        self.lang_now = outcome.lang
        replies = [self._saved(r, outcome.lang) if r.image is not None and r.image.png else r for r in outcome.replies]
        text, buttons = render(replies)
        if buttons:
            self.buttons = buttons
        return text

    def _saved(self, reply: Reply, lang: str) -> Reply:
        """The picture written to a file; the reply says where."""
        assert reply.image is not None
        self.charts.mkdir(parents=True, exist_ok=True)
        path = self.charts / f"chart-{hashlib.sha256(reply.image.png).hexdigest()[:16]}.png"
        path.write_bytes(reply.image.png)
        return replace(reply, text=reply.text + "\n" + translator(lang)("console.chart", path=str(path)))

    async def current_lang(self) -> str | None:
        """The language the conversation speaks now (the person may have switched since the start)."""
        return self.lang_now


LOCAL_FILES = LocalFiles()


async def chat_loop(chat: ConsoleChat, read: Callable[[], str], write: Callable[[str], None], lang: str) -> None:
    write(translator(lang)("console.intro"))
    write(await chat.send("/start"))
    while True:
        try:
            line = await asyncio.to_thread(read)
        except EOFError:
            line = "/quit"
        if not line.strip():
            continue
        if line.strip() in ("/quit", "/exit"):
            write(translator(await chat.current_lang() or lang)("console.bye"))
            return
        write(await chat.send(line))


def _reader(stream: TextIO) -> Callable[[], str]:
    def read() -> str:
        if stream.isatty():
            return input("> ")
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read


def _writer(text: str) -> None:
    if text:
        print(text + "\n", flush=True)


async def _run(args, settings: Settings) -> int:
    from bot.wiring import open_engine
    from conversations.profile import load_profile

    if getattr(args, "operator", None):  # `addad demo --operator srm-cs`
        settings = settings.model_copy(update={"operator": args.operator})
    profile = load_profile(settings.operator)
    database = settings.database
    phone = getattr(args, "phone", None)
    user = getattr(args, "user", "console")
    lang = args.lang
    if args.command == "demo":
        # One demo folder per operator: the ONEE demo's data is not the SRM's.
        folder = DEMO_FOLDER if profile.operator.code == "onee" else Path(f"{DEMO_FOLDER}-{profile.operator.code}")
        database = args.database or str(folder / "addad-demo.sqlite3")
        settings = settings.model_copy(update={"database": database})  # its photos beside it, too
        phone, user = DEMO_PERSONA["phone"], "demo"
        from bot.demo_data import ensure_demo

        await ensure_demo(database, profile, settings.make_clock())
    if phone:
        from storage.values import ValueProblem, normalize_phone

        try:
            phone = normalize_phone(phone)
        except ValueProblem as exc:
            from bot.errors import UserError

            raise UserError(f"--phone: {exc}") from None
    async with open_engine(
        settings, database=database, profile=profile, pull_channels=pull_channels(ConsoleChat)
    ) as engine:
        chat = ConsoleChat(engine, user=user, phone=phone, lang=lang, charts=charts_dir(database))
        shown_lang = lang or "fr"
        if args.command == "demo":
            t = translator(shown_lang)
            _writer(
                t(
                    "console.demo_intro",
                    name=DEMO_PERSONA["name"],
                    phone=DEMO_PERSONA["phone"],
                    contract=DEMO_PERSONA["contract"],
                )
            )
        await chat_loop(chat, _reader(sys.stdin), _writer, shown_lang)
    return 0


def charts_dir(database: str) -> Path:
    """`charts/` beside the database, where the console writes pictures."""
    return Path(database).expanduser().resolve().parent / "charts"


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
