package payflow

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Operator is who takes an action: the API key they authenticated with.
type Operator struct {
	KeyID   string
	KeyName string
}

// JobRetrier makes an outbox job available to run again now, on the
// caller's transaction. *river.Client[pgx.Tx] satisfies it.
type JobRetrier interface {
	JobRetryTx(ctx context.Context, tx pgx.Tx, id int64) (*rivertype.JobRow, error)
}

// The operator actions below each run on the caller's transaction and write
// their audit row in it, so the row exists exactly when the action's effect
// does. None sets a status from what the operator says: the gateway is only
// ever reached through the outbox, and a status only moves to what the
// gateway's record shows (Settle, in the relay's lookup worker).

// Lookup asks the gateway about a payment now: a lookup job whose outcome
// the relay writes on the returned audit row.
func (f *Flow) Lookup(ctx context.Context, tx pgx.Tx, op Operator, paymentID, reason string) (payment.OperatorAction, error) {
	return f.lookupAction(ctx, tx, op, paymentID, reason, payment.ActionLookup)
}

// Resolve settles a payment that waits on the gateway's word (unknown,
// confirming or canceling) from a fresh lookup of the gateway's record: the
// lookup insists on an answer newer than our row, and the relay writes what
// it found and where the payment landed on the returned audit row. Nothing
// the operator says decides the status.
func (f *Flow) Resolve(ctx context.Context, tx pgx.Tx, op Operator, paymentID, reason string) (payment.OperatorAction, error) {
	return f.lookupAction(ctx, tx, op, paymentID, reason, payment.ActionResolve)
}

func (f *Flow) lookupAction(ctx context.Context, tx pgx.Tx, op Operator, paymentID, reason string, action payment.Action) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	if p.PaymentKey == "" {
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"payment is %s and was never sent to the gateway: there is nothing to look up", p.Status)
	}
	resolve := action == payment.ActionResolve
	if resolve && !slices.Contains([]payment.Status{payment.StatusUnknown, payment.StatusConfirming, payment.StatusCanceling}, p.Status) {
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"payment is %s and waits on nothing: resolve is for unknown, confirming or canceling; a lookup still compares it with the gateway's record", p.Status)
	}
	a, err := f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, KeyID: op.KeyID, KeyName: op.KeyName, Action: action, Reason: reason,
		StatusBefore: p.Status, StatusAfter: p.Status,
		Detail: "lookup enqueued; the relay settles the payment from the gateway's record and notes here what it found",
	})
	if err != nil {
		return a, err
	}
	res, err := f.outbox.InsertTx(ctx, tx, paymentjob.LookupArgs{PaymentID: p.ID, ActionID: a.ID, Resolve: resolve}, nil)
	if err != nil {
		return a, fmt.Errorf("error enqueuing lookup job: %w", err)
	}
	a.JobID = res.Job.ID
	return a, f.store.SetOperatorActionJob(ctx, tx, a.ID, a.JobID)
}

// CompleteAction records on an operator action's audit row what its lookup
// found and the status it left: the relay calls it in the transaction that
// settles the payment.
func (f *Flow) CompleteAction(ctx context.Context, tx pgx.Tx, actionID int64, outcome string, status payment.Status) error {
	return f.store.CompleteOperatorAction(ctx, tx, actionID, outcome, status)
}

