-- Several workers on one PostgreSQL database (docs/deploy.md "Two workers"): each inbox row
-- names its chat, so a worker holding the chat's lock takes the chat's oldest unanswered row
-- (order from rowid) whichever worker received it. NULL for rows kept by one process alone
-- (SQLite, or before this version): those are replayed as before (conversations/inbox.py).
ALTER TABLE inbox ADD COLUMN chat TEXT;
CREATE INDEX inbox_unanswered_chat ON inbox (channel, chat) WHERE answered_at IS NULL;
-- Which worker claimed an outbox message (its id: storage/postgres/locks.py): a starting worker
-- takes over at once the claims of a worker no longer alive, never those of a live one.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
