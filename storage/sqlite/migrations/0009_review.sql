-- Issue 20: the back office's review of flagged customer readings, the human handoff, and the
-- recent messages of each chat an agent reads when he takes it.

-- One outcome per reading (the primary key refuses a second review). A rejected reading leaves
-- the valid ones (readings.status becomes 'replaced': the CHECK of 0001 allows no other value, and
-- rebuilding a table of millions of rows for a label is not worth it); this row says why.
CREATE TABLE reading_reviews (
    reading_id      INTEGER PRIMARY KEY REFERENCES readings (id),
    outcome         TEXT NOT NULL CHECK (outcome IN ('accepted', 'corrected', 'rejected')),
    reviewed_by     TEXT NOT NULL,            -- 'backoffice:<name>' or the workspace account
    reviewed_at     TEXT NOT NULL,
    note            TEXT,                     -- shown to the customer
    original_index  INTEGER NOT NULL,         -- what the customer typed
    corrected_index INTEGER                   -- 'corrected' only
);
CREATE INDEX reading_reviews_at ON reading_reviews (reviewed_at);
-- The review queue: customer readings that wait for an agent, newest submissions last.
CREATE INDEX readings_flagged ON readings (submitted_at) WHERE source = 'customer' AND (review = 1 OR rollover = 1);
-- Which reading replaced which (the queue flags a replacing reading; a rejection restores the replaced one).
CREATE INDEX readings_replaced_by ON readings (replaced_by) WHERE replaced_by IS NOT NULL;

-- A customer who asked for a human: waiting, then taken by an agent (the bot is quiet on that
-- chat), then closed (handed back, timed out). One open handoff per chat.
CREATE TABLE handoffs (
    id            INTEGER PRIMARY KEY,
    channel       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    lang          TEXT NOT NULL,
    contract      TEXT,                       -- the first linked contract when asked, if any
    status        TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'taken', 'closed')),
    requested_at  TEXT NOT NULL,
    taken_by      TEXT,
    taken_at      TEXT,
    last_agent_at TEXT,                       -- the agent's last message (the timeout counts from it)
    closed_at     TEXT,
    closed_by     TEXT,
    close_reason  TEXT CHECK (close_reason IN ('returned', 'timeout'))
);
CREATE UNIQUE INDEX handoffs_open ON handoffs (channel, user_id) WHERE status != 'closed';
CREATE INDEX handoffs_status ON handoffs (status, requested_at);

-- The last messages of each chat (customer, bot, agent), masked when written (phone and contract
-- numbers partly hidden), at most a few dozen per chat, deleted after [retention] inbox_days.
CREATE TABLE chat_messages (
    id       INTEGER PRIMARY KEY,
    channel  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    at       TEXT NOT NULL,
    sender   TEXT NOT NULL CHECK (sender IN ('customer', 'bot', 'agent')),
    author   TEXT,                            -- the agent's account
    text     TEXT NOT NULL
);
CREATE INDEX chat_messages_chat ON chat_messages (channel, user_id, id);
CREATE INDEX chat_messages_at ON chat_messages (at);

-- The workspace's statistics: audit entries by action over a window (link failures, lockouts),
-- customer readings per day and channel, and the contracts read per source in a cycle (covering
-- indexes: a month of a distributor's readings is counted from the index alone).
CREATE INDEX audit_action_at ON audit_log (action, at);
CREATE INDEX readings_customer_days ON readings (submitted_at, reading_date, channel) WHERE source = 'customer';
CREATE INDEX readings_cycle ON readings (source, reading_date, contract) WHERE status = 'valid';
