-- name: IdempotencyClaim :one
-- Inserts the in-progress marker for a request, committed on its own before
-- the handler runs so concurrent repeats see it. A conflicting record that has
-- expired, or that is an in-progress marker older than @stale_before (its
-- request died without finishing), is taken over in place. No row back: the
-- key is held by a live record, which the caller reads.
--
-- Keys are scoped to the owner, not to the API key (docs/design.md,
-- "Owners"): a retry under a rotated key of the same owner finds the record.
INSERT INTO idempotency_keys (owner, api_key_id, idempotency_key, request_hash, created_at, expires_at)
VALUES (@owner, @api_key_id, @idempotency_key, @request_hash, @created_at, @expires_at)
ON CONFLICT (owner, idempotency_key) DO UPDATE SET
    api_key_id       = EXCLUDED.api_key_id,
    request_hash     = EXCLUDED.request_hash,
    response_status  = NULL,
    response_headers = '{}',
    response_body    = NULL,
    created_at       = EXCLUDED.created_at,
    expires_at       = EXCLUDED.expires_at
WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
   OR (idempotency_keys.response_status IS NULL AND idempotency_keys.created_at < @stale_before)
RETURNING *;

-- name: IdempotencyGet :one
SELECT * FROM idempotency_keys WHERE owner = @owner AND idempotency_key = @idempotency_key;

-- name: IdempotencyComplete :execrows
-- Stores the answer. Matching created_at makes sure the marker is still the
-- one this request claimed, not one a later request took over.
UPDATE idempotency_keys SET
    response_status  = @response_status,
    response_headers = @response_headers,
    response_body    = @response_body
WHERE owner = @owner AND idempotency_key = @idempotency_key
  AND created_at = @created_at AND response_status IS NULL;

-- name: IdempotencyRelease :execrows
-- Drops an in-progress marker whose request ended without an answer worth
-- keeping (a 5xx), so the client may retry under the same key.
DELETE FROM idempotency_keys
WHERE owner = @owner AND idempotency_key = @idempotency_key
  AND created_at = @created_at AND response_status IS NULL;

-- name: IdempotencyDeleteExpired :execrows
-- A bounded sweep: a few rows at a time, skipping rows another sweep holds.
DELETE FROM idempotency_keys
WHERE (owner, idempotency_key) IN (
    SELECT i.owner, i.idempotency_key FROM idempotency_keys i
    WHERE i.expires_at < @now
    ORDER BY i.expires_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);
