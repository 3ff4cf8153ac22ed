"""Telegram updates per second, CPU per update and reply latency: PTB's bare echo bot against
Addad's full reading turn, both through real python-telegram-bot.

    /tmp/venv/bin/python bench/bench_telegram.py [--n 3000] [--paced 1500] [--rate 300]
        [--rtt-ms 50] [--chats 300] [--only echo|addad] [--quick] [--in-process] [--profile] [--no-pin]
        [--rounds 15] [--pair-n 1000] [--echo-gc cpython|addad] [--sync light|full] [--engine-only [--callgrind]]
        [--no-prebill-memo] [--same-consumption]

Three transports, the same for both bots:
  in-process  a `BaseRequest` answering from memory (no socket): the bots' own cost;
  http 0 ms   the production aiohttp transport to the fake Bot API server (tests/fake_botapi.py)
              running in another process, pinned to the other core;
  http RTT    the same with a simulated round trip on every Bot API call (default 50 ms).

Updates are put on `app.update_queue` (as `addad telegram` does after getUpdates), in batches
of 100 like getUpdates returns them. Each configuration: a warm-up, then a burst of --n
updates (throughput, CPU per update), then --paced updates offered at --rate per second
(latency: from putting the update on the queue to its sendMessage being answered by the
server, so one simulated round trip is included).

Per-chat order: every chat's replies are matched, in arrival order, to that chat's updates in
the order they were put. The echo reply must repeat the update's text (which carries its
sequence number); Addad's reply must be the answer expected at that step of the reading
journey, which fails if two updates of a chat were processed out of order.

Addad's workload: --chats customers, each linked to their own electricity contract (a clone of
tests/chat.py's 1000001, varied: its own meter index and last reading date, `clone_varied_customers`)
and at the menu, repeat the reading journey: an index (its own consumption each journey,
`typed_index`; "45400" for all with --same-consumption, the bench before), understood as a
reading with its index: journey started, index validated against the last reading and usual
use, photo asked; "Sans photo" (summary); "Confirmer" (reading recorded with a reference and a
pre-bill; back to the menu). The pre-bills asked and priced are counted (the rest: the memo's).
Every turn is one write transaction on a file database (WAL; the confirm fsynced, the other two
not, or every one synced with --sync full) and exactly one sendMessage. The engine's clock is
5 December 2026 (inside the reading window) plus the real elapsed time, so the flow does not
depend on the run date.

In-process, both bots share one process: bursts of --pair-n updates alternate --rounds times
and the median of the pairwise ratios is reported. Each bot runs with its own process
settings: the echo with CPython's collector defaults, as PTB's example runs (--echo-gc addad
gives it Addad's), Addad with the tuning `addad telegram` applies.

The bot process is pinned to CPU 0 and the fake server to CPU 1 (unless --no-pin), so CPU per
update and throughput are those of one core, the server's cost apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import itertools
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "123456:TEST"  # tests/fake_botapi.py's default token
BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Addad",
    "username": "addad_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
FIRST_CHAT = 100_000_001
BATCH = 100  # getUpdates returns at most 100 updates
ADDAD_STEPS = ("45400", "Sans photo", "Confirmer")


CPYTHON_GC = gc.get_threshold()  # before anything tunes it


def process_settings(bot: str, args) -> None:
    """Each bot runs with its own process settings, switched before each of its phases: the
    echo as PTB's example runs, with CPython's collector defaults (or, with --echo-gc addad,
    Addad's); Addad with the tuning `addad telegram` applies (bot/wiring.tune_gc). Sharing a
    process, the echo used to inherit Addad's tuning, which speeds it up by 10–25 %."""
    from bot.wiring import tune_gc

    if bot == "addad" or args.echo_gc == "addad":
        tune_gc()
    else:
        gc.unfreeze()
        gc.set_threshold(*CPYTHON_GC)
        gc.collect()


def pin(cpu: int) -> None:
    """Pin the calling thread (and threads it starts later) to one CPU, if there are 2+."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


# ============================================================== the fake server's process
async def serve(rtt_ms: float) -> None:
    """`--serve`: FakeBotAPI timestamping every sendMessage; driven by lines on stdin.

    stdout protocol: "port N" once; "done" when the expected count of sendMessage is reached;
    the JSON records [[chat, text, monotonic], ...] and the server's CPU seconds on "take".
    """
    from tests.fake_botapi import FakeBotAPI

    api = FakeBotAPI(token=TOKEN, rtt=rtt_ms / 1000, record=False)
    records: list[tuple[int, str, float]] = []
    target: list[int] = []
    cpu0 = time.process_time()

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def on_send(params: dict) -> None:
        # Called after the simulated round trip, just before the answer is written.
        records.append((int(params["chat_id"]), str(params.get("text", "")), time.monotonic()))
        if target and len(records) >= target[0]:
            target.clear()
            say("done")

    api.on_send = on_send
    await api.start()
    say(f"port {api.port}")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, *arg = line.split()
        if cmd == "expect":
            target[:] = [int(arg[0])]
            if len(records) >= target[0]:
                target.clear()
                say("done")
        elif cmd == "take":
            say(json.dumps({"records": records, "cpu": time.process_time() - cpu0}, ensure_ascii=False))
            records.clear()
            cpu0 = time.process_time()
    await api.stop()


# ============================================================== where replies are seen
class Sink:
    """Replies seen by the "Telegram side": (chat id, text, time.monotonic())."""

    async def expect(self, n: int) -> None: ...
    async def wait(self, timeout: float) -> bool: ...
    async def take(self) -> tuple[list[tuple[int, str, float]], float]: ...  # records, server CPU
    async def close(self) -> None: ...


class LocalSink(Sink):
    """Fed by InProcessRequest in the bot's own process."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str, float]] = []
        self._target = 0
        self._done = asyncio.Event()

    def record(self, chat: int, text: str) -> None:
        self.records.append((chat, text, time.monotonic()))
        if self._target and len(self.records) >= self._target:
            self._target = 0
            self._done.set()

    async def expect(self, n: int) -> None:
        self._done.clear()
        self._target = n
        if len(self.records) >= n:
            self._target = 0
            self._done.set()

    async def wait(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout)
        return self._done.is_set()

    async def take(self):
        out, self.records = self.records, []
        return out, 0.0


class ServerSink(Sink):
    """The fake Bot API server in a child process (`--serve`), pinned to CPU 1."""

    @classmethod
    async def start(cls, rtt_ms: float, pinned: bool) -> ServerSink:
        self = cls()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--rtt-ms",
            str(rtt_ms),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,
            cwd=str(ROOT),
            preexec_fn=(lambda: pin(1)) if pinned else None,
        )
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        assert line.startswith("port "), f"fake server did not start: {line!r}"
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/bot"
        return self

    async def _send(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def expect(self, n: int) -> None:
        await self._send(f"expect {n}")

    async def wait(self, timeout: float) -> bool:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            return False
        return line.strip() == b"done"

    async def take(self):
        await self._send("take")
        while True:  # skip a late "done" of a phase that timed out
            line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
            if line.startswith(b"{"):
                data = json.loads(line)
                return [tuple(r) for r in data["records"]], data["cpu"]

    async def close(self) -> None:
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# ============================================================== the in-process transport
def in_process_request_class():
    from telegram.request import BaseRequest

    class InProcessRequest(BaseRequest):
        """Answers Bot API calls from memory, like the fake server but without a socket.
        The parameters are JSON-encoded as any real transport does; sendMessage is recorded."""

        def __init__(self, sink: LocalSink, **_: object) -> None:
            self.sink = sink
            self._ids = itertools.count(1000)

        @property
        def read_timeout(self) -> float | None:
            return None

        async def initialize(self) -> None:
            pass

        async def shutdown(self) -> None:
            pass

        async def do_request(
            self,
            url,
            method,
            request_data=None,
            read_timeout=BaseRequest.DEFAULT_NONE,
            write_timeout=BaseRequest.DEFAULT_NONE,
            connect_timeout=BaseRequest.DEFAULT_NONE,
            pool_timeout=BaseRequest.DEFAULT_NONE,
        ):
            name = url.rsplit("/", 1)[-1]
            params = request_data.json_parameters if request_data is not None else {}
            if name == "getMe":
                result: object = BOT_USER
            elif name in ("sendMessage", "editMessageText"):
                chat = int(params["chat_id"])
                text = params.get("text", "")
                result = {
                    "message_id": next(self._ids),
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"},
                    "text": text,
                }
                markup = json.loads(params["reply_markup"]) if "reply_markup" in params else None
                if isinstance(markup, dict) and "inline_keyboard" in markup:
                    result["reply_markup"] = markup  # as the fake server answers
                if name == "sendMessage":
                    self.sink.record(chat, text)
            else:
                result = True
            return 200, json.dumps({"ok": True, "result": result}).encode()

    return InProcessRequest


# ============================================================== the two bots
def build_echo(url: str, request_factory):
    """PTB's bare echo bot, with Addad's transport and per-chat concurrency."""
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    from bot.channels.telegram import PerChatUpdateProcessor

    async def echo(update: Update, context) -> None:
        await update.message.reply_text(update.message.text)

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(url)
        .request(request_factory(connections=64))
        .get_updates_request(request_factory(connections=2, read_timeout=40.0))
        .concurrent_updates(PerChatUpdateProcessor(64))
        .updater(None)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


def build_addad(url: str, engine, request_factory):
    """Addad's application exactly as `addad telegram` builds it (build_application), with
    Telegram's 30 messages/s broadcast limit off (rate_limit=0); for the in-process transport
    the module's AiohttpRequest is swapped for the in-memory one while it is built."""
    import bot.channels.telegram as tg
    from bot.channels.telegram_transport import AiohttpRequest

    adapter = tg.TelegramAdapter(engine)
    patch = (
        contextlib.nullcontext()
        if request_factory is AiohttpRequest
        else mock.patch.object(tg, "AiohttpRequest", request_factory)
    )
    with patch:
        return tg.build_application(TOKEN, url, adapter, concurrency=64, connections=64, rate_limit=0, updater=False)


# ============================================================== Addad's database
SYNC = "light"  # --sync


async def prepare_engine(folder: str, chats: list[int]):
    """A file database with `chats` customers, each linked to a contract of their own and at the
    menu; the engine as bot/wiring.py opens it, with a fixed date."""
    from bot.wiring import open_store, tune_gc
    from conversations.engine import Engine
    from conversations.profile import load_profile
    from conversations.understanding import warm_up
    from storage.clock import SteadyClock
    from tests.chat import clone_customers, seed

    clock = SteadyClock(datetime(2026, 12, 5, 9, 0, tzinfo=UTC))  # the data's date, running on
    warm_up(load_profile().today(clock()))
    store = await open_store(os.path.join(folder, "bench.sqlite3"), clock)  # as the bot opens it
    if SYNC == "full":  # every COMMIT synced by SQLite, as before the light commits (storage/sqlite/db.py)
        store.db.conn.raw.execute("PRAGMA synchronous = FULL")
        store.db.wal_path = None
    await seed(store)
    async with store.transaction() as tx:
        await (clone_customers if SAME_CONSUMPTION else clone_varied_customers)(tx, chats)
    tune_gc()  # as open_engine does
    return Engine(store, load_profile(), clock=clock)


SAME_CONSUMPTION = False  # --same-consumption: every customer types "45400" (the bench before 2026-12-01 20:30)
VARIED: dict[int, tuple[int, int]] = {}  # chat → (its meter's last index, its slot among the customers of its period)
PERIODS = 29  # last readings spread over 29 days: 17 Oct – 14 Nov
UNITS_LOW, UNITS_SPAN, UNITS_STEP = 70, 280, 11


async def clone_varied_customers(tx, chats: list[int]) -> None:
    """Customers as varied as a distributor's (tests/chat.py's clone_customers, varied): each
    meter at an index of its own, its last reading (and so its bills) on one of 29 days, so
    customers share a period only by the day they last read; `typed_index` then gives each
    journey a consumption of its own."""
    from dataclasses import replace
    from datetime import timedelta

    from storage.records import SessionRecord

    base = await tx.contract("1000001")
    bills = await tx.bills("1000001")
    for i, chat in enumerate(chats):
        shift = timedelta(days=i % PERIODS - 14)
        last = 20_000 + 113 * i % 70_000  # 5 dials: under 99,999 with any consumption on top
        step = last - base.last_index
        number = str(5_000_000 + i)
        await tx.upsert_contract(
            replace(
                base,
                contract=number,
                meter_number=f"E-{number}",
                holder_name=f"Client {i}",
                phone=f"+2126{i:08d}",
                last_index=last,
                last_index_date=base.last_index_date + shift,
            )
        )
        for b in bills:
            await tx.upsert_bill(
                replace(
                    b,
                    bill_number=f"{b.bill_number}-{i}",
                    contract=number,
                    period_start=b.period_start + shift,
                    period_end=b.period_end + shift,
                    issue_date=b.issue_date + shift,
                    due_date=b.due_date + shift,
                    index_start=b.index_start + step,
                    index_end=b.index_end + step,
                )
            )
        await tx.link_chat("telegram", str(chat), number, "bill_amount")
        await tx.save_session(SessionRecord("telegram", str(chat), "menu.main", {}, "fr", 0, None))
        VARIED[chat] = (last, i // PERIODS)


def typed_index(chat: int, journey: int) -> str:
    """The index a customer types on its `journey`-th reading: its last index plus 70–349 units
    (6 kWh a day usually, 21–49 days since the last reading: none an outlier). Customers of one
    period hold different slots, so (period, units) repeats only after 25 journeys of a
    customer, more than a run makes: every pre-bill's first pricing misses the memo."""
    last, slot = VARIED[chat]
    return str(last + UNITS_LOW + (slot + UNITS_STEP * journey) % UNITS_SPAN)


def addad_expected() -> list[str]:
    """What each step's reply must contain (and the internal-error text it must not)."""
    from conversations.i18n import translator

    t = translator("fr")
    # The recorded step is one message on Telegram: the reading, then the menu's question, the
    # 📊 chart button (issue 21) on the menu's keyboard (bot/channels/telegram.py offers_joined).
    return [
        (t("reading.ask_photo"),),
        (t("reading.summary", lines="\x00").split("\x00")[0],),
        (t("reading.recorded", reference="\x00").split("\x00")[0],),
    ]


class PrebillCount:
    """Pre-bills asked for and pre-bills computed (the rest: the memo's hits), over the run."""

    def __init__(self) -> None:
        self.asked = self.priced = 0

    def install(self) -> None:
        import conversations.journeys.pricing as pricing
        import conversations.tariff as tariff

        asked, priced = tariff.prebill, tariff._prebill

        def counted_prebill(*a, **kw):
            self.asked += 1
            return asked(*a, **kw)

        def counted_priced(*a, **kw):
            self.priced += 1
            return priced(*a, **kw)

        tariff.prebill = pricing.prebill = counted_prebill
        tariff._prebill = counted_priced

    def report(self) -> str:
        hits = self.asked - self.priced
        share = hits / max(self.asked, 1)
        return f"pre-bills: {self.asked:,} asked, {self.priced:,} priced, {hits:,} from the memo ({share:.0%})"


PREBILLS = PrebillCount()


# ============================================================== workloads
class Workload:
    """Which text each chat sends next and what its reply must be. Addad's chats keep their
    place in the journey from one phase (and transport) to the next, as the database does."""

    def __init__(self, kind: str, chats: list[int]) -> None:
        self.kind, self.chats = kind, chats
        self.step = dict.fromkeys(chats, 0)
        self.expected = addad_expected() if kind == "addad" else []
        self.failed = "Désolé, un incident"  # error.internal's opening

    def next(self, chat: int, uid: int) -> tuple[str, tuple[str, ...]]:
        """(text to send, what each of its replies must contain)."""
        k = self.step[chat]
        self.step[chat] = k + 1
        text = ADDAD_STEPS[k % 3]
        if k % 3 == 0 and self.kind == "addad" and chat in VARIED:
            text = typed_index(chat, k // 3)
        if self.kind == "echo":
            text = f"{text} #{uid}"
            return text, (text,)
        return text, self.expected[k % 3]

    def ok(self, want: str, got: str) -> bool:
        return got == want if self.kind == "echo" else want in got and not got.startswith(self.failed)


uids = itertools.count(1)  # update ids: unique per database (engine de-duplication)


def update_dict(uid: int, chat: int, text: str) -> dict:
    user = {"id": chat, "is_bot": False, "first_name": "Client", "language_code": "fr"}
    return {
        "update_id": uid,
        "message": {
            "message_id": uid,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": chat, "type": "private", "first_name": "Client"},
            "from": user,
        },
    }


@dataclass
class Phase:
    updates: int
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def rate(self) -> float:
        return self.updates / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        v = sorted(self.latencies)
        return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")


async def run_phase(app, sink: Sink, work: Workload, n: int, *, rate: float | None, timeout: float) -> Phase:
    """Offer n updates (round robin over the chats), as a burst (rate=None) or paced; wait
    for n replies; match them per chat and in order."""
    from telegram import Update

    from bot.channels.payloads import check_telegram
    from bot.channels.telegram import _update as polled

    addad = work.kind == "addad"
    sent: dict[int, list[tuple[float, str]]] = {c: [] for c in work.chats}
    plan = []
    for i in range(n):
        chat = work.chats[i % len(work.chats)]
        uid = next(uids)
        text, wants = work.next(chat, uid)
        plan.append((chat, update_dict(uid, chat, text), wants))
    phase = Phase(n)
    await sink.expect(sum(len(wants) for _, _, wants in plan))
    cpu0, t0 = time.process_time(), time.monotonic()
    for i, (chat, data, wants) in enumerate(plan):
        if rate is None:
            if i % BATCH == 0 and i:
                await asyncio.sleep(0)  # one getUpdates batch, then let the bot work
        else:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        # The bot's work in real polling too: PTB's getUpdates parses every update; Addad's
        # polling checks it, then reads a plain text itself or has PTB parse the rest.
        update = await polled(check_telegram(data), app.bot) if addad else Update.de_json(data, app.bot)
        sent[chat].extend((time.monotonic(), want) for want in wants)
        app.update_queue.put_nowait(update)
    phase.complete = await sink.wait(timeout)
    phase.cpu = time.process_time() - cpu0
    records, phase.server_cpu = await sink.take()
    if records:
        phase.wall = max(r[2] for r in records) - t0
    if not phase.complete:
        phase.errors.append(f"only {len(records)} replies to {n} updates within {timeout:.0f} s")
    # Per-chat order: the k-th reply to a chat answers its k-th update.
    cursor = dict.fromkeys(sent, 0)
    for chat, text, at in sorted(records, key=lambda r: r[2]):
        queue, k = sent.get(chat), cursor.get(chat, 0)
        if queue is None or k >= len(queue):
            phase.errors.append(f"chat {chat}: unexpected reply {text[:60]!r}")
            continue
        put_at, want = queue[k]
        cursor[chat] = k + 1
        if not work.ok(want, text):
            phase.errors.append(f"chat {chat} reply {k}: wanted {want[:40]!r}, got {text[:80]!r}")
        phase.latencies.append(at - put_at)
    return phase


@dataclass
class Result:
    bot: str
    transport: str
    burst: Phase
    paced: Phase | None
    rounds: list[Phase] = field(default_factory=list)  # in-process: bursts alternated with the other bot's


IN_PROCESS_URL = "http://in-process.invalid/bot"


def in_process_factory(sink: LocalSink):
    cls = in_process_request_class()
    return lambda **kw: cls(sink, **kw)


async def start_bot(bot: str, url: str, factory, engine):
    app = build_echo(url, factory) if bot == "echo" else build_addad(url, engine, factory)
    await app.initialize()
    await app.start()
    return app


async def stop_bot(app) -> None:
    await app.stop()
    await app.shutdown()


async def warm_up(app, sink: Sink, work: Workload, args, where: str) -> None:
    warm = await run_phase(app, sink, work, args.warmup, rate=None, timeout=burst_timeout(args))
    if warm.errors:
        raise SystemExit(f"{where}: warm-up failed: {warm.errors[:3]}")


def burst_timeout(args) -> float:
    return 30 + args.n / 50


async def paced_phase(app, sink: Sink, work: Workload, args) -> Phase | None:
    if not args.paced:
        return None
    return await run_phase(app, sink, work, args.paced, rate=args.rate, timeout=args.paced / args.rate + 30)


async def run_in_process_pair(args, engine, chats, works) -> list[Result]:
    """Echo and Addad in one process, bursts of --pair-n updates alternated --rounds times: on a
    shared VM whose speed swings by tens of percent from one second to the next, each Addad
    burst is compared with the echo burst run just before it, and the median of those ratios
    is reported. Short bursts, many of them: a pair runs under the same conditions more often."""
    apps, sinks = {}, {}
    try:
        for bot in ("echo", "addad"):
            sinks[bot] = LocalSink()
            apps[bot] = await start_bot(bot, IN_PROCESS_URL, in_process_factory(sinks[bot]), engine)
        for bot in apps:
            process_settings(bot, args)
            await warm_up(apps[bot], sinks[bot], works[bot], args, f"{bot} in-process")
        rounds: dict[str, list[Phase]] = {"echo": [], "addad": []}
        for _ in range(args.rounds):
            for bot in apps:
                process_settings(bot, args)
                rounds[bot].append(
                    await run_phase(
                        apps[bot], sinks[bot], works[bot], args.pair_n, rate=None, timeout=burst_timeout(args)
                    )
                )
        results = []
        for bot in apps:
            by_rate = sorted(rounds[bot], key=lambda p: p.rate)
            process_settings(bot, args)
            paced = await paced_phase(apps[bot], sinks[bot], works[bot], args)
            results.append(Result(bot, "in-process", by_rate[len(by_rate) // 2], paced, rounds[bot]))
        return results
    finally:
        for app in apps.values():
            await stop_bot(app)


async def run_config(bot: str, transport: str, rtt_ms: float, args, engine, chats, works) -> Result:
    from bot.channels.telegram_transport import AiohttpRequest

    if transport == "in-process":
        sink: Sink = LocalSink()
        factory, url = in_process_factory(sink), IN_PROCESS_URL
    else:
        sink = await ServerSink.start(rtt_ms, pinned=not args.no_pin)
        factory, url = AiohttpRequest, sink.url
    app = await start_bot(bot, url, factory, engine)
    try:
        work = works[bot]
        process_settings(bot, args)
        await warm_up(app, sink, work, args, f"{bot} {transport}")
        profiler = cProfile.Profile() if args.profile and bot == "addad" and transport == "in-process" else None
        main_cpu0 = time.thread_time()
        if profiler:
            profiler.enable()
        burst = await run_phase(app, sink, work, args.n, rate=None, timeout=burst_timeout(args))
        if profiler:
            profiler.disable()
            report_profile(profiler, burst, time.thread_time() - main_cpu0)
        return Result(bot, transport, burst, await paced_phase(app, sink, work, args))
    finally:
        await stop_bot(app)
        await sink.close()


def report_profile(profiler: cProfile.Profile, burst: Phase, main_cpu: float) -> None:
    """Where Addad's in-process burst spends its CPU (main thread only; cProfile slows it)."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(f"\n--- cProfile, Addad in-process burst of {burst.updates} (profiled: {burst.rate:,.0f}/s)")
    print(
        f"main thread CPU {main_cpu / burst.updates * 1e6:,.0f} µs/update, all threads "
        f"{burst.cpu / burst.updates * 1e6:,.0f} µs/update (the rest: COMMITs on aiosqlite's thread)"
    )
    print(out.getvalue())


# ============================================================== main
def table(results: list[Result], args) -> str:
    rows = [
        "| transport | bot | updates/s (burst) | CPU/update | p50 / p99 at %d/s | server CPU | order, replies |"  # noqa: UP031 (a %-template filled below)
        % args.rate,
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, p = r.burst, r.paced
        lat = f"{p.pct(0.5):.1f} / {p.pct(0.99):.1f} ms" if p else "—"
        errors = b.errors + (p.errors if p else [])
        server = f"{b.server_cpu / b.updates * 1e6:,.0f} µs/upd" if r.transport != "in-process" else "—"
        rows.append(
            f"| {r.transport} | {r.bot} | {b.rate:,.0f} | {b.cpu / b.updates * 1e6:,.0f} µs | {lat} | "
            f"{server} | {'ok' if not errors else f'{len(errors)} ERRORS'} |"
        )
    by = {(r.transport, r.bot): r for r in results}
    for transport in dict.fromkeys(r.transport for r in results):
        e, a = by.get((transport, "echo")), by.get((transport, "addad"))
        if e and a:
            ratio = a.burst.rate / e.burst.rate
            if a.rounds and e.rounds:
                ratio = statistics.median([x.rate / y.rate for x, y in zip(a.rounds, e.rounds, strict=True)])
            rows.append(
                f"| {transport} | addad / echo | {ratio:.2f}× | "
                f"{a.burst.cpu / a.burst.updates / (e.burst.cpu / e.burst.updates):.1f}× | "
                + (f"{a.paced.pct(0.99) / e.paced.pct(0.99):.1f}× (p99) | | |" if a.paced and e.paced else "| | |")
            )
    return "\n".join(rows)


def callgrind(state: str) -> None:
    """Switch valgrind's callgrind instrumentation of this process on or off (`--callgrind`: run
    under `valgrind --tool=callgrind --instr-atstart=no`, the measured rounds alone counted)."""
    import subprocess

    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


async def engine_steps(args) -> None:
    """`--engine-only`: the same journey straight on the engine (no PTB, no transport): CPU per
    turn of each step, the median over rounds of every chat taking that step together."""
    from conversations.events import Inbound

    if not args.no_pin:
        pin(0)
    chats = [FIRST_CHAT + i for i in range(args.chats)]
    with tempfile.TemporaryDirectory(prefix="bench-telegram-") as folder:
        engine = await prepare_engine(folder, chats)
        per_step: dict[str, list[float]] = {s: [] for s in ADDAD_STEPS}
        try:
            for r in range(args.rounds + 2):  # two rounds of warm-up
                if args.callgrind and r == 2:
                    callgrind("on")
                for step in ADDAD_STEPS:
                    cpu0 = time.process_time()
                    await asyncio.gather(
                        *(
                            engine.respond(
                                Inbound(
                                    "telegram",
                                    str(c),
                                    str(next(uids)),
                                    text=typed_index(c, r) if step == ADDAD_STEPS[0] and c in VARIED else step,
                                    lang_hint="fr",
                                )
                            )
                            for c in chats
                        )
                    )
                    if r >= 2:
                        per_step[step].append((time.process_time() - cpu0) / len(chats) * 1e6)
            if args.callgrind:
                callgrind("off")
        finally:
            await engine.store.close()
    if args.callgrind:
        print(f"callgrind counted {args.rounds} rounds of {len(chats)} chats × 3 steps: divide its total by that")
    print(PREBILLS.report())
    for step, cpu in per_step.items():
        print(f"{step!r:14s} {statistics.median(cpu):6.1f} µs of CPU per turn (median of {len(cpu)} rounds)")
    print(f"journey mean   {sum(statistics.median(c) for c in per_step.values()) / 3:6.1f} µs per turn")


async def main(args) -> None:
    if not args.no_pin:
        pin(0)  # before aiosqlite's thread exists: it inherits CPU 0
    errors = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(Count(level=logging.ERROR))

    chats = [FIRST_CHAT + i for i in range(args.chats)]
    bots = [args.only] if args.only else ["echo", "addad"]
    transports = [("in-process", 0.0), ("http 0 ms", 0.0), (f"http {args.rtt_ms:g} ms", args.rtt_ms)]
    if args.in_process:
        transports = transports[:1]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-telegram-") as folder:
        engine = await prepare_engine(folder, chats) if "addad" in bots else None
        works = {b: Workload(b, chats) for b in bots}
        try:
            for name, rtt in transports:
                if name == "in-process" and len(bots) == 2 and args.rounds > 1 and not args.profile:
                    pair = await run_in_process_pair(args, engine, chats, works)
                else:
                    pair = [await run_config(bot, name, rtt, args, engine, chats, works) for bot in bots]
                for r in pair:
                    results.append(r)
                    p = r.paced
                    print(
                        f"{name:12s} {r.bot:5s} burst {r.burst.rate:7,.0f}/s  CPU {r.burst.cpu / r.burst.updates * 1e6:6,.0f} µs/update"  # noqa: E501
                        + (f"  paced {args.rate:g}/s: p50 {p.pct(0.5):6.1f} ms p99 {p.pct(0.99):6.1f} ms" if p else "")
                        + (
                            f"  ERRORS {(r.burst.errors + (p.errors if p else []))[:3]}"
                            if r.burst.errors or (p and p.errors)
                            else ""
                        )
                        + (
                            # The bot's CPU over the burst's wall time (1.0: never waiting).
                            f"  busy {statistics.median(x.cpu / x.wall for x in r.rounds if x.wall):.2f}"
                            if r.rounds
                            else ""
                        )
                        + (
                            f"  (median of {len(r.rounds)} bursts: "
                            + ", ".join(f"{x.rate:,.0f}" for x in r.rounds)
                            + "/s)"
                            if r.rounds
                            else ""
                        ),
                        flush=True,
                    )
        finally:
            if engine is not None:
                await engine.store.close()
    print(
        f"\n{args.n} updates per burst (in-process: {args.rounds} × {args.pair_n} per bot), "
        f"{args.paced} paced at {args.rate:g}/s, {args.chats} chats, warm-up {args.warmup}; "
        f"bot {'pinned to CPU 0' if not args.no_pin else 'not pinned'}; "
        f"echo with {'CPython' if args.echo_gc == 'cpython' else 'Addad'}'s GC settings\n"
    )
    print(table(results, args))
    print(f"\n{PREBILLS.report()}")
    if errors:
        print(f"\n{len(errors)} error log line(s), first: {errors[0][:200]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="updates per burst (throughput, CPU)")
    ap.add_argument("--paced", type=int, default=1500, help="updates offered at --rate (latency); 0: none")
    ap.add_argument("--rate", type=float, default=300.0, help="paced updates per second")
    ap.add_argument("--rtt-ms", type=float, default=50.0, help="round trip of the third transport")
    ap.add_argument("--chats", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--only", choices=["echo", "addad"])
    ap.add_argument("--quick", action="store_true", help="small counts: under a minute")
    ap.add_argument("--in-process", action="store_true", help="only the in-process transport")
    ap.add_argument("--rounds", type=int, default=15, help="in-process: alternated bursts per bot (median)")
    ap.add_argument("--pair-n", type=int, default=1000, help="in-process: updates per alternated burst")
    ap.add_argument("--profile", action="store_true", help="cProfile Addad's in-process burst")
    ap.add_argument("--engine-only", action="store_true", help="CPU per turn of each step, on the engine alone")
    ap.add_argument(
        "--callgrind",
        action="store_true",
        help="with --engine-only under valgrind --tool=callgrind --instr-atstart=no: count the measured rounds only",
    )
    ap.add_argument(
        "--echo-gc",
        choices=["cpython", "addad"],
        default="cpython",
        help="the echo's collector settings: CPython's defaults (as PTB's example runs) or Addad's",
    )
    ap.add_argument("--no-pin", action="store_true", help="do not pin the bot and the server to CPUs")
    ap.add_argument(
        "--sync",
        choices=["light", "full"],
        default="light",
        help="Addad's commits: as the bot makes them (light) or every one synced (full, the code before)",
    )
    ap.add_argument(
        "--no-prebill-memo",
        action="store_true",
        help="every pre-bill priced anew: here 300 customers confirm the same consumption over the same "
        "period, which a distributor's customers seldom share, so the memo flatters this bench",
    )
    ap.add_argument(
        "--same-consumption",
        action="store_true",
        help='every customer types "45400" over the same period (the bench before 2026-12-01 20:30, '
        "which flatters the memo)",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.no_prebill_memo:
        import conversations.tariff

        class Forgetful(dict):
            def get(self, key, default=None):
                return default  # every lookup misses: each pre-bill computed, as without the memo

        conversations.tariff._PREBILLS = Forgetful()
    SYNC = args.sync
    SAME_CONSUMPTION = args.same_consumption
    if not args.serve:
        PREBILLS.install()
    if args.serve:
        asyncio.run(serve(args.rtt_ms))
    elif args.engine_only:
        asyncio.run(engine_steps(args))
    else:
        if args.quick:
            args.n, args.paced, args.warmup, args.chats, args.rounds, args.pair_n = 600, 300, 100, 100, 3, 600
        asyncio.run(main(args))
