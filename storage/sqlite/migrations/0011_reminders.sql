-- Proactive messages with consent (issue 22). `reminder_consents`: what a chat agreed to receive
-- (law 09-08: the answer and its time; every change is also in the audit log). `reminders_sent`:
-- one row per contract and occasion ("reading:2026-12", "due:F-2026-10-1", "instalment:IN-…:1"),
-- written in the transaction that queues its outbox row, so a reminder is queued at most once
-- whatever crashes or runs twice. `notices`: a service notice, once per text and city;
-- each chat's copy is an outbox row with the dedupe key notice:<id>:<channel>:<user>.
CREATE TABLE reminder_consents (
    channel      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    kinds        TEXT NOT NULL,               -- comma-separated kinds agreed to; '' = none
    asked_at     TEXT NOT NULL,
    answered_at  TEXT,                        -- NULL: asked, not answered (nothing is sent)
    how          TEXT,                        -- answers: 'button', 'typed', 'stop', 'menu'; while unanswered: 'shown', 'shown_twice' (put once, twice)
    PRIMARY KEY (channel, user_id)
);
CREATE TABLE reminders_sent (
    contract   TEXT NOT NULL,
    occasion   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    outbox_id  INTEGER,
    queued_at  TEXT NOT NULL,
    PRIMARY KEY (contract, occasion)
);
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,          -- sha256 of city, service and both texts
    city        TEXT NOT NULL,
    service     TEXT,
    text_ar     TEXT NOT NULL,
    text_fr     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
