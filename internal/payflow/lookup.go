package payflow

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// RequestLookup records that someone (a gateway webhook) asked for a lookup
// of the payment, and puts one into the outbox. Lookups are unique per
// payment while one waits or runs, so a burst of webhooks costs one gateway
// call; the request itself is what makes sure none is lost: a lookup that
// was already running when it came leaves a follow-up behind it
// (LookupAnswered), and one that was lost is found by the reconciler. It
// reports whether a new lookup job was inserted. A payment with no
// payment key was never sent to the gateway and cannot be asked about:
// nothing is recorded for it.
func (f *Flow) RequestLookup(ctx context.Context, tx pgx.Tx, p payment.Payment) (bool, error) {
	if p.PaymentKey == "" {
		return false, nil
	}
	if _, err := f.store.WantLookup(ctx, tx, p.ID); err != nil {
		return false, err
	}
	res, err := f.outbox.InsertTx(ctx, tx, paymentjob.LookupArgs{PaymentID: p.ID}, nil)
	if err != nil {
		return false, fmt.Errorf("error enqueuing lookup job: %w", err)
	}
	return res != nil && !res.UniqueSkippedAsDuplicate, nil
}

// LookupAnswered is called by a lookup that has read the gateway, in the
// transaction that completes its job (after the completion, so that the
// lookup is no longer the one waiting or running). seen is the payment's
// lookup request as it was before the gateway was asked: it is answered
// now. A request that came while the gateway was being asked is not: the
// answer may predate the change it reports, so a follow-up lookup goes into
// the outbox. It reports whether one did.
func (f *Flow) LookupAnswered(ctx context.Context, tx pgx.Tx, paymentID string, seen *time.Time) (bool, error) {
	still, err := f.store.LookupAnswered(ctx, tx, paymentID, seen)
	if err != nil || still == nil {
		return false, err
	}
	if err := f.enqueue(ctx, tx, paymentjob.LookupArgs{PaymentID: paymentID}); err != nil {
		return false, err
	}
	return true, nil
}
