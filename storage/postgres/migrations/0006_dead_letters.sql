-- Ported from storage/sqlite/migrations/0006_dead_letters.sql by storage/postgres/port.py.
-- Messages a channel delivered that the bot cannot read (issue 18.5): a field of the wrong type,
-- no sender, no id. Parked here with the reason and the channel's JSON as received, for the back
-- office (`addad deadletters`); their inbox row is marked answered, so they are never replayed.
-- `notified` = the sender was told "we could not read your message". Pruned with answered inbox
-- rows ([retention] inbox_days).
CREATE TABLE dead_letters (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    channel     TEXT NOT NULL,
    message_id  TEXT NOT NULL,               -- the channel's id, or a synthetic key (no usable id)
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL,
    notified    BIGINT NOT NULL DEFAULT 0,
    parked_at   TEXT NOT NULL,
    PRIMARY KEY (channel, message_id)
);
CREATE INDEX dead_letters_parked ON dead_letters (parked_at);
