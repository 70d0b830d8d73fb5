-- Gold layer (docs/data-layers.md): OHLC candles per token at 1 m, 1 h and 1 d, kept up to
-- date by `insert_prices` in the same statement that appends the ticks, so a committed price
-- batch and its candles are one transaction. KPIs and volatility are read from candles.
-- Candles live in their own table: dropping token_prices partitions never touches them.

-- The resolutions, defined once: the upsert in shared/crawler/store.py and the reads use them.
-- A function rather than a table: schema, not data (nothing can empty it).
CREATE FUNCTION candle_resolutions()
RETURNS TABLE (resolution text, width interval) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('1m', interval '1 minute'), ('1h', interval '1 hour'), ('1d', interval '1 day')
$$;

-- One candle per (token, resolution, bucket). Buckets are aligned on UTC
-- (date_bin from 2000-01-01T00:00Z). open/close are the prices at open_at/close_at, the
-- earliest and latest tick seen in the bucket, so ticks that arrive out of order move them
-- correctly; a redelivered tick is not re-counted because only ticks that token_prices
-- actually inserted feed the upsert. Prices are numeric without a scale, like token_prices.
CREATE TABLE token_candles (
    token_key     text NOT NULL,
    resolution    text NOT NULL CHECK (resolution IN ('1m', '1h', '1d')),
    bucket_start  timestamptz NOT NULL,
    open          numeric NOT NULL CHECK (open > 0),
    high          numeric NOT NULL CHECK (high > 0),
    low           numeric NOT NULL CHECK (low > 0),
    close         numeric NOT NULL CHECK (close > 0),
    open_at       timestamptz NOT NULL,
    close_at      timestamptz NOT NULL,
    ticks         integer NOT NULL CHECK (ticks > 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_key, resolution, bucket_start),
    CHECK (low <= high AND open_at <= close_at)
);

-- Minute candles are the only gold table that grows fast (top-100: 144 000 rows a day);
-- hours and days are kept. `prune_candles` is idempotent and cheap (primary-key order is
-- per token, so this is a sequential delete of old rows only).
CREATE OR REPLACE FUNCTION prune_candles(candle_resolution text, retention_days integer)
RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM token_candles
        WHERE resolution = candle_resolution
          AND bucket_start < now() - make_interval(days => retention_days)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

-- maintain_storage (0002) also prunes minute candles: 35 days, well beyond the 24 h KPIs
-- and the 7-day tick retention, so hourly/daily history and recent minutes survive
-- partition drops.
CREATE OR REPLACE FUNCTION maintain_storage(price_retention_days integer, job_log_retention_days integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- One maintainer at a time; concurrent callers simply skip.
    IF NOT pg_try_advisory_xact_lock(7061726) THEN
        RETURN;
    END IF;
    PERFORM ensure_token_price_partitions(3);
    PERFORM drop_token_price_partitions(price_retention_days);
    DELETE FROM job_logs WHERE executed_at < now() - make_interval(days => job_log_retention_days);
    PERFORM prune_candles('1m', 35);
END $$;

-- Candles for the ticks already stored (a deployment upgrading to this migration):
-- the same aggregation as the live upsert, once.
INSERT INTO token_candles (token_key, resolution, bucket_start, open, high, low, close, open_at, close_at, ticks)
SELECT p.token_key, r.resolution, date_bin(r.width, p.observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       (array_agg(p.price_usdt ORDER BY p.observed_at))[1], max(p.price_usdt), min(p.price_usdt),
       (array_agg(p.price_usdt ORDER BY p.observed_at DESC))[1], min(p.observed_at), max(p.observed_at), count(*)
FROM token_prices p CROSS JOIN candle_resolutions() r
GROUP BY 1, 2, 3;
