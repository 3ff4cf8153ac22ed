"""The consumption chart (issue 21): milliseconds per chart once warm, the first chart's cost,
and the bot's start-up and memory with no chart drawn.

    .venv/bin/python bench/bench_chart.py [--charts 50]

1. In this process: 13-month charts (French electricity with its 150 kWh line, Arabic water with
   its social band, each with read, estimated and a customer month) drawn through
   `conversations.chart.render` (the worker thread the bot uses) after one warm-up; prints the
   median and p90 ms per chart and the PNG size. Target: <= 150 ms once warm.
2. In fresh processes: importing what `addad telegram` / `addad whatsapp` import (bot.runtime,
   both channels, the engine), then the same after one chart: wall time and peak RSS, and
   whether matplotlib is in sys.modules. With no chart drawn the figures must be those of the
   bot without the chart (matplotlib is imported only when one is drawn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNITS = [140, 150, 160, 120, None, 130, 100, 90, 95, 200, 210, 180, 190]
KINDS = ["read", "read", "estimated", "read", None, "read", "read", "read", "read", "read", "read", "estimated"]
KINDS.append("customer")


def specs() -> list[dict]:
    from conversations.chart import Month

    fr_months = ["nov.\n2025", "déc.", "janv.\n2026", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août"]
    fr_months += ["sept.", "oct.", "nov."]
    ar_months = ["نونبر\n2025", "دجنبر", "يناير\n2026", "فبراير", "مارس", "أبريل", "ماي", "يونيو", "يوليوز", "غشت"]
    ar_months += ["شتنبر", "أكتوبر", "نونبر"]
    from datetime import date

    from conversations.chart import spec

    def months(labels, scale):
        return [
            (label, Month(date(2026, 1, 1), None if u is None else u // scale, k))
            for label, u, k in zip(labels, UNITS, KINDS, strict=True)
        ]

    return [
        spec(
            lang="fr",
            title="Consommation du contrat 1000001 (kWh par mois)",
            unit="kWh",
            months=months(fr_months, 1),
            legend={"read": "Relevée", "estimated": "Estimée", "customer": "Votre index de ce mois"},
            line=(150, "Seuil de 150 kWh"),
        ),
        spec(
            lang="ar",
            title="استهلاك العقد 1000002 (م³ في الشهر)",
            unit="م³",
            months=months(ar_months, 20),
            legend={"read": "مقروء", "estimated": "تقديري", "customer": "مؤشرك لهذا الشهر"},
            band=(6, "الشطر الاجتماعي (إلى 6 م³)"),
        ),
    ]


async def warm(n: int) -> None:
    from conversations.chart import render

    for data in specs():
        png = await render(data)  # the warm-up: matplotlib imported, the font loaded
        times, cpu = [], []
        for _ in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            png = await render(data)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)  # (the machine may be shared: CPU too)
        times.sort()
        cpu.sort()
        p90 = times[int(0.9 * (len(times) - 1))]
        print(
            f"warm {data['lang']}: wall median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms, "
            f"min {times[0]:.1f} ms; CPU median {statistics.median(cpu):.1f} ms, p90 {cpu[int(0.9 * (n - 1))]:.1f} ms "
            f"over {n} charts; PNG {len(png) / 1024:.1f} KiB"
        )


PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
import bot.runtime, bot.channels.telegram, bot.channels.whatsapp, conversations.engine, conversations.journeys
out = {"import_ms": round((time.perf_counter() - t0) * 1000, 1)}
if sys.argv[1] == "chart":
    from conversations.chart import draw
    t1 = time.perf_counter()
    draw(json.loads(sys.argv[2]))
    out["first_chart_ms"] = round((time.perf_counter() - t1) * 1000, 1)
out["matplotlib_loaded"] = "matplotlib" in sys.modules
out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out))
"""


def probe(kind: str, runs: int = 3) -> None:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, kind, json.dumps(specs()[1])],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        results.append(json.loads(out.stdout))
    best = min(results, key=lambda r: r["import_ms"])
    print(f"process, {kind}: " + ", ".join(f"{k} {v}" for k, v in best.items()) + f" (best of {runs})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--charts", type=int, default=50)
    args = ap.parse_args()
    asyncio.run(warm(args.charts))
    probe("none")
    probe("chart")


if __name__ == "__main__":
    main()
