-- Named queries of the PostgreSQL store: the same names and meaning as
-- schema/sqlite/queries.sql, with asyncpg's positional $n parameters, plus the few
-- statements only PostgreSQL needs (advisory locks, schema_version bookkeeping).

-- name: migration_lock
-- Held until the migrating transaction ends: replicas starting together migrate one at a
-- time, and the later ones find every version already recorded.
SELECT pg_advisory_xact_lock(hashtext('tembo-dispatch:migrate'));

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
);

-- name: applied_versions
SELECT version FROM schema_version;

-- name: record_version
INSERT INTO schema_version (version, applied_at) VALUES ($1, $2);

-- name: schema_version
SELECT COALESCE(MAX(version), 0) FROM schema_version;

-- name: enqueue_delivery
-- $1 delivery_id, $2 event, $3 action, $4 payload, $5 lock_key, $6 now, $7 dedupe keys
-- (distinct), $8 since. TRUE when queued, FALSE for a delivery id seen before; raises
-- SQLSTATE TD001 for a dedupe key seen since $8 (nothing is written either way).
SELECT enqueue_delivery($1, $2, $3, $4, $5, $6, $7::text[], $8);

-- name: record_config_words
-- $1 repo, $2 installation_id, $3 label, $4 command, $5 now
INSERT INTO config_words (repo, installation_id, label, command, recorded_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id,
    label = excluded.label, command = excluded.command, recorded_at = excluded.recorded_at;

-- name: config_words
-- $1 repo, $2 since
SELECT label, command FROM config_words WHERE repo = $1 AND recorded_at >= $2;

-- name: has_delivery
-- $1 delivery_id
SELECT EXISTS (SELECT 1 FROM deliveries WHERE delivery_id = $1);

-- name: insert_task
-- $1 kind, $2 priority, $3 payload, $4 lock_key, $5 run_at, $6 now
-- A job that is not a delivery, e.g. following a session.
INSERT INTO jobs (kind, priority, event, payload, lock_key, run_at, created_at, updated_at)
VALUES ($1, $2, $1, $3, $4, $5, $6, $6);

-- name: top_queued_priority
-- $1 below: the highest priority among queued jobs below it (NULL: none); one index lookup.
SELECT MAX(priority) FROM jobs WHERE state = 'queued' AND priority < $1;

-- name: find_claimable
-- $1 now, $2 lock keys this claim already gave up on, $3 priority.
-- The first due queued job of one priority, in the order jobs are taken, unless another
-- live job holds the same lock key (one job per issue at a time). One priority at a time
-- (top_queued_priority) so that the walk follows the jobs_claim index and stops at the
-- first job it can take, instead of sorting every queued job.
-- Rows another claimer has locked are skipped rather than waited for.
SELECT j.priority, j.run_at, j.id, j.lock_key FROM jobs AS j
WHERE j.state = 'queued' AND j.priority = $3 AND j.run_at <= $1
  AND (j.lock_key IS NULL OR NOT (j.lock_key = ANY ($2::text[])))
  AND (j.lock_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.lock_key = j.lock_key AND r.id <> j.id
          AND r.state = 'running' AND r.locked_until > $1))
ORDER BY j.run_at, j.id
LIMIT 1
FOR UPDATE OF j SKIP LOCKED;

-- name: find_expired
-- $1 now, $2 lock keys given up on: a running job whose lease ran out (its worker died),
-- on the same terms.
SELECT j.priority, j.run_at, j.id, j.lock_key FROM jobs AS j
WHERE j.state = 'running' AND j.locked_until <= $1
  AND (j.lock_key IS NULL OR NOT (j.lock_key = ANY ($2::text[])))
  AND (j.lock_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.lock_key = j.lock_key AND r.id <> j.id
          AND r.state = 'running' AND r.locked_until > $1))
ORDER BY j.priority DESC, j.run_at, j.id
LIMIT 1
FOR UPDATE OF j SKIP LOCKED;

-- name: try_lock_key
-- $1 lock_key. Non-blocking, released when the claim transaction ends. The two-key form
-- keeps these apart from the single-key migration lock.
SELECT pg_try_advisory_xact_lock(hashtext('tembo-dispatch:lock_key'), hashtext($1));

-- name: lock_key_held
-- $1 lock_key, $2 the candidate's id, $3 now
SELECT EXISTS (
    SELECT 1 FROM jobs
    WHERE lock_key = $1 AND id <> $2 AND state = 'running' AND locked_until > $3);

