"""PTB's HTTP transport on aiohttp.

PTB's stock httpx transport collapses when many requests are in flight (measured here: 120–180
updates/s with its 256-connection pool, ~285/s at best with 16; the research notes in
shared/research/perf-anchors.md §2). aiohttp's connector keeps ~0.6 ms of CPU per request up to
256 in flight. PTB supports swapping the transport through `BaseRequest`; this is that class.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        connections: int = 64,
        read_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        write_timeout: float = 10.0,
        media_write_timeout: float = 30.0,
    ) -> None:
        self._connections = connections
        self._read, self._connect, self._write = read_timeout, connect_timeout, write_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data and request_data.contains_files else None
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        write = (
            (self._media_write if files else self._write) if isinstance(write_timeout, DefaultValue) else write_timeout
        )
        pool = connect if isinstance(pool_timeout, DefaultValue) else pool_timeout
        total = None if read is None else read + (write or 0) + (connect or 0) + (pool or 0)
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)
        data: Any = None
        if request_data is not None:
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, part in files.items():
                    if isinstance(part, tuple):
                        filename, content, *mime = part
                        form.add_field(
                            name,
                            content,
                            filename=filename,
                            content_type=mime[0] if mime else "application/octet-stream",
                        )
                    else:
                        form.add_field(name, part)
                data = form
            else:
                data = request_data.json_parameters or None
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            # The request may have reached Telegram: callers must not assume it did not.
            raise TimedOut(f"aiohttp timeout on {url.rsplit('/', 1)[-1]}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: not connected: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