// Retry runs the job of a payment's pending work again now, under the same
// Idempotency-Key (the key lives on the payment or cancel row, not on the
// job): the confirm of a payment confirming or given up on (unknown, never
// approved), or the cancel of a payment canceling. A job waiting out its
// backoff runs now; a finished one (River discarded it, or the relay gave up)
// gets one more attempt; with no job at all a new one is enqueued.
func (f *Flow) Retry(ctx context.Context, tx pgx.Tx, op Operator, paymentID, reason string) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	if f.retrier == nil {
		return payment.OperatorAction{}, fmt.Errorf("payflow: Retry needs Config.Retrier")
	}
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	var (
		args     river.JobArgs
		cancelID string
		key      string
	)
	switch {
	case !p.CanRetry():
		// Nothing of it is due: the error below says so.
	case p.ConfirmPending():
		args, key = paymentjob.ConfirmArgs{PaymentID: p.ID}, p.ConfirmIdempotencyKey
	default: // canceling: its pending cancel, if it has one
		open, err := f.store.OpenCancels(ctx, tx, p.ID)
		if err != nil {
			return payment.OperatorAction{}, err
		}
		for _, c := range open {
			if c.Status == payment.CancelPending {
				args, cancelID, key = paymentjob.CancelArgs{PaymentID: p.ID, CancelID: c.ID}, c.ID, c.IdempotencyKey
			}
		}
	}
	if args == nil {
		hint := ""
		if p.Status == payment.StatusUnknown {
			hint = "; its cancel's outcome is unknown: a lookup (or resolve) sends it again once the gateway shows no refund"
		}
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"payment is %s: no confirm or cancel of it is due, so there is no job to retry%s", p.Status, hint)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return payment.OperatorAction{}, fmt.Errorf("error encoding %s args: %w", args.Kind(), err)
	}
	id, state, found, err := f.store.LatestJob(ctx, tx, args.Kind(), raw)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	var detail string
	switch {
	case found && state == string(rivertype.JobStateRunning):
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"its %s job %d is running now", args.Kind(), id)
	case found && state == string(rivertype.JobStateAvailable):
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"its %s job %d is already waiting for a relay to take it", args.Kind(), id)
	case found:
		if _, err := f.retrier.JobRetryTx(ctx, tx, id); err != nil {
			return payment.OperatorAction{}, fmt.Errorf("error retrying job %d: %w", id, err)
		}
		detail = fmt.Sprintf("%s job %d (was %s) runs again now under key %s", args.Kind(), id, state, key)
	default:
		res, err := f.outbox.InsertTx(ctx, tx, args, nil)
		if err != nil {
			return payment.OperatorAction{}, fmt.Errorf("error enqueuing %s job: %w", args.Kind(), err)
		}
		id = res.Job.ID
		detail = fmt.Sprintf("no %s job was left; job %d enqueued under key %s", args.Kind(), id, key)
	}
	return f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, CancelID: cancelID, KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionRetry,
		Reason: reason, StatusBefore: p.Status, StatusAfter: p.Status, JobID: id, Detail: detail,
	})
}

// ResendCancel sends a cancel the gateway refused (a compensation included)
// again under a new Idempotency-Key, through the outbox: the payment goes to
// canceling and the relay sends the cancel with our balance as its
// refundableAmount. cancelID "" picks the payment's newest refused cancel.
func (f *Flow) ResendCancel(ctx context.Context, tx pgx.Tx, op Operator, paymentID, cancelID, reason string) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	before := p.Status
	if cancelID == "" {
		cancels, err := f.store.Cancels(ctx, tx, p.ID)
		if err != nil {
			return payment.OperatorAction{}, err
		}
		for _, c := range cancels {
			if c.Status == payment.CancelFailed {
				cancelID = c.ID
			}
		}
		if cancelID == "" {
			return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
				"payment %s has no cancel the gateway refused", p.ID)
		}
	}
	c, err := f.store.CancelForUpdate(ctx, tx, cancelID)
	if err != nil || c.PaymentID != p.ID {
		// A cancel id from a URL or form that is not this payment's is as
		// good as none.
		return payment.OperatorAction{}, payment.Errorf(payment.KindNotFound, payment.CodeNotFound,
			"payment %s has no cancel %s", p.ID, cancelID)
	}
	refused := fmt.Sprintf("%s %s", c.FailureCode, c.FailureMessage)
	old, next, err := p.ResendFailedCancel(&c)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return payment.OperatorAction{}, err
	}
	if err := f.store.SaveCancel(ctx, tx, &c); err != nil {
		return payment.OperatorAction{}, err
	}
	res, err := f.outbox.InsertTx(ctx, tx, paymentjob.CancelArgs{PaymentID: p.ID, CancelID: c.ID}, nil)
	if err != nil {
		return payment.OperatorAction{}, fmt.Errorf("error enqueuing cancel job: %w", err)
	}
	return f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, CancelID: c.ID, KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionResendCancel,
		Reason: reason, StatusBefore: before, StatusAfter: p.Status, JobID: res.Job.ID,
		Detail: fmt.Sprintf("%s cancel %s (refused: %s) sent again under key %s (was %s) with refundableAmount %d",
			c.Kind, c.ID, refused, next, old, p.BalanceAmount),
	})
}

