-- Deliveries, jobs, sessions and what the app has seen of installations.
CREATE TABLE deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    action      TEXT,
    received_at REAL NOT NULL
);

-- state: queued -> running -> done | failed (permanent error) | dead (attempts used up)
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL UNIQUE REFERENCES deliveries (delivery_id),
    event        TEXT NOT NULL,
    payload      BLOB NOT NULL,
    lock_key     TEXT,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       REAL NOT NULL,
    locked_by    TEXT,
    locked_until REAL,
    progress     TEXT NOT NULL DEFAULT '{}',
    last_error   TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_lock ON jobs (lock_key, state);

CREATE TABLE sessions (
    dispatch_id TEXT PRIMARY KEY,
    repo        TEXT NOT NULL,
    issue       INTEGER NOT NULL,
    platform    TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    url         TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
CREATE INDEX sessions_issue ON sessions (repo, issue);

CREATE TABLE notices (
    repo       TEXT NOT NULL,
    issue      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (repo, issue, kind)
);

CREATE TABLE installations (
    id         INTEGER PRIMARY KEY,
    account    TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE installation_repositories (
    installation_id INTEGER NOT NULL,
    full_name       TEXT NOT NULL,
    PRIMARY KEY (installation_id, full_name)
);
