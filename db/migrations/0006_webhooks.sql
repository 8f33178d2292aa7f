-- Outbound webhooks: the checkout's endpoints, and one delivery row per
-- payment status change per endpoint that asked for it. A delivery row and
-- its River job (webhook_delivery) are written in the transaction that makes
-- the change, so an event is never lost and never sent for a change that
-- rolled back.

-- A payment's version counts its saves, so a receiver can drop an event older
-- than one it already has: updated_at cannot order two changes, as now() is
-- the start of a transaction and a later change may have started first.
ALTER TABLE payments ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE TABLE webhook_endpoints (
    id                          uuid        PRIMARY KEY,
    url                         text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- Event types ("payment.confirmed", ...) the endpoint receives.
    events                      text[]      NOT NULL CHECK (cardinality(events) > 0),
    -- The signing secret (whsec_ and base64). HMAC needs the secret itself,
    -- so unlike API keys it cannot be stored as a hash.
    secret                      text        NOT NULL,
    -- After a rotation the old secret signs too, until it expires, so a
    -- receiver has time to switch.
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    disabled_at                 timestamptz
);

CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id),
    -- The webhook-id header: one per event, the same on every retry and
    -- redelivery, so a receiver can drop duplicates.
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    payment_id      uuid        NOT NULL REFERENCES payments (id),
    -- The exact bytes signed and sent, fixed when the change committed.
    payload         bytea       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_http_status integer,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);
