-- Events whose data committed, kept until Kafka confirmed them (issue #22, docs/resilience.md "Event outbox").
--
-- A price job writes its prices and its price.updated event here in one transaction, then
-- publishes the event and deletes its row. A publish Kafka did not confirm leaves the row:
-- the job's redelivery publishes it again, an expired redelivery publishes it before it ends
-- the job, and any later price job publishes the rows left longer than
-- EVENT_OUTBOX_DRAIN_AFTER_SECONDS (a job dead-lettered, or never redelivered). The event id
-- is the deterministic one of the live event, so consumers deduplicate a second publish.
CREATE TABLE IF NOT EXISTS event_outbox (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL,
    event_source    text NOT NULL,
    event_type      text NOT NULL,
    topic           text NOT NULL,
    job_id          text,
    record_key      text,
    subject         text,
    dataschema      text,
    extensions      jsonb NOT NULL,
    event_time      timestamptz NOT NULL,
    data            bytea NOT NULL,    -- the event's JSON body, byte for byte
    staged_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_outbox_event_unique UNIQUE (event_id, event_source)
);
CREATE INDEX IF NOT EXISTS event_outbox_staged_idx ON event_outbox (staged_at);
CREATE INDEX IF NOT EXISTS event_outbox_job_idx ON event_outbox (job_id);
