"""A fake Graph API on 127.0.0.1 and real-shaped, signed Cloud API webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from conversations.i18n import LRI, PDI

from .chat import START

PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "app-secret-ünïcode-✓"
VERIFY_TOKEN = "verify-me"
_ids = itertools.count(1)


class FakeGraphAPI:
    def __init__(self) -> None:
        self.sent: list[dict] = []  # request bodies of accepted messages
        self.attempts: list[dict] = []  # every POST, refused ones included
        self.failures: list[tuple[int, dict]] = []
        # While True, every message is held unanswered; once False, what was held is refused
        # (503): its sender died meanwhile, nothing of it reached anyone.
        self.stall = False
        # While True, every message waits unanswered; once False, what waited is accepted.
        self.hold = False
        self.media: dict[str, bytes] = {}  # media id → the file's bytes
        self.declared_sizes: dict[str, int] = {}  # file_size the media endpoint says, when not the file's own
        self.media_requests: list[str] = []  # every GET of a media id or a media URL
        self.uploads: dict[str, tuple[str, bytes]] = {}  # media id → (type, bytes) of what the bot uploaded
        self.refuse_uploads = False  # every upload answered 400 (a file Meta does not take)
        self._new = asyncio.Condition()
        self.port = 0

    async def start(self) -> FakeGraphAPI:
        app = web.Application()
        app.router.add_post("/v21.0/{phone}/messages", self._messages)
        app.router.add_post("/v21.0/{phone}/media", self._upload)
        app.router.add_get("/v21.0/{media_id}", self._media_info)
        app.router.add_get("/lookaside/{media_id}", self._media_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v21.0"

    def fail_once(self, status: int = 429, code: int = 130429) -> None:
        self.failures.append((status, {"error": {"message": "Rate limit hit", "type": "OAuthException", "code": code}}))

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert request.headers["Authorization"] == "Bearer graph-token"
        assert request.match_info["phone"] == PHONE_NUMBER_ID
        self.attempts.append(body)
        if self.stall:
            while self.stall:
                await asyncio.sleep(0.05)
            return web.json_response({"error": {"message": "stalled", "code": 131000}}, status=503)
        while self.hold:
            await asyncio.sleep(0.02)
        if self.failures:
            status, error = self.failures.pop(0)
            return web.json_response(error, status=status)
        wamid = f"wamid.out.{len(self.sent) + 1}"
        body["_wamid"] = wamid
        self.sent.append(body)
        async with self._new:
            self._new.notify_all()
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        """POST /{phone-number-id}/media, multipart as the Cloud API takes it: the new media id."""
        assert request.headers["Authorization"] == "Bearer graph-token"
        assert request.match_info["phone"] == PHONE_NUMBER_ID
        form = await request.post()
        file = form.get("file")
        if self.refuse_uploads or form.get("messaging_product") != "whatsapp" or not isinstance(file, web.FileField):
            return web.json_response({"error": {"message": "(#100) Param file is required", "code": 100}}, status=400)
        media_id = f"up.{len(self.uploads) + 1}"
        self.uploads[media_id] = (str(form.get("type")), file.file.read())
        return web.json_response({"id": media_id})

    async def _media_info(self, request: web.Request) -> web.Response:
        """GET /{media-id}: the file's URL (valid 5 minutes at Meta), type, hash and size."""
        assert request.headers["Authorization"] == "Bearer graph-token"
        media_id = request.match_info["media_id"]
        self.media_requests.append(media_id)
        data = self.media.get(media_id)
        if data is None:
            return web.json_response({"error": {"message": "Unsupported get request", "code": 100}}, status=400)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"http://127.0.0.1:{self.port}/lookaside/{media_id}",
                "mime_type": "image/jpeg",
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": self.declared_sizes.get(media_id, len(data)),
                "id": media_id,
            }
        )

    async def _media_file(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer graph-token":
            return web.Response(status=401)
        media_id = request.match_info["media_id"]
        self.media_requests.append(f"lookaside/{media_id}")
        data = self.media.get(media_id)
        return web.Response(body=data, content_type="image/jpeg") if data is not None else web.Response(status=404)

    async def wait_for(self, predicate, *, after: int = 0, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        async with self._new:
            while True:
                for m in self.sent[after:]:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching Graph API message; got {[text_of(m)[:60] for m in self.sent[after:]]}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), left)


def whatsapp_settings(database, graph_url: str, **more: Any):
    """The settings of an `addad whatsapp` against the fake Graph API (tests and benches)."""
    from bot.config import Settings

    return Settings(
        _env_file=None,
        database=str(database),
        whatsapp_token="graph-token",
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_url=graph_url,
        **more,
    )


def text_of(m: dict) -> str:
    if m.get("type") == "text":
        return m["text"]["body"]
    if m.get("type") == "interactive":
        return m["interactive"]["body"]["text"]
    if m.get("type") == "template":
        return json.dumps(m["template"], ensure_ascii=False)
    if m.get("type") == "image":
        return m["image"].get("caption", "")
    return ""


