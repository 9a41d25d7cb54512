-- name: insert_delivery
INSERT INTO deliveries (delivery_id, event, action, received_at)
VALUES (:delivery_id, :event, :action, :now)
ON CONFLICT (delivery_id) DO NOTHING;

-- name: claim_dedupe_key
-- A row when the key is new or its last sighting is older than :since (then it is taken
-- over); none when it was seen within the window: the delivery is a replay.
INSERT INTO dedupe_keys (key, seen_at) VALUES (:key, :now)
ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at
WHERE dedupe_keys.seen_at < :since;

-- name: record_config_words
INSERT INTO config_words (repo, installation_id, label, command, recorded_at)
VALUES (:repo, :installation_id, :label, :command, :now)
ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id,
    label = excluded.label, command = excluded.command, recorded_at = excluded.recorded_at;

-- name: config_words
SELECT label, command FROM config_words WHERE repo = :repo AND recorded_at >= :since;

-- name: has_delivery
SELECT 1 FROM deliveries WHERE delivery_id = :delivery_id;

-- name: insert_job
INSERT INTO jobs (delivery_id, event, payload, lock_key, run_at, created_at, updated_at)
VALUES (:delivery_id, :event, :payload, :lock_key, :now, :now, :now);

-- name: insert_task
-- A job that is not a delivery, e.g. following a session; due at :run_at.
INSERT INTO jobs (kind, priority, event, payload, lock_key, run_at, created_at, updated_at)
VALUES (:kind, :priority, :kind, :payload, :lock_key, :run_at, :now, :now);

-- name: top_queued_priority
-- The highest priority among queued jobs below :below (NULL: none); one index lookup.
SELECT MAX(priority) FROM jobs WHERE state = 'queued' AND priority < :below;

-- name: find_claimable
-- The first due queued job of one priority, in the order jobs are taken, unless another
-- live job holds the same lock key (one job per issue at a time). One priority at a time
-- (top_queued_priority) so that the walk follows the jobs_claim index and stops at the
-- first job it can take, instead of sorting every queued job.
SELECT j.priority, j.run_at, j.id FROM jobs AS j
WHERE j.state = 'queued' AND j.priority = :priority AND j.run_at <= :now
  AND (j.lock_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.lock_key = j.lock_key AND r.id != j.id
          AND r.state = 'running' AND r.locked_until > :now))
ORDER BY j.run_at, j.id
LIMIT 1;

-- name: find_expired
-- A running job whose lease ran out (its worker died), on the same terms.
SELECT j.priority, j.run_at, j.id FROM jobs AS j
WHERE j.state = 'running' AND j.locked_until <= :now
  AND (j.lock_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.lock_key = j.lock_key AND r.id != j.id
          AND r.state = 'running' AND r.locked_until > :now))
ORDER BY j.priority DESC, j.run_at, j.id
LIMIT 1;

-- name: lease_job
UPDATE jobs
SET state = 'running', attempts = attempts + 1, locked_by = :worker,
    locked_until = :until, lease_token = :lease, updated_at = :now
WHERE id = :id
RETURNING id, delivery_id, event, payload, attempts, progress, kind, created_at;

-- name: extend_lease
UPDATE jobs SET locked_until = :until
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: save_progress
UPDATE jobs SET progress = :progress
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: finish_job
UPDATE jobs
SET state = 'done', locked_by = NULL, locked_until = NULL, lease_token = NULL, updated_at = :now
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: retry_job
UPDATE jobs
SET state = 'queued', run_at = :run_at, last_error = :error,
    locked_by = NULL, locked_until = NULL, lease_token = NULL
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: fail_job
UPDATE jobs
SET state = :state, last_error = :error, locked_by = NULL, locked_until = NULL, lease_token = NULL,
    updated_at = :now
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: reschedule_job
-- A recurring job (following a session) done for now: due again at :run_at.
UPDATE jobs
SET state = 'queued', run_at = :run_at, attempts = 0, last_error = NULL,
    locked_by = NULL, locked_until = NULL, lease_token = NULL, updated_at = :now
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: release_job
UPDATE jobs
SET state = 'queued', attempts = MAX(attempts - 1, 0), locked_by = NULL, locked_until = NULL, lease_token = NULL
WHERE id = :id AND lease_token = :lease AND state = 'running';

-- name: next_run_at
-- Two index lookups (jobs_due), not a scan of every queued job.
SELECT MIN(at) FROM (
    SELECT MIN(run_at) AS at FROM jobs WHERE state = 'queued'
    UNION ALL
    SELECT MIN(locked_until) AS at FROM jobs WHERE state = 'running'
);

-- name: insert_session
INSERT INTO sessions (dispatch_id, repo, issue, platform, session_id, url, status, created_at,
                      comment_id, installation_id, view)
VALUES (:dispatch_id, :repo, :issue, :platform, :session_id, :url, :status, :created_at,
        :comment_id, :installation_id, :view)
ON CONFLICT (dispatch_id) DO NOTHING;

