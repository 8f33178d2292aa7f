-- Owners (docs/design.md, "Owners"): the checkout service a payment, a
-- webhook endpoint and a client Idempotency-Key belong to. Every API key
-- belongs to exactly one owner; a checkout key sees and acts on its owner's
-- payments only. A deployment starts with one owner, 'default', and every row
-- made before this migration is the default owner's, so a one-service
-- deployment sees no change.

CREATE TABLE owners (
    -- A short name people type (`api keys create NAME --owner shop-b`); the
    -- check is the domain's rule (payment.ValidateOwner), kept here too so
    -- that no other writer can store a name the api would refuse.
    id         text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO owners (id) VALUES ('default');

-- Every column below is added NOT NULL with a constant default: since
-- Postgres 11 that is a catalog change only (the default is stored once in
-- pg_attribute and read for every older row), so even a payments table of
-- hundreds of millions of rows is not rewritten and the ACCESS EXCLUSIVE lock
-- is held for milliseconds. A volatile default, or adding the column and
-- then UPDATE-ing it, would rewrite or touch every row.
ALTER TABLE api_keys ADD COLUMN owner text NOT NULL DEFAULT 'default' REFERENCES owners (id);

-- No foreign key on payments.owner: the owner always comes from the
-- creating key's row, which has one, and a foreign key on the busiest insert
-- would take a FOR KEY SHARE lock on the one owner row per payment insert
-- (a multixact on a hot row under concurrent creates) and, added to an
-- existing table, scan it to validate.
ALTER TABLE payments ADD COLUMN owner text NOT NULL DEFAULT 'default';

ALTER TABLE webhook_endpoints ADD COLUMN owner text NOT NULL DEFAULT 'default' REFERENCES owners (id);

-- No two active endpoints of one owner share a URL: a second registration
-- would double every event. The cap on active endpoints per owner is
-- counted under a lock of the owner's row (store.InsertWebhookEndpoint).
-- The existing rows are all the default owner's: the index build refuses
-- the migration if two enabled endpoints already share a URL, and an
-- operator disables one first (POST /v1/webhook-endpoints/{id}/disable).
CREATE UNIQUE INDEX webhook_endpoints_owner_url_idx ON webhook_endpoints (owner, url)
    WHERE disabled_at IS NULL;

-- Client Idempotency-Keys are scoped to the owner, not to the key that sent
-- them, so a retry under a rotated key of the same owner replays the first
-- answer instead of acting again. api_key_id stays: who claimed the record.
-- The column holds the owner's name for a checkout key's records and
-- 'owner/scope' for an operator's or read-only key's, whose answers may show
-- other owners' payments and so are never replayed to a checkout key.
-- Records are short-lived (a day by default): where two keys of the default
-- owner picked the same Idempotency-Key, only the newest record is kept, so
-- that the new primary key can hold. No foreign key, as on payments: every
-- claim would lock the owner's row.
ALTER TABLE idempotency_keys ADD COLUMN owner text NOT NULL DEFAULT 'default';

DELETE FROM idempotency_keys a
USING idempotency_keys b
WHERE a.idempotency_key = b.idempotency_key
  AND (a.created_at, a.api_key_id) < (b.created_at, b.api_key_id);

ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (owner, idempotency_key);
