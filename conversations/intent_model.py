"""The statistical intent classifier, at run time: pure Python, no numpy, no scikit-learn.

A linear model (multinomial logistic regression) over hashed character n-grams (2-5, inside
words) and word n-grams (1-2) of `understanding.normalize(text)`, digits folded to "0" so that
"52310" and "41230" are the same evidence. Trained by `python -m conversations.train_intents`
on data/intents/train.jsonl and shipped as conversations/data/intent_model.bin:

    b"ADDADIM1" | uint32 big-endian header length | JSON header | zlib(int8 weight table)

The table holds, for every hash bucket, one int8 weight per intent (scaled per intent, see
`scale`); buckets no training message touched are zero. The file is read once, on the first
`predict`; later calls cost a few hundred n-gram hashes and additions.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from array import array
from functools import lru_cache
from pathlib import Path

from conversations.understanding import normalize

__all__ = ["MODEL_PATH", "Model", "features", "load", "predict"]

MODEL_PATH = Path(__file__).parent / "data" / "intent_model.bin"
MAGIC = b"ADDADIM1"
MAX_CHARS = 500  # like understanding.MAX_CHARS: a pasted page costs no more than a message

_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")


def features(
    text: str,
    *,
    char_buckets: int,
    word_buckets: int,
    char_n: tuple[int, int] = (2, 5),
    word_n: tuple[int, int] = (1, 2),
) -> tuple[list[int], list[int]]:
    """The distinct char-bucket and word-bucket indices of a message (word buckets are offset by
    char_buckets). Training and inference share this function, so they cannot disagree."""
    norm = _DIGIT.sub("0", normalize(text[:MAX_CHARS] if isinstance(text, str) else text))
    words = _WORD.findall(norm)
    chars: set[int] = set()
    lo, hi = char_n
    for w in words:
        s = f" {w} "  # n-grams of letters, not of UTF-8 bytes (which would split Arabic letters)
        L = len(s)
        for n in range(lo, min(hi, L) + 1):
            for i in range(L - n + 1):
                chars.add(zlib.crc32(s[i : i + n].encode()) % char_buckets)
    wset: set[int] = set()
    wlo, whi = word_n
    for n in range(wlo, whi + 1):
        for i in range(len(words) - n + 1):
            wset.add(char_buckets + zlib.crc32(("w " + " ".join(words[i : i + n])).encode()) % word_buckets)
    return sorted(chars), sorted(wset)


class Model:
    """A loaded model: `scores(text)` are the intents' probabilities, best first."""

    def __init__(self, header: dict, table: array):
        self.header = header
        self.classes: list[str] = header["classes"]
        self.char_buckets: int = header["char_buckets"]
        self.word_buckets: int = header["word_buckets"]
        self.char_n = tuple(header["char_n"])
        self.word_n = tuple(header["word_n"])
        self.word_weight: float = header["word_weight"]
        self.scale: list[float] = header["scale"]
        self.bias: list[float] = header["bias"]
        self.temperature: float = header["temperature"]
        self.table = table
        if len(table) != (self.char_buckets + self.word_buckets) * len(self.classes):
            raise ValueError("intent model: weight table does not match its header")

    def raw_scores(self, text: str) -> list[float]:
        """The linear scores (logits before the temperature), one per class."""
        chars, words = features(
            text, char_buckets=self.char_buckets, word_buckets=self.word_buckets, char_n=self.char_n, word_n=self.word_n
        )
        C = len(self.classes)
        t = self.table
        acc_c = [0] * C
        for f in chars:
            base = f * C
            for c in range(C):
                acc_c[c] += t[base + c]
        acc_w = [0] * C
        for f in words:
            base = f * C
            for c in range(C):
                acc_w[c] += t[base + c]
        ww = self.word_weight
        norm = math.sqrt(len(chars) + ww * ww * len(words))
        if norm == 0:
            return list(self.bias)
        return [self.bias[c] + self.scale[c] * (acc_c[c] + ww * acc_w[c]) / norm for c in range(C)]

    def scores(self, text: str) -> list[tuple[str, float]]:
        z = [s / self.temperature for s in self.raw_scores(text)]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        total = sum(e)
        return sorted(zip(self.classes, (v / total for v in e), strict=False), key=lambda p: -p[1])


def load(path: Path | str = MODEL_PATH) -> Model:
    data = Path(path).read_bytes()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: not an intent model")
    (n,) = struct.unpack(">I", data[8:12])
    header = json.loads(data[12 : 12 + n].decode("utf-8"))
    table = array("b", zlib.decompress(data[12 + n :]))
    return Model(header, table)


@lru_cache(maxsize=1)
def _model() -> Model:
    return load(MODEL_PATH)


def predict(text) -> tuple[str, float, str, float]:
    """(intent, probability, runner-up intent, its probability) for one message; never raises
    on odd input (None, numbers, empty, very long). A message with no letter or digit is
    `unknown` with probability 1.0: there is nothing to classify."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if not _WORD.search(normalize(text[:MAX_CHARS])):
        return "unknown", 1.0, "help", 0.0
    (i1, p1), (i2, p2) = _model().scores(text)[:2]
    return i1, p1, i2, p2
