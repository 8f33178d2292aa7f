-- A payment belongs to one gateway (Toss, PortOne, ...), recorded when it is
-- created, and the relay calls that gateway for it. Every payment made
-- before this migration went through Toss, the only gateway there was.
--
-- The default stays: `api migrate` runs before a new api is rolled out, and
-- the api processes still running the previous release insert payments
-- without a gateway; they only know Toss, so 'toss' is exactly right for
-- them. The current api always names the gateway.
ALTER TABLE payments ADD COLUMN gateway text NOT NULL DEFAULT 'toss';

-- The names are the domain's (internal/payment, Gateways); the database only
-- keeps them well formed, so that adding a gateway needs no migration.
ALTER TABLE payments ADD CONSTRAINT payments_gateway_format CHECK (gateway ~ '^[a-z][a-z0-9]{1,31}$');
