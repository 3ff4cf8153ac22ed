-- Ported from storage/sqlite/migrations/0007_photos.sql by storage/postgres/port.py.
-- Meter photos kept as evidence (issue 18.7). The file is named by the SHA-256 of its bytes under
-- ADDAD_MEDIA_DIR (storage/media.py); `media` says when it arrived (the unused ones are pruned a
-- day later) and what it is; a reading carries the hash of the photo that came with it.
ALTER TABLE readings ADD COLUMN photo_sha256 TEXT;
CREATE INDEX readings_photo ON readings (photo_sha256) WHERE photo_sha256 IS NOT NULL;
CREATE TABLE media (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    sha256      TEXT PRIMARY KEY,
    bytes       BIGINT NOT NULL,
    format      TEXT NOT NULL,               -- JPEG, PNG or WEBP (checked with Pillow)
    received_at TEXT NOT NULL                -- the last time these bytes arrived
);
CREATE INDEX media_received ON media (received_at);
