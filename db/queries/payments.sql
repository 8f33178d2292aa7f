-- name: PaymentInsert :one
-- ON CONFLICT lets a repeated create find the first row instead of failing the
-- transaction; no row back means the order id is taken.
INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, payment_key, status, owner)
VALUES (@id, @order_id, @order_name, @amount, @currency, @gateway, sqlc.narg('payment_key'), 'ready', @owner)
ON CONFLICT (order_id) DO NOTHING
RETURNING *;

-- name: PaymentGetByID :one
-- @owner NULL reads any owner's payment (operators, the relay); otherwise
-- another owner's payment is not found (docs/design.md, "Owners").
SELECT * FROM payments
WHERE id = @id AND (sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text);

-- name: PaymentGetByIDForUpdate :one
SELECT * FROM payments WHERE id = @id FOR UPDATE;

-- name: PaymentGetWithConfirmKeyAnswers :one
-- What a confirm job reads before its call, in one round trip: the payment
-- and, for the key rule, every request sent under its current confirm
-- Idempotency-Key, oldest first (empty arrays when none was).
SELECT sqlc.embed(p),
    coalesce(k.requested_at, '{}')::timestamptz[] AS key_requested_at,
    coalesce(k.finished, '{}')::bool[]            AS key_finished,
    coalesce(k.http_status, '{}')::int[]          AS key_http_status,
    coalesce(k.gateway_code, '{}')::text[]        AS key_gateway_code
FROM payments p
CROSS JOIN LATERAL (
    SELECT array_agg(a.requested_at ORDER BY a.id)             AS requested_at,
           array_agg(a.finished_at IS NOT NULL ORDER BY a.id)  AS finished,
           array_agg(coalesce(a.http_status, 0) ORDER BY a.id) AS http_status,
           array_agg(a.gateway_code ORDER BY a.id)             AS gateway_code
    FROM payment_attempts a
    WHERE a.payment_id = p.id AND a.operation = 'confirm'
      AND a.idempotency_key = p.confirm_idempotency_key
) k
WHERE p.id = @id;

-- name: PaymentGetByOrderID :one
-- @owner as in PaymentGetByID.
SELECT * FROM payments
WHERE order_id = @order_id AND (sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text);

-- name: PaymentGetByPaymentKey :one
SELECT * FROM payments WHERE payment_key = @payment_key;

