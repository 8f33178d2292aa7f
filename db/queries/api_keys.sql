-- name: APIKeyInsert :one
INSERT INTO api_keys (id, name, display_prefix, key_hash, scope, owner)
VALUES (@id, @name, @display_prefix, @key_hash, @scope, @owner)
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

-- name: OwnerInsert :exec
-- Adding an owner that exists is a no-op.
INSERT INTO owners (id) VALUES (@id) ON CONFLICT (id) DO NOTHING;

-- name: OwnerExists :one
SELECT EXISTS (SELECT 1 FROM owners WHERE id = @id)::bool AS found;

-- name: OwnerList :many
-- Every owner with its count of active keys, by name.
SELECT o.id, o.created_at,
    (SELECT count(*) FROM api_keys k WHERE k.owner = o.id AND k.revoked_at IS NULL)::int AS active_keys
FROM owners o ORDER BY o.id;
