"""The statistical intent classifier, at run time: pure Python, no numpy, no scikit-learn.

A linear SVM, trained by `python -m conversations.train_intents` on data/intents/train.jsonl,
over hashed features of `understanding.normalize(text)`, digits folded to "0" (so "52310" and
"41230" are the same evidence): character n-grams (2-5, inside words), word n-grams (1-2), and
n-grams of each word's consonant *skeleton* (`skeleton`): Darija is written in two scripts with
free vowels, and "bghit", "bghyt" and "بغيت" all become "bgt", so what was learnt from one
spelling counts for the others. Its scores become probabilities through a softmax with a
temperature fitted on out-of-fold scores (calibrated: docs/understanding.md).

Shipped as conversations/data/intent_model.bin:

    b"ADDADIM3" | uint32 big-endian header length | JSON header | int8 weight table

(The table is stored as it is used: inflating the zlib-compressed table of format 2 took ~10 ms
of `addad understand`'s cold start; git and the wheel compress the file anyway. The file ships
with the code and is written only by `python -m conversations.train_intents`, so no reader of
format 2 is kept.)

The table holds, for every hash bucket, one int8 weight per intent (scaled per intent, see
`scale`); buckets no training message touched are zero. The file is read once, at start-up
(`understanding.warm_up`) or on the first call; later calls cost a few hundred n-gram hashes and
additions.
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

__all__ = ["MODEL_PATH", "Model", "features", "from_bytes", "load", "predict", "skeleton"]

MODEL_PATH = Path(__file__).parent / "data" / "intent_model.bin"
MAGIC = b"ADDADIM3"
MAX_CHARS = 500  # like understanding.MAX_CHARS: a pasted page costs no more than a message

_WORD = re.compile(r"[^\W_]+")
WORD_CACHE = 8192  # distinct words whose n-gram buckets are kept (`_word_grams`)
PACKED_CACHE = 1 << 15  # buckets whose packed weights are kept (`_Packed`): ~4 MB at most
LANE = 24  # bits a class in a packed bucket: 255 x 65,000 buckets fit; MAX_CHARS gives < 3,000
LANE_MASK = (1 << LANE) - 1
_DIGIT = re.compile(r"\d")

# Consonant skeletons: Arabic letters and arabizi spellings onto one Latin alphabet, vowels and
# long-vowel letters dropped, doubled letters collapsed ("nkhelles", "نخلص" -> "nxls").
_AR_SKELETON = str.maketrans(
    {
        **dict.fromkeys("اوىيأإآءئؤة", ""),
        **{"ب": "b", "ت": "t", "ث": "t", "ج": "j", "ح": "h", "خ": "x", "د": "d", "ذ": "d", "ر": "r"},
        **{"ز": "z", "س": "s", "ش": "c", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "3", "غ": "g"},
        **{"ف": "f", "ق": "q", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "ڭ": "g", "گ": "g"},
        **{"ڤ": "v", "پ": "p"},
    }
)
_LATIN_DIGRAPHS = (("ch", "c"), ("sh", "c"), ("kh", "x"), ("gh", "g"), ("ou", "w"))
_LATIN_SKELETON = str.maketrans({"9": "q", "7": "h", "8": "g", "5": "x", **dict.fromkeys("aeiouyw2", "")})
_REPEAT = re.compile(r"(.)\1+")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_NOT_SKELETON = re.compile(r"[^a-z3]")


# French SMS spellings and arabizi variants folded onto one word, for the character and word
# n-grams (`fold`): the skeletons already equate vowels; these are the spellings they miss.
_SMS = {
    "jpp": "je peux pas",
    "jpeux": "je peux",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pkoi": "pourquoi",
    "koi": "quoi",
    "tjr": "toujours",
    "tjrs": "toujours",
    "mtn": "maintenant",
    "stp": "svp",
    "bcp": "beaucoup",
    "slt": "salut",
    "bjr": "bonjour",
    "bsr": "bonsoir",
    "jsuis": "je suis",
    "chui": "je suis",
    "g": "j ai",
    "c": "c est",
    "ct": "c etait",
    "vs": "vous",
    "ds": "dans",
    "qd": "quand",
    "pr": "pour",
    "ms": "mais",
    "dsl": "desole",
    "mrc": "merci",
    "mrci": "merci",
    "fact": "facture",
    "facteur": "facture",
    "conteur": "compteur",
    "kombien": "combien",
}
_LATIN_WORD = re.compile(r"[a-z]+")


def fold(word: str) -> str:
    """One normalised word as the n-grams see it with `fold`: a French SMS spelling spelt out
    ("pk" -> "pourquoi"), a Latin word's doubled letters single ("nkhelless" -> "nkheles")."""
    if word in _SMS:
        return _SMS[word]
    return _REPEAT.sub(r"\1", word) if _LATIN_WORD.fullmatch(word) else word


