-- Ported from storage/sqlite/migrations/0010_ocr.sql by storage/postgres/port.py.
-- The index read from the meter photo (issue 21, conversations/ocr.py): what the photo showed
-- when the reader was sure, beside the index the customer confirmed or typed (the reference).
-- A reading whose two differ is held for review (review_reason 'ocr', both values in details).
ALTER TABLE readings ADD COLUMN ocr_index BIGINT;
