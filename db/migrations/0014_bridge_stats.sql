-- Bridge stats (DESIGN.md §10): every sample of a configured route from one quote provider
-- (LI.FI, Relay, 1inch) as history in daily partitions dropped whole after the retention
-- (like chain_stats in 0010), and the latest sample per (route, provider) with the one last
-- published (change-only publishing compares against it). Amounts are exact NUMERIC in
-- token units (base units kept beside them), durations and fees as the provider estimates
-- them. `SELECT maintain_bridge_stats(30)` is idempotent.

CREATE TABLE bridge_stats (
    route text NOT NULL,
    provider text NOT NULL CHECK (provider IN ('lifi', 'relay', 'oneinch')),
    observed_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'slow', 'no_route', 'rate_limited', 'error', 'anomaly')),
    response_seconds numeric NOT NULL CHECK (response_seconds >= 0),
    output_amount numeric CHECK (output_amount >= 0),
    output_base_units numeric CHECK (output_base_units >= 0),
    duration_seconds numeric CHECK (duration_seconds >= 0),
    fees_usd numeric CHECK (fees_usd >= 0),
    tool text,
    detail text NOT NULL DEFAULT '',
    published boolean NOT NULL DEFAULT false,
    PRIMARY KEY (route, provider, observed_at),
    -- an estimate exactly when the provider quoted (ok / slow)
    CHECK ((status IN ('ok', 'slow')) = (output_amount IS NOT NULL))
) PARTITION BY RANGE (observed_at);

CREATE TABLE bridge_stats_default PARTITION OF bridge_stats DEFAULT;

CREATE TABLE bridge_stats_latest (
    route text NOT NULL,
    provider text NOT NULL,
    observed_at timestamptz NOT NULL,
    status text NOT NULL,
    response_seconds numeric NOT NULL,
    output_amount numeric,
    output_base_units numeric,
    duration_seconds numeric,
    fees_usd numeric,
    tool text,
    detail text NOT NULL DEFAULT '',
    published_sample jsonb,        -- the sample last published (shared/stats/bridge_store.py compares against it)
    published_at timestamptz,
    PRIMARY KEY (route, provider)
);

-- Daily partitions as chain_stats (ensure_daily_partitions, drop_daily_partitions: 0010).
CREATE OR REPLACE FUNCTION maintain_bridge_stats(retention_days integer)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(7061728) THEN  -- one maintainer at a time; others skip
        RETURN 0;
    END IF;
    PERFORM ensure_daily_partitions('bridge_stats', 3);
    RETURN drop_daily_partitions('bridge_stats', retention_days);
END $$;

SELECT ensure_daily_partitions('bridge_stats', 3);

-- The stats overview (every 5 minutes: chain health with DefiLlama DEX volume, bridges in
-- summary). 288 rows a day: a plain table whose old rows the overview tick deletes after the
-- same retention, and one latest row with the overview last published.
CREATE TABLE stats_overview (
    observed_at timestamptz PRIMARY KEY,
    overview jsonb NOT NULL,
    published boolean NOT NULL DEFAULT false
);

CREATE TABLE stats_overview_latest (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    observed_at timestamptz NOT NULL,
    overview jsonb NOT NULL,
    published_overview jsonb,
    published_at timestamptz
);
