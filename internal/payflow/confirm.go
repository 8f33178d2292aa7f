package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// RecordApproval records the gateway's approval of a payment that still
// awaits its confirm, and the cancel it sets off: the customer's waiting
// cancel, or a compensation for an approval that cannot be kept, enqueued in
// the same transaction.
func (f *Flow) RecordApproval(ctx context.Context, tx pgx.Tx, paymentID string, a payment.Approval) (Change, error) {
	// The lock and the open cancels in one round trip; the cancels are read
	// once the lock is held.
	p, open, err := f.lockWithOpenCancels(ctx, tx, paymentID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if !p.ConfirmPending() {
		return ch, nil
	}
	return f.applyApproval(ctx, tx, &p, payment.WaitingCancel(open), a)
}

// applyApproval is RecordApproval on a payment already locked, with the
// cancel waiting for the confirm's outcome (if any) read under the lock, for
// Settle too, which also adopts approvals of payments we recorded as failed.
func (f *Flow) applyApproval(ctx context.Context, tx pgx.Tx, p *payment.Payment, waiting *payment.Cancel, a payment.Approval) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
	toRun := p.ApplyApproval(a, waiting, f.newID(), f.now())
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	ch.To = p.Status
	if waiting != nil && (toRun == nil || toRun.ID != waiting.ID) && waiting.Status != payment.CancelWaiting {
		// Voided by the approval (a compensation replaces it, or the
		// gateway had refunded in full already).
		if err := f.store.SaveCancel(ctx, tx, waiting); err != nil {
			return ch, err
		}
	}
	if toRun == nil {
		return ch, nil
	}
	if waiting != nil && toRun.ID == waiting.ID {
		if err := f.store.SaveCancel(ctx, tx, toRun); err != nil {
			return ch, err
		}
	} else {
		c, err := f.store.InsertCancel(ctx, tx, *toRun)
		if err != nil {
			return ch, err
		}
		*toRun = c
		if toRun.Kind == payment.CancelCompensation {
			ch.Compensation = toRun
		}
	}
	if toRun.Status == payment.CancelPending {
		if err := f.enqueueCancel(ctx, tx, *toRun); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// RecordRefusal records a definite refusal of the confirm (failed, or
// expired for a lapsed session); a cancel waiting for it had nothing to
// refund and becomes void.
func (f *Flow) RecordRefusal(ctx context.Context, tx pgx.Tx, paymentID string, status payment.Status, code, message string) (Change, error) {
	p, open, err := f.lockWithOpenCancels(ctx, tx, paymentID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if !p.ConfirmPending() {
		return ch, nil
	}
	return f.applyRefusal(ctx, tx, &p, payment.WaitingCancel(open), status, code, message)
}

// applyRefusal is RecordRefusal on a payment already locked, with the cancel
// waiting for the confirm's outcome (if any) read under the lock.
func (f *Flow) applyRefusal(ctx context.Context, tx pgx.Tx, p *payment.Payment, waiting *payment.Cancel, status payment.Status, code, message string) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
	now := f.now()
	p.ApplyRefusal(status, code, message, waiting, now)
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	ch.To = p.Status
	if waiting != nil {
		if err := f.store.SaveCancel(ctx, tx, waiting); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// GiveUpConfirm records a confirm whose retry budget is spent without a
// definite answer as unknown; the reconciler keeps asking the gateway.
func (f *Flow) GiveUpConfirm(ctx context.Context, tx pgx.Tx, paymentID, code, message string) (Change, error) {
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if p.Status != payment.StatusConfirming {
		return ch, nil
	}
	p.GiveUpConfirm(code, message)
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return ch, err
	}
	ch.To, ch.Applied = p.Status, true
	return ch, nil
}

// RotateConfirmKey moves a payment's confirm from seenKey to its next
// Idempotency-Key, unless another run already did or the payment no longer
// awaits its confirm, and notes why on the lookup's attempt row. Only the key
// rule (gateway.KeyAbandonable, then a lookup showing no confirm) may lead
// here; docs/design.md says why.
func (f *Flow) RotateConfirmKey(ctx context.Context, tx pgx.Tx, paymentID, seenKey string, lookupAttempt int64, why string) (Change, error) {
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if p.ConfirmIdempotencyKey != seenKey || !p.ConfirmPending() {
		return ch, nil
	}
	old, next := p.RotateConfirmKey()
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return ch, err
	}
	ch.Applied, ch.KeyRotated = true, true
	ch.Note = fmt.Sprintf("%s; confirm key %s replaced by %s", why, old, next)
	return ch, f.store.AddAttemptNote(ctx, tx, lookupAttempt, ch.Note)
}
