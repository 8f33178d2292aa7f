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
-- Payments waiting on the gateway's word (payment.AttentionStatuses), by
-- status, for the metrics collector and the console. The list is written
-- out as payments_attention_idx's predicate is, so the planner reads that
-- index: counting every status was a pass over the whole table, 2.6 s at
-- ten million payments, past the collector's timeout (docs/benchmarks.md,
-- "Cost as it grows").
SELECT status, count(*) AS payments
FROM payments
WHERE status IN ('confirming', 'canceling', 'unknown')
GROUP BY status;

-- name: StatsPaymentsWaitingForDeposit :one
-- Payments waiting for a virtual account's deposit, and how many of them
-- are past their due date: read through payments_waiting_deposit_idx,
-- never a pass over the table.
SELECT count(*) AS waiting,
       count(*) FILTER (WHERE va_due_at < now()) AS overdue
FROM payments
WHERE status = 'waiting_for_deposit';