// RefundAccount sends a refund of deposited virtual-account money to the
// customer's refund account the operator names, through the outbox: the
// compensation of a deposit of another amount, held until someone names
// one, or a refund the gateway refused with the account it had (docs/design.md
// section 19). cancelID "" picks the payment's newest such cancel. The
// audit keeps the bank and the last four digits, never the number.
func (f *Flow) RefundAccount(ctx context.Context, tx pgx.Tx, op Operator, paymentID, cancelID, reason string, a payment.RefundAccount) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	p, err := f.store.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	before := p.Status
	sent, err := f.sendHeld(ctx, tx, &p, cancelID, a)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	return f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, CancelID: sent.cancel.ID, KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionRefundAccount,
		Reason: reason, StatusBefore: before, StatusAfter: p.Status, JobID: sent.jobID,
		Detail: fmt.Sprintf("%s cancel %s (was %s) sent to the refund account %s under key %s (was %s) with refundableAmount %d",
			sent.cancel.Kind, sent.cancel.ID, sent.was, a, sent.next, sent.old, p.BalanceAmount),
	})
}

// heldSent is what sendHeld did.
type heldSent struct {
	cancel    payment.Cancel
	was       string // the cancel's failure, before
	old, next string // its keys
	jobID     int64
}

// sendHeld sends the payment's refused or held refund of deposited money
// (cancelID, or the newest failed one) to the refund account a, on the
// payment already locked: saved and its cancel job enqueued.
func (f *Flow) sendHeld(ctx context.Context, tx pgx.Tx, p *payment.Payment, cancelID string, a payment.RefundAccount) (heldSent, error) {
	if cancelID == "" {
		cancels, err := f.store.Cancels(ctx, tx, p.ID)
		if err != nil {
			return heldSent{}, err
		}
		for _, c := range cancels {
			if c.Status == payment.CancelFailed {
				cancelID = c.ID
			}
		}
		if cancelID == "" {
			return heldSent{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
				"payment %s has no refund waiting for a refund account or refused by the gateway", p.ID)
		}
	}
	c, err := f.store.CancelForUpdate(ctx, tx, cancelID)
	if err != nil || c.PaymentID != p.ID {
		return heldSent{}, payment.Errorf(payment.KindNotFound, payment.CodeNotFound,
			"payment %s has no cancel %s", p.ID, cancelID)
	}
	out := heldSent{was: fmt.Sprintf("%s %s", c.FailureCode, c.FailureMessage)}
	if out.old, out.next, err = p.ResendFailedCancelTo(&c, a); err != nil {
		return heldSent{}, err
	}
	if err := f.savePayment(ctx, tx, p); err != nil {
		return heldSent{}, err
	}
	if err := f.store.SaveCancel(ctx, tx, &c); err != nil {
		return heldSent{}, err
	}
	res, err := f.outbox.InsertTx(ctx, tx, paymentjob.CancelArgs{PaymentID: p.ID, CancelID: c.ID}, nil)
	if err != nil {
		return heldSent{}, fmt.Errorf("error enqueuing cancel job: %w", err)
	}
	out.cancel, out.jobID = c, res.Job.ID
	return out, nil
}