-- name: sessions_for_issue
SELECT dispatch_id, repo, issue, platform, session_id, url, created_at, status, comment_id,
       installation_id, view
FROM sessions WHERE repo = :repo AND issue = :issue ORDER BY created_at, dispatch_id;

-- name: update_session
UPDATE sessions SET status = :status, view = :view WHERE dispatch_id = :dispatch_id;

-- name: insert_notice
INSERT INTO notices (repo, issue, kind, created_at) VALUES (:repo, :issue, :kind, :now)
ON CONFLICT (repo, issue, kind) DO NOTHING;

-- name: upsert_installation
INSERT INTO installations (id, account, state, updated_at)
VALUES (:id, :account, :state, :now)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, state = excluded.state,
    updated_at = excluded.updated_at;

-- name: add_repository
INSERT INTO installation_repositories (installation_id, full_name) VALUES (:id, :name)
ON CONFLICT DO NOTHING;

-- name: remove_repository
DELETE FROM installation_repositories WHERE installation_id = :id AND full_name = :name;

-- name: job_counts
SELECT state, COUNT(*) FROM jobs WHERE :kind IS NULL OR kind = :kind GROUP BY state;

-- name: count_installations
SELECT COUNT(*) FROM installations WHERE state = 'active';

-- name: count_repositories
SELECT COUNT(*) FROM installation_repositories;

-- name: recent_deliveries
SELECT d.delivery_id, d.event, d.action, d.received_at, j.state
FROM deliveries AS d LEFT JOIN jobs AS j ON j.delivery_id = d.delivery_id
ORDER BY d.received_at DESC LIMIT 10;

-- name: insert_usage
INSERT INTO usage_ledger (entry_key, at, installation_id, repo, issue, sender, platform, kind,
                          dispatch_id, session_id, outcome, pr_url, detail)
VALUES (:key, :at, :installation_id, :repo, :issue, :sender, :platform, :kind,
        :dispatch_id, :session_id, :outcome, :pr_url, :detail)
ON CONFLICT (entry_key) DO NOTHING;

-- name: usage_since
SELECT entry_key, at, installation_id, repo, issue, sender, platform, kind, dispatch_id,
       session_id, outcome, pr_url, detail
FROM usage_ledger
WHERE at >= :since AND (:repo IS NULL OR repo = :repo) AND (:issue IS NULL OR issue = :issue)
ORDER BY at, id;

-- name: usage_pull_request
-- The dispatch row learns its pull request when the session's follow job sees it.
UPDATE usage_ledger SET pr_url = :url
WHERE dispatch_id = :dispatch_id AND kind = 'dispatch' AND pr_url = '';

-- name: find_reservation
SELECT state, forced FROM budget_reservations WHERE dispatch_id = :dispatch_id;

-- name: budget_counts
-- Reservations the new one is measured against: today's (UTC) by sender in the org, by
-- repository and by org, and the repository's still running (held, younger than a day).
SELECT
  (SELECT COUNT(*) FROM budget_reservations
   WHERE org = :org AND sender = :sender AND at >= :day AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE repo = :repo AND at >= :day AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE org = :org AND at >= :day AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE repo = :repo AND state = 'held' AND at >= :running_since);

-- name: insert_reservation
INSERT INTO budget_reservations (dispatch_id, org, repo, sender, at, forced)
VALUES (:dispatch_id, :org, :repo, :sender, :now, :forced);

-- name: end_reservation
-- ended: the session is over (still counts for its day); released: never started.
UPDATE budget_reservations SET state = :state WHERE dispatch_id = :dispatch_id AND state = 'held';

-- name: read_budget
SELECT grants, paused_until FROM github_budget WHERE key = :key;

-- name: write_budget
INSERT INTO github_budget (key, grants) VALUES (:key, :grants)
ON CONFLICT (key) DO UPDATE SET grants = excluded.grants;

-- name: pause_budget
INSERT INTO github_budget (key, paused_until) VALUES (:key, :until)
ON CONFLICT (key) DO UPDATE SET paused_until = MAX(paused_until, excluded.paused_until);

-- name: prune_jobs
-- Finished jobs (done, failed, dead) last written before :before, payloads and all; a
-- batch at a time, so the one writer is held only briefly. Queued and running jobs stay.
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE state IN ('done', 'failed', 'dead') AND updated_at < :before
    LIMIT :batch);

-- name: prune_deliveries
-- Deliveries received before :before whose job is gone (pruned above): a delivery whose
-- job is still there, finished or not, stays, and so does its id for dedupe.
DELETE FROM deliveries WHERE delivery_id IN (
    SELECT d.delivery_id FROM deliveries AS d
    WHERE d.received_at < :before
      AND NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.delivery_id = d.delivery_id)
    LIMIT :batch);

-- name: prune_dedupe_keys
-- Replay keys last seen before :before: ingest already lets a key that old be taken over.
DELETE FROM dedupe_keys WHERE key IN (
    SELECT key FROM dedupe_keys WHERE seen_at < :before LIMIT :batch);
