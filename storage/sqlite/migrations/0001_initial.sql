-- Addad schema v1. Money is integer centimes; dates are ISO text (YYYY-MM-DD), times are
-- ISO-8601 UTC text with seconds (YYYY-MM-DDTHH:MM:SS.ffffff+00:00).

CREATE TABLE contracts (
    contract        TEXT PRIMARY KEY,
    service         TEXT NOT NULL CHECK (service IN ('electricity', 'water')),
    holder_name     TEXT NOT NULL,
    phone           TEXT NOT NULL,            -- E.164
    language        TEXT CHECK (language IN ('ar', 'fr')),
    city            TEXT NOT NULL,
    meter_number    TEXT NOT NULL,
    meter_kind      TEXT NOT NULL CHECK (meter_kind IN ('postpaid', 'prepaid')),
    meter_digits    INTEGER NOT NULL CHECK (meter_digits BETWEEN 1 AND 12),
    last_index      INTEGER NOT NULL CHECK (last_index >= 0),
    last_index_date TEXT NOT NULL,
    tariff          TEXT NOT NULL,
    low_income      INTEGER NOT NULL DEFAULT 0 CHECK (low_income IN (0, 1)),
    updated_at      TEXT NOT NULL
);
CREATE INDEX contracts_phone ON contracts (phone);
CREATE INDEX contracts_city ON contracts (city);

CREATE TABLE bills (
    bill_number   TEXT PRIMARY KEY,
    contract      TEXT NOT NULL REFERENCES contracts (contract),
    period_start  TEXT NOT NULL,
    period_end    TEXT NOT NULL,
    issue_date    TEXT NOT NULL,
    due_date      TEXT NOT NULL,
    index_start   INTEGER NOT NULL,
    index_end     INTEGER NOT NULL,
    consumption   INTEGER NOT NULL CHECK (consumption >= 0),
    estimated     INTEGER NOT NULL CHECK (estimated IN (0, 1)),
    amount        INTEGER NOT NULL CHECK (amount >= 0),       -- centimes
    paid_amount   INTEGER NOT NULL CHECK (paid_amount >= 0),  -- centimes
    updated_at    TEXT NOT NULL
);
CREATE INDEX bills_contract ON bills (contract, period_end);

CREATE TABLE readings (
    id            INTEGER PRIMARY KEY,
    contract      TEXT NOT NULL REFERENCES contracts (contract),
    reading_date  TEXT NOT NULL,
    index_value   INTEGER NOT NULL CHECK (index_value >= 0),
    source        TEXT NOT NULL CHECK (source IN ('actual', 'estimated', 'customer')),
    status        TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'replaced')),
    reference     TEXT UNIQUE,                -- customer readings: what the customer was told
    channel       TEXT,
    user_id       TEXT,
    photo_ref     TEXT,                       -- channel file id / media id of the meter photo
    previous_index INTEGER,
    previous_date TEXT,
    consumption   INTEGER,
    rollover      INTEGER NOT NULL DEFAULT 0,
    review        INTEGER NOT NULL DEFAULT 0, -- flagged for a back-office check
    review_reason TEXT,
    details       TEXT,                       -- JSON: pre-bill, estimate correction
    replaced_by   INTEGER REFERENCES readings (id),
    submitted_at  TEXT NOT NULL
);
-- One valid reading per contract, day and source: makes history imports idempotent.
CREATE UNIQUE INDEX readings_one_per_day ON readings (contract, reading_date, source) WHERE status = 'valid';
CREATE INDEX readings_contract ON readings (contract, reading_date);
CREATE INDEX readings_submitted ON readings (source, submitted_at);

CREATE TABLE agencies (
    id       INTEGER PRIMARY KEY,
    city     TEXT NOT NULL,
    name     TEXT NOT NULL,
    address  TEXT NOT NULL,
    phone    TEXT NOT NULL,
    hours    TEXT NOT NULL,
    city_key TEXT NOT NULL,                   -- case- and accent-folded city, for lookups
    UNIQUE (city_key, name)
);

CREATE TABLE chat_links (
    channel      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    contract     TEXT NOT NULL REFERENCES contracts (contract),
    method       TEXT NOT NULL CHECK (method IN ('phone', 'bill_amount')),
    verified_at  TEXT NOT NULL,
    PRIMARY KEY (channel, user_id, contract)
);
CREATE INDEX chat_links_contract ON chat_links (contract);

CREATE TABLE sessions (
    channel     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',   -- JSON
    lang        TEXT,
    version     INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE processed_messages (
    channel      TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (channel, message_id)
);
CREATE INDEX processed_messages_at ON processed_messages (processed_at);

CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('deferral', 'instalment', 'prepaid_advance', 'prepaid_visit', 'callback')),
    contract       TEXT REFERENCES contracts (contract),
    channel        TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    lang           TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'replaced', 'cancelled')),
    amount         INTEGER,                   -- centimes: arrears covered
    months         INTEGER,
    defer_until    TEXT,
    reason         TEXT,
    reason_text    TEXT,
    details        TEXT NOT NULL DEFAULT '{}', -- JSON
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT,
    decision_note  TEXT
);
CREATE INDEX requests_contract ON requests (contract, status);
CREATE INDEX requests_chat ON requests (channel, user_id);
CREATE INDEX requests_status ON requests (status, created_at);

CREATE TABLE instalment_lines (
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    seq         INTEGER NOT NULL,
    due_date    TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),   -- centimes
    PRIMARY KEY (request_id, seq)
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    channel          TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    lang             TEXT NOT NULL,
    kind             TEXT NOT NULL,             -- what it is, e.g. 'request_decision'
    payload          TEXT NOT NULL,             -- JSON: message key and parameters, rendered at send time
    dedupe_key       TEXT UNIQUE,               -- one message per event, whoever enqueues it
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'held', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    claimed_at       TEXT,
    sent_at          TEXT,
    external_id      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_chat ON outbox (channel, user_id, status);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,                  -- 'customer', 'backoffice:<name>', 'system', 'import'
    action    TEXT NOT NULL,
    channel   TEXT,
    user_id   TEXT,
    contract  TEXT,
    details   TEXT NOT NULL DEFAULT '{}'      -- JSON
);
CREATE INDEX audit_chat ON audit_log (channel, user_id, action, at);
CREATE INDEX audit_contract ON audit_log (contract, at);
