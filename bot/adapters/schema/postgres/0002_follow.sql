-- Jobs that are not deliveries (following a session after it starts): delivery_id
-- becomes optional, `kind` says what a job is, `priority` keeps new dispatches ahead.
ALTER TABLE jobs ALTER COLUMN delivery_id DROP NOT NULL;
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'delivery';
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 10;

-- The status comment a session's progress is written to, the installation to write it
-- with, and what the comment shows (JSON), so whoever edits it next starts from there.
ALTER TABLE sessions ADD COLUMN comment_id BIGINT;
ALTER TABLE sessions ADD COLUMN installation_id BIGINT;
ALTER TABLE sessions ADD COLUMN view TEXT NOT NULL DEFAULT '{}';
