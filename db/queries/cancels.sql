-- name: CancelInsert :one
-- A compensation held for want of a refund account is inserted failed,
-- with its failure code (docs/design.md section 19).
INSERT INTO payment_cancels (id, payment_id, kind, amount, reason, status, idempotency_key,
    failure_code, failure_message,
    refund_bank, refund_account_last4, refund_account_number, refund_holder_name)
VALUES (@id, @payment_id, @kind, @amount, @reason, @status, @idempotency_key,
    @failure_code, @failure_message,
    sqlc.narg('refund_bank'), sqlc.narg('refund_account_last4'), sqlc.narg('refund_account_number'),
    sqlc.narg('refund_holder_name'))
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
    -- The refund account leaves with the last status that may still send
    -- it (payment_cancels_refund_account_while_open); a refused or held
    -- refund sent again to an account a person names gets it here.
    refund_account_number = CASE WHEN @status::text IN ('waiting', 'pending', 'unknown')
        THEN coalesce(sqlc.narg('refund_account_number'), refund_account_number) END,
    refund_holder_name    = CASE WHEN @status::text IN ('waiting', 'pending', 'unknown')
        THEN coalesce(sqlc.narg('refund_holder_name'), refund_holder_name) END,
    refund_bank           = coalesce(sqlc.narg('refund_bank'), refund_bank),
    refund_account_last4  = coalesce(sqlc.narg('refund_account_last4'), refund_account_last4),
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

-- name: CancelGetWithPaymentAndKeyAnswers :one
-- What a cancel job reads before its call, in one round trip: the cancel, its
-- payment and, for the key rule, every request sent under the cancel's
-- current Idempotency-Key, oldest first (empty arrays when none was).
SELECT sqlc.embed(c), sqlc.embed(p),
    coalesce(k.requested_at, '{}')::timestamptz[] AS key_requested_at,
    coalesce(k.finished, '{}')::bool[]            AS key_finished,
    coalesce(k.http_status, '{}')::int[]          AS key_http_status,
    coalesce(k.gateway_code, '{}')::text[]        AS key_gateway_code
FROM payment_cancels c
JOIN payments p ON p.id = c.payment_id
CROSS JOIN LATERAL (
    SELECT array_agg(a.requested_at ORDER BY a.id)             AS requested_at,
           array_agg(a.finished_at IS NOT NULL ORDER BY a.id)  AS finished,
           array_agg(coalesce(a.http_status, 0) ORDER BY a.id) AS http_status,
           array_agg(a.gateway_code ORDER BY a.id)             AS gateway_code
    FROM payment_attempts a
    WHERE a.payment_id = c.payment_id AND a.operation = 'cancel'
      AND a.idempotency_key = c.idempotency_key
) k
WHERE c.id = @id;

-- name: CancelListOpenBatch :batchmany
-- A payment's waiting and pending cancels, oldest first, for a pipeline
-- after PaymentLockBatch: run after the lock is granted, with its own
-- snapshot, it sees every cancel committed by the lock's previous holder.
SELECT * FROM payment_cancels
WHERE payment_id = @payment_id AND status IN ('waiting', 'pending')
ORDER BY created_at, id;

-- name: CancelLockBatch :batchone
-- CancelGetByIDForUpdate for a pipeline after PaymentLockBatch: the cancel
-- is locked after its payment, the order every writer uses.
SELECT * FROM payment_cancels WHERE id = @id FOR UPDATE;
