-- The keys API clients authenticate with (Authorization: Bearer po_…).
-- Only a hash of each key is kept; see internal/apikey for why SHA-256.

CREATE TABLE api_keys (
    id             uuid        PRIMARY KEY,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The key's first characters, so people can tell keys apart in a listing.
    display_prefix text        NOT NULL,
    -- Unique, so a presented key is found by one index probe on its hash and
    -- never by comparing secrets.
    key_hash       bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Kept to within the API's key cache interval, not per request.
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
