"""Downloading a meter photo over HTTP within the size cap (both channels' `MediaFetcher`s use it):
the declared length is checked before reading, the bytes while reading, and the download stops
at the first byte past the cap."""

from __future__ import annotations

import aiohttp

from conversations.media import TooLarge, Unavailable

CHUNK = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_read=20)


async def read_capped(
    session: aiohttp.ClientSession, url: str, max_bytes: int, *, headers: dict[str, str] | None = None
) -> bytes:
    try:
        async with session.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False) as r:
            if r.status != 200:
                raise Unavailable(f"HTTP {r.status}")
            if r.content_length is not None and r.content_length > max_bytes:
                raise TooLarge(f"Content-Length {r.content_length}")
            data = bytearray()
            async for chunk in r.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise TooLarge(f"more than {max_bytes} bytes sent")
            return bytes(data)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(type(exc).__name__) from None
