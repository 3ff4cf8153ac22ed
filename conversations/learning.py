"""The learning loop (issue 17): messages the bot did not understand, or understood with little
confidence, are kept masked for a while (the profile's `learning`), exported for the operator
to label, and the labelled file is appended to the training data (docs/understanding.md).

Masking keeps the words a customer used and drops what identifies them: digits (indexes,
contracts, phones, amounts), e-mail addresses, links, and the name after "je m'appelle",
"smiti", "اسمي"... Nothing here decides anything for the customer; the operator labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import IO, Any

from storage import Tx

from .profile import Profile
from .understanding import WORD

_EMAIL = re.compile(r"\S+@\S+")
_LINK = re.compile(r"(?:https?://|www\.)\S+", re.I)
# Numbers standing alone (an index, a contract, a phone, an amount); the 3, 7 and 9 inside an
# arabizi word ("3ndkom", "l7sab") are letters and stay.
_NUMBER = re.compile(
    r"(?<![^\W\d_])[0-9\u0660-\u0669\u06f0-\u06f9]+(?:[ .,/-][0-9\u0660-\u0669\u06f0-\u06f9]+)*(?![^\W\d_])"
)
# The words after a self-introduction are a name: up to three of them.
_NAME = re.compile(
    r"(?i)(je m'?appelle|mon nom est|mon nom c'?est|c'?est moi|smiti|smiyti|ismi|asmi|ana smiti|"
    r"اسمي|سميتي|انا اسمي)\s+((?:[^\s,.!?؟،]+\s*){1,3})"
)


def mask(text: str) -> str:
    """The message without what identifies its writer: numbers' digits become 0, e-mails,
    links and a name (up to three words) after a self-introduction become a placeholder."""
    text = _EMAIL.sub("<email>", text)
    text = _LINK.sub("<link>", text)
    text = _NAME.sub(lambda m: f"{m.group(1)} <name>" + (" " if m.group(2)[-1:].isspace() else ""), text)
    return _NUMBER.sub(lambda m: re.sub(r"\d", "0", m.group(0)), text).strip()


async def keep_if_unrecognised(
    tx: Tx, profile: Profile, *, text: str, understood: Any, channel: str, state: str, now: datetime
) -> bool:
    """Keep a typed message the bot could not place (intent unknown, or below the profile's
    confidence): masked, with where it was typed. True if kept."""
    policy = profile.learning
    if policy.keep_days == 0 or understood is None or not WORD.search(text):
        return False  # (a bare number or an emoji says nothing to learn from)
    if understood.intent != "unknown" and understood.confidence >= policy.below_confidence:
        return False
    await tx.keep_unrecognised(
        mask(text)[:500],
        lang=understood.lang,
        intent=understood.intent,
        confidence=float(understood.confidence),
        channel=channel,
        state=state,
        now=now,
    )
    return True


async def prune(tx: Tx, profile: Profile, now: datetime) -> int:
    """Forget what is older than the profile's retention."""
    return await tx.prune_unrecognised(older_than=now - timedelta(days=profile.learning.keep_days))


def write_for_labelling(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One JSON object a line in the shape of data/intents/train.jsonl, `intent` left for the
    operator to fill (the bot's guess beside it), `group` to set: then append the file to
    data/intents/train.jsonl and retrain."""
    count = 0
    for r in rows:
        line = {
            "text": r["text"],
            "intent": "",
            "lang": r["lang"],
            "entities": {},
            "group": "",
            "bot_guess": r["intent"],
            "bot_confidence": r["confidence"],
            "where": f"{r['channel']}:{r['state']}",
            "seen": r["seen_at"].isoformat(),
        }
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        count += 1
    return count
