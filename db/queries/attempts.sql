-- name: AttemptStart :one
-- Written (and committed) before the gateway call, so a relay that dies
-- mid-call still leaves the fact that a call may have reached the gateway.
INSERT INTO payment_attempts (payment_id, cancel_id, operation, idempotency_key, job_id, job_attempt, requested_at, refundable_amount)
VALUES (@payment_id, @cancel_id, @operation, @idempotency_key, @job_id, @job_attempt, @requested_at, @refundable_amount)
RETURNING id;

-- name: AttemptFinish :batchexec
-- A batch, so that it can ride in one round trip with the statements after
-- it (store.LockPayment).
UPDATE payment_attempts SET
    finished_at     = @finished_at,
    latency_us      = @latency_us,
    http_status     = @http_status,
    gateway_code    = @gateway_code,
    gateway_message = @gateway_message,
    classification  = @classification,
    error           = @error,
    gateway_record  = @gateway_record
WHERE id = @id;

-- name: AttemptListByPayment :many
SELECT * FROM payment_attempts WHERE payment_id = @payment_id ORDER BY id;

-- name: AttemptAddNote :exec
UPDATE payment_attempts
SET note = CASE WHEN note = '' THEN @note::text ELSE note || '; ' || @note::text END
WHERE id = @id;

-- name: AttemptPageByPayment :many
-- The newest @max_rows attempts of a payment whose id is below @before (0:
-- from the newest), newest first: a page of its history, read backwards
-- along payment_attempts_payment_idx.
SELECT * FROM payment_attempts
WHERE payment_id = @payment_id AND (@before::bigint = 0 OR id < @before::bigint)
ORDER BY id DESC
LIMIT @max_rows;

-- name: AttemptCountByPayment :one
SELECT count(*) FROM payment_attempts WHERE payment_id = @payment_id;
