-- Client Idempotency-Key records: the first answer to a POST under a key,
-- replayed for repeats of the same request by the same client.

CREATE TABLE idempotency_keys (
    -- Keys are scoped per client: two clients may pick the same key.
    api_key_id       uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idempotency_key  text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, path and raw body: a repeat must be the same request.
    request_hash     bytea       NOT NULL,
    -- NULL while the first request is still running.
    response_status  integer,
    -- The response headers a replay repeats (Content-Type, Location).
    response_headers jsonb       NOT NULL DEFAULT '{}',
    response_body    bytea,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key),
    CHECK (response_status IS NULL OR response_body IS NOT NULL)
);

-- For the API's opportunistic sweep of expired records.
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
