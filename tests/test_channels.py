"""The channel seams (issue 16): the shared rendering helpers, what the engine tells an adapter,
the outbox changes in the dispatcher, the GC tuning and the imports kept apart."""

from __future__ import annotations

import gc
import subprocess
import sys

import orjson

from bot.channels import console, telegram, whatsapp
from bot.channels.base import Limits, numbered, plan
from bot.config import Settings
from bot.wiring import open_engine
from conversations.dispatch import DeliveryReport, Dispatcher
from conversations.engine import Engine
from conversations.events import Button, Inbound, Reply, replies_from_json, replies_to_json

from .chat import Chat

BUTTONS = tuple(Button(f"p{i}", f"Choix {i}") for i in range(4))


def test_limits_decide_buttons_or_numbered_text():
    assert Limits(100, buttons=3, label=20).fits(BUTTONS[:3])
    assert not Limits(100, buttons=3, label=20).fits(BUTTONS)
    assert not Limits(100, buttons=10, label=5).fits(BUTTONS)
    assert not Limits(100).fits(BUTTONS) and Limits(100).fits(())  # no buttons at all (console)
    assert numbered(BUTTONS[:2]) == ["1. Choix 0", "2. Choix 1"]
    # Each channel declares its limits and whether it is a pull channel.
    assert (console.ConsoleChat.pull, telegram.TelegramAdapter.pull, whatsapp.WhatsAppService.pull) == (
        True,
        False,
        False,
    )
    assert whatsapp.LIMITS.buttons == 10 and console.LIMITS.buttons is None


def test_whatsapp_renders_with_the_shared_helpers_not_telegram():
    code = "import sys, bot.channels.whatsapp; print('bot.channels.telegram' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert telegram.plan is plan and whatsapp.plan is plan
    five = whatsapp.render([Reply("Q", (*BUTTONS, Button("p9", "Choix 9")))], "fr")
    assert five[0]["type"] == "interactive" and five[0]["interactive"]["type"] == "list"


def test_no_command_module_imports_the_cli():
    code = (
        "import sys, bot.channels.console, bot.data_commands, bot.backoffice_cli, bot.runtime;"
        "print('bot.cli' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_kept_replies_written_by_the_old_code_still_load():
    old = orjson.dumps(
        [
            {"text": "a", "buttons": [["x", "X", None, None]], "ask": None, "edit_last": False, "kind": "notice"},
            {"text": "b", "buttons": [], "ask": "photo", "edit_last": False, "kind": "text"},
        ]
    ).decode()
    assert replies_from_json(old) == [Reply("a", (Button("x", "X"),)), Reply("b", ask="photo")]
    replies = [Reply("c", (Button("y", "Y", request="contact"),), ask="contact")]
    assert replies_from_json(replies_to_json(replies)) == replies


async def test_the_engine_names_no_channel_and_tells_the_language(engine):
    assert Engine.__init__.__kwdefaults__["pull_channels"] == frozenset()
    outcome = await engine.respond(Inbound(channel="test", user_id="u1", message_id="m1", text="bonjour"))
    assert outcome.replies and outcome.lang == "fr"
    again = await engine.respond(Inbound(channel="test", user_id="u1", message_id="m1", text="bonjour"), resend=True)
    assert again.replies == outcome.replies and again.lang == "fr"
    ar = await engine.respond(Inbound(channel="test", user_id="u2", message_id="m2", text="السلام عليكم"))
    assert ar.lang == "ar"


async def test_adapters_queue_and_report_through_the_dispatcher(engine):
    chat = Chat(engine, channel="whatsapp", user="212600000001")
    await chat.send("bonjour")
    dispatcher = Dispatcher(engine.store, engine.profile, [])
    await dispatcher.queue_replies("whatsapp", "212600000001", "fr", [{"messages": [], "text": ""}])
    async with engine.store.snapshot() as tx:
        (msg,) = await tx.outbox_for_chat("whatsapp", "212600000001", statuses=("pending",))
    assert msg.kind == "reply"
    assert await dispatcher.last_customer_turn("whatsapp", "212600000001") is not None
    async with engine.store.transaction() as tx:
        assert await tx.claim_outbox(msg.id, now=engine.clock())
    # The send's answer was lost; the channel's report carries our id back.
    await dispatcher.apply_reports("whatsapp", [DeliveryReport("wamid.1", msg.id)])
    async with engine.store.snapshot() as tx:
        assert (await tx.outbox_message(msg.id)).status == "sent"
    await dispatcher.apply_reports("whatsapp", [DeliveryReport("wamid.1", outcome="held", error="window")])
    async with engine.store.snapshot() as tx:
        assert (await tx.outbox_message(msg.id)).status == "held"


async def test_gc_is_tuned_by_the_bot_commands_only(tmp_path, monkeypatch):
    before = gc.get_threshold(), gc.get_freeze_count()
    monkeypatch.setenv("ADDAD_DATABASE", str(tmp_path / "gc.sqlite3"))
    async with open_engine(Settings()) as engine:  # as the console and the demo open it
        assert engine.pull_channels == frozenset()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
