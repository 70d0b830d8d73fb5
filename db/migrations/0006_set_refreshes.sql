-- The last full refresh of each token set and whether its follow-up work was published.
--
-- The top-100 refresh commits the set, then publishes the detail jobs (links, socials,
-- tags). When that publish fails the job is retried, but the retry used to find the set
-- fresh and skip, so the detail jobs were never published. The refresh now records itself
-- here in the set's transaction with details_requested_at NULL, and sets it once Kafka
-- confirmed every detail job; a refresh request that finds the set fresh but its details
-- unconfirmed publishes them (same job ids) instead of skipping.
CREATE TABLE token_set_refreshes (
    token_set             text PRIMARY KEY CHECK (token_set IN ('top100', 'trending')),
    job_id                text NOT NULL,            -- the job that refreshed the set
    refreshed_at          timestamptz NOT NULL DEFAULT now(),
    details_requested_at  timestamptz               -- NULL: its detail jobs are not confirmed published
);
