-- name: CancelInsert :one
INSERT INTO payment_cancels (id, payment_id, kind, amount, reason, status, idempotency_key)
VALUES (@id, @payment_id, @kind, @amount, @reason, @status, @idempotency_key)
RETURNING *;

-- name: CancelGetByIDForUpdate :one
SELECT * FROM payment_cancels WHERE id = @id FOR UPDATE;

-- name: CancelListByPayment :many
SELECT * FROM payment_cancels WHERE payment_id = @payment_id ORDER BY created_at, id;

-- name: CancelSave :one
-- Guarded like PaymentSave: a save from a status the row no longer has
-- matches nothing.
UPDATE payment_cancels SET
    status          = @status,
    idempotency_key = @idempotency_key,
    canceled_amount = @canceled_amount,
    transaction_key = @transaction_key,
    failure_code    = @failure_code,
    failure_message = @failure_message,
    completed_at    = @completed_at,
    updated_at      = now()
WHERE id = @id AND status = @expected_status
RETURNING *;

-- name: CancelGetByID :one
SELECT * FROM payment_cancels WHERE id = @id;

-- name: CancelListOrphans :many
-- Cancels pending at the gateway with no live cancel job (River discarded
-- or lost it): the reconciler enqueues them again under their current key.
SELECT c.* FROM payment_cancels c
WHERE c.status = 'pending' AND c.updated_at < @updated_before
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.kind = 'payment_cancel'
        AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
        AND j.args @> jsonb_build_object('cancelId', c.id::text))
ORDER BY c.updated_at
LIMIT @max_rows;
