-- name: CancelInsert :one
INSERT INTO payment_cancels (id, payment_id, kind, amount, reason, status, idempotency_key)
VALUES (@id, @payment_id, @kind, @amount, @reason, @status, @idempotency_key)
RETURNING *;

-- name: CancelGetByIDForUpdate :one
SELECT * FROM payment_cancels WHERE id = @id FOR UPDATE;

-- name: CancelListByPayment :many
SELECT * FROM payment_cancels WHERE payment_id = @payment_id ORDER BY created_at, id;

-- name: CancelSave :one
UPDATE payment_cancels SET
    status          = @status,
    canceled_amount = @canceled_amount,
    transaction_key = @transaction_key,
    failure_code    = @failure_code,
    failure_message = @failure_message,
    completed_at    = @completed_at,
    updated_at      = now()
WHERE id = @id
RETURNING *;

-- name: CancelGetByID :one
SELECT * FROM payment_cancels WHERE id = @id;

-- name: CancelSetIdempotencyKey :exec
UPDATE payment_cancels SET idempotency_key = @idempotency_key, updated_at = now() WHERE id = @id;
