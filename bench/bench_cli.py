"""Cold starts of the quick commands against the interpreter's own start (issue 19).

    .venv/bin/python bench/bench_cli.py [--runs 9] [--text "bghit nsift l7sab dyal lcompteur 45123"]

Runs, in new processes of this interpreter and interleaved (so the machine's load falls on all
three alike), `python -c pass`, `addad --help` and `addad understand TEXT` (the installed entry
point next to this interpreter, else `python -c "from bot.cli import main; main()"`), each
`--runs` times; prints the three medians (wall time, process start to exit) and the two ratios
to `python -c pass`. Targets: `--help` <= 3x, `understand` <= 6x.

Run from a folder without a `.env` (a temporary one): the commands read the environment and
the bundled profile only. Twice: with the bytecode cache (as an installed `addad` runs: the
`.pyc` files are written by a first run, here under a temporary PYTHONPYCACHEPREFIX, the
checkout untouched), and with PYTHONDONTWRITEBYTECODE=1, as in a sandbox that sets it: the
`.pyc` files that exist are read and none is written, so with no `__pycache__` in the checkout
every project module is compiled from source at each start (delete them for that figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _addad() -> list[str]:
    script = Path(sys.executable).with_name("addad")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def _time(cmd: list[str], cwd: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr.decode()}")
    return elapsed


def _measure(commands: dict[str, list[str]], cwd: str, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # once each first: the bytecode caches are written, the files read
        _time(cmd, cwd, env)
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(_time(cmd, cwd, env))
    return times


def _report(mode: str, times: dict[str, list[float]], runs: int) -> None:
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["python -c pass"]
    print(f"{mode}: {runs} runs each, interleaved")
    print(f"  {'command':<24} {'median':>9}  {'min':>9}  ratio")
    for name, t in times.items():
        print(f"  {name:<24} {medians[name] * 1e3:>7.1f} ms  {min(t) * 1e3:>7.1f} ms  {medians[name] / base:>4.2f}x")
    print(
        f"  ratios: --help {medians['addad --help'] / base:.2f}x (target 3x), "
        f"understand {medians['addad understand TEXT'] / base:.2f}x (target 6x)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--text", default="bghit nsift l7sab dyal lcompteur 45123")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ADDAD_") and not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout, installed or not
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "addad --help": [*_addad(), "--help"],
        "addad understand TEXT": [*_addad(), "understand", args.text],
    }
    with tempfile.TemporaryDirectory() as cwd:
        for mode in ("bytecode cache", "PYTHONDONTWRITEBYTECODE=1"):
            if mode == "bytecode cache":
                run_env = {**env, "PYTHONPYCACHEPREFIX": str(Path(cwd) / "pycache")}
            else:
                run_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
            _report(mode, _measure(commands, cwd, run_env, args.runs), args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
