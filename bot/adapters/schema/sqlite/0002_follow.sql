-- Jobs that are not deliveries (following a session after it starts): delivery_id
-- becomes optional, `kind` says what a job is, `priority` keeps new dispatches ahead.
-- SQLite cannot drop NOT NULL in place, so the table is rebuilt.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT UNIQUE REFERENCES deliveries (delivery_id),
    kind         TEXT NOT NULL DEFAULT 'delivery',
    priority     INTEGER NOT NULL DEFAULT 10,
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
INSERT INTO jobs_new (id, delivery_id, event, payload, lock_key, state, attempts, run_at,
                      locked_by, locked_until, progress, last_error, created_at, updated_at)
SELECT id, delivery_id, event, payload, lock_key, state, attempts, run_at,
       locked_by, locked_until, progress, last_error, created_at, updated_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_lock ON jobs (lock_key, state);

-- The status comment a session's progress is written to, the installation to write it
-- with, and what the comment shows (JSON), so whoever edits it next starts from there.
ALTER TABLE sessions ADD COLUMN comment_id INTEGER;
ALTER TABLE sessions ADD COLUMN installation_id INTEGER;
ALTER TABLE sessions ADD COLUMN view TEXT NOT NULL DEFAULT '{}';
