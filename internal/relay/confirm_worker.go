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
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// ConfirmWorker confirms a payment with the gateway under the payment's
// confirm Idempotency-Key, and records the outcome with the job's completion.
type ConfirmWorker struct {
	worker[paymentjob.ConfirmArgs]
}

// Work calls the gateway's confirm and settles the payment from its answer.
func (w *ConfirmWorker) Work(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs]) (err error) {
	r := w.r
	ctx = r.withJob(ctx, job.JobRow, job.Args.PaymentID)
	ctx, end := r.withRun(ctx)
	defer end(&err)
	// The payment and, for the key rule, the requests already sent under
	// its confirm key, in one read: a first attempt finds none, but a job
	// the reconciler enqueued again, or one an operator retried, may not.
	p, sent, err := r.store.PaymentForConfirm(ctx, r.pool, job.Args.PaymentID)
	if err != nil {
		if payment.ErrorOf(err).Kind == payment.KindNotFound {
			// The api writes the row and the job in one transaction, so this
			// is corruption, not a race: stop, and say so loudly.
			r.logger(ctx).ErrorContext(ctx, "confirm job for a payment that does not exist")
			return river.JobCancel(err)
		}
		return fmt.Errorf("error loading payment: %w", err)
	}
	if !p.ConfirmPending() {
		// Already settled (by an earlier run of this job whose completion was
		// lost, or by a lookup): nothing to ask the gateway.
		return nil
	}

	g, err := r.gatewayFor(ctx, p, payment.OperationConfirm)
	if err != nil {
		return err
	}

	// The key rule: a key the gateway keeps answering identically is not
	// called again; once it is certainly done with it, a lookup decides.
	if stuck, wait := r.stuckKey(g, sent); stuck {
		if wait > 0 {
			return r.snoozeForQuiet(payment.OperationConfirm, wait)
		}
		return w.lookUp(ctx, job, g, p, nil, true)
	}
	// Past the gateway's key retention (a confirm the reconciler put back
	// days later) the key would not replay: a Toss confirm under it would
	// meet a fresh NOT_FOUND_PAYMENT_SESSION and be read as expired even if
	// the first request charged. The gateway's record decides first.
	if forgotten, wait := r.forgottenKey(g, sent); forgotten {
		if wait > 0 {
			return r.snoozeForQuiet(payment.OperationConfirm, wait)
		}
		return w.lookUp(ctx, job, g, p, nil, true)
	}

	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationConfirm, IdempotencyKey: p.ConfirmIdempotencyKey,
		JobID: job.ID, JobAttempt: job.Attempt,
	}
	c, err := r.call(ctx, g, attempt, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Confirm(ctx, gateway.ConfirmRequest{
			PaymentKey: p.PaymentKey, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency,
			PaymentToken: p.PaymentToken,
		}, p.ConfirmIdempotencyKey)
	})
	if err != nil {
		return err
	}
	if acct := issuedAccount(c.Payment); acct != nil {
		// A virtual account: the confirm did all it can, and the payment
		// waits for the customer's deposit without spending attempts.
		return w.issued(ctx, job, *acct, c.Payment.Secret)
	}

	switch c.Class {
	case gateway.ClassSuccess:
		return w.approve(ctx, job, c.Payment)
	case gateway.ClassUnclear:
		return w.lookUp(ctx, job, g, p, &c.Result, false)
	case gateway.ClassPending:
		return w.pending(ctx, job, p, c.Result)
	case gateway.ClassRefused:
		return w.refuse(ctx, job, payment.StatusFailed, refusalCode(c.Result), refusalMessage(c.Result))
	case gateway.ClassSessionExpired:
		return w.refuse(ctx, job, payment.StatusExpired, c.Code, c.Message)
	case gateway.ClassMisconfigured:
		return misconfigured(ctx, r, payment.OperationConfirm, c.Result)
	}
	return w.retryOrUnknown(ctx, job, c.Result)
}

// lookUp takes the gateway's word after an answer that does not say what
// happened (first), or for a key the key rule found stuck (first is nil and
// mayRotate true): an approval is recorded, an abort or expiry ends the
// payment, and "not confirmed" earns a new key only on the key rule's say.
func (w *ConfirmWorker) lookUp(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], g *gatewayEntry, p payment.Payment, first *gateway.Result, mayRotate bool) error {
	r := w.r
	attempt := payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationLookup, JobID: job.ID, JobAttempt: job.Attempt,
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
		// The lookup itself failed: we still do not know, so ask again
		// later under the same key.
		return w.retryOrUnknown(ctx, job, last)
	}
	if acct := issuedAccount(lc.Payment); acct != nil {
		return w.issued(ctx, job, *acct, lc.Payment.Secret)
	}
	rec := recordOf(lc.Payment)
	code, message := last.Code, last.Message
	if code == "" {
		code, message = lc.Payment.Status, "the gateway's record says "+lc.Payment.Status
	}
	switch {
	case rec.Approved:
		return w.approve(ctx, job, lc.Payment)
	case rec.Aborted:
		return w.refuse(ctx, job, payment.StatusFailed, code, message)
	case rec.Expired:
		return w.refuse(ctx, job, payment.StatusExpired, code, message)
	}
	if !mayRotate {
		// READY / IN_PROGRESS after an unclear answer: ask again under the
		// same key; if it keeps answering the same, the key rule takes over.
		return w.retryOrUnknown(ctx, job, last)
	}
	why := fmt.Sprintf("gateway shows %s: confirm not performed, and the key rule found the key done (or past the gateway's key retention)", lc.Payment.Status)
	err = r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
		ch, err := flow.RotateConfirmKey(ctx, tx, p.ID, p.ConfirmIdempotencyKey, lc.AttemptID, why)
		r.changeOnCommit(ctx, payment.OperationConfirm, ch)
		return err
	})
	if err != nil {
		return err
	}
	// The next run calls under the new key; a snooze spends no attempt.
	return river.JobSnooze(r.schedule.Initial)
}

