package payflow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// Orphans counts what RequeueOrphans put back into the outbox.
type Orphans struct {
	Confirms, Cancels int
}

// RequeueOrphans finds work that has no live job (confirming payments and
// pending cancels untouched since before, whose job River discarded after a
// plain error on its last attempt, or that a crash lost) and puts a job back
// into the outbox under the operation's current key, at most limit of each.
// Each is checked again under the payment's lock in a transaction of its
// own, so a job enqueued meanwhile is never doubled.
func (f *Flow) RequeueOrphans(ctx context.Context, pool *pgxpool.Pool, before time.Time, limit int) (Orphans, error) {
	var n Orphans
	confirms, err := f.store.OrphanConfirms(ctx, pool, before, limit)
	if err != nil {
		return n, err
	}
	for _, p := range confirms {
		ok, err := f.requeue(ctx, pool, p.ID, paymentjob.ConfirmArgs{PaymentID: p.ID}, func(tx pgx.Tx, locked payment.Payment) (bool, error) {
			return locked.Status == payment.StatusConfirming, nil
		})
		if err != nil {
			return n, err
		}
		if ok {
			n.Confirms++
		}
	}
	cancels, err := f.store.OrphanCancels(ctx, pool, before, limit)
	if err != nil {
		return n, err
	}
	for _, c := range cancels {
		ok, err := f.requeue(ctx, pool, c.PaymentID, paymentjob.CancelArgs{PaymentID: c.PaymentID, CancelID: c.ID}, func(tx pgx.Tx, _ payment.Payment) (bool, error) {
			locked, err := f.store.CancelForUpdate(ctx, tx, c.ID)
			return err == nil && locked.Status == payment.CancelPending, err
		})
		if err != nil {
			return n, err
		}
		if ok {
			n.Cancels++
		}
	}
	return n, nil
}

// requeue enqueues args in a transaction holding the payment's lock, if
// still says the work is still due and no live job carries the same args.
func (f *Flow) requeue(ctx context.Context, pool *pgxpool.Pool, paymentID string, args river.JobArgs,
	still func(pgx.Tx, payment.Payment) (bool, error)) (bool, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return false, fmt.Errorf("error encoding %s args: %w", args.Kind(), err)
	}
	enqueued := false
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		p, err := f.PaymentForUpdate(ctx, tx, paymentID)
		if err != nil {
			return err
		}
		if ok, err := still(tx, p); err != nil || !ok {
			return err
		}
		if live, err := f.store.HasLiveJob(ctx, tx, args.Kind(), raw); err != nil || live {
			return err
		}
		enqueued = true
		return f.enqueue(ctx, tx, args)
	})
	if err != nil {
		return false, fmt.Errorf("error requeueing %s for payment %s: %w", args.Kind(), paymentID, err)
	}
	return enqueued, nil
}
