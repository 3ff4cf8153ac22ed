"""Raw HTTP/1.1 on 127.0.0.1, for what an attacker sends and a polite client cannot: non-ASCII
header bytes, a Content-Length with no body behind it, a chunked body that never ends, a request
that stalls."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _head(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    u = urlparse(url)
    lines = [f"POST {u.path} HTTP/1.1", f"Host: {u.hostname}:{u.port}"] + [f"{k}: {v}" for k, v in headers.items()]
    return u.hostname or "127.0.0.1", u.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def raw_post(url: str, headers: dict[str, str], body: bytes = b"", *, timeout: float = 10.0) -> int:
    """The status answered to these bytes (the body is sent as is, possibly incomplete)."""
    host, port, head = _head(url, headers)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def stalled_post(
    url: str, headers: dict[str, str], body: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A request whose body starts and never ends (close the writer to let it go)."""
    host, port, head = _head(url, headers)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head + body)
    await writer.drain()
    return reader, writer


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """Logged errors and tracebacks (what a 500 leaves in the logs)."""
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR or r.exc_info]
