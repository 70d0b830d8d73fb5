-- token_prices' daily partitions through the generic pair of 0010 (ensure_daily_partitions,
-- drop_daily_partitions): one definition for every table partitioned by day on observed_at.
-- The names and results of 0002's functions stay, so maintain_storage calls them unchanged.

CREATE OR REPLACE FUNCTION ensure_token_price_partitions(days_ahead integer DEFAULT 3)
RETURNS integer LANGUAGE sql AS $$
    SELECT ensure_daily_partitions('token_prices', days_ahead);
$$;

CREATE OR REPLACE FUNCTION drop_token_price_partitions(retention_days integer)
RETURNS integer LANGUAGE sql AS $$
    SELECT drop_daily_partitions('token_prices', retention_days);
$$;
