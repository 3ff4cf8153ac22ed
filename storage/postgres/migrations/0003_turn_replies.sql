-- Ported from storage/sqlite/migrations/0003_turn_replies.sql by storage/postgres/port.py.
-- A turn's replies are kept with the message that caused them, in the turn's own transaction,
-- and an inbox row is answered once its replies went out. After a crash between the turn's
-- commit and the sending, the restart sends the kept replies: the customer who confirmed a
-- reading is never left without its reference.
ALTER TABLE processed_messages ADD COLUMN replies TEXT;   -- JSON list of replies, NULL before this version
ALTER TABLE inbox ADD COLUMN answered_at TEXT;            -- replies sent (or none to send)
