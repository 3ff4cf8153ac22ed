"""The index read from a meter photo, as a suggestion the customer confirms (issue 21).

An optional extra (`pip install -e '.[ocr]'`, README "OCR suggestion"): rapidocr_onnxruntime, its
PP-OCR models inside the wheel (nothing is downloaded at run time), on the headless OpenCV build.
Without it, or with ADDAD_OCR=off, a photo is evidence only.

The pipeline (research/capabilities-2026-12.md §1, measured in bench/bench_ocr.py):
1. full detection and recognition of the photo;
2. the band of the tallest digit boxes on one line: the counter (a serial number or ratings are
   smaller), straightened;
3. the red drums (tenths) cut off by their colour: they are not part of the index;
4. the counter crop re-read, widened by fractions of a digit on each side (the detector drops
   edge digits);
5. only reads with the meter's dial count are taken, and the index is *sure* when two reads
   agree and none disagrees; otherwise, or on a photo too dark or blurred, or where the tallest
   digits are red, or two crops show more drums than the meter has, `index` is None.

`read_photo` is the pipeline (blocking; ~450 MB once loaded). The bot runs it through `OcrWorker`:
one separate process started on the first photo, a bounded queue and a time limit, so neither its
memory nor a slow photo is the event loop's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import multiprocessing
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage import Contract

log = logging.getLogger(__name__)

# onnxruntime reports to Microsoft's telemetry at every start unless this is set before it is
# imported (research: strace); nothing about a customer leaves the machine (law 09-08).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

WIDEN = (0.3, 0.8, 1.5)  # the counter crop widened by these fractions of a digit, each side
MAX_SIDE = 1280  # a phone's 12 Mpx photo is read at this size: the counter is still ~40 px high
DARK = 40  # mean brightness (0-255) below which a photo is too dark to read
SHARP = 60.0  # Laplacian variance of the counter (48 px high) below which it is too blurred
MIN_SCORE = 0.6  # a read the recogniser itself doubts is no read
_TO_DIGIT = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1", "!": "1"})
_NOT_DIGIT = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class OcrRead:
    """What the photo shows: `index` only when sure (two reads agree on the dial count)."""

    index: int | None
    confidence: float  # 0..1: the share of reads that agree, times the recogniser's own score
    digits: int | None  # the dial count read (the meter's when given)
    reason: str | None = None  # why unsure: unavailable, dark, no_counter, red, blurred, dial_count, disagree

    @property
    def sure(self) -> bool:
        return self.index is not None

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "confidence": round(self.confidence, 2), "digits": self.digits}


UNSURE = OcrRead(None, 0.0, None, "unavailable")


def available() -> bool:
    """Whether the `ocr` extra is installed (looked up without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "cv2", "numpy"))


def enabled(setting: str | None) -> bool:
    """ADDAD_OCR: `off` disables it; `on` (or unset) reads photos when the extra is installed."""
    if (setting or "").strip().lower() in ("off", "0", "false", "no"):
        return False
    if not available():
        if (setting or "").strip().lower() == "on":
            log.warning("ADDAD_OCR=on but the ocr extra is not installed: photos are kept as evidence only")
        return False
    return True


def meter_digits(state: str, data: dict[str, Any], linked: Sequence[Contract]) -> int | None:
    """The dial count of the meter the chat's journey is about (its data's `contract`, a linked
    one), to read a photo sent at `state` against; None (not read) before a meter is chosen."""
    flow = state.partition(".")[0]
    own = data.get(flow)
    number = own.get("contract") if isinstance(own, dict) else None
    return next((c.meter_digits for c in linked if c.contract == number), None)


# ------------------------------------------------------------------ the pipeline (blocking)
_engine: Any = None
last_reads: Any = None  # (all reads, the crops' reads) of the last photo: for bench/bench_ocr.py --verbose


def _ocr(threads: int = 1) -> Any:
    """The model, loaded once per process."""
    global _engine
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
    return _engine


def _digits_of(text: str) -> str:
    """The figures of a read, as ASCII (the recogniser may answer a fullwidth "７")."""
    return "".join(str(unicodedata.decimal(c)) for c in _NOT_DIGIT.sub("", text.translate(_TO_DIGIT)))