// Acknowledge takes an unknown payment off the alert list with a reason,
// keeping its status (the refund was made by phone, say). Any later status
// change ends the acknowledgement.
func (f *Flow) Acknowledge(ctx context.Context, tx pgx.Tx, op Operator, paymentID, reason string) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	if err := p.Acknowledge(f.now()); err != nil {
		return payment.OperatorAction{}, err
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return payment.OperatorAction{}, err
	}
	return f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionAcknowledge,
		Reason: reason, StatusBefore: p.Status, StatusAfter: p.Status,
		Detail: "taken off the alert list; the status stays " + string(p.Status) + " until the gateway's record moves it",
	})
}

// retryableJobStates are the River states an operator may send a job back
// from: waiting out a backoff, snoozed, or finished without success.
var retryableJobStates = []string{
	string(rivertype.JobStateRetryable), string(rivertype.JobStateScheduled),
	string(rivertype.JobStateDiscarded), string(rivertype.JobStateCancelled),
}

// RetryJob runs one outbox job again now (River's JobRetry: a job that
// spent its attempts gets one more). Every worker checks the payment's state
// before it calls the gateway, so a job whose work is no longer due does
// nothing. A payment job locks its payment first, like every writer.
func (f *Flow) RetryJob(ctx context.Context, tx pgx.Tx, op Operator, jobID int64, reason string) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	if f.retrier == nil {
		return payment.OperatorAction{}, fmt.Errorf("payflow: RetryJob needs Config.Retrier")
	}
	job, err := f.store.JobByID(ctx, tx, jobID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	a := payment.OperatorAction{KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionRetryJob, Reason: reason, JobID: job.ID}
	if pid := job.PaymentID(); pid != "" {
		p, err := f.PaymentForUpdate(ctx, tx, pid)
		if err == nil {
			a.PaymentID, a.StatusBefore, a.StatusAfter = p.ID, p.Status, p.Status
		} else if payment.ErrorOf(err).Kind != payment.KindNotFound {
			return a, err
		}
	}
	// Read again under the payment's lock: a relay may have taken it.
	if job, err = f.store.JobByID(ctx, tx, jobID); err != nil {
		return a, err
	}
	if !slices.Contains(retryableJobStates, job.State) {
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"job %d is %s: only a retryable, scheduled, discarded or cancelled job is sent back by hand", job.ID, job.State)
	}
	if _, err := f.retrier.JobRetryTx(ctx, tx, job.ID); err != nil {
		return a, fmt.Errorf("error retrying job %d: %w", job.ID, err)
	}
	a.Detail = fmt.Sprintf("%s job %d (was %s, attempt %d of %d) runs again now", job.Kind, job.ID, job.State, job.Attempt, job.MaxAttempts)
	if e := job.LastError(); e != "" {
		a.Detail += "; its last error: " + e
	}
	return f.store.InsertOperatorAction(ctx, tx, a)
}

// AttentionPayments is store.AttentionPayments with the domain's reason for
// each payment.
func (f *Flow) AttentionPayments(ctx context.Context, db store.DBTX, statuses []payment.Status, q AttentionQuery) ([]Attention, error) {
	rows, err := f.store.AttentionPayments(ctx, db, statuses, q.Before, q.Limit, q.IncludeAcknowledged)
	if err != nil {
		return nil, err
	}
	out := make([]Attention, len(rows))
	for i, r := range rows {
		out[i] = Attention{Payment: r.Payment, Reason: payment.AttentionReason(r.Payment, r.LastCancel, r.LastAttempt)}
	}
	return out, nil
}

// AttentionQuery bounds an attention list.
type AttentionQuery struct {
	Before              time.Time
	Limit               int
	IncludeAcknowledged bool
}

// Attention is a payment that needs a person and why.
type Attention struct {
	Payment payment.Payment
	Reason  string
}
