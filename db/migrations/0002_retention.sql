-- Bounded growth: daily partitions of token_prices prepared ahead, old ones dropped,
-- and old job_logs pruned. `SELECT maintain_storage(7, 14)` is idempotent; the
-- metadata job and `make up` call it (top-100 every 5 s is 1.7 M rows a day).

CREATE OR REPLACE FUNCTION ensure_token_price_partitions(days_ahead integer DEFAULT 3)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
    name text;
BEGIN
    FOR i IN 0..days_ahead LOOP
        day := (now() AT TIME ZONE 'UTC')::date + i;
        name := format('token_prices_%s', to_char(day, 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            -- Rows for this day that landed in the default partition must move first,
            -- or attaching the new partition fails.
            EXECUTE format('CREATE TABLE %I (LIKE token_prices INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM token_prices_default WHERE observed_at >= %L AND observed_at < %L RETURNING *)'
                ' INSERT INTO %I SELECT * FROM moved',
                day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC', name);
            EXECUTE format(
                'ALTER TABLE token_prices ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION drop_token_price_partitions(retention_days integer)
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
        WHERE p.relname = 'token_prices' AND c.relname ~ '^token_prices_[0-9]{8}$'
    LOOP
        IF to_date(substr(part.relname, 14), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM token_prices_default WHERE observed_at < cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END $$;

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
END $$;

SELECT ensure_token_price_partitions(3);
