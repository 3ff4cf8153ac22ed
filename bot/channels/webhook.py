"""What every webhook does before it trusts a request: a bounded body, bounded concurrency.

Anyone on the Internet can POST to a webhook. Before the signature (WhatsApp) or once the secret
header (Telegram) is checked, a request costs us only what this gate lets it cost:

- a `Content-Length` above `max_body` (default 256 KB, far above a real Meta or Telegram
  delivery) → 413 without reading a byte; a chunked body or one without a length is cut at
  `max_body` while reading → 413;
- at most `max_reads` bodies are being read at once → 503 (with Retry-After) when full, so
  memory stays below `max_reads × max_body` whatever the number of connections;
- a body that does not arrive within `read_timeout` seconds → 408 (slow senders hold a slot);
- a sender that leaves mid-body, or a malformed chunked encoding → 400, logged in one line
  (aiohttp's own traceback for a request it cannot parse is filtered out);
- JSON that is not an object, or nested deeper than Python can parse (RecursionError) → 400.

Refusals close the connection: the rest of an oversized body is never read. Settings
`webhook_max_body`, `webhook_max_reads`, `webhook_read_timeout` (bot/config.py); one gate per
server, shared by the WhatsApp and Telegram webhooks of `addad serve`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_READS = 32
DEFAULT_READ_TIMEOUT = 10.0


def as_bytes(value: str) -> bytes:
    """A header or query value as bytes for `hmac.compare_digest`, whatever characters it holds
    (compare_digest raises TypeError on non-ASCII str; aiohttp decodes headers with
    surrogateescape)."""
    return value.encode("utf-8", "surrogatepass")


def refuse(status: int, text: str, **headers: str) -> web.Response:
    response = web.Response(status=status, text=text, headers=headers or None)
    response.force_close()
    return response


class BodyGate:
    """Reads webhook bodies within a size cap and a concurrency cap (one per server)."""

    def __init__(
        self,
        max_body: int = DEFAULT_MAX_BODY,
        max_reads: int = DEFAULT_MAX_READS,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.max_body, self.read_timeout = max_body, read_timeout
        self._slots = asyncio.Semaphore(max_reads)
        quiet_malformed_requests()

    async def read(self, request: web.Request) -> bytes | web.Response:
        """The body, or the response refusing it."""
        length = request.content_length
        if length is not None and length > self.max_body:
            log.warning("webhook body refused: Content-Length %d over %d", length, self.max_body)
            return refuse(413, "too large")
        if self._slots.locked():
            log.warning("webhook body refused: too many requests being read")
            return refuse(503, "busy", **{"Retry-After": "1"})
        async with self._slots:
            chunks: list[bytes] = []
            size = 0
            try:
                async with asyncio.timeout(self.read_timeout):
                    async for chunk in request.content.iter_any():
                        size += len(chunk)
                        if size > self.max_body:
                            log.warning("webhook body refused: over %d bytes", self.max_body)
                            return refuse(413, "too large")
                        chunks.append(chunk)
            except TimeoutError:
                log.warning("webhook body refused: not received within %.0f s", self.read_timeout)
                return refuse(408, "timeout")
            except (ConnectionError, HttpProcessingError) as exc:  # the sender left, or a malformed body
                log.info("webhook body not received: %s", type(exc).__name__)
                return refuse(400, "bad body")
            return b"".join(chunks)


class _MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a bad chunk size, a bad header) with a traceback at
    ERROR, after answering 400: one line at WARNING says as much without the noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            log.warning("malformed HTTP request refused (%s %s)", exc.code, type(exc).__name__)
            return False
        return True


_malformed = _MalformedRequests()


def quiet_malformed_requests() -> None:
    """Installs the filter on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if _malformed not in logger.filters:
        logger.addFilter(_malformed)


def json_object(raw: bytes) -> dict[str, Any] | None:
    """`raw` as a JSON object, or None for anything else (invalid, an array, too deeply nested)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