def _is_digit_box(text: str) -> bool:
    digits = _digits_of(text)
    return len(digits) >= 1 and len(digits) >= 0.6 * len(text.replace(" ", ""))


def read_photo(data: bytes, digits: int | None = None, *, threads: int = 1) -> OcrRead:
    """The index the photo shows (blocking). `digits`: the meter's dial count; without it any
    count of 4 to 9 is taken when two reads agree."""
    import cv2
    import numpy as np

    global last_reads
    last_reads = None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return OcrRead(None, 0.0, digits, "not_image")
    h, w = img.shape[:2]
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    if float(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).mean()) < DARK:
        return OcrRead(None, 0.0, digits, "dark")
    engine = _ocr(threads)
    found, _ = engine(img, use_cls=False)
    boxes = []
    for points, text, score in found or []:
        if score < MIN_SCORE or not _is_digit_box(text):
            continue
        p = np.asarray(points, dtype=np.float32)
        height = (np.linalg.norm(p[3] - p[0]) + np.linalg.norm(p[2] - p[1])) / 2
        boxes.append((p, text, float(score), float(height)))  # (polygon, text, score, height)
    if not boxes:
        return OcrRead(None, 0.0, digits, "no_counter")
    # The counter: the tallest box with two digits or more, and the digit boxes on its line.
    tall = max((b for b in boxes if len(_digits_of(b[1])) >= 2), key=lambda b: b[3], default=None)
    if tall is None:
        return OcrRead(None, 0.0, digits, "no_counter")
    p0 = tall[0]
    angle = float(np.degrees(np.arctan2(p0[1][1] - p0[0][1], p0[1][0] - p0[0][0])))
    centre = p0.mean(axis=0)
    rot = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    upright = cv2.warpAffine(img, rot, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR, borderValue=(128,) * 3)

    def turned(p: Any) -> Any:
        return cv2.transform(p.reshape(-1, 1, 2), rot).reshape(-1, 2)

    t0 = turned(p0)
    line_y, line_h = float(t0[:, 1].mean()), float(tall[3])
    band = []
    for p, text, score, box_h in boxes:
        tp = turned(p)
        if box_h >= 0.7 * line_h and abs(float(tp[:, 1].mean()) - line_y) < 0.5 * line_h:
            band.append((float(tp[:, 0].min()), float(tp[:, 0].max()), tp, text, score))
    band.sort(key=lambda b: b[0])
    chars = sum(len(_digits_of(b[3])) for b in band)
    digit_w = sum(b[1] - b[0] for b in band) / max(chars, 1)
    top = min(float(b[2][:, 1].min()) for b in band)
    bottom = max(float(b[2][:, 1].max()) for b in band)
    left, right = band[0][0], band[-1][1]
    margin = 0.12 * (bottom - top)
    y0, y1 = max(0, int(top - margin)), min(upright.shape[0], int(bottom + margin))
    # Red drums: the first run of red columns right of the first digit ends the index.
    far_l, far_r = max(0, int(left - 2 * digit_w)), min(upright.shape[1], int(right + 2 * digit_w))
    strip = cv2.cvtColor(upright[y0:y1, far_l:far_r], cv2.COLOR_BGR2HSV)
    hue, sat, val = strip[:, :, 0], strip[:, :, 1], strip[:, :, 2]
    red = ((hue < 10) | (hue > 165)) & (sat > 90) & (val > 60)
    share = red.mean(axis=0)  # of each column
    k = max(3, int(0.3 * digit_w))
    smooth = np.convolve(share, np.ones(k) / k, mode="same")
    cut = None
    for x in range(max(0, int(left - far_l - 0.5 * digit_w)), len(smooth)):  # (red further left: the wall)
        if smooth[x] > 0.2:
            while x > 0 and share[x - 1] > 0.05:  # back to the drum's edge
                x -= 1
            cut = far_l + x
            break
    if cut is not None and cut < left + 0.5 * digit_w:
        # The tallest digits are red (the black ones were not found), or red left of them: the
        # index cannot be told from the tenths.
        return OcrRead(None, 0.0, digits, "red")
    reads: list[tuple[str, float]] = []
    first = ""
    for x0_, x1_, _, text, _ in band:
        figures = _digits_of(text)
        if cut is not None and x1_ > cut:  # a box running into the red drums: its black part
            figures = figures[: max(0, round(len(figures) * (cut - x0_) / max(x1_ - x0_, 1.0)))]
        first += figures
    if first:
        reads.append((first, sum(b[4] for b in band) / len(band)))
    crops = []
    for widen in WIDEN:
        x0 = max(0, int(left - widen * digit_w))
        x1 = min(upright.shape[1], int(right + widen * digit_w))
        if cut is not None:
            x1 = min(x1, int(cut - 0.1 * digit_w))
        if x1 - x0 > digit_w:
            crops.append(upright[y0:y1, x0:x1])
    if not crops:
        return OcrRead(None, 0.0, digits, "no_counter")
    gray = cv2.cvtColor(crops[0], cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (max(1, round(gray.shape[1] * 48 / gray.shape[0])), 48))
    if float(cv2.Laplacian(gray, cv2.CV_64F).var()) < SHARP:
        return OcrRead(None, 0.0, digits, "blurred")
    rec, _ = engine.text_rec(crops)
    cropped = [(_digits_of(text), float(score)) for text, score in rec if score >= MIN_SCORE]
    reads += cropped
    log.debug("ocr reads %s (cut %s)", reads, cut)
    last_reads = (reads, cropped)
    wanted = [(t, s) for t, s in reads if (len(t) == digits if digits else 4 <= len(t) <= 9)]
    if digits and sum(len(t) > digits for t, _ in cropped) >= 2:
        # More drums than this meter has: another meter (or the tenths not cut off), not a guess.
        # (One wide crop alone may take the frame's edge for a figure.)
        return OcrRead(None, 0.0, max(len(t) for t, _ in reads), "dial_count")
    if not wanted:
        counts = Counter(len(t) for t, _ in reads)
        return OcrRead(None, 0.0, counts.most_common(1)[0][0] if counts else digits, "dial_count")
    votes = Counter(t for t, _ in wanted).most_common()
    best, n = votes[0]
    if n < 2 or len(votes) > 1:
        # Sure only when two reads agree and none of the meter's dial count says otherwise (a
        # drum mid-roll read both ways is a doubt: bench/README.md, 0 wrong instead of 0.3 %).
        return OcrRead(None, 0.0, digits or len(best), "disagree")
    score = sum(s for t, s in wanted if t == best) / n
    return OcrRead(int(best), round(n / len(reads) * score, 3), len(best))


