-- A payment belongs to one gateway (Toss, PortOne, ...), recorded when it is
-- created, and the relay calls that gateway for it. Every payment made
-- before this migration went through Toss, the only gateway there was.
ALTER TABLE payments ADD COLUMN gateway text NOT NULL DEFAULT 'toss';

-- New rows name their gateway: the api fills in its configured default, so
-- the column's default must not silently send a payment to Toss.
ALTER TABLE payments ALTER COLUMN gateway DROP DEFAULT;

-- The names are the domain's (internal/payment, Gateways); the database only
-- keeps them well formed, so that adding a gateway needs no migration.
ALTER TABLE payments ADD CONSTRAINT payments_gateway_format CHECK (gateway ~ '^[a-z][a-z0-9]{1,31}$');
