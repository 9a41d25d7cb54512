-- Deliveries, jobs, sessions and what the app has seen of installations.
-- The same tables and columns as schema/sqlite/0001_init.sql. Times are epoch seconds in
-- DOUBLE PRECISION (not timestamptz) so the Store protocol's float timestamps round-trip.
CREATE TABLE deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    action      TEXT,
    received_at DOUBLE PRECISION NOT NULL
);

-- state: queued -> running -> done | failed (permanent error) | dead (attempts used up)
CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  TEXT NOT NULL UNIQUE REFERENCES deliveries (delivery_id),
    event        TEXT NOT NULL,
    payload      BYTEA NOT NULL,            -- the webhook body, byte for byte
    lock_key     TEXT,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       DOUBLE PRECISION NOT NULL,
    locked_by    TEXT,
    locked_until DOUBLE PRECISION,
    -- JSON as TEXT, not JSONB: JSONB refuses the escape \u0000 that json.dumps writes for
    -- a NUL character, and a progress record that cannot be saved would stall the job.
    progress     TEXT NOT NULL DEFAULT '{}',
    last_error   TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_lock ON jobs (lock_key, state);

CREATE TABLE sessions (
    dispatch_id TEXT PRIMARY KEY,
    repo        TEXT NOT NULL,
    issue       BIGINT NOT NULL,
    platform    TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    url         TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX sessions_issue ON sessions (repo, issue);

CREATE TABLE notices (
    repo       TEXT NOT NULL,
    issue      BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (repo, issue, kind)
);

CREATE TABLE installations (
    id         BIGINT PRIMARY KEY,
    account    TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE installation_repositories (
    installation_id BIGINT NOT NULL,
    full_name       TEXT NOT NULL,
    PRIMARY KEY (installation_id, full_name)
);