-- name: lease_job
-- $1 id, $2 worker, $3 until, $4 now, $5 lease token
UPDATE jobs
SET state = 'running', attempts = attempts + 1, locked_by = $2,
    locked_until = $3, lease_token = $5, updated_at = $4
WHERE id = $1
RETURNING id, delivery_id, event, payload, attempts, progress, kind, created_at;

-- name: extend_lease
-- $1 id, $2 lease token, $3 until
UPDATE jobs SET locked_until = $3
WHERE id = $1 AND lease_token = $2 AND state = 'running';

-- name: save_progress
-- $1 id, $2 progress (JSON text), $3 lease token
UPDATE jobs SET progress = $2 WHERE id = $1 AND lease_token = $3 AND state = 'running';

-- name: finish_job
-- $1 id, $2 now, $3 lease token
UPDATE jobs
SET state = 'done', locked_by = NULL, locked_until = NULL, lease_token = NULL, updated_at = $2
WHERE id = $1 AND lease_token = $3 AND state = 'running';

-- name: retry_job
-- $1 id, $2 error, $3 run_at, $4 lease token
UPDATE jobs
SET state = 'queued', run_at = $3, last_error = $2,
    locked_by = NULL, locked_until = NULL, lease_token = NULL
WHERE id = $1 AND lease_token = $4 AND state = 'running';

-- name: fail_job
-- $1 id, $2 error, $3 now, $4 state ('failed' or 'dead'), $5 lease token
UPDATE jobs
SET state = $4, last_error = $2, locked_by = NULL, locked_until = NULL, lease_token = NULL,
    updated_at = $3
WHERE id = $1 AND lease_token = $5 AND state = 'running';

-- name: reschedule_job
-- $1 id, $2 run_at, $3 now, $4 lease token. A recurring job done for now: due again at run_at.
UPDATE jobs
SET state = 'queued', run_at = $2, attempts = 0, last_error = NULL,
    locked_by = NULL, locked_until = NULL, lease_token = NULL, updated_at = $3
WHERE id = $1 AND lease_token = $4 AND state = 'running';

-- name: release_job
-- $1 id, $2 lease token
UPDATE jobs
SET state = 'queued', attempts = GREATEST(attempts - 1, 0), locked_by = NULL,
    locked_until = NULL, lease_token = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running';

-- name: next_run_at
-- Two index lookups (jobs_due), not a scan of every queued job.
SELECT MIN(at) FROM (
    SELECT MIN(run_at) AS at FROM jobs WHERE state = 'queued'
    UNION ALL
    SELECT MIN(locked_until) AS at FROM jobs WHERE state = 'running'
) AS due;

-- name: insert_session
-- $1 dispatch_id, $2 repo, $3 issue, $4 platform, $5 session_id, $6 url, $7 status,
-- $8 created_at, $9 comment_id, $10 installation_id, $11 view
INSERT INTO sessions (dispatch_id, repo, issue, platform, session_id, url, status, created_at,
                      comment_id, installation_id, view)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (dispatch_id) DO NOTHING;

-- name: sessions_for_issue
-- $1 repo, $2 issue
SELECT dispatch_id, repo, issue, platform, session_id, url, created_at, status, comment_id,
       installation_id, view
FROM sessions WHERE repo = $1 AND issue = $2 ORDER BY created_at, dispatch_id;

-- name: update_session
-- $1 dispatch_id, $2 status, $3 view (JSON text)
UPDATE sessions SET status = $2, view = $3 WHERE dispatch_id = $1;

