-- Issue 24: the previous operators' references (Lydec, Redal, Amendis, ONEE, the régies) mapped to
-- today's contracts (`addad import legacy`, SPEC.md legacy.csv), and the connection and
-- subscription-transfer requests.
--
-- A reference is found by its digits (`reference_key`: Arabic-Indic digits read as 0-9, spaces,
-- dashes and dots dropped), as a customer types it; `reference` is kept as printed on the bills.
CREATE TABLE legacy_references (
    reference_key    TEXT PRIMARY KEY,
    legacy_operator  TEXT NOT NULL,
    reference        TEXT NOT NULL,
    contract         TEXT NOT NULL REFERENCES contracts (contract),
    updated_at       TEXT NOT NULL
);
CREATE INDEX legacy_references_contract ON legacy_references (contract);

-- Requests have a fixed set of kinds: widened with 'connection' (a new meter) and 'transfer'
-- (a subscription taken over). SQLite cannot alter a CHECK: the table is rebuilt, and its child
-- instalment_lines with it, so the foreign key is never dangling (foreign_keys is on). Every
-- column of the earlier migrations is carried over (0008's assigned_to included).
CREATE TABLE requests_v12 (
    id             INTEGER PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('deferral', 'instalment', 'prepaid_advance', 'prepaid_visit', 'callback', 'connection', 'transfer')),
    contract       TEXT REFERENCES contracts (contract),
    channel        TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    lang           TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'replaced', 'cancelled')),
    amount         INTEGER,
    months         INTEGER,
    defer_until    TEXT,
    reason         TEXT,
    reason_text    TEXT,
    details        TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT,
    decision_note  TEXT,
    assigned_to    TEXT REFERENCES accounts (name)
);
INSERT INTO requests_v12 (id, reference, kind, contract, channel, user_id, lang, status, amount, months, defer_until,
                          reason, reason_text, details, created_at, updated_at, decided_at, decided_by, decision_note, assigned_to)
SELECT id, reference, kind, contract, channel, user_id, lang, status, amount, months, defer_until,
       reason, reason_text, details, created_at, updated_at, decided_at, decided_by, decision_note, assigned_to FROM requests;
CREATE TABLE instalment_lines_v12 (
    request_id  INTEGER NOT NULL REFERENCES requests_v12 (id),
    seq         INTEGER NOT NULL,
    due_date    TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (request_id, seq)
);
INSERT INTO instalment_lines_v12 (request_id, seq, due_date, amount)
SELECT request_id, seq, due_date, amount FROM instalment_lines;
DROP TABLE instalment_lines;
DROP TABLE requests;
-- (renaming rewrites instalment_lines_v12's reference to requests_v12 into one to requests)
ALTER TABLE requests_v12 RENAME TO requests;
ALTER TABLE instalment_lines_v12 RENAME TO instalment_lines;
CREATE INDEX requests_contract ON requests (contract, status);
CREATE INDEX requests_chat ON requests (channel, user_id);
CREATE INDEX requests_status ON requests (status, created_at);
-- (0008's, dropped with the old table)
CREATE INDEX requests_kind_status ON requests (kind, status, created_at);
CREATE INDEX requests_created ON requests (created_at, id);
