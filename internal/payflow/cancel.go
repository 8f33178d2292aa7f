package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// withPendingCancel locks the payment and then the cancel, in that order
// (the order every writer uses), and applies fn if the cancel is still
// pending, saving both. Change.Applied is false when it was not.
func (f *Flow) withPendingCancel(ctx context.Context, tx pgx.Tx, paymentID, cancelID string,
	fn func(p *payment.Payment, c *payment.Cancel) error) (Change, error) {
	// Both locks in one round trip, the payment's first.
	p, c, err := f.lockWithCancel(ctx, tx, paymentID, cancelID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if c.Status != payment.CancelPending {
		return ch, nil
	}
	if err := fn(&p, &c); err != nil {
		return ch, err
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return ch, err
	}
	if err := f.store.SaveCancel(ctx, tx, &c); err != nil {
		return ch, err
	}
	ch.To, ch.Applied = p.Status, true
	return ch, nil
}

// RecordRefund commits the gateway's balance after a cancel succeeded (its
// answer, or a lookup that shows it), and the cancel's result.
func (f *Flow) RecordRefund(ctx context.Context, tx pgx.Tx, paymentID, cancelID string, balance int64, transactionKey string) (Change, error) {
	return f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		p.ApplyCancelResult(c, balance, transactionKey, f.now())
		return nil
	})
}

// RecordCancelRefusal commits a definite refusal of a cancel: the payment
// keeps what the gateway holds (a refused compensation goes to unknown for a
// person; the domain decides).
func (f *Flow) RecordCancelRefusal(ctx context.Context, tx pgx.Tx, paymentID, cancelID, code, message string) (Change, error) {
	return f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		p.ApplyCancelRefusal(c, code, message, f.now())
		return nil
	})
}

// GiveUpCancel records a cancel whose retry budget is spent without a
// definite answer: the cancel and the payment go to unknown, and the
// reconciler's lookups settle them (sending the cancel again if the gateway
// shows it never happened).
func (f *Flow) GiveUpCancel(ctx context.Context, tx pgx.Tx, paymentID, cancelID, code, message string) (Change, error) {
	return f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		p.GiveUpCancel(c, code, message)
		return nil
	})
}

// RotateCancelKey moves a pending cancel from seenKey to its next
// Idempotency-Key, unless another run already did, and notes why on the
// lookup's attempt row; see RotateConfirmKey for when it may be called.
func (f *Flow) RotateCancelKey(ctx context.Context, tx pgx.Tx, paymentID, cancelID, seenKey string, lookupAttempt int64, why string) (Change, error) {
	var note string
	ch, err := f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		if c.IdempotencyKey != seenKey {
			return errSkip
		}
		old, next := c.RotateKey()
		note = fmt.Sprintf("%s; cancel key %s replaced by %s", why, old, next)
		return nil
	})
	if err == errSkip {
		return Change{From: ch.From, To: ch.From}, nil
	}
	if err != nil || !ch.Applied {
		return ch, err
	}
	ch.Note, ch.KeyRotated = note, true
	return ch, f.store.AddAttemptNote(ctx, tx, lookupAttempt, note)
}

// errSkip stops withPendingCancel without writing: the change was already
// made by another run.
var errSkip = fmt.Errorf("nothing to do")
