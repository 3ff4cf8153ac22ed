"""Talk to the engine like a customer: send, read the reply, press a button by its label."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from conversations.engine import Engine
from conversations.events import Button, Inbound, Reply
from conversations.i18n import LRI, PDI
from conversations.profile import load_profile
from storage import Bill, Contract, Store, open_store
from storage.clock import FileClock

_ids = itertools.count(1)

# The tests' "now" (10:00 in Casablanca on Monday 23 November 2026): the data below is fixed in
# 2026, so no test may read the wall clock (tests/conftest.py makes that fail).
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SEEDED_AT = datetime(2026, 11, 6, 6, 0, tzinfo=UTC)  # when the seed data was imported


class Clock:
    """A clock the test sets and moves by hand (in-process engines and stores)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


class ProcessClock:
    """The clock of the bot processes a test starts (`ADDAD_CLOCK=file:PATH`, storage/clock.py):
    they and the test read the instant in the file, running on at real speed; `set` and
    `advance` rewrite it to move everyone's time."""

    def __init__(self, path, start: datetime = START) -> None:
        self.path = path
        FileClock.write(path, start)
        self._clock = FileClock(path)

    @property
    def setting(self) -> str:
        return f"file:{self.path}"

    def __call__(self) -> datetime:
        return self._clock()

    def set(self, instant: datetime) -> None:
        FileClock.write(self.path, instant)

    def advance(self, **kw) -> None:
        self.set(self() + timedelta(**kw))


class Chat:
    def __init__(
        self,
        engine: Engine,
        *,
        channel: str = "test",
        user: str = "u1",
        lang_hint: str | None = None,
        sender_phone: str | None = None,
        contact_request: bool = False,
    ) -> None:
        self.engine, self.channel, self.user = engine, channel, user
        self.lang_hint, self.sender_phone, self.contact_request = lang_hint, sender_phone, contact_request
        self.replies: list[Reply] = []
        self.history: list[Reply] = []

    async def _send(self, **kw) -> list[Reply]:
        message_id = kw.pop("message_id", None) or f"m{next(_ids)}"
        inbound = Inbound(
            channel=self.channel,
            user_id=self.user,
            message_id=message_id,
            lang_hint=self.lang_hint,
            sender_phone=self.sender_phone,
            contact_request_supported=self.contact_request,
            **kw,
        )
        self.replies = await self.engine.handle(inbound)
        self.history.extend(self.replies)
        return self.replies

    async def send(self, text: str, **kw) -> list[Reply]:
        return await self._send(text=text, **kw)

    async def press(self, label: str) -> list[Reply]:
        """Press the button whose label contains `label` (case-insensitive) among the last offered."""
        matches = [b for b in self.buttons if label.casefold() in b.label.casefold()]
        assert len(matches) == 1, f"no single button {label!r} in {[b.label for b in self.buttons]}"
        return await self._send(payload=matches[0].payload)

    async def press_payload(self, payload: str, **kw) -> list[Reply]:
        return await self._send(payload=payload, **kw)

    async def no_reminders(self) -> list[Reply]:
        """ "No" to the reminders question, put once the journey that linked a contract has ended
        (conversations/reminders.py), as a customer busy with something else would; the menu
        follows. Fails if that is not the question asked."""
        asked = [b.payload for b in self.buttons]
        assert asked == ["remind:all", "remind:bills", "remind:none"], f"not the reminders question: {asked}"
        return await self._send(payload="remind:none")

    async def share_contact(self, phone: str, *, own: bool = True) -> list[Reply]:
        return await self._send(contact_phone=phone, contact_is_own=own)

    async def send_photo(self, ref: str) -> list[Reply]:
        return await self._send(photo_ref=ref)

    @property
    def text(self) -> str:
        """The last turn's replies as one plain text (bidi isolates removed)."""
        return "\n".join(r.text for r in self.replies).replace(LRI, "").replace(PDI, "")

    @property
    def buttons(self) -> list[Button]:
        for r in reversed(self.history):  # the last choices offered, even if the last turn said nothing
            if r.buttons:
                return list(r.buttons)
        return []


