package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// ConfirmWorker confirms a payment with the gateway under the payment's one
// confirm Idempotency-Key, and records the outcome with the job's completion.
type ConfirmWorker struct {
	river.WorkerDefaults[paymentjob.ConfirmArgs]
	r *relay
}

// NextRetry spaces the attempts after transient answers by the relay's
// schedule.
func (w *ConfirmWorker) NextRetry(job *river.Job[paymentjob.ConfirmArgs]) time.Time {
	return w.r.now().Add(w.r.schedule.Delay(job.Attempt))
}

// Work calls the gateway's confirm and settles the payment from its answer.
func (w *ConfirmWorker) Work(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs]) error {
	r := w.r
	p, err := r.store.Payment(ctx, r.pool, job.Args.PaymentID)
	if err != nil {
		if payment.ErrorOf(err).Kind == payment.KindNotFound {
			// The api writes the row and the job in one transaction, so this
			// is corruption, not a race: stop, and say so loudly.
			r.log.ErrorContext(ctx, "confirm job for a payment that does not exist", slog.String("payment_id", job.Args.PaymentID))
			return river.JobCancel(err)
		}
		return fmt.Errorf("error loading payment: %w", err)
	}
	if p.Status != payment.StatusConfirming && p.Status != payment.StatusUnknown {
		// Already settled (by an earlier run of this job whose completion was
		// lost, or by the reconciler): nothing to ask the gateway.
		return nil
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationConfirm, IdempotencyKey: p.ConfirmIdempotencyKey,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	res, class, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Confirm(ctx, gateway.ConfirmRequest{
			PaymentKey: p.PaymentKey, OrderID: p.OrderID, Amount: p.Amount,
		}, p.ConfirmIdempotencyKey)
	})
	if err != nil {
		return err
	}

	switch class {
	case gateway.ClassSuccess:
		return w.recordApproval(ctx, job, res.Payment)
	case gateway.ClassUnclear:
		return w.lookUp(ctx, job, p, res)
	case gateway.ClassRefused:
		return w.recordRefusal(ctx, job, payment.StatusFailed, res.Code, res.Message)
	case gateway.ClassSessionExpired:
		return w.recordRefusal(ctx, job, payment.StatusExpired, res.Code, res.Message)
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, p.ID, res)
	default:
		return w.retryOrUnknown(ctx, job, res)
	}
}

// lookUp takes the gateway's word after an answer that does not say what
// happened (ALREADY_PROCESSED_PAYMENT and the like).
func (w *ConfirmWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], p payment.Payment, first gateway.Result) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationLookup, JobID: job.ID, JobAttempt: job.Attempt,
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
		// The lookup itself failed: we still do not know, so ask again later
		// under the same key.
		return w.retryOrUnknown(ctx, job, first)
	}
	switch res.Payment.Status {
	case gateway.StatusDone, gateway.StatusCanceled, gateway.StatusPartialCanceled:
		return w.recordApproval(ctx, job, res.Payment)
	case gateway.StatusAborted:
		return w.recordRefusal(ctx, job, payment.StatusFailed, first.Code, first.Message)
	case gateway.StatusExpired:
		return w.recordRefusal(ctx, job, payment.StatusExpired, first.Code, first.Message)
	}
	// READY / IN_PROGRESS: the gateway says it did not perform the confirm.
	// The key we used may be stuck on the answer that puzzled us (the
	// gateway replays a key's first answer), so this, and only this, earns
	// a new key; the lookup that justified it is the attempt just before
	// the first call under the new key.
	if err := w.rotateKey(ctx, p); err != nil {
		return err
	}
	return w.retryOrUnknown(ctx, job, first)
}

// rotateKey moves the payment's confirm to a new Idempotency-Key, unless
// another run already did.
func (w *ConfirmWorker) rotateKey(ctx context.Context, seen payment.Payment) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, seen.ID)
		if err != nil {
			return err
		}
		if p.ConfirmIdempotencyKey != seen.ConfirmIdempotencyKey ||
			(p.Status != payment.StatusConfirming && p.Status != payment.StatusUnknown) {
			return nil
		}
		p.ConfirmKeyGeneration++
		p.ConfirmIdempotencyKey = payment.ConfirmIdempotencyKey(p.ID, p.ConfirmKeyGeneration)
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		r.log.WarnContext(ctx, "confirm moved to a new idempotency key: lookup showed the gateway did not perform it",
			slog.String("payment_id", p.ID), slog.String("old_key", seen.ConfirmIdempotencyKey),
			slog.String("new_key", p.ConfirmIdempotencyKey))
		return nil
	})
}

