package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// CancelWorker carries out one cancel request: gateway first, then our rows,
// in one job. If the row write fails the job retries under the same
// Idempotency-Key, so the gateway replays its answer instead of refunding
// twice, and "refunded but we still say paid" does not survive a retry.
type CancelWorker struct {
	worker[paymentjob.CancelArgs]
}

// Work calls the gateway's cancel and records the refund.
func (w *CancelWorker) Work(ctx context.Context, job *river.Job[paymentjob.CancelArgs]) error {
	r := w.r
	ctx = r.withJob(ctx, job.JobRow, job.Args.PaymentID, slog.String("cancel_id", job.Args.CancelID))
	c, err := r.store.Cancel(ctx, r.pool, job.Args.CancelID)
	if err != nil {
		return fmt.Errorf("error loading cancel: %w", err)
	}
	if c.Status != payment.CancelPending {
		return nil
	}
	p, err := r.store.Payment(ctx, r.pool, job.Args.PaymentID)
	if err != nil {
		return fmt.Errorf("error loading payment: %w", err)
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationCancel,
		IdempotencyKey: c.IdempotencyKey, JobID: job.ID, JobAttempt: job.Attempt,
	}
	cr, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Cancel(ctx, p.PaymentKey, gateway.CancelRequest{Reason: c.Reason, Amount: c.Amount}, c.IdempotencyKey)
	})
	if err != nil {
		return err
	}

	switch cr.Class {
	case gateway.ClassSuccess:
		return w.recordRefund(ctx, job, cr.Payment)
	case gateway.ClassRefused, gateway.ClassSessionExpired:
		return w.recordRefusal(ctx, job, cr.Code, cr.Message)
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, payment.OperationCancel, cr.Result)
	}
	// Transient or unclear. The same answer twice under one key may be the
	// gateway replaying what it cached for the key rather than answering
	// anew; then a lookup showing no refund earns the cancel a new key.
	stuck, err := r.sameAnswerAgain(ctx, cr, p.ID, payment.OperationCancel, c.IdempotencyKey)
	if err != nil {
		return err
	}
	if cr.Class == gateway.ClassUnclear || stuck {
		return w.lookUp(ctx, job, p, c, cr, stuck)
	}
	return w.retryOrUnknown(ctx, job, cr.Result)
}

// lookUp decides from the gateway's record whether our cancel happened: the
// only cancel in flight for a payment is ours (one pending cancel per
// payment), so a balance below the one we recorded means it did. When the
// same transient answer keeps coming back under our key (stuck) and the
// gateway shows no refund, the cancel moves to a new key.
func (w *CancelWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.CancelArgs], p payment.Payment, c payment.Cancel, first callResult, stuck bool) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationLookup,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	lc, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Lookup(ctx, p.PaymentKey)
	})
	if err != nil {
		return err
	}
	if lc.Class == gateway.ClassMisconfigured {
		return misconfigured(ctx, r, payment.OperationLookup, lc.Result)
	}
	if lc.Payment == nil {
		return w.retryOrUnknown(ctx, job, first.Result)
	}
	if lc.Payment.BalanceAmount < p.BalanceAmount {
		return w.recordRefund(ctx, job, lc.Payment)
	}
	if stuck {
		if err := w.rotateKey(ctx, c, lc); err != nil {
			return err
		}
	}
	// The gateway holds what we think it holds: our cancel did not happen.
	// Ask again; a definite refusal will end it.
	return w.retryOrUnknown(ctx, job, first.Result)
}

// rotateKey moves a cancel to its next Idempotency-Key, noting why on the
// lookup that showed the refund did not happen.
func (w *CancelWorker) rotateKey(ctx context.Context, seen payment.Cancel, lookup callResult) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := r.store.PaymentForUpdate(ctx, tx, seen.PaymentID); err != nil {
			return err
		}
		c, err := r.store.CancelForUpdate(ctx, tx, seen.ID)
		if err != nil {
			return err
		}
		if c.Status != payment.CancelPending || c.IdempotencyKey != seen.IdempotencyKey {
			return nil
		}
		next := payment.NextCancelIdempotencyKey(c.ID, c.IdempotencyKey)
		if err := r.store.SetCancelIdempotencyKey(ctx, tx, c.ID, next); err != nil {
			return err
		}
		note := fmt.Sprintf("gateway balance %d shows no refund for this cancel; key %s replaced by %s",
			lookup.Payment.BalanceAmount, c.IdempotencyKey, next)
		if err := r.store.AddAttemptNote(ctx, tx, lookup.AttemptID, note); err != nil {
			return err
		}
		r.onCommit(ctx, func() {
			r.metrics.KeyRotation(payment.OperationCancel)
			r.logger(ctx).WarnContext(ctx, "cancel moved to a new idempotency key", slog.String("why", note))
		})
		return nil
	})
}

// recordRefund commits the gateway's new balance, the cancel's result and
// the job's completion together.
func (w *CancelWorker) recordRefund(ctx context.Context, job *river.Job[paymentjob.CancelArgs], gp *gateway.Payment) error {
	r := w.r
	return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel) error {
		p.ApplyCancelResult(c, gp.BalanceAmount, lastTransactionKey(gp), r.now())
		return nil
	})
}

// recordRefusal commits a definite refusal of the cancel: the payment keeps
// what the gateway holds.
func (w *CancelWorker) recordRefusal(ctx context.Context, job *river.Job[paymentjob.CancelArgs], code, message string) error {
	r := w.r
	return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel) error {
		p.ApplyCancelRefusal(c, code, message, r.now())
		if c.Kind == payment.CancelCompensation {
			// Money we must give back and could not: an operator has to act.
			p.Status = payment.StatusUnknown
			r.logger(ctx).ErrorContext(ctx, "compensating cancel refused by the gateway", slog.String("code", code))
		}
		return nil
	})
}

// retryOrUnknown hands a transient answer back to River, or with the budget
// spent records the cancel and the payment as unknown for the reconciler.
func (w *CancelWorker) retryOrUnknown(ctx context.Context, job *river.Job[paymentjob.CancelArgs], res gateway.Result) error {
	r := w.r
	if job.Attempt < job.MaxAttempts {
		r.metrics.Retry(payment.OperationCancel)
		return transientError(res)
	}
	return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel) error {
		p.Status = payment.StatusUnknown
		c.Status = payment.CancelUnknown
		c.FailureCode, c.FailureMessage = unknownReason(res)
		r.logger(ctx).ErrorContext(ctx, "cancel outcome unknown after retry budget; reconciler will ask the gateway",
			slog.String("operation", "cancel"), slog.String("last_code", res.Code))
		return nil
	})
}

// record takes the payment's and the cancel's row locks, in that order (the
// order every writer uses), and if the cancel is still pending applies fn and
// saves both; the job completes in the same transaction either way.
func (w *CancelWorker) record(ctx context.Context, job *river.Job[paymentjob.CancelArgs], fn func(context.Context, pgx.Tx, *payment.Payment, *payment.Cancel) error) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		from := p.Status
		c, err := r.store.CancelForUpdate(ctx, tx, job.Args.CancelID)
		if err != nil {
			return err
		}
		if c.Status == payment.CancelPending {
			if err := fn(ctx, tx, &p, &c); err != nil {
				return err
			}
			if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
				return err
			}
			if _, err := r.store.SaveCancel(ctx, tx, c); err != nil {
				return err
			}
			r.outcomeOnCommit(ctx, from, p.Status)
		}
		return completeTx(ctx, tx, job)
	})
}