# ------------------------------------------------------------------ the bot's worker process
def _worker_init() -> None:
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    _ocr()  # the model loaded before the first photo is handed over


def _worker_read(data: bytes, digits: int | None) -> dict[str, Any]:
    return asdict(read_photo(data, digits))


class OcrWorker:
    """Reads photos in one separate process, started on the first photo (the bot's own memory
    and start-up are unchanged until then). At most `queue` photos wait; beyond, or past
    `timeout` seconds, a photo is "unsure" at once: the customer types the index."""

    def __init__(self, *, timeout: float = 20.0, queue: int = 4) -> None:
        self.timeout = timeout
        self._slots = asyncio.Semaphore(queue)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of the bot would copy its loop, sockets and database connections
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
            )
        return self._pool

    async def read(self, data: bytes, digits: int | None) -> OcrRead:
        if self._slots.locked():
            log.info("ocr queue full: photo kept unread")
            return UNSURE
        async with self._slots:
            loop = asyncio.get_running_loop()
            try:
                got = await asyncio.wait_for(
                    loop.run_in_executor(self._executor(), _worker_read, data, digits), self.timeout
                )
            except TimeoutError:
                log.warning("ocr took more than %.0f s: photo kept unread", self.timeout)
                self._restart()
                return UNSURE
            except Exception as exc:  # the worker died (out of memory, a broken model file)
                log.error("ocr failed (%s: %s)", type(exc).__name__, exc)
                self._restart()
                return UNSURE
            return OcrRead(**got)

    def _restart(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # a stuck read would hold the next one
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