def choices_of(m: dict) -> list[tuple[str, str]]:
    inter = m.get("interactive") or {}
    action = inter.get("action") or {}
    if inter.get("type") == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
    if inter.get("type") == "list":
        return [(r["id"], r["title"]) for s in action["sections"] for r in s["rows"]]
    return []


def delivery(messages: list[dict] = (), statuses: list[dict] = (), name: str = "Fatima") -> dict:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "212522000000", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def message(sender: str, kind: str, content: dict, wamid: str | None = None, *, at: datetime = START) -> dict:
    """A Cloud API message, stamped `at` (the test's time; the bot does not read it)."""
    return {
        "from": sender,
        "id": wamid or f"wamid.HBgM{next(_ids):06d}",
        "timestamp": str(int(at.timestamp())),
        "type": kind,
        kind: content,
    }


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WhatsAppProcess:
    """`python -m bot whatsapp` as a separate process (for kill -9 and restart), on the test's
    clock (ADDAD_CLOCK, set by tests/conftest.py), against the fake Graph API."""

    def __init__(self, graph: FakeGraphAPI, database: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/whatsapp"
        self.env = {
            **os.environ,
            "ADDAD_DATABASE": str(database),
            "ADDAD_WHATSAPP_TOKEN": "graph-token",
            "ADDAD_WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "ADDAD_WHATSAPP_APP_SECRET": APP_SECRET,
            "ADDAD_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "ADDAD_WHATSAPP_API_URL": graph.url,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        self.cwd = database.parent
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.log = open(self.cwd / "whatsapp.log", "ab")  # noqa: SIM115 (open while the process runs)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "whatsapp", "--listen", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:  # serving once /healthz answers
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("addad whatsapp did not start: " + self.output()[-2000:])
                await asyncio.sleep(0.05)

    async def post(self, http: aiohttp.ClientSession, payload: dict) -> int:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        async with http.post(self.url, data=body, headers=headers) as r:
            return r.status

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    async def stop(self) -> int | None:
        """SIGTERM (the event loop keeps serving the fake Graph API meanwhile); None if not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def output(self) -> str:
        return (self.cwd / "whatsapp.log").read_text(errors="replace")


def workers_on(graph: FakeGraphAPI, database: str, folder: Path, names=("a", "b")) -> list[WhatsAppProcess]:
    """`addad whatsapp` workers on one database (a PostgreSQL URL), each run in a folder of its
    own under `folder` (its log there)."""
    workers = []
    for name in names:
        (folder / name).mkdir()
        w = WhatsAppProcess(graph, folder / name / "unused")  # (the path only places its folder)
        w.env["ADDAD_DATABASE"] = database
        workers.append(w)
    return workers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WaUser:
    """A WhatsApp user writing to the business number; the webhook is posted as Meta does."""

    def __init__(self, http: aiohttp.ClientSession, url: str, graph: FakeGraphAPI, phone: str) -> None:
        self.http, self.url, self.graph, self.phone = http, url, graph, phone
        self.replies: list[dict] = []

    async def post(self, payload: dict, *, signature: str | None = "good") -> int:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Hub-Signature-256"] = sign(body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self.http.post(self.url, data=body, headers=headers) as r:
            return r.status

    async def _turn(self, msg: dict, settle: float = 0.15) -> list[dict]:
        start = len(self.graph.sent)
        assert await self.post(delivery([msg])) == 200
        await self.graph.wait_for(lambda m: m["to"] == self.phone, after=start)
        seen = -1
        while seen != len(self.graph.sent):
            seen = len(self.graph.sent)
            await asyncio.sleep(settle)
        self.replies = [m for m in self.graph.sent[start:] if m["to"] == self.phone]
        return self.replies

    async def send(self, text: str) -> list[dict]:
        return await self._turn(message(self.phone, "text", {"body": text}))

    async def send_image(self, media_id: str, caption: str | None = None, data: bytes | None = None) -> list[dict]:
        from .images import jpeg

        if data is not None or media_id not in self.graph.media:
            self.graph.media[media_id] = jpeg() if data is None else data
        content = {"mime_type": "image/jpeg", "sha256": "abc=", "id": media_id}
        if caption:
            content["caption"] = caption
        return await self._turn(message(self.phone, "image", content))

    def last_choices(self) -> tuple[str, list[tuple[str, str]]]:
        for m in reversed(self.graph.sent):
            if m["to"] == self.phone and choices_of(m):
                return m["interactive"]["type"], choices_of(m)
        raise AssertionError("no interactive message")

    async def tap(self, label: str) -> list[dict]:
        kind, choices = self.last_choices()
        matches = [(i, t) for i, t in choices if label.casefold() in t.casefold()]
        assert len(matches) == 1, f"no single choice {label!r} in {choices}"
        reply_kind = "button_reply" if kind == "button" else "list_reply"
        return await self._turn(
            message(
                self.phone,
                "interactive",
                {"type": reply_kind, reply_kind: {"id": matches[0][0], "title": matches[0][1]}},
            )
        )

    @property
    def text(self) -> str:
        return "\n".join(text_of(m) for m in self.replies).replace(LRI, "").replace(PDI, "")