-- name: PaymentSave :one
-- Writes back every field the domain may change. Callers hold the row lock
-- (PaymentGetByIDForUpdate) in the same transaction; the status guard makes a
-- save computed from a status the row no longer has match nothing, so it
-- fails instead of overwriting a change it did not see.
--
-- A save that changes the status also returns, in the same statement (one
-- round trip), the payment owner's enabled webhook endpoints that asked for
-- @event_type (another owner's endpoints never hear of it),
-- oldest first, for the caller to write a delivery for each in the same
-- transaction; a save that keeps the status returns none
-- (webhook_endpoint_ids is NULL). It sends no NOTIFY: a notifying commit
-- holds a database-wide lock through its WAL flush, which would serialize
-- every status change (docs/design.md, "Waiting for a payment").
UPDATE payments SET
    status                  = @status,
    payment_key             = @payment_key,
    confirm_key_generation  = @confirm_key_generation,
    confirm_idempotency_key = @confirm_idempotency_key,
    payment_token           = @payment_token,
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
    next_recheck_at         = @next_recheck_at,
    recheck_until           = @recheck_until,
    va_bank                 = @va_bank,
    va_account_number       = @va_account_number,
    va_holder               = @va_holder,
    va_due_at               = @va_due_at,
    deposit_secret          = @deposit_secret,
    deposit_next_look_at    = @deposit_next_look_at,
    updated_at              = now()
WHERE payments.id = @id AND payments.status = @expected_status
RETURNING *,
    (CASE WHEN payments.status <> @expected_status::text
        THEN ARRAY(SELECT e.id FROM webhook_endpoints e
                   WHERE e.owner = payments.owner AND e.disabled_at IS NULL
                     AND @event_type::text = ANY(e.events)
                   ORDER BY e.created_at, e.id) END)::uuid[] AS webhook_endpoint_ids;

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

-- name: PaymentLockBatch :batchone
-- PaymentGetByIDForUpdate for a pipeline (store.LockPayment): the statements
-- queued after it run once it holds the lock. @owner as in PaymentGetByID:
-- another owner's payment is neither locked nor found.
SELECT * FROM payments
WHERE id = @id AND (sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text)
FOR UPDATE;

-- name: PaymentsLeftStatuses :many
-- Of @ids, the payments whose status is none of @statuses: what the api's
-- waiter polls for its waiting requests.
SELECT id FROM payments
WHERE id = ANY(@ids::uuid[]) AND NOT (status = ANY(@statuses::text[]));

-- name: PaymentWantLookup :one
-- Records that someone (a gateway webhook, an operator) asked for a lookup of
-- the payment. It is not a change to the payment, so updated_at stays: a
-- lookup running meanwhile still settles from its answer, and then sees the
-- newer request and leaves a follow-up behind it. Every request makes the
-- value strictly larger than the one before (the wall clock when it is
-- later, else one microsecond on), so a request that commits after a lookup
-- read the value always leaves a value the lookup did not see, whatever the
-- order its transaction started in.
UPDATE payments SET lookup_wanted_at = GREATEST(clock_timestamp(), lookup_wanted_at + interval '1 microsecond')
WHERE id = @id
RETURNING lookup_wanted_at;

-- name: PaymentLookupAnswered :one
-- Clears the lookup request a lookup saw before it asked the gateway, unless
-- another came meanwhile (then the value differs: it stays, and the caller
-- enqueues a follow-up). Returns the request still waiting, NULL for none.
UPDATE payments SET lookup_wanted_at = CASE
        WHEN lookup_wanted_at = sqlc.narg('seen')::timestamptz THEN NULL
        ELSE lookup_wanted_at END
WHERE id = @id
RETURNING lookup_wanted_at;

-- name: PaymentListLookupWanted :many
-- Payments whose lookup request has waited since before @wanted_before: its
-- lookup was lost (discarded after its attempts). The reconciler asks again.
SELECT * FROM payments
WHERE lookup_wanted_at < @wanted_before
ORDER BY lookup_wanted_at
LIMIT @max_rows;

-- name: PaymentListRecheckDue :many
-- Payments whose provisional record (docs/design.md, "Money that moves
-- without our asking") is due for another lookup.
SELECT * FROM payments
WHERE next_recheck_at <= @now AND recheck_until > @now
ORDER BY next_recheck_at
LIMIT @max_rows;

-- name: PaymentListReadyToSweep :many
-- Ready intents of gateways that charge before our confirm, created between
-- @created_after and @created_before and due for a look: the customer may
-- have paid without the checkout ever confirming with us.
SELECT * FROM payments
WHERE status = 'ready' AND gateway = ANY(@gateways::text[])
  AND created_at < @created_before AND created_at > @created_after
  AND (next_recheck_at IS NULL OR next_recheck_at <= @now)
ORDER BY created_at
LIMIT @max_rows;

-- name: PaymentSetNextRecheck :exec
-- Schedules the next lookup of each payment the reconciler just enqueued one
-- for (@payment_ids[i] at @next_at[i]). Not a change to the payments:
-- updated_at and version stay.
UPDATE payments SET next_recheck_at = u.at
FROM (SELECT unnest(@payment_ids::uuid[]) AS id, unnest(@next_at::timestamptz[]) AS at) AS u
WHERE payments.id = u.id;

-- name: PaymentListDepositLooksDue :many
-- Payments waiting for a deposit whose next look is due (or was never
-- scheduled), soonest first: the relay's deposit sweep (docs/design.md
-- section 19). payments_waiting_deposit_idx covers it.
SELECT * FROM payments
WHERE status = 'waiting_for_deposit'
  AND (deposit_next_look_at IS NULL OR deposit_next_look_at <= @now)
ORDER BY deposit_next_look_at NULLS FIRST
LIMIT @max_rows;

-- name: PaymentSetDepositNextLook :exec
-- Schedules the next deposit look of each payment the sweep just enqueued a
-- lookup for (@payment_ids[i] at @next_at[i]). Not a change to the payments:
-- updated_at and version stay.
UPDATE payments SET deposit_next_look_at = u.at
FROM (SELECT unnest(@payment_ids::uuid[]) AS id, unnest(@next_at::timestamptz[]) AS at) AS u
WHERE payments.id = u.id AND payments.status = 'waiting_for_deposit';
