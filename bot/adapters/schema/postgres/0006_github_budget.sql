-- GitHub's content budget, one row per key (the App, or an installation): the times of
-- the grants of the last hour and a pause GitHub asked for.
CREATE TABLE github_budget (
    key          TEXT PRIMARY KEY,
    grants       DOUBLE PRECISION[] NOT NULL DEFAULT '{}',
    paused_until DOUBLE PRECISION NOT NULL DEFAULT 0
);

-- Take one slot in one round trip: the same rule as bot.budget.take (grant when not
-- paused and each window holds fewer grants than its limit; else say when a slot may
-- free up). The row lock orders replicas: each sees the grants of those before it.
-- p_now is the caller's clock when it sent the statement; the time spent here waiting for
-- the lock is added (a difference of this server's clock, so the clocks never mix): the
-- grant is stamped with the moment it was made. Returns NULL when granted. A NULL key
-- takes nothing: new connections call it so to have the statement prepared in advance.
CREATE FUNCTION github_budget_take(
    p_key TEXT,
    p_now DOUBLE PRECISION,
    p_minute_limit INTEGER,
    p_minute_seconds DOUBLE PRECISION,
    p_hour_limit INTEGER,
    p_hour_seconds DOUBLE PRECISION
) RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    v_grants DOUBLE PRECISION[];
    v_paused DOUBLE PRECISION;
    v_inside DOUBLE PRECISION[];
    v_retry DOUBLE PRECISION := 0;
    v_count INTEGER;
    v_now DOUBLE PRECISION;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    -- The row lock is held until COMMIT: without this, every grant would wait for the
    -- WAL flush of the one before, and the call would go out that much after its stamp.
    -- A grant lost in a crash only lets the budget be a little generous once.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO github_budget (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT grants, paused_until INTO v_grants, v_paused
    FROM github_budget WHERE key = p_key FOR UPDATE;
    v_now := p_now + extract(epoch FROM clock_timestamp() - statement_timestamp());
    v_grants := ARRAY(
        SELECT g FROM unnest(v_grants) AS g
        WHERE g > v_now - GREATEST(p_minute_seconds, p_hour_seconds) ORDER BY g);
    IF v_paused > v_now THEN
        v_retry := v_paused;
    END IF;
    v_inside := ARRAY(SELECT g FROM unnest(v_grants) AS g WHERE g > v_now - p_minute_seconds ORDER BY g);
    v_count := cardinality(v_inside);
    IF v_count >= p_minute_limit THEN
        v_retry := GREATEST(v_retry, v_inside[v_count - p_minute_limit + 1] + p_minute_seconds);
    END IF;
    v_inside := ARRAY(SELECT g FROM unnest(v_grants) AS g WHERE g > v_now - p_hour_seconds ORDER BY g);
    v_count := cardinality(v_inside);
    IF v_count >= p_hour_limit THEN
        v_retry := GREATEST(v_retry, v_inside[v_count - p_hour_limit + 1] + p_hour_seconds);
    END IF;
    IF v_retry > v_now THEN
        RETURN v_retry;  -- nothing written: a refusal costs no write
    END IF;
    UPDATE github_budget SET grants = array_append(v_grants, v_now) WHERE key = p_key;
    RETURN NULL;
END;
$$;