// recordApproval commits the approval (and any cancel it sets off) together
// with the job's completion.
func (w *ConfirmWorker) recordApproval(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], gp *gateway.Payment) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		if p.Status != payment.StatusConfirming && p.Status != payment.StatusUnknown {
			return completeTx(ctx, tx, job)
		}
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
		now := r.now()
		toRun := p.ApplyApproval(approvalOf(gp), waiting, r.newID(), now)
		switch {
		case gp.BalanceAmount == 0:
			// Refunded in full at the gateway already (seen on a lookup): the
			// gateway's word is the state and there is nothing left to give
			// back, neither to the customer nor by compensation.
			p.Status = payment.StatusCanceled
			toRun = voidWaiting(waiting, now)
		case gp.BalanceAmount < gp.TotalAmount && toRun == nil:
			p.Status = payment.StatusPartiallyCanceled
		}
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		if toRun != nil {
			if err := saveCancelAndEnqueue(ctx, r, tx, *toRun, waiting); err != nil {
				return err
			}
		}
		if p.Status == payment.StatusCanceling && toRun != nil && toRun.Kind == payment.CancelCompensation {
			r.log.WarnContext(ctx, "approval cannot be kept; compensating cancel enqueued",
				slog.String("payment_id", p.ID), slog.String("reason", toRun.Reason))
		}
		return completeTx(ctx, tx, job)
	})
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
func saveCancelAndEnqueue(ctx context.Context, r *relay, tx pgx.Tx, c payment.Cancel, waiting *payment.Cancel) error {
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

// recordRefusal commits a definite refusal (failed or expired).
func (w *ConfirmWorker) recordRefusal(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], status payment.Status, code, message string) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		if p.Status != payment.StatusConfirming && p.Status != payment.StatusUnknown {
			return completeTx(ctx, tx, job)
		}
		open, err := r.store.OpenCancels(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		now := r.now()
		p.ApplyRefusal(status, code, message, nil, now)
		if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
			return err
		}
		for _, c := range open {
			// Nothing was charged, so a cancel waiting for this confirm has
			// nothing to refund.
			if _, err := r.store.SaveCancel(ctx, tx, *voidWaiting(&c, now)); err != nil {
				return err
			}
		}
		return completeTx(ctx, tx, job)
	})
}

// retryOrUnknown hands a transient answer back to River for a retry under
// the same key, or, with the attempt budget spent, records the payment as
// unknown: never failed by guess, because the gateway may have charged.
func (w *ConfirmWorker) retryOrUnknown(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], res gateway.Result) error {
	if job.Attempt < job.MaxAttempts {
		return transientError(res)
	}
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		if p.Status == payment.StatusConfirming {
			p.Status = payment.StatusUnknown
			p.FailureCode, p.FailureMessage = unknownReason(res)
			if _, err := r.store.SavePayment(ctx, tx, p); err != nil {
				return err
			}
			r.log.ErrorContext(ctx, "payment outcome unknown after retry budget; reconciler will ask the gateway",
				slog.String("payment_id", p.ID), slog.String("operation", "confirm"),
				slog.Int("job_attempt", job.Attempt), slog.String("last_code", res.Code))
		}
		return completeTx(ctx, tx, job)
	})
}

func unknownReason(res gateway.Result) (string, string) {
	code := res.Code
	if code == "" {
		code = "no_answer"
	}
	msg := res.Message
	if res.Err != nil {
		msg = res.Err.Error()
	}
	return code, "retry budget spent; last answer: " + msg
}

func transientError(res gateway.Result) error {
	if res.Err != nil {
		return fmt.Errorf("transient gateway answer: %w", res.Err)
	}
	return fmt.Errorf("transient gateway answer: HTTP %d %s: %s", res.HTTPStatus, res.Code, res.Message)
}

// misconfigured snoozes the job: our credentials are wrong, which is ours to
// fix, so the customer's payment is neither failed nor charged an attempt.
func misconfigured(ctx context.Context, r *relay, paymentID string, res gateway.Result) error {
	r.log.ErrorContext(ctx, "gateway rejected our credentials; check TOSS_SECRET_KEY",
		slog.String("payment_id", paymentID), slog.String("code", res.Code), slog.Int("http_status", res.HTTPStatus))
	return river.JobSnooze(r.schedule.Max)
}

func completeTx[T river.JobArgs](ctx context.Context, tx pgx.Tx, job *river.Job[T]) error {
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("error completing job: %w", err)
	}
	return nil
}
