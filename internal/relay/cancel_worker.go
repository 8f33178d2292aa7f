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

// CancelWorker carries out one cancel request: gateway first, then our rows,
// in one job. If the row write fails the job retries under the same
// Idempotency-Key, so the gateway replays its answer instead of refunding
// twice, and "refunded but we still say paid" does not survive a retry.
type CancelWorker struct {
	river.WorkerDefaults[paymentjob.CancelArgs]
	r *relay
}

// NextRetry spaces the attempts after transient answers by the relay's
// schedule.
func (w *CancelWorker) NextRetry(job *river.Job[paymentjob.CancelArgs]) time.Time {
	return w.r.now().Add(w.r.schedule.Delay(job.Attempt))
}

// Work calls the gateway's cancel and records the refund.
func (w *CancelWorker) Work(ctx context.Context, job *river.Job[paymentjob.CancelArgs]) error {
	r := w.r
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
	res, class, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Cancel(ctx, p.PaymentKey, gateway.CancelRequest{Reason: c.Reason, Amount: c.Amount}, c.IdempotencyKey)
	})
	if err != nil {
		return err
	}

	switch class {
	case gateway.ClassSuccess:
		return w.recordRefund(ctx, job, res.Payment)
	case gateway.ClassUnclear:
		return w.lookUp(ctx, job, p, res)
	case gateway.ClassRefused, gateway.ClassSessionExpired:
		return w.recordRefusal(ctx, job, res.Code, res.Message)
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, p.ID, res)
	default:
		return w.retryOrUnknown(ctx, job, res)
	}
}

// lookUp decides from the gateway's record whether our cancel happened: the
// only cancel in flight for a payment is ours (one pending cancel per
// payment), so a balance below the one we recorded means it did.
func (w *CancelWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.CancelArgs], p payment.Payment, first gateway.Result) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: job.Args.CancelID, Operation: payment.OperationLookup,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	res, class, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Lookup(ctx, p.PaymentKey)
	})
	if err != nil {
		return err
	}
	if class == gateway.ClassMisconfigured {
		return misconfigured(ctx, r, p.ID, res)
	}
	if res.Payment == nil {
		return w.retryOrUnknown(ctx, job, first)
	}
	if res.Payment.BalanceAmount < p.BalanceAmount {
		return w.recordRefund(ctx, job, res.Payment)
	}
	// The gateway holds what we think it holds: our cancel did not happen.
	// Ask again under the same key; a definite refusal will end it.
	return w.retryOrUnknown(ctx, job, first)
}

// recordRefund commits the gateway's new balance, the cancel's result and
// the job's completion together.
func (w *CancelWorker) recordRefund(ctx context.Context, job *river.Job[paymentjob.CancelArgs], gp *gateway.Payment) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, c, settled, err := w.lock(ctx, tx, job)
		if err != nil || settled {
			return err
		}
		p.ApplyCancelResult(&c, gp.BalanceAmount, lastTransactionKey(gp), r.now())
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		if _, err := r.store.SaveCancel(ctx, tx, c); err != nil {
			return err
		}
		return completeTx(ctx, tx, job)
	})
}

// recordRefusal commits a definite refusal of the cancel: the payment keeps
// what the gateway holds.
func (w *CancelWorker) recordRefusal(ctx context.Context, job *river.Job[paymentjob.CancelArgs], code, message string) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, c, settled, err := w.lock(ctx, tx, job)
		if err != nil || settled {
			return err
		}
		p.ApplyCancelRefusal(&c, code, message, r.now())
		if c.Kind == payment.CancelCompensation {
			// Money we must give back and could not: an operator has to act.
			p.Status = payment.StatusUnknown
			r.log.ErrorContext(ctx, "compensating cancel refused by the gateway",
				slog.String("payment_id", p.ID), slog.String("code", code))
		}
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		if _, err := r.store.SaveCancel(ctx, tx, c); err != nil {
			return err
		}
		return completeTx(ctx, tx, job)
	})
}

// retryOrUnknown hands a transient answer back to River, or with the budget
// spent records the cancel and the payment as unknown for the reconciler.
func (w *CancelWorker) retryOrUnknown(ctx context.Context, job *river.Job[paymentjob.CancelArgs], res gateway.Result) error {
	if job.Attempt < job.MaxAttempts {
		return transientError(res)
	}
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, c, settled, err := w.lock(ctx, tx, job)
		if err != nil || settled {
			return err
		}
		p.Status = payment.StatusUnknown
		c.Status = payment.CancelUnknown
		c.FailureCode, c.FailureMessage = unknownReason(res)
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		if _, err := r.store.SaveCancel(ctx, tx, c); err != nil {
			return err
		}
		r.log.ErrorContext(ctx, "cancel outcome unknown after retry budget; reconciler will ask the gateway",
			slog.String("payment_id", p.ID), slog.String("cancel_id", c.ID), slog.Int("job_attempt", job.Attempt))
		return completeTx(ctx, tx, job)
	})
}

// lock takes the payment's and the cancel's row locks, in that order (the
// order every writer uses). settled reports that the cancel was already
// recorded, in which case the job has been completed in tx.
func (w *CancelWorker) lock(ctx context.Context, tx pgx.Tx, job *river.Job[paymentjob.CancelArgs]) (payment.Payment, payment.Cancel, bool, error) {
	r := w.r
	p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
	if err != nil {
		return p, payment.Cancel{}, false, err
	}
	c, err := r.store.CancelForUpdate(ctx, tx, job.Args.CancelID)
	if err != nil {
		return p, c, false, err
	}
	if c.Status != payment.CancelPending {
		return p, c, true, completeTx(ctx, tx, job)
	}
	return p, c, false, nil
}
