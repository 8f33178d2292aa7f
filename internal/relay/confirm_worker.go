package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// ConfirmWorker confirms a payment with the gateway under the payment's
// confirm Idempotency-Key, and records the outcome with the job's completion.
type ConfirmWorker struct {
	worker[paymentjob.ConfirmArgs]
}

// Work calls the gateway's confirm and settles the payment from its answer.
func (w *ConfirmWorker) Work(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs]) error {
	r := w.r
	ctx = r.withJob(ctx, job.JobRow, job.Args.PaymentID)
	p, err := r.store.Payment(ctx, r.pool, job.Args.PaymentID)
	if err != nil {
		if payment.ErrorOf(err).Kind == payment.KindNotFound {
			// The api writes the row and the job in one transaction, so this
			// is corruption, not a race: stop, and say so loudly.
			r.logger(ctx).ErrorContext(ctx, "confirm job for a payment that does not exist")
			return river.JobCancel(err)
		}
		return fmt.Errorf("error loading payment: %w", err)
	}
	if p.Status != payment.StatusConfirming && p.Status != payment.StatusUnknown {
		// Already settled (by an earlier run of this job whose completion was
		// lost, or by a lookup): nothing to ask the gateway.
		return nil
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationConfirm, IdempotencyKey: p.ConfirmIdempotencyKey,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	c, err := r.call(ctx, attempt, func(ctx context.Context) gateway.Result {
		return r.gateway.Confirm(ctx, gateway.ConfirmRequest{
			PaymentKey: p.PaymentKey, OrderID: p.OrderID, Amount: p.Amount,
		}, p.ConfirmIdempotencyKey)
	})
	if err != nil {
		return err
	}

	switch c.Class {
	case gateway.ClassSuccess:
		return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
			return r.applyApproval(ctx, tx, p, c.Payment)
		})
	case gateway.ClassUnclear:
		return w.lookUp(ctx, job, p, c)
	case gateway.ClassRefused:
		return w.refuse(ctx, job, payment.StatusFailed, c.Code, c.Message)
	case gateway.ClassSessionExpired:
		return w.refuse(ctx, job, payment.StatusExpired, c.Code, c.Message)
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, payment.OperationConfirm, c.Result)
	}
	// Transient. The same answer twice under one key may be the gateway
	// replaying a cached error rather than failing anew: ask what happened.
	stuck, err := r.sameAnswerAgain(ctx, c, p.ID, payment.OperationConfirm, p.ConfirmIdempotencyKey)
	if err != nil {
		return err
	}
	if stuck {
		return w.lookUp(ctx, job, p, c)
	}
	return w.retryOrUnknown(ctx, job, c.Result)
}

// lookUp takes the gateway's word after an answer that does not say what
// happened (ALREADY_PROCESSED_PAYMENT, a repeated 5xx and the like).
func (w *ConfirmWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], p payment.Payment, first callResult) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationLookup, JobID: job.ID, JobAttempt: job.Attempt,
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
		// The lookup itself failed: we still do not know, so ask again
		// later under the same key.
		return w.retryOrUnknown(ctx, job, first.Result)
	}
	switch lc.Payment.Status {
	case gateway.StatusDone, gateway.StatusCanceled, gateway.StatusPartialCanceled:
		return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
			return r.applyApproval(ctx, tx, p, lc.Payment)
		})
	case gateway.StatusAborted:
		return w.refuse(ctx, job, payment.StatusFailed, first.Code, first.Message)
	case gateway.StatusExpired:
		return w.refuse(ctx, job, payment.StatusExpired, first.Code, first.Message)
	}
	// READY / IN_PROGRESS: the gateway says it did not perform the confirm.
	// The key we used may be stuck on the answer that puzzled us (the
	// gateway replays a key's first answer), so this, and only this, earns
	// a new key; the lookup attempt says so in its note.
	if err := w.rotateKey(ctx, p, lc); err != nil {
		return err
	}
	return w.retryOrUnknown(ctx, job, first.Result)
}

// rotateKey moves the payment's confirm to a new Idempotency-Key, unless
// another run already did.
func (w *ConfirmWorker) rotateKey(ctx context.Context, seen payment.Payment, lookup callResult) error {
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
		note := fmt.Sprintf("gateway shows %s: confirm not performed; key %s replaced by %s",
			lookup.Payment.Status, seen.ConfirmIdempotencyKey, p.ConfirmIdempotencyKey)
		if err := r.store.AddAttemptNote(ctx, tx, lookup.AttemptID, note); err != nil {
			return err
		}
		r.onCommit(ctx, func() {
			r.metrics.KeyRotation(payment.OperationConfirm)
			r.logger(ctx).WarnContext(ctx, "confirm moved to a new idempotency key", slog.String("why", note))
		})
		return nil
	})
}

// record locks the payment and, if it is still waiting for this confirm,
// applies fn and completes the job, all in one transaction.
func (w *ConfirmWorker) record(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], fn func(context.Context, pgx.Tx, *payment.Payment) error) error {
	r := w.r
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p, err := r.store.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		if p.Status == payment.StatusConfirming || p.Status == payment.StatusUnknown {
			from := p.Status
			if err := fn(ctx, tx, &p); err != nil {
				return err
			}
			r.outcomeOnCommit(ctx, from, p.Status)
		}
		return completeTx(ctx, tx, job)
	})
}

// refuse records a definite refusal (failed or expired).
func (w *ConfirmWorker) refuse(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], status payment.Status, code, message string) error {
	return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
		return w.r.applyRefusal(ctx, tx, p, status, code, message)
	})
}

// retryOrUnknown hands a transient answer back to River for a retry under
// the same key, or, with the attempt budget spent, records the payment as
// unknown: never failed by guess, because the gateway may have charged.
func (w *ConfirmWorker) retryOrUnknown(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], res gateway.Result) error {
	r := w.r
	if job.Attempt < job.MaxAttempts {
		r.metrics.Retry(payment.OperationConfirm)
		return transientError(res)
	}
	return w.record(ctx, job, func(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
		if p.Status != payment.StatusConfirming {
			return nil
		}
		p.Status = payment.StatusUnknown
		p.FailureCode, p.FailureMessage = unknownReason(res)
		if _, err := r.store.SavePayment(ctx, tx, *p); err != nil {
			return err
		}
		r.logger(ctx).ErrorContext(ctx, "payment outcome unknown after retry budget; reconciler will ask the gateway",
			slog.String("operation", "confirm"), slog.String("last_code", res.Code))
		return nil
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
// fix, so the customer's payment is neither failed nor charged an attempt. op
// is the gateway operation that met the refusal.
func misconfigured(ctx context.Context, r *relay, op payment.Operation, res gateway.Result) error {
	r.metrics.Snooze(op, metrics.SnoozeMisconfigured)
	r.logger(ctx).ErrorContext(ctx, "gateway rejected our credentials or request; check TOSS_SECRET_KEY and TOSS_API_BASE_URL",
		slog.String("operation", string(op)), slog.String("code", res.Code), slog.Int("http_status", res.HTTPStatus))
	return river.JobSnooze(r.schedule.Max)
}

func completeTx[T river.JobArgs](ctx context.Context, tx pgx.Tx, job *river.Job[T]) error {
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("error completing job: %w", err)
	}
	return nil
}
