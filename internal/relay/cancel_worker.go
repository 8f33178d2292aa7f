package relay

import (
	"context"
	"errors"
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

	// A cancel that no longer fits our record of the gateway's balance (a
	// refund made elsewhere was adopted) is never sent: it fails through
	// the domain with its own code.
	if p.AwaitsDeposit() {
		return w.closeAccount(ctx, job, g, p, c)
	}

	if code, _ := c.Misfit(p.BalanceAmount); code != "" {
		return w.recordMisfit(ctx, job)
	}

	if stuck, wait := r.stuckKey(g, sent); stuck {
		if wait > 0 {
			return r.snoozeForQuiet(payment.OperationCancel, wait)
		}
		return w.lookUp(ctx, job, g, p, c, nil, true)
	}
	// Past the gateway's key retention the key no longer replays whatever
	// the gateway did with it: look the payment up before sending under it.
	if forgotten, wait := r.forgottenKey(g, sent); forgotten {
		if wait > 0 {
			return r.snoozeForQuiet(payment.OperationCancel, wait)
		}
		return w.lookUp(ctx, job, g, p, c, nil, true)
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationCancel,
		IdempotencyKey: c.IdempotencyKey, JobID: job.ID, JobAttempt: job.Attempt,
		RefundableAmount: p.BalanceAmount,
	}
	req := gateway.CancelRequest{Reason: c.Reason, Amount: c.Amount, RefundableAmount: p.BalanceAmount,
		RefundAccount: c.RefundAccount}
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
		if errors.Is(cr.Err, gateway.ErrAmountsRefused) {
			// Never sent, for the payment's amounts: the domain fails it.
			return w.recordMisfit(ctx, job)
		}
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
		// Neither: "our cancel and someone else's refund" and "someone
		// else's refund only" look alike from the balance. The gateway's
		// list of refunds decides, or a person; never a resend on a guess
		// (docs/design.md, "A balance we cannot explain").
		return w.unexplained(ctx, job, lc)
	}
	if !mayRotate {
		// The gateway holds what we think it holds: our cancel did not
		// happen (yet). Ask again under the same key.
		return w.retryOrUnknown(ctx, job, last)
	}
	why := fmt.Sprintf("gateway balance %d shows no refund for this cancel, and the key rule found the key done (or past the gateway's key retention)", lc.Payment.BalanceAmount)
	err = r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
		ch, err := flow.RotateCancelKey(ctx, tx, p.ID, c.ID, c.IdempotencyKey, lc.AttemptID, why)
		r.changeOnCommit(ctx, payment.OperationCancel, ch)
		return err
	})
	if err != nil {
		return err
	}
	return river.JobSnooze(r.schedule.Initial)
}

// unexplained settles the cancel from the gateway's list of refunds (see
// payflow.UnexplainedBalance): done, failed for a balance it no longer fits
// or unknown for a person complete the job; sent again, under a new key at
// once, the job runs again after a snooze, which spends no attempt.
func (w *CancelWorker) unexplained(ctx context.Context, job *river.Job[paymentjob.CancelArgs], lc callResult) error {
	r := w.r
	pending := false
	err := r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
		ch, still, err := flow.UnexplainedBalance(ctx, tx, job.Args.PaymentID, job.Args.CancelID, recordOf(lc.Payment), lc.AttemptID)
		if err != nil {
			return err
		}
		r.changeOnCommit(ctx, payment.OperationCancel, ch)
		pending = still
		if still {
			return nil
		}
		return completeTx(ctx, tx, job)
	})
	if err != nil || !pending {
		return err
	}
	return river.JobSnooze(r.schedule.Initial)
}

// recordMisfit fails, without sending it, a cancel that no longer fits the
// gateway's balance as we hold it.
func (w *CancelWorker) recordMisfit(ctx context.Context, job *river.Job[paymentjob.CancelArgs]) error {
	return complete(ctx, w.r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordCancelMisfit(ctx, tx, job.Args.PaymentID, job.Args.CancelID)
	})
}

// recordRefund commits the gateway's new balance, the cancel's result and
// the job's completion together.
func (w *CancelWorker) recordRefund(ctx context.Context, job *river.Job[paymentjob.CancelArgs], gp *gateway.Payment) error {
	return complete(ctx, w.r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordRefund(ctx, tx, job.Args.PaymentID, job.Args.CancelID, gp.BalanceAmount, lastTransactionKey(gp))
	})
}

// recordRefusal commits a definite refusal of the cancel.
func (w *CancelWorker) recordRefusal(ctx context.Context, job *river.Job[paymentjob.CancelArgs], code, message string) error {
	return complete(ctx, w.r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordCancelRefusal(ctx, tx, job.Args.PaymentID, job.Args.CancelID, code, message)
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
	return complete(ctx, r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.GiveUpCancel(ctx, tx, job.Args.PaymentID, job.Args.CancelID, code, msg)
	})
}

// closeAccount is the shop's cancel of a payment waiting for its deposit:
// the gateway closes the virtual account (Toss cancels the
// WAITING_FOR_DEPOSIT payment, PortOne closes the account), which refunds
// nothing. Whatever it answers short of "try again", a lookup follows, and
// the close's answer with the gateway's record settles the payment: a
// deposit that came first is recorded, never lost to the close
// (payflow.RecordAccountClose).
func (w *CancelWorker) closeAccount(ctx context.Context, job *river.Job[paymentjob.CancelArgs], g *gatewayEntry, p payment.Payment, c payment.Cancel) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationCancel,
		IdempotencyKey: c.IdempotencyKey, JobID: job.ID, JobAttempt: job.Attempt,
	}
	req := gateway.CancelRequest{Reason: c.Reason, Unpaid: true}
	cr, err := r.call(ctx, g, attempt, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Cancel(ctx, p.PaymentKey, req, c.IdempotencyKey)
	})
	if err != nil {
		return err
	}
	switch cr.Class {
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, payment.OperationCancel, cr.Result)
	case gateway.ClassTransient:
		return w.retryOrUnknown(ctx, job, cr.Result)
	}
	closed := cr.HTTPStatus >= 200 && cr.HTTPStatus < 300
	look := payment.Attempt{PaymentID: p.ID, CancelID: c.ID, Operation: payment.OperationLookup, JobID: job.ID, JobAttempt: job.Attempt}
	lc, err := r.call(ctx, g, look, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Lookup(ctx, p.PaymentKey)
	})
	if err != nil {
		return err
	}
	if lc.Class == gateway.ClassMisconfigured {
		return misconfigured(ctx, r, payment.OperationLookup, lc.Result)
	}
	if lc.Payment == nil {
		// Without the record a deposit could be missed: ask again.
		return w.retryOrUnknown(ctx, job, lc.Result)
	}
	return complete(ctx, r, job, payment.OperationCancel, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordAccountClose(ctx, tx, p.ID, c.ID, closed, recordOf(lc.Payment))
	})
}
