-- The usage ledger: one row per dispatch, follow-up, stop, refusal and fallback.
-- `entry_key` makes a row idempotent: a retried or resumed job writes its row once.
CREATE TABLE usage_ledger (
    id              BIGSERIAL PRIMARY KEY,
    entry_key       TEXT NOT NULL UNIQUE,
    at              DOUBLE PRECISION NOT NULL,
    installation_id BIGINT,
    repo            TEXT NOT NULL,
    issue           BIGINT NOT NULL,
    sender          TEXT NOT NULL DEFAULT '',
    platform        TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL,
    dispatch_id     TEXT,
    session_id      TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL,
    pr_url          TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX usage_ledger_at ON usage_ledger (at);
CREATE INDEX usage_ledger_issue ON usage_ledger (repo, issue);
CREATE INDEX usage_ledger_dispatch ON usage_ledger (dispatch_id);

-- Budget reservations, one per dispatch id (so a retried job never counts twice).
-- state: held (counts for the day and as running) -> ended (counts for the day only)
--        or released (a create refused for good: counts for nothing).
CREATE TABLE budget_reservations (
    dispatch_id TEXT PRIMARY KEY,
    org         TEXT NOT NULL,
    repo        TEXT NOT NULL,
    sender      TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    state       TEXT NOT NULL DEFAULT 'held',
    forced      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX budget_reservations_org ON budget_reservations (org, at);
CREATE INDEX budget_reservations_repo ON budget_reservations (repo, at);
