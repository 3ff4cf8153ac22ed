-- Ported from storage/sqlite/migrations/0002_inbox.sql by storage/postgres/port.py.
-- Updates accepted from a channel before they are processed: a poll confirmed to Telegram, or a
-- WhatsApp webhook answered 200, is on disk first, so a crash before its turn does not lose it.
-- A row is pending while its (channel, message_id) is not in processed_messages.
CREATE TABLE inbox (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    channel      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    body         TEXT NOT NULL,               -- the channel's JSON, as received
    received_at  TEXT NOT NULL,
    PRIMARY KEY (channel, message_id)
);
CREATE INDEX inbox_received ON inbox (received_at);