def skeleton(word: str) -> str:
    """The consonant skeleton of one normalised word, the same for its Arabic-script and arabizi
    spellings: "bghit", "بغيت" -> "bgt"; "chhal", "شحال" -> "chl"."""
    if _ARABIC.search(word):
        s = _NOT_SKELETON.sub("", word.translate(_AR_SKELETON))
    else:
        for a, b in _LATIN_DIGRAPHS:
            word = word.replace(a, b)
        s = _NOT_SKELETON.sub("", word.translate(_LATIN_SKELETON))
    return _REPEAT.sub(r"\1", s)


@lru_cache(maxsize=WORD_CACHE)
def _word_grams(
    w: str, char_buckets: int, char_n: tuple[int, int], skel_off: int, skel_buckets: int, skel_n: tuple[int, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """One word's character-n-gram buckets and (with skel_buckets) its skeleton's: a message's
    features are the union of its words' and of its word n-grams, and words repeat from one
    message to the next, so each is hashed once."""
    s = f" {w} "  # n-grams of letters, not of UTF-8 bytes (which would split Arabic letters)
    L = len(s)
    lo, hi = char_n
    chars = tuple(
        zlib.crc32(s[i : i + n].encode()) % char_buckets for n in range(lo, min(hi, L) + 1) for i in range(L - n + 1)
    )
    if not skel_buckets or w.isdigit():
        return chars, ()
    k = skeleton(w)
    if not k:
        return chars, ()
    s = f" {k} "
    slo, shi = skel_n
    skels = (
        skel_off + zlib.crc32(("S" + k).encode()) % skel_buckets,  # the whole skeleton
        *(
            skel_off + zlib.crc32(("s" + s[i : i + n]).encode()) % skel_buckets
            for n in range(slo, min(shi, len(s)) + 1)
            for i in range(len(s) - n + 1)
        ),
    )
    return chars, skels


def features(
    text: str,
    *,
    char_buckets: int,
    word_buckets: int,
    char_n: tuple[int, int] = (2, 5),
    word_n: tuple[int, int] = (1, 2),
    skel_buckets: int = 0,
    skel_n: tuple[int, int] = (2, 4),
    folded: bool = False,
) -> tuple[list[int], list[int], list[int]]:
    """The distinct char-, word- and skeleton-bucket indices of a message (word buckets are offset
    by char_buckets, skeleton buckets by both). Training and inference share this function, so
    they cannot disagree."""
    norm = _DIGIT.sub("0", normalize(text[:MAX_CHARS] if isinstance(text, str) else text))
    words = _WORD.findall(norm)
    if folded:
        words = " ".join(fold(w) for w in words).split()
    chars: set[int] = set()
    sset: set[int] = set()
    off = char_buckets + word_buckets
    cn, sn = tuple(char_n), tuple(skel_n)
    for w in words:
        c, k = _word_grams(w, char_buckets, cn, off, skel_buckets, sn)
        chars.update(c)
        sset.update(k)
    wset: set[int] = set()
    wlo, whi = word_n
    for n in range(wlo, whi + 1):
        for i in range(len(words) - n + 1):
            wset.add(char_buckets + zlib.crc32(("w " + " ".join(words[i : i + n])).encode()) % word_buckets)
    return sorted(chars), sorted(wset), sorted(sset)


class _Packed(dict):
    """A bucket's per-class int8 weights packed into one integer, LANE bits a class, each weight
    offset by 128 so lanes never borrow: summing a message's buckets is then one C-level
    `sum(map(...))` instead of a Python loop over buckets x classes (the integer sums, and so
    the scores, are exactly the loop's). Filled on first use and emptied when it reaches
    PACKED_CACHE entries, so memory stays bounded whatever the table's size."""

    def __init__(self, table: array, classes: int):
        super().__init__()
        self.table = table
        self.classes = classes

    def __missing__(self, f: int) -> int:
        if len(self) >= PACKED_CACHE:
            self.clear()
        C = self.classes
        row = self.table[f * C : f * C + C]
        v = 0
        for c in range(C - 1, -1, -1):
            v = (v << LANE) | (row[c] + 128)
        self[f] = v
        return v


def _softmax(z: list[float], names: list[str]) -> list[tuple[str, float]]:
    m = max(z)
    e = [math.exp(v - m) for v in z]
    total = sum(e)
    return sorted(zip(names, (v / total for v in e), strict=False), key=lambda p: -p[1])


class Model:
    """A loaded model: `scores(text)` are the intents' probabilities, best first."""

    def __init__(self, header: dict, table: array):
        self.header = header
        self.classes: list[str] = header["classes"]
        self.char_buckets: int = header["char_buckets"]
        self.word_buckets: int = header["word_buckets"]
        self.skel_buckets: int = header["skel_buckets"]
        self.char_n = tuple(header["char_n"])
        self.word_n = tuple(header["word_n"])
        self.skel_n = tuple(header["skel_n"])
        self.word_weight: float = header["word_weight"]
        self.skel_weight: float = header["skel_weight"]
        self.scale: list[float] = header["scale"]
        self.bias: list[float] = header["bias"]
        self.temperature: float = header["temperature"]
        self.folded: bool = header.get("fold", False)  # files before "understanding 3" have none
        self.table = table
        self._packed = _Packed(table, len(self.classes))
        if len(table) != (self.char_buckets + self.word_buckets + self.skel_buckets) * len(self.classes):
            raise ValueError("intent model: weight table does not match its header")

    def features(self, text: str) -> tuple[list[int], list[int], list[int]]:
        """The message's char-, word- and skeleton-bucket indices with this model's settings."""
        return features(
            text,
            char_buckets=self.char_buckets,
            word_buckets=self.word_buckets,
            char_n=self.char_n,
            word_n=self.word_n,
            skel_buckets=self.skel_buckets,
            skel_n=self.skel_n,
            folded=self.folded,
        )

    def block_sum(self, block: list[int]) -> list[int]:
        """Each class's int8 weights summed over a block of buckets, in one C-level sum."""
        total = sum(map(self._packed.__getitem__, block))
        bias = 128 * len(block)  # each lane holds sum(w + 128); < 2**LANE below 65,000 buckets
        return [((total >> (LANE * c)) & LANE_MASK) - bias for c in range(len(self.classes))]

    def raw_scores(self, text: str) -> list[float]:
        """The SVM's linear scores (before the temperature), one per class."""
        chars, words, skels = self.features(text)
        C = len(self.classes)
        sums = [self.block_sum(block) for block in (chars, words, skels)]
        ww, sw = self.word_weight, self.skel_weight
        norm = math.sqrt(len(chars) + ww * ww * len(words))  # chars and words share one norm
        snorm = math.sqrt(len(skels))  # the skeletons have their own
        out = list(self.bias)
        for c in range(C):
            if norm:
                out[c] += self.scale[c] * (sums[0][c] + ww * sums[1][c]) / norm
            if snorm:
                out[c] += self.scale[c] * sw * sums[2][c] / snorm
        return out

    def scores(self, text: str) -> list[tuple[str, float]]:
        return _softmax([s / self.temperature for s in self.raw_scores(text)], self.classes)


def from_bytes(data: bytes, name: object = "intent model") -> Model:
    """A model file's bytes as a Model."""
    if data[:8] != MAGIC:
        raise ValueError(f"{name}: not an intent model")
    (n,) = struct.unpack(">I", data[8:12])
    header = json.loads(data[12 : 12 + n].decode("utf-8"))
    table = array("b")
    table.frombytes(data[12 + n :])
    return Model(header, table)


def load(path: Path | str = MODEL_PATH) -> Model:
    return from_bytes(Path(path).read_bytes(), path)


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
