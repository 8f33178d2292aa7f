-- name: WebhookReceiptAccept :one
-- Records a delivery's webhook-id, unless a receipt for it has not expired
-- at @now (then nothing is written and no row comes back: a duplicate). An
-- expired receipt is taken afresh.
INSERT INTO webhook_receipts (webhook_id, expires_at) VALUES (@webhook_id, @expires_at)
ON CONFLICT (webhook_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
    WHERE webhook_receipts.expires_at <= @now
RETURNING webhook_id;

-- name: WebhookReceiptSweep :execrows
-- Deletes receipts expired at @now, a bounded batch at a time, so a sweep
-- never holds many row locks in the caller's transaction; rows another
-- transaction holds are left for the next sweep.
DELETE FROM webhook_receipts
WHERE webhook_id IN (
    SELECT r.webhook_id FROM webhook_receipts r WHERE r.expires_at <= @now
    ORDER BY r.expires_at LIMIT @max_rows
    FOR UPDATE SKIP LOCKED);
