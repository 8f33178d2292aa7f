package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// receiptSweepBatch bounds the expired receipts one accept deletes: enough
// to keep up with any rate of new deliveries (each accept adds one row and
// may delete this many), few enough to stay cheap in the webhook's
// transaction.
const receiptSweepBatch = 16

// AcceptWebhookReceipt records that the gateway delivery named webhookID
// was accepted, to be remembered until expiresAt (when the signature it
// came with stops verifying), and reports whether it is new: false means a
// receipt for it has not expired at now, so this is a replay or a retry of
// a delivery already acted on. It first sweeps a few expired receipts, so
// the table holds about one signature window of deliveries.
func (s *Store) AcceptWebhookReceipt(ctx context.Context, db DBTX, webhookID string, expiresAt, now time.Time) (bool, error) {
	if _, err := s.q.WebhookReceiptSweep(ctx, db, dbsqlc.WebhookReceiptSweepParams{Now: now, MaxRows: receiptSweepBatch}); err != nil {
		return false, fmt.Errorf("error sweeping webhook receipts: %w", err)
	}
	_, err := s.q.WebhookReceiptAccept(ctx, db, dbsqlc.WebhookReceiptAcceptParams{WebhookID: webhookID, ExpiresAt: expiresAt, Now: now})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("error recording a webhook receipt: %w", err)
	}
	return true, nil
}
