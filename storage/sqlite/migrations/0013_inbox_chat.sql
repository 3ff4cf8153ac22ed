-- Several workers on one PostgreSQL database (docs/deploy.md "Two workers"): each inbox row
-- names its chat, so a worker holding the chat's lock takes the chat's oldest unanswered row
-- (order from rowid) whichever worker received it. NULL for rows kept by one process alone
-- (SQLite, or before this version): those are replayed as before (conversations/inbox.py).
ALTER TABLE inbox ADD COLUMN chat TEXT;
CREATE INDEX inbox_unanswered_chat ON inbox (channel, chat) WHERE answered_at IS NULL;
