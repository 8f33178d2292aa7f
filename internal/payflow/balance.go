package payflow

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// refundClockSkew is how far before our first request a refund in the
// gateway's list may be dated and still be taken for ours: the gateway's
// clock may run behind ours. Wider only ever makes "not performed" harder
// to prove, never easier (docs/design.md, "A balance we cannot explain").
const refundClockSkew = time.Minute

// UnexplainedBalance settles a pending cancel whose lookup showed a gateway
// balance that is neither ours nor what the cancel leaves (see
// unexplained). It reports whether the cancel is still pending afterwards,
// to be sent again (under its new key) by its job.
func (f *Flow) UnexplainedBalance(ctx context.Context, tx pgx.Tx, paymentID, cancelID string, r payment.Record, lookupAttempt int64) (Change, bool, error) {
	var (
		out     unexplainedOutcome
		pending bool
	)
	ch, err := f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		var err error
		out, err = f.unexplained(ctx, tx, p, c, r)
		if err == nil && !out.changed {
			return errSkip
		}
		pending = c.Status == payment.CancelPending
		return err
	})
	if err == errSkip {
		return Change{From: ch.From, To: ch.From}, true, nil
	}
	if err != nil || !ch.Applied {
		return ch, false, err
	}
	ch.Note, ch.KeyRotated = out.note, out.rotated
	return ch, pending, f.store.AddAttemptNote(ctx, tx, lookupAttempt, out.note)
}

// unexplainedOutcome is what unexplained did.
type unexplainedOutcome struct {
	changed bool
	// rotated: the cancel moved to a new key (it is sent again against the
	// gateway's balance, a different request).
	rotated bool
	// resend: a cancel in unknown went back to pending and needs its job.
	resend bool
	note   string
}

// unexplained applies the unexplained-balance rule to a cancel (pending or
// unknown) and its payment, both locked by the caller, who saves them: the
// gateway's balance is neither ours nor what the cancel leaves, so "our
// cancel and someone else's refund" and "someone else's refund only" look
// alike from the balance. The gateway's list of refunds is matched against
// the requests sent for the cancel (payment.Cancel.MatchRefund):
//
//   - proven performed: the cancel is done, the payment takes the gateway's
//     balance;
//   - proven not performed: the payment takes the gateway's balance and the
//     cancel is sent against it under a new key at once (a request with
//     another balance is another request, and the refusal that led here was
//     definite), or, if it no longer fits that balance, fails with its own
//     code (payment.Cancel.Misfit), never sent;
//   - neither: cancel and payment go to unknown for a person, with the
//     reason; never a resend on a guess.
func (f *Flow) unexplained(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, r payment.Record) (unexplainedOutcome, error) {
	balance := r.Approval.BalanceAmount
	sent, known, err := f.cancelHistory(ctx, tx, p.ID, c.ID)
	if err != nil {
		return unexplainedOutcome{}, err
	}
	m := c.MatchRefund(r.Approval.TotalAmount, balance, r.Refunds, known, sent, refundClockSkew)
	head := fmt.Sprintf("gateway balance %d is neither ours (%d) nor what cancel %s leaves (%d): %s",
		balance, p.BalanceAmount, c.ID, c.BalanceAfter(p.BalanceAmount), m.Reason)
	switch m.Verdict {
	case payment.RefundPerformed:
		p.ApplyMatchedRefund(c, m.Refund, balance, f.now())
		return unexplainedOutcome{changed: true, note: head + "; recorded done"}, nil
	case payment.RefundNotPerformed:
		if code, msg := c.Misfit(balance); code != "" {
			p.FailCancelForBalance(c, balance, code, msg, f.now())
			return unexplainedOutcome{changed: true, note: fmt.Sprintf("%s; not performed, and it no longer fits: %s (%s), never sent", head, msg, code)}, nil
		}
		p.AdoptBalance(balance)
		var old, next string
		resend := c.Status == payment.CancelUnknown
		if resend {
			old, next = p.ResendCancel(c, true)
		} else {
			old, next = c.RotateKey()
		}
		return unexplainedOutcome{changed: true, rotated: true, resend: resend, note: fmt.Sprintf(
			"%s; not performed: adopted balance %d, cancel key %s replaced by %s (a request with another balance is another request)",
			head, balance, old, next)}, nil
	}
	if c.Status == payment.CancelUnknown && c.FailureCode == payment.CodeUnexplainedBalance {
		// Already with a person for this reason: nothing new to record.
		return unexplainedOutcome{}, nil
	}
	p.GiveUpCancel(c, payment.CodeUnexplainedBalance, m.Reason+"; an operator settles it (settle-cancel) after checking the gateway")
	return unexplainedOutcome{changed: true, note: head + "; cannot tell, cancel and payment left unknown for a person"}, nil
}

// cancelHistory returns the requests sent for a cancel, as MatchRefund
// reads them, and the transaction keys of the payment's other cancels
// recorded done. A request the client refused to build (no HTTP status, read
// as misconfigured or refused) never reached the gateway and is left out.
func (f *Flow) cancelHistory(ctx context.Context, tx pgx.Tx, paymentID, cancelID string) ([]payment.SentCancel, []string, error) {
	attempts, err := f.store.Attempts(ctx, tx, paymentID)
	if err != nil {
		return nil, nil, err
	}
	var sent []payment.SentCancel
	for _, a := range attempts {
		if a.Operation != payment.OperationCancel || a.CancelID != cancelID {
			continue
		}
		if a.FinishedAt != nil && a.HTTPStatus == 0 && (a.Classification == "misconfigured" || a.Classification == "refused") {
			continue
		}
		sent = append(sent, payment.SentCancel{SentAt: a.RequestedAt, Refundable: a.RefundableAmount})
	}
	cancels, err := f.store.Cancels(ctx, tx, paymentID)
	if err != nil {
		return nil, nil, err
	}
	var known []string
	for _, c := range cancels {
		if c.ID != cancelID && c.Status == payment.CancelDone && c.TransactionKey != "" {
			known = append(known, c.TransactionKey)
		}
	}
	return sent, known, nil
}

// RecordCancelMisfit fails a pending cancel that no longer fits our record of
// the gateway's balance (payment.Cancel.Misfit) without sending it, or that
// a gateway client refused to build for its amounts: the payment stands
// where that balance puts it.
func (f *Flow) RecordCancelMisfit(ctx context.Context, tx pgx.Tx, paymentID, cancelID string) (Change, error) {
	return f.withPendingCancel(ctx, tx, paymentID, cancelID, func(p *payment.Payment, c *payment.Cancel) error {
		code, msg := c.Misfit(p.BalanceAmount)
		if code == "" {
			// The client refused what the domain lets through: the client's
			// rule is the stricter, and nothing was sent.
			code, msg = payment.CodeCancelExceedsBalanceNow, fmt.Sprintf("the gateway client refused to send a cancel of %d against the balance %d", c.Amount, p.BalanceAmount)
		}
		p.FailCancelForBalance(c, p.BalanceAmount, code, msg, f.now())
		return nil
	})
}
