-- name: StatsOutboxJobs :many
-- Outbox jobs not yet finished, by kind and state, with the age of the oldest
-- of each group: what the metrics collector (internal/metrics) shows on a
-- scrape. river_job_prioritized_fetching_index leads with state, so the
-- finished jobs River keeps for a week are not read.
SELECT
    kind,
    state::text AS state,
    count(*) AS jobs,
    extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds
FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'running')
GROUP BY kind, state;

-- name: StatsPaymentsByStatus :many
-- Payments by status, for the metrics collector. A full pass over the table
-- (no index covers every status); the collector caches the answer for a few
-- seconds and bounds the query with a timeout.
SELECT status, count(*) AS payments
FROM payments
GROUP BY status;