// pending handles a payment the gateway shows the customer has not finished
// paying for (ClassPending: PortOne's READY, PAY_PENDING,
// VIRTUAL_ACCOUNT_ISSUED). Not started past the open deadline: expired, as
// a Toss session that lapsed; the customer walked away. Otherwise ask again
// with backoff, and with the budget spent it is unknown (money may still
// arrive: a deposit, a PG's late approval), never failed by guess.
func (w *ConfirmWorker) pending(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], p payment.Payment, res gateway.Result) error {
	r := w.r
	if res.Payment != nil && res.Payment.Phase == gateway.PhaseOpen && p.ConfirmRequestedAt != nil &&
		r.now().Sub(*p.ConfirmRequestedAt) > r.openDeadline {
		msg := fmt.Sprintf("the gateway still shows %s %s after the confirm was requested: the customer did not finish paying",
			res.Payment.Status, r.openDeadline)
		return w.refuse(ctx, job, payment.StatusExpired, res.Payment.Status, msg)
	}
	return w.retryOrUnknown(ctx, job, res)
}

// refusalCode is the code a refusal is recorded under: the gateway's error
// code, or for a refusal read from a record (PortOne's FAILED) its status.
func refusalCode(res gateway.Result) string {
	if res.Code == "" && res.Payment != nil {
		return res.Payment.Status
	}
	return res.Code
}

// refusalMessage is refusalCode's message.
func refusalMessage(res gateway.Result) string {
	if res.Code == "" && res.Payment != nil {
		if res.Payment.FailureReason != "" {
			return res.Payment.FailureReason
		}
		return "the gateway's record says " + res.Payment.Status
	}
	return res.Message
}

// approve records the gateway's approval with the job's completion.
func (w *ConfirmWorker) approve(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], gp *gateway.Payment) error {
	return complete(ctx, w.r, job, payment.OperationConfirm, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordApproval(ctx, tx, job.Args.PaymentID, approvalOf(gp))
	})
}

// issued records the virtual account the confirm issued with the job's
// completion: the payment waits for its deposit (docs/design.md section 19).
func (w *ConfirmWorker) issued(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], acct payment.VirtualAccount, secret string) error {
	return complete(ctx, w.r, job, payment.OperationConfirm, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordAccountIssued(ctx, tx, job.Args.PaymentID, acct, secret)
	})
}

// refuse records a definite refusal (failed or expired).
func (w *ConfirmWorker) refuse(ctx context.Context, job *river.Job[paymentjob.ConfirmArgs], status payment.Status, code, message string) error {
	return complete(ctx, w.r, job, payment.OperationConfirm, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.RecordRefusal(ctx, tx, job.Args.PaymentID, status, code, message)
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
	code, msg := unknownReason(res)
	return complete(ctx, r, job, payment.OperationConfirm, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error) {
		return flow.GiveUpConfirm(ctx, tx, job.Args.PaymentID, code, msg)
	})
}

func unknownReason(res gateway.Result) (string, string) {
	code := res.Code
	if code == "" && res.Payment != nil {
		// Pending until the budget ran out: the gateway's last word.
		code = res.Payment.Status
	}
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
	if res.Payment != nil {
		return fmt.Errorf("gateway shows the payment %s: not paid yet", res.Payment.Status)
	}
	return fmt.Errorf("transient gateway answer: HTTP %d %s: %s", res.HTTPStatus, res.Code, res.Message)
}

// misconfigured snoozes the job: our credentials are wrong, which is ours to
// fix, so the customer's payment is neither failed nor charged an attempt. op
// is the gateway operation that met the refusal.
func misconfigured(ctx context.Context, r *relay, op payment.Operation, res gateway.Result) error {
	r.metrics.Snooze(op, metrics.SnoozeMisconfigured)
	r.logger(ctx).ErrorContext(ctx, "gateway rejected our credentials or request; check the gateway's secret and base URL (TOSS_SECRET_KEY, PORTONE_API_SECRET, ...)",
		slog.String("operation", string(op)), slog.String("code", res.Code), slog.Int("http_status", res.HTTPStatus))
	return river.JobSnooze(r.schedule.Max)
}

func completeTx[T river.JobArgs](ctx context.Context, tx pgx.Tx, job *river.Job[T]) error {
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("error completing job: %w", err)
	}
	return nil
}
