-- Gold candles off the commit path (docs/performance.md, bug 6).
--
-- `insert_prices` used to upsert three candle rows per tick inside the price statement:
-- 1,000 ticks took 42 ms instead of 11 ms, on the path from a tick to its committed price.
-- Now the statement only appends the ticks it actually inserted to `token_candle_ticks`
-- (a plain insert, no index), in the same transaction, and `fold_candle_ticks` folds them
-- into `token_candles` shortly after, in its own transaction. Nothing is lost or counted
-- twice: a tick is in the queue if and only if `token_prices` inserted it, and the fold
-- deletes exactly the ticks it aggregates. Candles lag the ticks by the fold delay
-- (CANDLE_FOLD_DELAY_SECONDS, 1 s by default).

-- Ticks inserted into token_prices and not yet folded into token_candles.
-- A queue: rows live a second or so. Vacuumed by row count, not by table size.
CREATE TABLE token_candle_ticks (
    token_key    text NOT NULL,
    price_usdt   numeric NOT NULL,
    observed_at  timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

-- Fold every queued tick into the candles; return how many were folded.
-- One fold at a time (the transaction-scoped lock waits for a running fold): two folds
-- upserting the same candles in different orders could deadlock, and a fold that skipped
-- instead of waiting could leave the last ticks of a burst queued until the next burst.
-- The queue is emptied whole: a plain scan of a table that holds about one tick of rows
-- (picking a bounded batch by ctid made the planner filter every row against the batch).
-- open/close follow the earliest/latest tick, so out-of-order ticks give the candles a
-- rescan of the ticks would give.
CREATE FUNCTION fold_candle_ticks()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    folded integer;
BEGIN
    PERFORM pg_advisory_xact_lock(7061727);
    WITH taken AS (
        DELETE FROM token_candle_ticks
        RETURNING token_key, price_usdt, observed_at
    ), candles AS (
        INSERT INTO token_candles AS c (token_key, resolution, bucket_start, open, high, low, close,
                                       open_at, close_at, ticks)
        SELECT t.token_key, r.resolution, date_bin(r.width, t.observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               (array_agg(t.price_usdt ORDER BY t.observed_at))[1], max(t.price_usdt), min(t.price_usdt),
               (array_agg(t.price_usdt ORDER BY t.observed_at DESC))[1], min(t.observed_at),
               max(t.observed_at), count(*)
        FROM taken t CROSS JOIN candle_resolutions() r
        GROUP BY 1, 2, 3
        ON CONFLICT (token_key, resolution, bucket_start) DO UPDATE SET
            open = CASE WHEN EXCLUDED.open_at < c.open_at THEN EXCLUDED.open ELSE c.open END,
            close = CASE WHEN EXCLUDED.close_at > c.close_at THEN EXCLUDED.close ELSE c.close END,
            open_at = LEAST(c.open_at, EXCLUDED.open_at), close_at = GREATEST(c.close_at, EXCLUDED.close_at),
            high = GREATEST(c.high, EXCLUDED.high), low = LEAST(c.low, EXCLUDED.low),
            ticks = c.ticks + EXCLUDED.ticks, updated_at = now()
    )
    SELECT count(*) INTO folded FROM taken;
    RETURN folded;
END $$;
