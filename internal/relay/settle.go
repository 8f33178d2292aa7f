package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// This file holds what the workers record once the gateway has spoken. Each
// function runs inside the caller's transaction with the payment row locked.

// applyApproval records the gateway's approval, and the cancel it sets off
// when the approval cannot be kept or a cancel was waiting for it.
func (r *relay) applyApproval(ctx context.Context, tx pgx.Tx, p *payment.Payment, gp *gateway.Payment) error {
	open, err := r.store.OpenCancels(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	var waiting *payment.Cancel
	for i := range open {
		if open[i].Status == payment.CancelWaiting {
			waiting = &open[i]
			break
		}
	}
	toRun := p.ApplyApproval(approvalOf(gp), waiting, r.newID(), r.now())
	if _, err := r.store.SavePayment(ctx, tx, *p); err != nil {
		return err
	}
	if toRun == nil {
		return nil
	}
	if toRun.Kind == payment.CancelCompensation {
		r.logger(ctx).WarnContext(ctx, "approval cannot be kept; compensating cancel enqueued",
			slog.String("reason", toRun.Reason), slog.String("compensation_cancel_id", toRun.ID))
	}
	return r.saveCancelAndEnqueue(ctx, tx, *toRun, waiting)
}

// applyRefusal records a definite refusal of the confirm; a cancel waiting
// for it has nothing to refund.
func (r *relay) applyRefusal(ctx context.Context, tx pgx.Tx, p *payment.Payment, status payment.Status, code, message string) error {
	open, err := r.store.OpenCancels(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	now := r.now()
	p.ApplyRefusal(status, code, message, nil, now)
	if _, err := r.store.SavePayment(ctx, tx, *p); err != nil {
		return err
	}
	for _, c := range open {
		if _, err := r.store.SaveCancel(ctx, tx, *voidWaiting(&c, now)); err != nil {
			return err
		}
	}
	return nil
}

func voidWaiting(waiting *payment.Cancel, now time.Time) *payment.Cancel {
	if waiting == nil {
		return nil
	}
	waiting.Status = payment.CancelVoid
	waiting.CompletedAt = &now
	return waiting
}

// saveCancelAndEnqueue writes a cancel (updating the waiting one or inserting
// a compensation) and, when it is pending, its job in the same transaction.
func (r *relay) saveCancelAndEnqueue(ctx context.Context, tx pgx.Tx, c payment.Cancel, waiting *payment.Cancel) error {
	var err error
	if waiting != nil && c.ID == waiting.ID {
		_, err = r.store.SaveCancel(ctx, tx, c)
	} else {
		_, err = r.store.InsertCancel(ctx, tx, c)
		if err == nil && waiting != nil && waiting.Status != payment.CancelWaiting {
			_, err = r.store.SaveCancel(ctx, tx, *waiting)
		}
	}
	if err != nil {
		return err
	}
	if c.Status != payment.CancelPending {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("error getting River client to enqueue cancel: %w", err)
	}
	if _, err := client.InsertTx(ctx, tx, paymentjob.CancelArgs{PaymentID: c.PaymentID, CancelID: c.ID}, nil); err != nil {
		return fmt.Errorf("error enqueuing cancel: %w", err)
	}
	return nil
}

// settle makes our record of a payment agree with the gateway's, whatever
// state ours is in: the lookup worker's whole job. The gateway's record is
// the truth about money; ours is brought to it and never the other way.
//
// lookupAttempt is the attempt row of the lookup that produced gp, where a
// decision it justifies is noted.
func (r *relay) settle(ctx context.Context, tx pgx.Tx, p *payment.Payment, gp *gateway.Payment, lookupAttempt int64) error {
	approved := gp.Status == gateway.StatusDone || gp.Status == gateway.StatusCanceled || gp.Status == gateway.StatusPartialCanceled
	cancels, err := r.store.Cancels(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	var active *payment.Cancel // the cancel with the gateway, or lost in unknown
	for i := range cancels {
		if cancels[i].Status == payment.CancelPending || cancels[i].Status == payment.CancelUnknown {
			active = &cancels[i]
		}
	}
	now := r.now()

	switch {
	case p.Status == payment.StatusConfirming || (p.Status == payment.StatusUnknown && p.ApprovedAt == nil):
		switch {
		case approved:
			return r.applyApproval(ctx, tx, p, gp)
		case gp.Status == gateway.StatusAborted:
			return r.applyRefusal(ctx, tx, p, payment.StatusFailed, "ABORTED", "the gateway aborted the payment")
		case gp.Status == gateway.StatusExpired:
			return r.applyRefusal(ctx, tx, p, payment.StatusExpired, "EXPIRED", "the payment session expired at the gateway")
		}
		// READY / IN_PROGRESS: not confirmed yet. A confirm job may still be
		// at it; once the session lapses the gateway says EXPIRED.
		return nil

	case (p.Status == payment.StatusFailed || p.Status == payment.StatusExpired) && approved:
		// We said no charge and the gateway says charged: the customer's
		// money is what counts, so record it and shout.
		r.logger(ctx).ErrorContext(ctx, "gateway approved a payment recorded as "+string(p.Status)+"; adopting the gateway's word")
		return r.applyApproval(ctx, tx, p, gp)

	case active != nil && approved:
		switch {
		case gp.BalanceAmount < p.BalanceAmount:
			// Only one cancel is with the gateway at a time, so the drop is it.
			p.ApplyCancelResult(active, gp.BalanceAmount, lastTransactionKey(gp), now)
		case active.Status == payment.CancelUnknown:
			// Its job gave up and the gateway refunded nothing: it did not
			// happen, and the customer still wants it. Send it again under
			// a new key (the old one may be stuck on a cached answer).
			return r.resend(ctx, tx, p, active, gp, lookupAttempt)
		default:
			return nil // pending: its job is still at it
		}
		if _, err := r.store.SavePayment(ctx, tx, *p); err != nil {
			return err
		}
		_, err := r.store.SaveCancel(ctx, tx, *active)
		return err

	case (p.Status == payment.StatusConfirmed || p.Status == payment.StatusPartiallyCanceled) &&
		approved && gp.BalanceAmount < p.BalanceAmount:
		// Refunded outside the relay (the gateway's console, say).
		r.logger(ctx).WarnContext(ctx, "gateway shows a refund the relay did not make; adopting it",
			slog.Int64("our_balance", p.BalanceAmount), slog.Int64("gateway_balance", gp.BalanceAmount))
		p.BalanceAmount = gp.BalanceAmount
		p.CanceledAmount = p.ApprovedAmount - gp.BalanceAmount
		p.Status = payment.StatusPartiallyCanceled
		if gp.BalanceAmount == 0 {
			p.Status = payment.StatusCanceled
		}
		_, err := r.store.SavePayment(ctx, tx, *p)
		return err
	}
	return nil
}

// resend puts a cancel the relay had given up on (unknown) back in the
// outbox under its next key, after a lookup showed the gateway never
// refunded it.
func (r *relay) resend(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, gp *gateway.Payment, lookupAttempt int64) error {
	next := payment.NextCancelIdempotencyKey(c.ID, c.IdempotencyKey)
	note := fmt.Sprintf("gateway balance %d shows no refund for cancel %s; sent again under %s (was %s)",
		gp.BalanceAmount, c.ID, next, c.IdempotencyKey)
	p.Status = payment.StatusCanceling
	c.Status = payment.CancelPending
	c.FailureCode, c.FailureMessage = "", ""
	if _, err := r.store.SavePayment(ctx, tx, *p); err != nil {
		return err
	}
	if _, err := r.store.SaveCancel(ctx, tx, *c); err != nil {
		return err
	}
	if err := r.store.SetCancelIdempotencyKey(ctx, tx, c.ID, next); err != nil {
		return err
	}
	if err := r.store.AddAttemptNote(ctx, tx, lookupAttempt, note); err != nil {
		return err
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("error getting River client to enqueue cancel: %w", err)
	}
	if _, err := client.InsertTx(ctx, tx, paymentjob.CancelArgs{PaymentID: p.ID, CancelID: c.ID}, nil); err != nil {
		return fmt.Errorf("error enqueuing cancel: %w", err)
	}
	r.onCommit(ctx, func() {
		r.metrics.KeyRotation(payment.OperationCancel)
		r.logger(ctx).WarnContext(ctx, "cancel sent again under a new idempotency key",
			slog.String("cancel_id", c.ID), slog.String("why", note))
	})
	return nil
}