-- name: insert_notice
-- $1 repo, $2 issue, $3 kind, $4 now
INSERT INTO notices (repo, issue, kind, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (repo, issue, kind) DO NOTHING;

-- name: upsert_installation
-- $1 id, $2 account, $3 state, $4 now
INSERT INTO installations (id, account, state, updated_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, state = excluded.state,
    updated_at = excluded.updated_at;

-- name: add_repository
-- $1 installation id, $2 full name
INSERT INTO installation_repositories (installation_id, full_name) VALUES ($1, $2)
ON CONFLICT DO NOTHING;

-- name: remove_repository
-- $1 installation id, $2 full name
DELETE FROM installation_repositories WHERE installation_id = $1 AND full_name = $2;

-- name: job_counts
-- $1 kind, or NULL for every kind
SELECT state, COUNT(*) FROM jobs WHERE $1::text IS NULL OR kind = $1 GROUP BY state;

-- name: count_installations
SELECT COUNT(*) FROM installations WHERE state = 'active';

-- name: count_repositories
SELECT COUNT(*) FROM installation_repositories;

-- name: recent_deliveries
SELECT d.delivery_id, d.event, d.action, d.received_at, j.state
FROM deliveries AS d LEFT JOIN jobs AS j ON j.delivery_id = d.delivery_id
ORDER BY d.received_at DESC LIMIT 10;

-- name: insert_usage
-- $1 key, $2 at, $3 installation_id, $4 repo, $5 issue, $6 sender, $7 platform, $8 kind,
-- $9 dispatch_id, $10 session_id, $11 outcome, $12 pr_url, $13 detail
INSERT INTO usage_ledger (entry_key, at, installation_id, repo, issue, sender, platform, kind,
                          dispatch_id, session_id, outcome, pr_url, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (entry_key) DO NOTHING;

-- name: usage_since
-- $1 since, $2 repo or NULL, $3 issue or NULL
SELECT entry_key, at, installation_id, repo, issue, sender, platform, kind, dispatch_id,
       session_id, outcome, pr_url, detail
FROM usage_ledger
WHERE at >= $1 AND ($2::text IS NULL OR repo = $2) AND ($3::bigint IS NULL OR issue = $3)
ORDER BY at, id;

-- name: usage_pull_request
-- $1 dispatch_id, $2 url
UPDATE usage_ledger SET pr_url = $2
WHERE dispatch_id = $1 AND kind = 'dispatch' AND pr_url = '';

-- name: budget_lock
-- $1 org. Held until the reserving transaction ends: reservations in one organisation
-- (which every limit is scoped to) count and insert one at a time, across replicas.
SELECT pg_advisory_xact_lock(hashtext('tembo-dispatch:budget'), hashtext($1));

-- name: find_reservation
-- $1 dispatch_id
SELECT state, forced FROM budget_reservations WHERE dispatch_id = $1;

-- name: budget_counts
-- $1 org, $2 repo, $3 sender, $4 start of the UTC day, $5 running since
SELECT
  (SELECT COUNT(*) FROM budget_reservations
   WHERE org = $1 AND sender = $3 AND at >= $4 AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE repo = $2 AND at >= $4 AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE org = $1 AND at >= $4 AND state <> 'released'),
  (SELECT COUNT(*) FROM budget_reservations
   WHERE repo = $2 AND state = 'held' AND at >= $5);

-- name: insert_reservation
-- $1 dispatch_id, $2 org, $3 repo, $4 sender, $5 now, $6 forced
INSERT INTO budget_reservations (dispatch_id, org, repo, sender, at, forced)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: end_reservation
-- $1 dispatch_id, $2 state (ended | released)
UPDATE budget_reservations SET state = $2 WHERE dispatch_id = $1 AND state = 'held';

-- name: take_budget
-- $1 key, $2 now, $3 minute limit, $4 minute seconds, $5 hour limit, $6 hour seconds
SELECT github_budget_take($1, $2, $3, $4, $5, $6);

-- name: pause_budget
-- $1 key, $2 until
INSERT INTO github_budget (key, paused_until) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE
SET paused_until = GREATEST(github_budget.paused_until, excluded.paused_until);

-- name: prune_jobs
-- $1 before, $2 batch. Finished jobs (done, failed, dead) last written before $1, payloads
-- and all; a batch at a time. Queued and running jobs stay. Rows another replica is
-- pruning right now are skipped, not waited for.
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE state IN ('done', 'failed', 'dead') AND updated_at < $1
    LIMIT $2 FOR UPDATE SKIP LOCKED);

-- name: prune_deliveries
-- $1 before, $2 batch. Deliveries received before $1 whose job is gone (pruned above): a
-- delivery whose job is still there, finished or not, stays, and so does its id for dedupe.
DELETE FROM deliveries WHERE delivery_id IN (
    SELECT d.delivery_id FROM deliveries AS d
    WHERE d.received_at < $1
      AND NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.delivery_id = d.delivery_id)
    LIMIT $2 FOR UPDATE OF d SKIP LOCKED);

-- name: prune_dedupe_keys
-- $1 before, $2 batch. Replay keys last seen before $1: ingest already lets a key that old
-- be taken over. A key taken over meanwhile (seen_at renewed) is no longer older than $1
-- when the delete reads it again, so it stays.
DELETE FROM dedupe_keys WHERE key IN (
    SELECT key FROM dedupe_keys WHERE seen_at < $1
    LIMIT $2 FOR UPDATE SKIP LOCKED);
