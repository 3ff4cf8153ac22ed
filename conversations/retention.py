"""Retention (law 09-08): what the bot keeps of customers' messages, and for how long.

Once a message is answered its contents are no longer needed to deliver the answer: the answered
inbox row (the channel's JSON, as received) is deleted after `[retention] inbox_days`, the turn's
kept replies (amounts, references) are emptied after `replies_days`, and the key (channel,
message id, time) after `keys_days`, so a redelivery in between is still handled once (its turn is
rolled back; nothing is sent). Unanswered inbox rows are never deleted: they are replayed.
The messages kept for labelling follow `[learning] keep_days` (conversations/learning.py).
Meter photos (conversations/media.py) are deleted `photos_days` after the reading they prove,
never while that reading awaits review, and a day after arrival when no reading refers to them.

`prune` runs at a channel's start (conversations/inbox.py), once a day in the long-running
processes (`Daily`, by the store's clock) and by hand (`addad db prune`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import Store, Tx
from storage.media import MediaFiles

from . import handoff, learning
from .profile import Profile

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
UNUSED_PHOTO = DAY  # a photo no reading refers to (well beyond a session's idle time)


@dataclass(frozen=True)
class Pruned:
    inbox: int  # answered inbox rows deleted
    replies: int  # kept replies emptied
    keys: int  # message keys deleted
    learning: int  # messages kept for labelling forgotten
    photos: int = 0  # meter photos deleted
    dead_letters: int = 0  # parked unreadable messages deleted (after inbox_days, like inbox rows)
    chat_lines: int = 0  # lines of chats' recent conversations deleted (issue 20's handoff; after inbox_days)

    def __str__(self) -> str:
        return (
            f"{self.inbox} answered inbox row(s) deleted, {self.replies} kept reply(ies) emptied, "
            f"{self.keys} message key(s) deleted, {self.learning} message(s) for labelling forgotten, "
            f"{self.photos} meter photo(s) deleted, {self.dead_letters} parked message(s) deleted"
            + (f", {self.chat_lines} chat line(s) deleted" if self.chat_lines else "")
        )


async def prune(tx: Tx, profile: Profile, now: datetime, media: MediaFiles | None = None) -> Pruned:
    """Everything older than the profile's retention, in the caller's transaction; the photos'
    files in `media` (their rows are forgotten with them: a failed COMMIT brings back rows of
    deleted files, which the next run forgets)."""
    policy = profile.retention
    photos = await tx.prune_media(
        unused_before=now - UNUSED_PHOTO, kept_before=now - timedelta(days=policy.photos_days)
    )
    if media is not None:
        for digest in photos:
            media.delete(digest)
    return Pruned(
        inbox=await tx.prune_inbox(older_than=now - timedelta(days=policy.inbox_days)),
        replies=await tx.forget_replies(older_than=now - timedelta(days=policy.replies_days)),
        keys=await tx.prune_processed(older_than=now - timedelta(days=policy.keys_days)),
        learning=await learning.prune(tx, profile, now),
        photos=len(photos),
        dead_letters=await tx.prune_dead_letters(older_than=now - timedelta(days=policy.inbox_days)),
        chat_lines=await tx.prune_chat_log(
            older_than=now - timedelta(days=policy.inbox_days), keep=handoff.keep_lines(profile)
        ),
    )


class Daily:
    """Prunes when a day has passed on the store's clock since the last run (the first call runs)."""

    def __init__(self, store: Store, profile: Profile, media: MediaFiles | None = None) -> None:
        self.store, self.profile, self.media = store, profile, media
        self.last: datetime | None = None

    async def due(self) -> Pruned | None:
        now = self.store.clock()
        if self.last is not None and now - self.last < DAY:
            return None
        async with self.store.transaction() as tx:
            pruned = await prune(tx, self.profile, now, self.media)
        self.last = now
        log.info("retention: %s", pruned)
        return pruned
