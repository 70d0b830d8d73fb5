-- Chain stats (DESIGN.md §10): every cycle's reading of every chain (history, daily
-- partitions like token_prices in 0002, dropped whole after the retention), and the
-- latest reading per chain with the last one published (change-only publishing compares
-- against it). `SELECT maintain_chain_stats(30)` is idempotent.

CREATE TABLE chain_stats (
    chain text NOT NULL,
    observed_at timestamptz NOT NULL,
    health text NOT NULL CHECK (health IN ('healthy', 'degraded', 'down')),
    reasons text[] NOT NULL DEFAULT '{}',
    head_number bigint,
    head_age_seconds numeric,
    block_time_seconds numeric,
    max_block_interval_seconds numeric,
    gas_used_ratio numeric CHECK (gas_used_ratio BETWEEN 0 AND 1),
    base_fee_gwei numeric CHECK (base_fee_gwei >= 0),
    urls jsonb NOT NULL DEFAULT '[]',  -- [{url, status, head, lag_blocks, latency_seconds, detail}]
    anomaly text,
    published boolean NOT NULL DEFAULT false,
    PRIMARY KEY (chain, observed_at)
) PARTITION BY RANGE (observed_at);

CREATE TABLE chain_stats_default PARTITION OF chain_stats DEFAULT;

CREATE TABLE chain_stats_latest (
    chain text PRIMARY KEY,
    observed_at timestamptz NOT NULL,
    health text NOT NULL CHECK (health IN ('healthy', 'degraded', 'down')),
    reasons text[] NOT NULL DEFAULT '{}',
    head_number bigint,
    head_age_seconds numeric,
    block_time_seconds numeric,
    max_block_interval_seconds numeric,
    gas_used_ratio numeric,
    base_fee_gwei numeric,
    urls jsonb NOT NULL DEFAULT '[]',
    anomaly text,
    published_reading jsonb,        -- the reading last published (shared/stats/change.py compares against it)
    published_at timestamptz
);

-- Daily partitions of any table partitioned by `observed_at` with a `<parent>_default`
-- partition (chain_stats here, bridge_stats in 0014): one definition for every such table.
CREATE OR REPLACE FUNCTION ensure_daily_partitions(parent text, days_ahead integer DEFAULT 3)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
    name text;
BEGIN
    FOR i IN 0..days_ahead LOOP
        day := (now() AT TIME ZONE 'UTC')::date + i;
        name := format('%s_%s', parent, to_char(day, 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            -- Rows of this day that landed in the default partition move first, or attaching fails.
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I WHERE observed_at >= %L AND observed_at < %L RETURNING *)'
                ' INSERT INTO %I SELECT * FROM moved',
                parent || '_default', day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC', name);
            EXECUTE format(
                'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                parent, name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- Drops the daily partitions of `parent` older than the retention, and such rows of its default.
CREATE OR REPLACE FUNCTION drop_daily_partitions(parent text, retention_days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
    cutoff date := (now() AT TIME ZONE 'UTC')::date - retention_days;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = parent AND c.relname ~ ('^' || parent || '_[0-9]{8}$')
    LOOP
        IF to_date(substr(part.relname, length(parent) + 2), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    EXECUTE format('DELETE FROM %I WHERE observed_at < %L', parent || '_default', cutoff::timestamp AT TIME ZONE 'UTC');
    RETURN dropped;
END $$;

CREATE OR REPLACE FUNCTION maintain_chain_stats(retention_days integer)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(7061727) THEN  -- one maintainer at a time; others skip
        RETURN 0;
    END IF;
    PERFORM ensure_daily_partitions('chain_stats', 3);
    RETURN drop_daily_partitions('chain_stats', retention_days);
END $$;

SELECT ensure_daily_partitions('chain_stats', 3);
