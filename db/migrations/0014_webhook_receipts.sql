-- PortOne's webhook deliveries we accepted, by their webhook-id (docs/design.md,
-- "A webhook costs at most one lookup per interval"): a verified delivery
-- whose id is here and not yet expired is a replay, or PortOne's retry of
-- one we already took, and is answered without acting. expires_at is when
-- the signature we accepted stops verifying (its webhook-timestamp plus the
-- five-minute tolerance): after it no replay of that delivery gets in, so
-- the row proves nothing more and is swept by the api as it accepts new
-- ones. The table holds at most the deliveries of one window.
CREATE TABLE webhook_receipts (
    webhook_id text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX webhook_receipts_expires_at ON webhook_receipts (expires_at);
