"""A fake Telegram Bot API server on 127.0.0.1, speaking HTTP like the real one (or a local
Bot API server): the bot under test cannot tell the difference.

It queues updates for getUpdates (long polling, offsets acknowledged as Telegram does), records
every call, and can inject faults: a 429 with retry_after, a delay (simulated round trip), or a
response held until released (to kill the bot between "Telegram accepted" and "the bot noted it").
Used by tests/test_telegram*.py and by bench/bench_telegram.py; runnable on its own:
`python -m tests.fake_botapi --port 8081 [--rtt-ms 50]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

BOT_ID = 7000001
BOT_USERNAME = "addad_test_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> int | None:
        v = self.params.get("chat_id")
        return int(v) if v is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def markup(self) -> dict:
        return self.params.get("reply_markup") or {}

    def inline_buttons(self) -> list[dict]:
        return [b for row in self.markup.get("inline_keyboard", []) for b in row]

    def keyboard_buttons(self) -> list[dict]:
        return [b if isinstance(b, dict) else {"text": b} for row in self.markup.get("keyboard", []) for b in row]


class FakeBotAPI:
    def __init__(
        self,
        *,
        token: str = "123456:TEST",
        rtt: float = 0.0,
        record: bool = True,
        first_update_id: int = 1,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        # Messages are dated by the test's clock, which the bot under test shares (`clock.setting`
        # is its ADDAD_CLOCK); a benchmark run on its own dates them by the system clock.
        self.clock = clock
        self.rtt = rtt  # seconds added to every answer (a distant Telegram)
        self.record = record
        self.calls: list[Call] = []
        self.updates: list[dict] = []  # not yet acknowledged by an offset
        self.redeliver: list[dict] = []  # sent once more whatever the offset (Telegram repeating itself)
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Condition()
        self._new_call = asyncio.Condition()
        self.faults: list[tuple[str, Callable[[dict], bool], dict]] = []
        self.holds: list[tuple[str, Callable[[dict], bool], asyncio.Event]] = []
        self.files: dict[str, bytes] = {}
        self.declared_sizes: dict[str, int] = {}  # getFile's file_size when it is not the file's own
        self.downloads: list[str] = []  # file paths fetched from /file/bot<token>/…
        self.webhook: dict[str, Any] | None = None
        self.sent_count = 0  # sendMessage answered (cheap counter for benchmarks)
        self.on_send: Callable[[dict], None] | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    def _date(self) -> int:
        return int(self.clock().timestamp()) if self.clock is not None else int(time.time())

    # ------------------------------------------------------------------ server
    async def start(self, port: int = 0) -> FakeBotAPI:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing = True
        for _, _, event in self.holds:
            event.set()
        async with self._new_update:
            self._new_update.notify_all()  # long polls in progress end now
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # ------------------------------------------------------------------ updates from "users"
    def _user(self, chat_id: int, lang: str | None) -> dict:
        user = {"id": chat_id, "is_bot": False, "first_name": f"Client{chat_id}"}
        if lang:
            user["language_code"] = lang
        return user

    def _message(self, chat_id: int, lang: str | None, **fields) -> dict:
        return {
            "message_id": next(self._message_ids),
            "date": self._date(),
            "chat": {"id": chat_id, "type": "private", "first_name": f"Client{chat_id}"},
            "from": self._user(chat_id, lang),
            **fields,
        }

    def push(self, update: dict) -> int:
        update.setdefault("update_id", next(self._update_ids))
        self.updates.append(update)
        asyncio.get_running_loop().create_task(self._notify_update())
        return update["update_id"]

    async def _notify_update(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    def text(self, chat_id: int, text: str, *, lang: str | None = "fr") -> int:
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else None
        )
        msg = self._message(chat_id, lang, text=text)
        if entities:
            msg["entities"] = entities
        return self.push({"message": msg})

    def press(self, chat_id: int, data: str, *, message: Call | None = None, lang: str | None = "fr") -> int:
        """A tap on an inline button; `message` is the bot message that carried it."""
        shown = {
            "message_id": (message.params.get("_message_id") if message else None) or 1,
            "date": self._date(),
            "chat": {"id": chat_id, "type": "private"},
            "text": message.text if message else "…",
        }
        if message and message.markup:
            shown["reply_markup"] = message.markup
        return self.push(
            {
                "callback_query": {
                    "id": f"cq{next(self._message_ids)}",
                    "from": self._user(chat_id, lang),
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": shown,
                }
            }
        )

    def contact(self, chat_id: int, phone: str, *, own: bool = True, lang: str | None = "fr") -> int:
        contact = {"phone_number": phone, "first_name": "Moi"}
        if own:
            contact["user_id"] = chat_id
        return self.push({"message": self._message(chat_id, lang, contact=contact)})

    def photo(
        self,
        chat_id: int,
        file_id: str,
        *,
        caption: str | None = None,
        lang: str | None = "fr",
        data: bytes | None = None,
    ) -> int:
        from .images import jpeg

        self.files[file_id] = jpeg() if data is None else data
        sizes = [
            {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
            {"file_id": file_id, "file_unique_id": "b", "width": 1280, "height": 960},
        ]
        fields: dict[str, Any] = {"photo": sizes}
        if caption:
            fields["caption"] = caption
        return self.push({"message": self._message(chat_id, lang, **fields)})

    def document(
        self, chat_id: int, file_id: str, mime: str, *, lang: str | None = "fr", data: bytes = b"document"
    ) -> int:
        self.files[file_id] = data
        return self.push(
            {
                "message": self._message(
                    chat_id,
                    lang,
                    document={
                        "file_id": file_id,
                        "file_unique_id": "d",
                        "file_name": "compteur.jpg",
                        "mime_type": mime,
                    },
                )
            }
        )

    def sticker(self, chat_id: int, *, lang: str | None = "fr") -> int:
        return self.push(
            {
                "message": self._message(
                    chat_id,
                    lang,
                    sticker={
                        "file_id": "stk",
                        "file_unique_id": "stk",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                    },
                )
            }
        )

    # ------------------------------------------------------------------ faults
    def fail_once(
        self, method: str, *, status: int = 429, retry_after: int = 1, when: Callable[[dict], bool] = lambda p: True
    ) -> None:
        body = {
            "ok": False,
            "error_code": status,
            "description": f"Too Many Requests: retry after {retry_after}" if status == 429 else "Bad Gateway",
        }
        if status == 429:
            body["parameters"] = {"retry_after": retry_after}
        self.faults.append((method, when, {"status": status, "body": body}))

    def hold(self, method: str, when: Callable[[dict], bool]) -> asyncio.Event:
        """Record matching calls but do not answer them until the returned event is set."""
        event = asyncio.Event()
        self.holds.append((method, when, event))
        return event

    # ------------------------------------------------------------------ waiting, for tests
    async def wait_for(self, predicate: Callable[[Call], bool], *, after: int = 0, timeout: float = 10.0) -> Call:
        """The first recorded call from index `after` on that matches."""
        deadline = time.monotonic() + timeout
        async with self._new_call:
            while True:
                for call in self.calls[after:]:
                    if predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.text[:60]) for c in self.calls[after:]]
                    raise AssertionError(f"no matching Bot API call within {timeout}s; got {seen}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_call.wait(), left)

    async def acknowledged(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the bot has confirmed `update_id` (asked for a later offset)."""
        deadline = time.monotonic() + timeout
        while any(u["update_id"] <= update_id for u in self.updates):
            if time.monotonic() > deadline:
                raise AssertionError(f"update {update_id} never acknowledged")
            await asyncio.sleep(0.02)

    def sent(self, chat_id: int | None = None, *, after: int = 0) -> list[Call]:
        return [
            c
            for c in self.calls[after:]
            if c.method in ("sendMessage", "editMessageText") and (chat_id is None or c.chat_id == chat_id)
        ]

    # ------------------------------------------------------------------ the API
    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            raw: dict[str, Any] = dict(request.query)
        elif request.content_type == "application/json":
            raw = await request.json()
        else:
            raw = dict(await request.post())
        params = {}
        for key, value in raw.items():
            if isinstance(value, web.FileField):  # an upload (sendPhoto): its bytes
                value = value.file.read()
            if isinstance(value, str) and value[:1] in "{[":
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[key] = value
        return params

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await self._params(request)
        if method != "getUpdates":
            call = Call(method, params)
            if self.record:
                self.calls.append(call)
                async with self._new_call:
                    self._new_call.notify_all()
            for m, when, event in self.holds:
                if m == method and when(params):
                    await event.wait()
            for i, (m, when, fault) in enumerate(self.faults):
                if m == method and when(params):
                    del self.faults[i]
                    return web.json_response(fault["body"], status=fault["status"])
        if self.rtt:
            await asyncio.sleep(self.rtt)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response({"ok": True, "result": True})
        result = await handler(params)
        if method == "sendMessage":
            call.params["_message_id"] = result["message_id"]
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        self.downloads.append(request.match_info["path"])
        data = self.files.get(request.match_info["path"].split("/")[-1])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _m_getMe(self, p: dict) -> dict:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Addad",
            "username": BOT_USERNAME,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, p: dict) -> list[dict]:
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        timeout = float(p.get("timeout") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed ones are gone
        deadline = time.monotonic() + timeout
        async with self._new_update:
            while not self.updates and not self.redeliver and time.monotonic() < deadline and not self._closing:
                try:
                    await asyncio.wait_for(self._new_update.wait(), max(deadline - time.monotonic(), 0.001))
                except TimeoutError:
                    break
        again, self.redeliver = self.redeliver, []
        return (self.updates + again)[:limit] if again else self.updates[:limit]

    async def _m_sendMessage(self, p: dict) -> dict:
        self.sent_count += 1
        if self.on_send:
            self.on_send(p)
        msg = {
            "message_id": next(self._message_ids),
            "date": self._date(),
            "chat": {"id": int(p["chat_id"]), "type": "private"},
            "text": p.get("text", ""),
        }
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        return msg

    async def _m_sendPhoto(self, p: dict) -> dict:
        """An uploaded photo (multipart): kept in the call's params as bytes (`photos()`)."""
        if not isinstance(p.get("photo"), bytes):
            raise web.HTTPBadRequest(
                text='{"ok":false,"error_code":400,"description":"Bad Request: no photo uploaded"}',
                content_type="application/json",
            )
        return {
            "message_id": next(self._message_ids),
            "date": self._date(),
            "chat": {"id": int(p["chat_id"]), "type": "private"},
            "photo": [{"file_id": "uploaded", "file_unique_id": "uploaded", "width": 800, "height": 450}],
            **({"caption": p["caption"]} if p.get("caption") else {}),
        }

    def photos(self, chat_id: int | None = None, *, after: int = 0) -> list[Call]:
        """sendPhoto calls (the upload's bytes in `params["photo"]`, its caption in `params["caption"]`)."""
        return [c for c in self.calls[after:] if c.method == "sendPhoto" and (chat_id is None or c.chat_id == chat_id)]

    async def _m_editMessageText(self, p: dict) -> dict:
        return {
            "message_id": int(p.get("message_id") or 1),
            "date": self._date(),
            "chat": {"id": int(p["chat_id"]), "type": "private"},
            "text": p.get("text", ""),
        }

    async def _m_getFile(self, p: dict) -> dict:
        file_id = p["file_id"]
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": self.declared_sizes.get(file_id, len(self.files.get(file_id, b""))),
            "file_path": f"photos/{file_id}",
        }

    async def _m_getWebhookInfo(self, p: dict) -> dict:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_setWebhook(self, p: dict) -> bool:
        self.webhook = p
        return True

    async def _m_deleteWebhook(self, p: dict) -> bool:
        self.webhook = None
        return True


async def _serve(port: int, rtt_ms: float, token: str) -> None:
    api = FakeBotAPI(token=token, rtt=rtt_ms / 1000, record=False)
    await api.start(port)
    print(f"fake Bot API on {api.base_url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--rtt-ms", type=float, default=0.0)
    ap.add_argument("--token", default="123456:TEST")
    args = ap.parse_args()
    asyncio.run(_serve(args.port, args.rtt_ms, args.token))
