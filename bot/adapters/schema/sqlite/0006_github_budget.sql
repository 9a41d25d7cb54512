-- GitHub's content budget, one row per key (the App, or an installation): the times of
-- the grants of the last hour (a JSON array) and a pause GitHub asked for.
CREATE TABLE github_budget (
    key          TEXT PRIMARY KEY,
    grants       TEXT NOT NULL DEFAULT '[]',
    paused_until REAL NOT NULL DEFAULT 0
);
