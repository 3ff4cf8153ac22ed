"""The promises at the end of SPEC.md, shown: the real bot process (`python -m bot telegram`)
killed with SIGKILL at random moments under a stream of customers; every update delivered twice."""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path

from storage import open_store

from . import pg
from .chat import Clock, clone_customers
from .fake_botapi import Call, FakeBotAPI
from .telegram_harness import BotProcess, seeded_database

REFERENCE = re.compile(r"\b(RL|CB)-\d{4}-\d{6}\b")
FIRST_CHAT = 700_001


async def customers_at_the_menu(database: Path | str, chats: list[int]) -> dict[int, str]:
    store = await open_store(database, clock=Clock())
    async with store.transaction() as tx:
        contracts = await clone_customers(tx, chats)
    await store.close()
    return contracts


class Customer:
    """Reads the last message the bot sent to the chat and does what a customer would: send an
    index, skip the photo, confirm, ask for a callback. Duplicated or late answers after a
    restart are fine: the next step is always chosen from what the bot last said."""

    def __init__(self, api: FakeBotAPI, chat: int, rounds: int) -> None:
        self.api, self.chat, self.rounds = api, chat, rounds
        self.told: set[str] = set()  # references the bot gave this customer
        self.confirmed = 0  # "Index enregistré" / "C'est noté" seen, distinct references
        self.index = 45_400
        self.plan = ["reading", "reading", "callback"] * rounds
        self.seen = 0

    def _mine(self) -> list[Call]:
        return [c for c in self.api.calls if c.chat_id == self.chat and c.method == "sendMessage"]

    async def _next_answer(self, before: int, timeout: float = 45.0) -> Call:
        """Wait for at least one new message, then for the chat to go quiet."""
        deadline = time.monotonic() + timeout
        while len(self._mine()) <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"chat {self.chat}: no answer within {timeout:.0f} s (after {before} messages)")
            await asyncio.sleep(0.05)
        count = -1
        while count != len(self._mine()):
            count = len(self._mine())
            await asyncio.sleep(0.25)
        mine = self._mine()
        for c in mine[self.seen :]:
            self.told.update(m.group(0) for m in REFERENCE.finditer(c.text))
        self.seen = len(mine)
        return mine[-1]

    def _act(self, last: Call) -> tuple[str, str] | None:
        """("press", label) or ("send", text), from the bot's last message; None when done."""
        labels = [b["text"] for b in last.inline_buttons()]
        for wanted in ("Sans photo", "Confirmer", "Continuer sans préciser", "Être rappelé", "Remplacer"):
            if any(wanted in label for label in labels):
                return "press", wanted
        if any("Envoyer mon index" in label for label in labels):  # the menu
            if not self.plan:
                return None
            step = self.plan.pop(0)
            if step == "reading":
                self.index += 30
                return "send", str(self.index)
            return "send", "je veux être rappelé"
        return "send", "/menu"  # anything else: back to the menu

    async def _more(self, count: int, wait: float = 3.0) -> Call | None:
        """The chat's last message once a message beyond `count` arrived within `wait`, or None."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if len(self._mine()) > count:
                return await self._next_answer(count)
            await asyncio.sleep(0.05)
        return None

    async def run(self) -> None:
        before = len(self._mine())
        self.api.text(self.chat, "/menu")
        for _ in range(20 * self.rounds):
            last = await self._next_answer(before)
            action = self._act(last)
            if action == ("send", "/menu"):
                # Nothing to act on yet: on a loaded machine a turn's messages can come more
                # than the quiet wait apart, so give the rest time before giving up the journey.
                later = await self._more(len(self._mine()))
                if later is not None:
                    last, action = later, self._act(later)
            if action is None:
                return
            before = len(self._mine())
            kind, what = action
            if kind == "send":
                self.api.text(self.chat, what)
            else:
                button = next(b for b in last.inline_buttons() if what in b["text"])
                self.api.press(self.chat, button["callback_data"], message=last)
        raise AssertionError(f"chat {self.chat}: the conversation went round in circles")


async def test_killed_at_random_moments_nothing_told_is_lost_or_doubled(api, tmp_path, database):
    database = await seeded_database(database)
    chats = [FIRST_CHAT + i for i in range(6)]
    contracts = await customers_at_the_menu(database, chats)
    proc = BotProcess(api, database, cwd=tmp_path)
    await proc.start(api)
    people = [Customer(api, chat, rounds=2) for chat in chats]
    rng = random.Random(20261123)
    kills = 0
    try:
        work = asyncio.gather(*(p.run() for p in people))
        while not work.done() and kills < 5:
            await asyncio.wait([work], timeout=rng.uniform(0.3, 1.5))
            if work.done():
                break
            proc.kill()  # SIGKILL: no cleanup of any kind
            kills += 1
            await asyncio.sleep(rng.uniform(0, 0.3))  # customers keep writing meanwhile
            await proc.start(api)
        await asyncio.wait_for(work, 180)
        assert kills >= 3, "the customers finished before the bot was killed three times"
        for p in people:  # each conversation goes on from where it is
            before = len(p._mine())
            api.text(p.chat, "combien je dois ?")
            last = await p._next_answer(before)
            assert "Total à payer" in "\n".join(c.text for c in p._mine()[before:]), last.text
    finally:
        assert await proc.stop() == 0, proc.output()[-3000:]

    readings = pg.query(database, "SELECT reference, contract, user_id FROM readings WHERE source='customer'")
    requests = pg.query(database, "SELECT reference, contract, user_id FROM requests")
    stored = [r for r, _, _ in readings + requests]
    assert len(stored) == len(set(stored))  # no reference twice
    told = set().union(*(p.told for p in people))
    # Every reading or request the customer was told about exists, and nothing exists that the
    # customer was not told about (a turn that committed had its answer sent after the restart).
    assert told == set(stored)
    for p in people:
        mine = {r for r, contract, user in readings + requests if user == str(p.chat)}
        assert mine == p.told and {c for _, c, u in readings + requests if u == str(p.chat)} == {contracts[p.chat]}
        assert len([r for r in mine if r.startswith("RL-")]) == 4 and len([r for r in mine if r.startswith("CB-")]) >= 1
    assert "Traceback" not in proc.output()


async def test_every_update_delivered_twice_is_handled_once(api, tmp_path, database):
    database = await seeded_database(database)
    single = [FIRST_CHAT + 100 + i for i in range(3)]
    doubled = [FIRST_CHAT + 200 + i for i in range(3)]
    await customers_at_the_menu(database, single + doubled)
    proc = BotProcess(api, database, cwd=tmp_path)
    await proc.start(api)
    try:
        # First the same journeys delivered once: what each customer must see.
        once = [Customer(api, chat, rounds=1) for chat in single]
        await asyncio.wait_for(asyncio.gather(*(p.run() for p in once)), 120)

        original_push = api.push
        repeated = 0

        def push_twice(update: dict) -> int:
            # Telegram repeats an update (its acknowledgment was lost): the same update_id again,
            # after other chats' updates.
            update_id = original_push(update)

            def again() -> None:
                nonlocal repeated
                repeated += 1
                api.redeliver.append(dict(update))
                asyncio.get_running_loop().create_task(api._notify_update())

            asyncio.get_running_loop().call_later(0.05, again)
            return update_id

        api.push = push_twice
        twice = [Customer(api, chat, rounds=1) for chat in doubled]
        await asyncio.wait_for(asyncio.gather(*(p.run() for p in twice)), 120)
    finally:
        assert await proc.stop() == 0
    assert repeated >= 3 * 7, repeated  # every update of the second group came twice

    def seen(p: Customer) -> list[str]:
        return [re.sub(r"\d+", "#", c.text) for c in p._mine()]

    for a, b in zip(once, twice, strict=True):
        assert seen(b) == seen(a)  # no extra answer, no "stale button", no re-prompt
        assert (
            len([r for r in b.told if r.startswith("RL-")]) == 2
            and len([r for r in b.told if r.startswith("CB-")]) == 1
        )
    rows = pg.query(
        database,
        "SELECT reference, user_id FROM readings WHERE source='customer' UNION ALL "
        "SELECT reference, user_id FROM requests",
    )
    for p in twice:
        assert {r for r, u in rows if u == str(p.chat)} == p.told
