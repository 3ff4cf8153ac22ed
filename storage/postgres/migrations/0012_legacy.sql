-- Ported by hand from storage/sqlite/migrations/0012_legacy.sql: SQLite rebuilds requests to widen
-- a CHECK; PostgreSQL alters the constraint in place (a copy would leave the id sequence behind).
-- Issue 24: the previous operators' references (Lydec, Redal, Amendis, ONEE, the régies) mapped to
-- today's contracts (`addad import legacy`, SPEC.md legacy.csv), and the connection and
-- subscription-transfer requests.
--
-- A reference is found by its digits (`reference_key`: Arabic-Indic digits read as 0-9, spaces,
-- dashes and dots dropped), as a customer types it; `reference` is kept as printed on the bills.
CREATE TABLE legacy_references (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    reference_key    TEXT PRIMARY KEY,
    legacy_operator  TEXT NOT NULL,
    reference        TEXT NOT NULL,
    contract         TEXT NOT NULL REFERENCES contracts (contract),
    updated_at       TEXT NOT NULL
);
CREATE INDEX legacy_references_contract ON legacy_references (contract);

-- Requests have a fixed set of kinds: widened with 'connection' (a new meter) and 'transfer'
-- (a subscription taken over).
ALTER TABLE requests DROP CONSTRAINT requests_kind_check;
ALTER TABLE requests ADD CONSTRAINT requests_kind_check
    CHECK (kind IN ('deferral', 'instalment', 'prepaid_advance', 'prepaid_visit', 'callback', 'connection', 'transfer'));
