-- The web workspace (bot/web/): accounts, their sessions, the sign-in throttle, the workspace's
-- own settings (the generated cookie key), and who a request is assigned to.

CREATE TABLE accounts (
    name           TEXT PRIMARY KEY,          -- what the person types to sign in
    role           TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash  TEXT NOT NULL,             -- argon2id (argon2-cffi), never the password
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE web_sessions (
    token_hash   TEXT PRIMARY KEY,            -- HMAC-SHA256 of the cookie's token: a copy of the file signs nobody in
    account      TEXT NOT NULL REFERENCES accounts (name),
    address      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions (account);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

CREATE TABLE signin_failures (
    id       INTEGER PRIMARY KEY,
    account  TEXT NOT NULL,                   -- the name typed (it may not exist)
    address  TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX signin_failures_account ON signin_failures (account, at);
CREATE INDEX signin_failures_address ON signin_failures (address, at);

CREATE TABLE workspace_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

ALTER TABLE requests ADD COLUMN assigned_to TEXT REFERENCES accounts (name);
-- The queue's filters and its oldest-first order (bench/bench_web.py).
CREATE INDEX requests_kind_status ON requests (kind, status, created_at);
CREATE INDEX requests_created ON requests (created_at, id);
