-- What a replay would repeat (a body's digest, a trigger's identity), with when it was
-- first queued: ingest answers a second sight within its window "duplicate".
CREATE TABLE dedupe_keys (
    key     TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE INDEX dedupe_keys_seen ON dedupe_keys (seen_at);

-- The label and command each repository's configuration used when the worker last read
-- it: ingest answers deliveries they prove cannot trigger without making a job.
CREATE TABLE config_words (
    repo            TEXT PRIMARY KEY,
    installation_id INTEGER NOT NULL,
    label           TEXT NOT NULL,
    command         TEXT NOT NULL,
    recorded_at     REAL NOT NULL
);
