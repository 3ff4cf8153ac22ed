"""Unsigned bodies against a real `addad whatsapp` process: its peak memory.

    .venv/bin/python bench/bench_unsigned.py [--requests 300] [--mb 4] [--mode length|chunked|both]

Starts `python -m bot whatsapp` on 127.0.0.1 (a fresh database, a Graph API URL it never calls),
then sends `--requests` concurrent POSTs of `--mb` MB each without `X-Hub-Signature-256`, as an
attacker would: with a `Content-Length` (mode `length`) or chunked without one (mode `chunked`).
Reports the answers' statuses (or how the server closed the connection), the process's RSS
before, its peak RSS during the burst (VmHWM from /proc), and whether it still answers
/healthz. Target: peak ≤ 200 MB (issue 18.4; before it, 300 × 4 MB took it to 1.5 GB).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"addad whatsapp exited with {proc.returncode}")
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("addad whatsapp did not start")


async def burst(url: str, n: int, body: bytes, mode: str) -> collections.Counter:
    outcomes: collections.Counter = collections.Counter()
    view = memoryview(body)

    async def chunks():
        for i in range(0, len(view), 64 * 1024):
            yield view[i : i + 64 * 1024]

    async def one(http: aiohttp.ClientSession) -> None:
        data = body if mode == "length" else chunks()
        try:
            async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
                outcomes[str(r.status)] += 1
        except (aiohttp.ClientError, ConnectionError) as exc:
            outcomes[f"closed ({type(exc).__name__})"] += 1

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(one(http) for _ in range(n)))
    return outcomes


async def run(args: argparse.Namespace) -> None:
    body = b"{" + b" " * (args.mb * 1024 * 1024 - 2) + b"}"  # one buffer, shared by every request
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "ADDAD_DATABASE": str(Path(tmp) / "addad.sqlite3"),
            "ADDAD_WHATSAPP_TOKEN": "bench",
            "ADDAD_WHATSAPP_PHONE_NUMBER_ID": "1",
            "ADDAD_WHATSAPP_APP_SECRET": "bench-secret",
            "ADDAD_WHATSAPP_VERIFY_TOKEN": "bench",
            "ADDAD_WHATSAPP_API_URL": "http://127.0.0.1:9/v21.0",
            "ADDAD_LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(ROOT),
        }
        upgrade = [sys.executable, "-m", "bot", "db", "upgrade"]
        subprocess.run(upgrade, cwd=tmp, env=env, check=True, capture_output=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "whatsapp", "--listen", "127.0.0.1", "--port", str(port)],
            cwd=tmp,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base + "/healthz", proc)
            before = status_kb(proc.pid, "VmRSS")
            print(f"addad whatsapp pid {proc.pid}: RSS before {before / 1024:.0f} MB")
            for mode in ("length", "chunked") if args.mode == "both" else (args.mode,):
                started = time.monotonic()
                outcomes = await burst(base + "/whatsapp", args.requests, body, mode)
                took = time.monotonic() - started
                peak = status_kb(proc.pid, "VmHWM")
                now = status_kb(proc.pid, "VmRSS")
                await wait_healthy(base + "/healthz", proc, timeout=5)
                print(
                    f"{mode:8} {args.requests} × {args.mb} MB unsigned in {took:.1f} s: "
                    f"{dict(sorted(outcomes.items()))}; peak RSS {peak / 1024:.0f} MB, "
                    f"after {now / 1024:.0f} MB; /healthz still 200"
                )
        finally:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--mb", type=int, default=4)
    p.add_argument("--mode", choices=("length", "chunked", "both"), default="both")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