async def seed(store: Store) -> None:
    """A small, fully known data set: Fatima holds 1000001 (electricity) and 1000002 (water)
    on the same phone; Youssef holds 1000003 in Rabat."""
    d = date.fromisoformat
    async with store.transaction() as tx:  # stamped SEEDED_AT: seeding reads no clock
        for c in (
            Contract(
                "1000001",
                "electricity",
                "Fatima Zahra Bennani",
                "+212612345678",
                "ar",
                "Casablanca",
                "E-77001",
                "postpaid",
                5,
                45210,
                d("2026-10-31"),
                "BT-RES",
                False,
            ),
            Contract(
                "1000002",
                "water",
                "Fatima Zahra Bennani",
                "+212612345678",
                "ar",
                "Casablanca",
                "W-88002",
                "postpaid",
                5,
                1320,
                d("2026-10-31"),
                "EAU-RES",
                False,
            ),
            Contract(
                "1000003",
                "electricity",
                "Youssef El Amrani",
                "+212661234567",
                "fr",
                "Rabat",
                "E-77003",
                "postpaid",
                6,
                120400,
                d("2026-10-31"),
                "BT-RES",
                False,
            ),
        ):
            await tx.upsert_contract(c, now=SEEDED_AT)
        bills = [
            Bill(
                "F-2026-09-1",
                "1000001",
                d("2026-08-31"),
                d("2026-09-30"),
                d("2026-10-05"),
                d("2026-10-25"),
                44850,
                45030,
                180,
                True,
                24317,
                0,
            ),
            Bill(
                "F-2026-10-1",
                "1000001",
                d("2026-09-30"),
                d("2026-10-31"),
                d("2026-11-05"),
                d("2026-11-25"),
                45030,
                45210,
                180,
                False,
                21890,
                0,
            ),
            Bill(
                "F-2026-10-2",
                "1000002",
                d("2026-09-30"),
                d("2026-10-31"),
                d("2026-11-05"),
                d("2026-11-25"),
                1310,
                1320,
                10,
                False,
                6475,
                6475,
            ),
            Bill(
                "F-2026-10-3",
                "1000003",
                d("2026-09-30"),
                d("2026-10-31"),
                d("2026-11-05"),
                d("2026-11-25"),
                120250,
                120400,
                150,
                False,
                17262,
                17262,
            ),
        ]
        for b in bills:
            await tx.upsert_bill(b, now=SEEDED_AT)
        from storage import Agency

        await tx.upsert_agency(
            Agency("Casablanca", "Agence Maârif", "12 rue Abou Al Waqt, Maârif", "0522 99 11 22", "Lun-Ven 8h30-16h30")
        )
        await tx.upsert_agency(
            Agency("Rabat", "Agence Agdal", "5 avenue Fal Ould Oumeir, Agdal", "0537 77 66 55", "Lun-Ven 8h30-16h30")
        )


async def add_omar(tx) -> None:
    """Omar (1000007, Marrakech): his meter has 5 dials and shows 99,950, so the next reading
    wraps past zero; one unpaid bill."""
    await tx.upsert_contract(
        Contract(
            "1000007",
            "electricity",
            "Omar Tazi",
            "+212677777777",
            "fr",
            "Marrakech",
            "E-7",
            "postpaid",
            5,
            99950,
            date(2026, 10, 31),
            "BT-RES",
            False,
        )
    )
    await tx.upsert_bill(
        Bill(
            "F-7",
            "1000007",
            date(2026, 9, 30),
            date(2026, 10, 31),
            date(2026, 11, 5),
            date(2026, 11, 25),
            99800,
            99950,
            150,
            False,
            17262,
            17262,
        )
    )


async def clone_customers(tx, chats, *, channel: str = "telegram") -> dict:
    """A customer per chat, each with an electricity contract of their own (a copy of 1000001 and
    its bills, on a number of their own), already linked and at the menu; {chat: contract}."""
    from dataclasses import replace

    from storage.records import SessionRecord

    base = await tx.contract("1000001")
    bills = await tx.bills("1000001")
    contracts = {}
    for i, chat in enumerate(chats):
        number = str(5_000_000 + i)
        await tx.upsert_contract(
            replace(base, contract=number, meter_number=f"E-{number}", holder_name=f"Client {i}", phone=f"+2126{i:08d}")
        )
        for b in bills:
            await tx.upsert_bill(replace(b, bill_number=f"{b.bill_number}-{i}", contract=number))
        await tx.link_chat(channel, str(chat), number, "bill_amount")
        await tx.save_session(SessionRecord(channel, str(chat), "menu.main", {}, "fr", 0, None))
        contracts[chat] = number
    return contracts


async def open_engine(path, clock: Clock | None = None) -> Engine:
    """A seeded store and the engine on it, both on the test's clock."""
    clock = clock or Clock()
    store = await open_store(path, clock=clock)
    await seed(store)
    # As `addad console` builds it: the console is a pull channel (queued messages shown at the next turn).
    return Engine(store, load_profile(), clock=clock, pull_channels=frozenset({"console"}))
