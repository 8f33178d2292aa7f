-- name: PaymentInsert :one
-- ON CONFLICT lets a repeated create find the first row instead of failing the
-- transaction; no row back means the order id is taken.
INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, status)
VALUES (@id, @order_id, @order_name, @amount, @currency, @gateway, 'ready')
ON CONFLICT (order_id) DO NOTHING
RETURNING *;

-- name: PaymentGetByID :one
SELECT * FROM payments WHERE id = @id;

-- name: PaymentGetByIDForUpdate :one
SELECT * FROM payments WHERE id = @id FOR UPDATE;

-- name: PaymentGetByOrderID :one
SELECT * FROM payments WHERE order_id = @order_id;

-- name: PaymentGetByPaymentKey :one
SELECT * FROM payments WHERE payment_key = @payment_key;

-- name: PaymentSave :one
-- Writes back every field the domain may change. Callers hold the row lock
-- (PaymentGetByIDForUpdate) in the same transaction; the status guard makes a
-- save computed from a status the row no longer has match nothing, so it
-- fails instead of overwriting a change it did not see.
UPDATE payments SET
    status                  = @status,
    payment_key             = @payment_key,
    confirm_key_generation  = @confirm_key_generation,
    confirm_idempotency_key = @confirm_idempotency_key,
    approved_amount         = @approved_amount,
    balance_amount          = @balance_amount,
    canceled_amount         = @canceled_amount,
    method                  = @method,
    approved_at             = @approved_at,
    failure_code            = @failure_code,
    failure_message         = @failure_message,
    confirm_requested_at    = @confirm_requested_at,
    version                 = version + 1,
    acknowledged_at         = @acknowledged_at,
    updated_at              = now()
WHERE id = @id AND status = @expected_status
RETURNING *;

-- name: PaymentListByStatus :many
-- Payments in the given states untouched since before @updated_before, oldest
-- first: what the reconciler asks the gateway about and operators list.
-- Acknowledged payments only when @include_acknowledged: an operator has
-- taken them, and the reconciler must not spend its batch on them.
SELECT * FROM payments
WHERE status = ANY(@statuses::text[]) AND updated_at < @updated_before
  AND (@include_acknowledged::bool OR acknowledged_at IS NULL)
ORDER BY updated_at
LIMIT @max_rows;

-- name: PaymentListOrphanConfirms :many
-- Payments in confirming with no live confirm job: a job River discarded (a
-- plain error on its last attempt) or lost. The reconciler enqueues their
-- confirm again under the current key. The args containment uses River's GIN
-- index on args.
SELECT p.* FROM payments p
WHERE p.status = 'confirming' AND p.updated_at < @updated_before
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.kind = 'payment_confirm'
        AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
        AND j.args @> jsonb_build_object('paymentId', p.id::text))
ORDER BY p.updated_at
LIMIT @max_rows;

-- name: PaymentHasLiveJob :one
-- Whether a job of @kind whose args contain @args is still to run or running.
SELECT EXISTS (
    SELECT 1 FROM river_job j
    WHERE j.kind = @kind::text
      AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
      AND j.args @> @args::jsonb)::bool AS live;

-- name: PaymentNotify :exec
-- Tells the api processes waiting on this payment (GET ?wait=) that it
-- changed. NOTIFY is transactional: it is delivered only if the change
-- commits.
SELECT pg_notify('payment_outbox_payment', @payment_id::text);
