-- Dead letters are kept in PostgreSQL (issue #22, docs/resilience.md "Dead letters").
--
-- The request KafkaSources dead-letter to the deadletter function, not to a KafkaSink: a
-- KafkaSink cannot take a dead letter while the broker is down, and Knative then drops it and
-- commits the offset. The function stores each one here, in the transaction that ends its
-- job's job_logs row, and forwards it to its dead-letter topic afterwards (forwarded_at), so
-- the replay CLI still finds it there. A redelivered dead letter (same event id and source)
-- is stored once.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL,
    event_source    text NOT NULL,
    event_type      text NOT NULL,
    job_id          text NOT NULL,
    job_type        text NOT NULL,
    dead_letter_topic text,            -- where it is forwarded; NULL: no request topic is known, kept here only
    record_key      text,
    data            bytea NOT NULL,    -- the failed event's data, byte for byte
    attributes      jsonb NOT NULL,    -- every CloudEvent attribute and extension but data (knativeerror* included)
    error_code      integer,           -- the sink's last HTTP status; NULL when it never answered
    reason          text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    forwarded_at    timestamptz,
    CONSTRAINT dead_letters_event_unique UNIQUE (event_id, event_source)
);
-- The rows still to forward, oldest first.
CREATE INDEX IF NOT EXISTS dead_letters_pending_idx ON dead_letters (received_at)
    WHERE forwarded_at IS NULL AND dead_letter_topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_letters_job_idx ON dead_letters (job_id);
