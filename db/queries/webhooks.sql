-- name: OwnerLockForEndpoints :one
-- Locks the owner's row against other endpoint registrations of the same
-- owner (FOR NO KEY UPDATE does not block inserts that reference it): the
-- cap is counted (WebhookEndpointCountActive, a statement of its own, so
-- that under read committed its snapshot is taken once the lock is held
-- and sees what the previous holder committed) and the insert made under
-- it, so two concurrent registrations cannot both take the last place. No
-- row: no such owner.
SELECT id FROM owners WHERE id = @owner FOR NO KEY UPDATE;

-- name: WebhookEndpointCountActive :one
SELECT count(*)::int AS active FROM webhook_endpoints
WHERE owner = @owner AND disabled_at IS NULL;

-- name: WebhookEndpointInsert :one
INSERT INTO webhook_endpoints (id, url, events, secret, owner)
VALUES (@id, @url, @events::text[], @secret, @owner)
RETURNING *;

-- name: WebhookEndpointGet :one
-- @owner NULL finds any owner's endpoint (operators, the relay); otherwise
-- another owner's endpoint is not found.
SELECT * FROM webhook_endpoints
WHERE id = @id AND (sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text);

-- name: WebhookEndpointList :many
-- @owner as in WebhookEndpointGet.
SELECT * FROM webhook_endpoints
WHERE sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text
ORDER BY created_at, id;

-- name: WebhookEndpointDisable :one
-- Disabling twice keeps the first time. @owner as in WebhookEndpointGet.
UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now())
WHERE id = @id AND (sqlc.narg('owner')::text IS NULL OR owner = sqlc.narg('owner')::text)
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
