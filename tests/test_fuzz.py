"""Fuzzing the conversation engine: whatever a chat sends, every turn answers, nothing escapes,
and nothing of another customer is ever shown."""

from __future__ import annotations

import asyncio
import itertools
import logging

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conversations.events import Inbound
from conversations.i18n import LRI, PDI, translator

from .chat import open_engine

# Youssef (1000003) is the other customer: none of this may reach Fatima's chats. (His city is
# not here: the agencies of every city are public.)
OTHERS = (
    "1000003",
    "Youssef",
    "El Amrani",
    "E-77003",
    "120400",
    "120 400",
    "120\u202f400",
    "120.400",
    "+212661234567",
    "0661234567",
    "661234567",
    "172,62",
    "F-2026-10-3",
)

_ids = itertools.count(1)

WEIRD = st.sampled_from(
    [
        "",
        " ",
        "\u200f",
        "\u202e1000003\u202c",
        "\x00",
        "\x1b[2J",
        "\r\n\t",
        "'; DROP TABLE readings; --",
        "1' OR '1'='1",
        "%s%s%n",
        "{phone}",
        "{0}",
        "<b>x</b>",
        "🔌⚡💧" * 50,
        "٤٥٤٠٠",
        "45 400",
        "-5",
        "1e9",
        "9" * 40,
        "/start@AddadBot",
        "/",
        "/@",
        "menu",
        "0",
        "99",
        "1000003",
        "contrat 1000003",
        "F-2026-10-3",
        "IN-2026-000001",
        "CB-2026-000001",
        "نعم",
        "لا",
        "oui",
        "non",
        "annuler",
        "x" * 10_000,
        "ب" * 5_000,
    ]
)
TEXT = st.one_of(WEIRD, st.text(max_size=300), st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
PAYLOAD = st.one_of(
    st.sampled_from(
        [
            "go:reading",
            "go:bills",
            "go:facilities",
            "go:prepaid",
            "go:track",
            "go:agency",
            "go:contact",
            "go:link",
            "lang:ar",
            "lang:fr",
            "bill:0",
            "bill:1",
            "bill:9",
            "bill:-1",
            "bill:x",
            "c:1000003",
            "c:1000001",
            "c:0",
            "yes",
            "no",
            "confirm",
            "cancel",
            "go:",
            "go:../../etc",
        ]
    ),
    st.from_regex(r"[a-z]{1,8}:[0-9A-Za-z_-]{0,20}", fullmatch=True),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=64),
)
ACTION = st.one_of(
    st.tuples(st.just("text"), TEXT),
    st.tuples(st.just("payload"), PAYLOAD),
    st.tuples(st.just("photo"), st.sampled_from(["AgACAgQ-photo", "x" * 300])),
    st.tuples(st.just("contact"), st.sampled_from(["+212661234567", "+212612345678", "0612345678", "garbage"])),
    st.tuples(st.just("other"), st.sampled_from(["sticker", "voice", "video", "location"])),
)


def _inbound(user: str, action: tuple[str, object], lang: str | None) -> Inbound:
    kind, value = action
    common = dict(channel="fuzz", user_id=user, message_id=f"f{next(_ids)}", lang_hint=lang)
    if kind == "text":
        return Inbound(text=value, **common)
    if kind == "payload":
        return Inbound(payload=value, **common)
    if kind == "photo":
        return Inbound(photo_ref=value, **common)
    if kind == "contact":
        # A shared contact: Fatima's own, or someone else's number she forwards.
        return Inbound(contact_phone=value, contact_is_own=value == "+212612345678", **common)
    return Inbound(other=value, **common)


def test_any_sequence_of_messages_is_answered_safely(tmp_path, caplog):
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(open_engine(tmp_path / "fuzz.sqlite3"))
    failures = (
        translator("fr")("error.internal", phone="").split(".")[0],
        translator("ar")("error.internal", phone="").split(".")[0],
    )
    users = itertools.count(1)

    async def play(actions: list, lang: str | None, linked: bool) -> None:
        user = f"u{next(users)}"
        if linked:  # Fatima's chat, already linked to her contracts
            async with engine.store.transaction() as tx:
                await tx.link_chat("fuzz", user, "1000001", "phone")
                await tx.link_chat("fuzz", user, "1000002", "phone")
        said = ""  # what the customer typed so far
        for action in actions:
            if action[0] == "text":
                said += "\n" + str(action[1])
            replies = await engine.handle(_inbound(user, action, lang))
            assert replies, f"no answer to {action!r}"
            text = "\n".join(r.text + " " + " ".join(b.label for b in r.buttons) for r in replies)
            text = text.replace(LRI, "").replace(PDI, "")
            assert not text.startswith(failures), f"internal failure on {action!r}"
            # Another customer's data must not show; the customer's own words quoted back may
            # ("no agency in «1000003»").
            leaked = [o for o in OTHERS if o in text and o not in said]
            assert not leaked, f"{leaked} shown after {action!r}:\n{text}"
            assert all(len(b.payload.encode()) <= 64 and b.payload.isascii() for r in replies for b in r.buttons)

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(ACTION, min_size=1, max_size=8), st.sampled_from([None, "fr", "ar", "en"]), st.booleans())
    @example([("text", ""), ("payload", "go:agency"), ("text", "1000003")], None, False)  # own words quoted back
    def run(actions, lang, linked):
        loop.run_until_complete(play(actions, lang, linked))

    try:
        with caplog.at_level(logging.ERROR):
            run()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a turn failed inside the engine"
    finally:
        loop.run_until_complete(engine.store.close())
        loop.close()
