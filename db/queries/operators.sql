-- name: OperatorActionInsert :one
INSERT INTO operator_actions (payment_id, cancel_id, api_key_id, api_key_name, action, reason,
                              status_before, status_after, job_id, detail)
VALUES (@payment_id, @cancel_id, @api_key_id, @api_key_name, @action, @reason,
        @status_before, @status_after, @job_id, @detail)
RETURNING *;

-- name: OperatorActionSetJob :exec
UPDATE operator_actions SET job_id = @job_id WHERE id = @id;

-- name: OperatorActionComplete :exec
-- The relay's lookup for an action records what it found; the first answer
-- stands (a retried job finds the row complete and leaves it).
UPDATE operator_actions
SET outcome = @outcome, outcome_status = @outcome_status, completed_at = now()
WHERE id = @id AND completed_at IS NULL;

-- name: OperatorActionListByPayment :many
SELECT * FROM operator_actions WHERE payment_id = @payment_id ORDER BY id;

-- name: OperatorActionListRecent :many
SELECT * FROM operator_actions ORDER BY id DESC LIMIT @max_rows;

-- name: PaymentListAttention :many
-- What the console's attention page shows: payments waiting on the gateway's
-- word, oldest first, with their newest cancel and newest gateway call, from
-- which the domain says why each is there.
SELECT sqlc.embed(p),
       coalesce(c.id::text, '')::text AS cancel_id, coalesce(c.kind, '')::text AS cancel_kind,
       coalesce(c.status, '')::text AS cancel_status,
       coalesce(c.failure_code, '')::text AS cancel_failure_code,
       coalesce(c.failure_message, '')::text AS cancel_failure_message,
       coalesce(a.operation, '')::text AS attempt_operation,
       coalesce(a.gateway_code, '')::text AS attempt_gateway_code,
       coalesce(a.classification, '')::text AS attempt_classification,
       coalesce(a.error, '')::text AS attempt_error
FROM payments p
LEFT JOIN LATERAL (
    SELECT * FROM payment_cancels c WHERE c.payment_id = p.id ORDER BY c.created_at DESC, c.id DESC LIMIT 1
) c ON true
LEFT JOIN LATERAL (
    SELECT * FROM payment_attempts a WHERE a.payment_id = p.id ORDER BY a.id DESC LIMIT 1
) a ON true
WHERE p.status = ANY(@statuses::text[]) AND p.updated_at < @updated_before
  AND (@include_acknowledged::bool OR p.acknowledged_at IS NULL)
ORDER BY p.updated_at
LIMIT @max_rows;

-- name: JobLatestByArgs :one
-- The newest outbox job of @kind whose args contain @args: the one an
-- operator's retry runs again.
SELECT id, state::text AS state FROM river_job
WHERE kind = @kind::text AND args @> @args::jsonb
ORDER BY id DESC
LIMIT 1;

-- name: JobListByStates :many
-- Outbox jobs in the given states, newest first, with their errors: the
-- console's jobs page (retryable and discarded, the only states it asks
-- for). The literal states let the planner see from River's statistics how
-- few such jobs there are and fetch them by river_job_prioritized_fetching_index
-- (state first): with only the parameter it walks the primary key from the
-- newest job through the week of finished jobs River keeps (0.2 s on a
-- 10M-payment database; cmd/bench's growth phase).
SELECT id, kind, state::text AS state, args, attempt, max_attempts, errors,
       created_at, attempted_at, scheduled_at, finalized_at
FROM river_job
WHERE state IN ('retryable', 'discarded') AND state::text = ANY(@states::text[])
ORDER BY id DESC
LIMIT @max_rows;

-- name: JobGetByID :one
SELECT id, kind, state::text AS state, args, attempt, max_attempts, errors,
       created_at, attempted_at, scheduled_at, finalized_at
FROM river_job WHERE id = @id;

-- name: JobListByPayment :many
-- A payment's outbox jobs, newest first, for its console page.
SELECT id, kind, state::text AS state, args, attempt, max_attempts, errors,
       created_at, attempted_at, scheduled_at, finalized_at
FROM river_job
WHERE args @> jsonb_build_object('paymentId', @payment_id::text)
ORDER BY id DESC
LIMIT 50;

-- name: StatsDiscardedJobs :many
-- Discarded outbox jobs by kind, as long as River keeps them (a week by
-- default): work the relay gave up on that nobody has retried.
SELECT kind, count(*) AS jobs FROM river_job WHERE state = 'discarded' GROUP BY kind;

-- name: StatsPaymentsAcknowledged :one
-- Payments in unknown that an operator acknowledged; the unknown gauge and
-- its alert leave them out.
SELECT count(*) AS payments FROM payments WHERE status = 'unknown' AND acknowledged_at IS NOT NULL;

-- name: StatsLastReconcile :one
-- When the reconciler last finished a pass; found is false if River keeps
-- none (it deletes completed jobs after a day by default).
SELECT (max(finalized_at) IS NOT NULL)::bool AS found,
       coalesce(max(finalized_at), now())::timestamptz AS finalized_at
FROM river_job
WHERE kind = 'payment_reconcile' AND state = 'completed';

-- name: ConsoleSessionInsert :exec
INSERT INTO console_sessions (token_hash, api_key_id, csrf_token, expires_at)
VALUES (@token_hash, @api_key_id, @csrf_token, @expires_at);

-- name: ConsoleSessionGet :one
-- A session is only as good as its key: a revoked key's sessions end.
SELECT sqlc.embed(k), s.csrf_token, s.expires_at AS session_expires_at
FROM console_sessions s JOIN api_keys k ON k.id = s.api_key_id
WHERE s.token_hash = @token_hash AND s.expires_at > @now::timestamptz AND k.revoked_at IS NULL;

-- name: ConsoleSessionDelete :exec
DELETE FROM console_sessions WHERE token_hash = @token_hash;

-- name: ConsoleSessionDeleteExpired :exec
DELETE FROM console_sessions WHERE expires_at <= @now::timestamptz;

-- name: StatsRecentAttempts :many
-- How the gateway answered the newest @max_rows calls, by classification
-- (empty: no answer recorded yet), with the newest call's time: the
-- console's picture of the gateway's health. By primary key, so it reads
-- the end of the table only.
SELECT coalesce(classification, '')::text AS classification, count(*) AS calls,
       max(requested_at)::timestamptz AS newest
FROM (SELECT classification, requested_at FROM payment_attempts ORDER BY id DESC LIMIT @max_rows) a
GROUP BY 1;
