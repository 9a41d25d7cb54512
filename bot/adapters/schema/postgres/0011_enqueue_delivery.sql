-- A delivery and its job in one statement (one round trip, one implicit transaction)
-- instead of BEGIN, three statements and COMMIT: ingest's whole write on PostgreSQL.
-- Returns FALSE, writing nothing, for a delivery id seen before; a dedupe key seen within
-- the window (a replay under a new id) raises SQLSTATE TD001, which undoes the delivery's
-- row with the rest of the statement. Waits on a concurrent insert of the same id or key
-- as the statements did (ON CONFLICT).
CREATE FUNCTION enqueue_delivery(
    p_delivery_id TEXT,
    p_event TEXT,
    p_action TEXT,
    p_payload BYTEA,
    p_lock_key TEXT,
    p_now DOUBLE PRECISION,
    p_keys TEXT[],
    p_since DOUBLE PRECISION
) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    v_claimed INTEGER;
BEGIN
    INSERT INTO deliveries (delivery_id, event, action, received_at)
    VALUES (p_delivery_id, p_event, p_action, p_now)
    ON CONFLICT (delivery_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    IF cardinality(p_keys) > 0 THEN
        WITH claimed AS (
            INSERT INTO dedupe_keys (key, seen_at) SELECT unnest(p_keys), p_now
            ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at
            WHERE dedupe_keys.seen_at < p_since
            RETURNING key
        )
        SELECT count(*) INTO v_claimed FROM claimed;
        IF v_claimed < cardinality(p_keys) THEN
            RAISE EXCEPTION 'replay of a delivery seen within the window' USING ERRCODE = 'TD001';
        END IF;
    END IF;
    INSERT INTO jobs (delivery_id, event, payload, lock_key, run_at, created_at, updated_at)
    VALUES (p_delivery_id, p_event, p_payload, p_lock_key, p_now, p_now, p_now);
    RETURN TRUE;
END;
$$;
