-- name: APIKeyInsert :one
INSERT INTO api_keys (id, name, display_prefix, key_hash, scope)
VALUES (@id, @name, @display_prefix, @key_hash, @scope)
RETURNING *;

-- name: APIKeyGetActiveByHash :one
-- How a presented key is checked: by its hash, through the unique index, so
-- no comparison ever runs on the secret itself.
SELECT * FROM api_keys WHERE key_hash = @key_hash AND revoked_at IS NULL;

-- name: APIKeyTouch :exec
-- Records use at most once per interval: concurrent requests that all missed
-- the API's cache find the row already fresh and write nothing.
UPDATE api_keys SET last_used_at = @used_at::timestamptz
WHERE id = @id AND (last_used_at IS NULL OR last_used_at < @stale_before::timestamptz);

-- name: APIKeyList :many
SELECT * FROM api_keys ORDER BY created_at, id;

-- name: APIKeyRevoke :one
-- Revoking twice keeps the first revocation's time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, @revoked_at::timestamptz)
WHERE id = @id
RETURNING *;
