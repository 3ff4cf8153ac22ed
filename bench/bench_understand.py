"""Throughput and latency of conversations.understanding.understand() on the labelled data set.

    python bench/bench_understand.py [--repeat 20]

Prints: start-up costs (module import, dateparser load and warm-up), messages/second over the
whole data set, over date-bearing messages only, and over messages whose date goes through
dateparser (weekdays, "il y a N jours"), with the token cache cold (each pass clears it, like
a stream of never-seen words) and warm; per-message p50/p99/max; and a 10,000-char paste.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "understanding.jsonl"
TODAY = date(2026, 4, 20)


def _rate(U, rows, repeat: int, cold: bool) -> tuple[float, list[float]]:
    per_message: list[float] = []
    start = time.perf_counter()
    for _ in range(repeat):
        if cold:
            U._lookup.cache_clear()
            U._dateparser.cache_clear()
        for r in rows:
            t0 = time.perf_counter()
            U.understand(r["text"], r.get("hint"), today=TODAY)
            per_message.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return repeat * len(rows) / elapsed, per_message


def _line(name: str, rows, rate: float, lat: list[float]) -> str:
    lat = sorted(lat)
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    return (
        f"{name:<44} {len(rows):>4} msgs  {rate:>9,.0f} msg/s  mean {statistics.fmean(lat) * 1e6:>7.1f} µs  "
        f"p50 {p50:>7.1f} µs  p99 {p99:>8.1f} µs  max {lat[-1] * 1e6:>8.1f} µs"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--cold-starts", type=int, default=9, help="runs of `addad understand TEXT` in a new process")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))

    t0 = time.perf_counter()
    from conversations import understanding as U

    import_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    U.understand("bghit nkhelles", today=TODAY)
    first_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    U._date_parser(TODAY, "past")  # import dateparser, build and warm the parser
    U._date_parser(TODAY, "future")
    dp_ms = (time.perf_counter() - t0) * 1e3

    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    dated = [r for r in rows if U.understand(r["text"], r.get("hint"), today=TODAY).entities.get("date")]
    via_dp = [
        {"text": t}
        for t in (
            "j'ai relevé samedi 4512",
            "il y a 3 jours le compteur affichait 8812",
            "قريت العداد قبل يومين",
            "nhar ssebt 9rit lcompteur",
            "lundi dernier",
            "الاثنين الماضي كان 3321",
            "hadi 3 iyam",
            "il y a une semaine",
        )
    ]
    no_date = [r for r in rows if r not in dated]

    print(
        f"python {sys.version.split()[0]}; data set {len(rows)} messages, {len(dated)} with a date; "
        f"repeat {args.repeat}"
    )
    print(
        f"import conversations.understanding: {import_ms:.1f} ms; first understand(): {first_ms:.2f} ms; "
        f"dateparser load + 2 warmed parsers: {dp_ms:.0f} ms"
    )
    for name, subset in (
        ("all messages", rows),
        ("messages without a date", no_date),
        ("date-bearing messages", dated),
        ("dates through dateparser", via_dp),
    ):
        for cold in (True, False):
            rate, lat = _rate(U, subset, args.repeat, cold)
            print(_line(f"{name} ({'cold' if cold else 'warm'} token cache)", subset, rate, lat))
    long_text = "je veux payer ma facture en plusieurs fois svp " * 220
    U.understand(long_text, today=TODAY)
    t0 = time.perf_counter()
    for _ in range(50):
        U.understand(long_text, today=TODAY)
    print(
        f"10,000-char message: {(time.perf_counter() - t0) / 50 * 1e3:.2f} ms (analyses the first {U.MAX_CHARS} chars)"
    )
    heldout = ROOT / "data" / "intents" / "heldout.jsonl"
    if heldout.exists():  # the messages nobody tuned to, through the trained model too
        held = [json.loads(x) for x in heldout.read_text(encoding="utf-8").splitlines() if x.strip()]
        rate, lat = _rate(U, held, max(1, args.repeat // 4), False)
        print(_line("held-out messages (data/intents)", held, rate, lat))
    if args.cold_starts:
        cold = _cold_ms(args.cold_starts)
        print(f"`addad understand TEXT` from a new process, median of {args.cold_starts}: {cold:.0f} ms")
    return 0


def _cold_ms(n: int) -> float:
    """Wall time of the command a shell would run, from a new process to its JSON line, as an
    installed command runs: with its bytecode written (a session's PYTHONDONTWRITEBYTECODE
    would make every run compile the sources: bench_cli.py measures that mode), after one
    run that writes it."""
    import os
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("addad", path=str(Path(sys.executable).parent)) or "addad"
    cmd = [exe, "understand", "bghit nkhelles lfactura 3la 3 chhour"]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = tmp
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())
