-- name: WebhookEndpointInsert :one
INSERT INTO webhook_endpoints (id, url, events, secret)
VALUES (@id, @url, @events::text[], @secret)
RETURNING *;

-- name: WebhookEndpointGet :one
SELECT * FROM webhook_endpoints WHERE id = @id;

-- name: WebhookEndpointList :many
SELECT * FROM webhook_endpoints ORDER BY created_at, id;

-- name: WebhookEndpointDisable :one
-- Disabling twice keeps the first time.
UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now())
WHERE id = @id
RETURNING *;

-- name: WebhookEndpointRotateSecret :one
-- The old secret keeps signing beside the new one until @previous_expires_at.
UPDATE webhook_endpoints SET
    previous_secret            = secret,
    previous_secret_expires_at = @previous_expires_at,
    secret                     = @secret
WHERE id = @id AND disabled_at IS NULL
RETURNING *;

-- name: WebhookDeliveryInsert :one
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payment_id, payload, status)
VALUES (@id, @endpoint_id, @event_id, @event_type, @payment_id, @payload, 'pending')
RETURNING *;

-- name: WebhookDeliveryInsertMany :exec
-- One pending delivery of one event per endpoint, in one statement: a
-- status change's deliveries (PaymentSave lists the endpoints).
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payment_id, payload, status)
SELECT unnest(@ids::uuid[]), unnest(@endpoint_ids::uuid[]), @event_id, @event_type, @payment_id, @payload, 'pending';

-- name: WebhookDeliveryGet :one
SELECT * FROM webhook_deliveries WHERE id = @id;

-- name: WebhookDeliveryListByEndpoint :many
-- Newest first.
SELECT * FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;

-- name: WebhookDeliveryRecordAttempt :one
-- Only a pending delivery takes an attempt's result: a run that River gave
-- up on (its relay was frozen past the rescue) and that wakes after another
-- run delivered must not turn "succeeded" back into "pending", which would
-- leave the delivery pending with no job for ever.
UPDATE webhook_deliveries SET
    status           = @status,
    attempts         = attempts + 1,
    last_http_status = @last_http_status,
    last_error       = @last_error,
    last_attempt_at  = now(),
    delivered_at     = CASE WHEN @status::text = 'succeeded' THEN now() ELSE delivered_at END
WHERE id = @id AND status = 'pending'
RETURNING *;

-- name: WebhookDeliveryRequeue :one
-- A redelivery: pending again, its history kept.
UPDATE webhook_deliveries SET status = 'pending'
WHERE id = @id
RETURNING *;
