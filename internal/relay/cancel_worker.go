package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// CancelWorker carries out one cancel request: gateway first, then our rows,
// in one job. If the row write fails the job retries under the same
// Idempotency-Key, so the gateway replays its answer instead of refunding
// twice, and "refunded but we still say paid" does not survive a retry.
// Every cancel carries refundableAmount, the balance our row expects the
// gateway to hold, so even a second request for it under another key
// cannot refund twice.
type CancelWorker struct {
	worker[paymentjob.CancelArgs]
}

// Work calls the gateway's cancel and records the refund.
func (w *CancelWorker) Work(ctx context.Context, job *river.Job[paymentjob.CancelArgs]) (err error) {
	r := w.r
	ctx = r.withJob(ctx, job.JobRow, job.Args.PaymentID, slog.String("cancel_id", job.Args.CancelID))
	ctx, end := r.withRun(ctx)
	defer end(&err)
	// The cancel, its payment and, for the key rule, the requests already
	// sent under the cancel's key, in one read.
	c, p, sent, err := r.store.CancelForCall(ctx, r.pool, job.Args.CancelID)
	if err != nil {
		return fmt.Errorf("error loading cancel: %w", err)
	}
	if c.Status != payment.CancelPending {
		return nil
	}
	if p.ID != job.Args.PaymentID {
		return river.JobCancel(fmt.Errorf("cancel %s belongs to payment %s, not the job's %s", c.ID, p.ID, job.Args.PaymentID))
	}

	g, err := r.gatewayFor(ctx, p, payment.OperationCancel)
	if err != nil {
		return err
	}

	if stuck, wait := r.stuckKey(g, sent); stuck {
		if wait > 0 {
			return r.snoozeForQuiet(payment.OperationCancel, wait)
		}
		return w.lookUp(ctx, job, g, p, c, nil, true)
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationCancel,
		IdempotencyKey: c.IdempotencyKey, JobID: job.ID, JobAttempt: job.Attempt,
	}
	req := gateway.CancelRequest{Reason: c.Reason, Amount: c.Amount, RefundableAmount: p.BalanceAmount}
	cr, err := r.call(ctx, g, attempt, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Cancel(ctx, p.PaymentKey, req, c.IdempotencyKey)
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
	case gateway.ClassUnclear, gateway.ClassPending:
		// A cancel answered with a record of a payment not (yet) charged:
		// the answer contradicts ours, so only the record decides.
		return w.lookUp(ctx, job, g, p, c, &cr.Result, false)
	}
	return w.retryOrUnknown(ctx, job, cr.Result)
}

// lookUp decides from the gateway's record whether our cancel happened: the
// only cancel in flight for a payment is ours (one pending cancel per
// payment), so a balance equal to what it leaves means it did; any other
// balance than ours is adopted and the cancel sent against it. For a key the
// key rule found stuck (first nil, mayRotate) a record without the refund
// moves the cancel to a new key.
func (w *CancelWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.CancelArgs], g *gatewayEntry, p payment.Payment, c payment.Cancel, first *gateway.Result, mayRotate bool) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationLookup,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	lc, err := r.call(ctx, g, attempt, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Lookup(ctx, p.PaymentKey)
	})
	if err != nil {
		return err
	}
	if lc.Class == gateway.ClassMisconfigured {
		return misconfigured(ctx, r, payment.OperationLookup, lc.Result)
	}
	last := lc.Result
	if first != nil {
		last = *first
	}
	if lc.Payment == nil {
		return w.retryOrUnknown(ctx, job, last)
	}
	switch balance := lc.Payment.BalanceAmount; {
	case balance == c.BalanceAfter(p.BalanceAmount) && balance < p.BalanceAmount:
		// Only one cancel is with the gateway at a time, and it left the
		// balance this one would.
		return w.recordRefund(ctx, job, lc.Payment)
	case balance != p.BalanceAmount:
		// Neither: our record of the balance is wrong, and the gateway
		// refused our refundableAmount for it. Adopt the gateway's; the
		// refused key replays its refusal until the key rule moves on.
		err := r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			ch, err := r.flow.AdoptBalance(ctx, tx, p.ID, c.ID, balance, lc.AttemptID)
			r.changeOnCommit(ctx, payment.OperationCancel, ch)
			return err
		})
		if err != nil {
			return err
		}
		return w.retryOrUnknown(ctx, job, last)
	}
	if !mayRotate {
		// The gateway holds what we think it holds: our cancel did not
		// happen (yet). Ask again under the same key.
		return w.retryOrUnknown(ctx, job, last)
	}
	why := fmt.Sprintf("gateway balance %d shows no refund for this cancel, and the key rule found the key done", lc.Payment.BalanceAmount)
	err = r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		ch, err := r.flow.RotateCancelKey(ctx, tx, p.ID, c.ID, c.IdempotencyKey, lc.AttemptID, why)
		r.changeOnCommit(ctx, payment.OperationCancel, ch)
		return err
	})
	if err != nil {
		return err
	}
	return river.JobSnooze(r.schedule.Initial)
}

// recordRefund commits the gateway's new balance, the cancel's result and
// the job's completion together.
func (w *CancelWorker) recordRefund(ctx context.Context, job *river.Job[paymentjob.CancelArgs], gp *gateway.Payment) error {
	return complete(ctx, w.r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx) (payflow.Change, error) {
		return w.r.flow.RecordRefund(ctx, tx, job.Args.PaymentID, job.Args.CancelID, gp.BalanceAmount, lastTransactionKey(gp))
	})
}

// recordRefusal commits a definite refusal of the cancel.
func (w *CancelWorker) recordRefusal(ctx context.Context, job *river.Job[paymentjob.CancelArgs], code, message string) error {
	return complete(ctx, w.r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx) (payflow.Change, error) {
		return w.r.flow.RecordCancelRefusal(ctx, tx, job.Args.PaymentID, job.Args.CancelID, code, message)
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
	code, msg := unknownReason(res)
	return complete(ctx, r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx) (payflow.Change, error) {
		return r.flow.GiveUpCancel(ctx, tx, job.Args.PaymentID, job.Args.CancelID, code, msg)
	})
}
