-- A price job whose tick was superseded before it could run ends as 'expired' (docs/resilience.md).
--
-- Such a job used to end as 'skipped'. After a long PostgreSQL or Kafka outage many ticks end
-- this way; 'expired' names the outcome, so it is counted and shown apart from the skips and
-- failures, never mistaken for one. The rows written as 'skipped' for that reason become
-- 'expired'; 'skipped' stays allowed for rows of other causes.
ALTER TABLE job_logs DROP CONSTRAINT job_logs_status_check;
ALTER TABLE job_logs ADD CONSTRAINT job_logs_status_check CHECK (status IN
    ('running', 'succeeded', 'partial', 'failed', 'rejected', 'skipped', 'dead_lettered', 'expired'));
UPDATE job_logs SET status = 'expired'
    WHERE row_kind = 'job' AND status = 'skipped' AND message LIKE 'expired at %: superseded by newer ticks';
