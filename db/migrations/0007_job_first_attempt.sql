-- When a job's first attempt started, kept across redeliveries (started_at is the latest
-- attempt's). The price pipelines stamp a job's prices with it, so a redelivered price job
-- makes the same observation (token_key, observed_at) as the attempt it repeats: the
-- insert is a no-op and the price.updated event carries the prices first committed.
ALTER TABLE job_logs ADD COLUMN first_started_at timestamptz;
