-- A job whose event reached a dead-letter topic ends as 'dead_lettered' (docs/resilience.md).
--
-- Before, a job whose function died mid-attempt kept the 'running' row the killed process
-- left, and a job whose retries ran out kept its last 'failed' row, though Kafka would never
-- deliver it again. The deadletter function (functions/deadletter) reads the dead-letter
-- topics and ends such rows with the reason the dead-letter record carries.
ALTER TABLE job_logs DROP CONSTRAINT job_logs_status_check;
ALTER TABLE job_logs ADD CONSTRAINT job_logs_status_check CHECK (status IN
    ('running', 'succeeded', 'partial', 'failed', 'rejected', 'skipped', 'dead_lettered'));
