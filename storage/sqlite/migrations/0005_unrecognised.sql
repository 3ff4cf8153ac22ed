-- Messages the bot did not understand, or barely (issue 17's learning loop): kept masked (no
-- digits, phones, e-mails or names) for the operator to label and add to training, and
-- pruned after the profile's learning.keep_days (law 09-08: no longer than needed).
CREATE TABLE unrecognised (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    lang TEXT NOT NULL,
    intent TEXT NOT NULL,
    confidence REAL NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE INDEX unrecognised_seen_at ON unrecognised (seen_at);
