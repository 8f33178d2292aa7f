package payment

import (
	"fmt"
	"time"
)

// The codes a cancel fails with when the gateway's balance no longer allows
// it (docs/design.md, "A balance we cannot explain"), and the reason a cancel
// goes to unknown when the gateway's record cannot say whether it was
// performed. Clients and operators branch on them, so they never change.
const (
	// CodeNothingToRefund: the gateway holds nothing more to refund (a
	// refund made elsewhere took it all); the cancel was never sent.
	CodeNothingToRefund = "nothing_to_refund"
	// CodeCancelExceedsBalanceNow: the cancel asks for more than the
	// gateway still holds; the cancel was never sent.
	CodeCancelExceedsBalanceNow = "cancel_exceeds_balance"
	// CodeUnexplainedBalance: the gateway's balance is neither ours nor what
	// the cancel leaves, and its list of cancels cannot prove whether this
	// cancel was performed. A person decides (SettleUnknownCancel).
	CodeUnexplainedBalance = "unexplained_balance"
	// CodeAbandonedByOperator: an operator gave the cancel up after
	// checking the gateway (SettleUnknownCancel, CancelDecisionAbandon).
	CodeAbandonedByOperator = "abandoned_by_operator"
)

// Misfit reports why c cannot be sent against a gateway balance: the code
// and message it fails with, or "" when it fits. A cancel for the whole
// balance (Amount 0) fits any balance above zero.
func (c Cancel) Misfit(balance int64) (code, message string) {
	switch {
	case balance <= 0:
		return CodeNothingToRefund, "the gateway holds nothing more to refund"
	case c.Amount > balance:
		return CodeCancelExceedsBalanceNow, fmt.Sprintf("cancel amount %d exceeds the %d the gateway still holds", c.Amount, balance)
	}
	return "", ""
}

// FailCancelForBalance fails a cancel that no longer fits the gateway's
// balance (see Misfit), without sending it: the cancel is failed with the
// code, and the payment stands where the gateway's balance puts it
// (canceled with nothing left, partially canceled with part of it refunded,
// confirmed with none), a compensation included, since the gateway holds
// no more of the money it was to give back than that.
func (p *Payment) FailCancelForBalance(c *Cancel, balance int64, code, message string, now time.Time) {
	p.BalanceAmount = balance
	p.CanceledAmount = p.ApprovedAmount - balance
	switch {
	case balance == 0:
		p.Status = StatusCanceled
	case p.CanceledAmount > 0:
		p.Status = StatusPartiallyCanceled
	default:
		p.Status = StatusConfirmed
	}
	c.Status = CancelFailed
	c.FailureCode = code
	c.FailureMessage = message
	c.CompletedAt = &now
}

// GatewayRefund is one performed refund in the gateway's own list of a
// payment's cancels (Toss cancels[], PortOne cancellations[]), in its order.
type GatewayRefund struct {
	TransactionKey string
	Amount         int64
	// At is when the gateway performed it; zero when it did not say.
	At time.Time
	// Elsewhere says the gateway's record itself names another origin
	// than the merchant's API (PortOne's trigger CONSOLE, PORTONE_ADMIN,
	// CHARGEBACK): it cannot be one of our requests.
	Elsewhere bool
}

// SentCancel is one request sent under a cancel's keys, as its attempt row
// recorded it.
type SentCancel struct {
	SentAt time.Time
	// Refundable is the balance the request expected (its
	// refundableAmount); 0 when not recorded.
	Refundable int64
}

// RefundVerdict is what the gateway's list of cancels proves about one of
// ours.
type RefundVerdict string

// The verdicts.
const (
	// RefundNotPerformed: no refund in the list can be one of our requests.
	RefundNotPerformed RefundVerdict = "not_performed"
	// RefundPerformed: exactly one refund in the list fits one of our
	// requests (its amount, the balance it was made at, its time).
	RefundPerformed RefundVerdict = "performed"
	// RefundUndecided: the list cannot prove either.
	RefundUndecided RefundVerdict = "undecided"
)

// RefundMatch is MatchRefund's answer: the verdict, the refund it rests on
// when performed, and why, in words for the attempt row and the operator.
type RefundMatch struct {
	Verdict RefundVerdict
	Refund  GatewayRefund
	Reason  string
}

// MatchRefund decides from the gateway's list of refunds whether c was
// performed, when the gateway's balance is neither ours nor what c leaves
// (docs/design.md, "A balance we cannot explain"). total and balance are the
// gateway's charged amount and balance; known are the transaction keys of
// the payment's other cancels already recorded done; sent are the requests
// sent for c; skew widens each request's time window backwards for a
// gateway clock behind ours.
//
// A request of ours is performed only at the balance it carried (the
// gateway checks its refundableAmount), for its amount (or that balance for
// a whole cancel), at or after it was sent. So a refund fits a request when
// its amount, the balance the list puts before it and its time allow it,
// and it is neither one of our other cancels nor marked by the gateway as
// made elsewhere. No fitting refund proves c was not performed; exactly one
// proves it was; none sent for c proves it was not; more than one, or a
// list that does not add up to the balance, cannot prove anything.
func (c Cancel) MatchRefund(total, balance int64, refunds []GatewayRefund, known []string, sent []SentCancel, skew time.Duration) RefundMatch {
	if len(sent) == 0 {
		// Every request's attempt row is committed before it is sent
		// (docs/design.md section 3), so none recorded is none sent: the
		// refund the gateway shows is someone else's.
		return RefundMatch{Verdict: RefundNotPerformed, Reason: "no request was ever sent for this cancel (each is recorded before it is sent), so no refund at the gateway is its"}
	}
	var sum int64
	for _, r := range refunds {
		sum += r.Amount
	}
	if total-sum != balance {
		return RefundMatch{Verdict: RefundUndecided, Reason: fmt.Sprintf(
			"the gateway's cancels add up to %d, but its total %d and balance %d say %d were refunded", sum, total, balance, total-balance)}
	}
	isKnown := make(map[string]bool, len(known))
	for _, k := range known {
		if k != "" {
			isKnown[k] = true
		}
	}
	var fits []GatewayRefund
	before := total
	for _, r := range refunds {
		at := before
		before -= r.Amount
		if r.Elsewhere || isKnown[r.TransactionKey] {
			continue
		}
		for _, s := range sent {
			if c.fits(r, at, s, skew) {
				fits = append(fits, r)
				break
			}
		}
	}
	first := sent[0].SentAt
	for _, s := range sent {
		if s.SentAt.Before(first) {
			first = s.SentAt
		}
	}
	switch len(fits) {
	case 0:
		return RefundMatch{Verdict: RefundNotPerformed, Reason: fmt.Sprintf(
			"no refund in the gateway's %d cancels fits any of the %d requests sent for this cancel (the first at %s)",
			len(refunds), len(sent), first.UTC().Format(time.RFC3339))}
	case 1:
		r := fits[0]
		return RefundMatch{Verdict: RefundPerformed, Refund: r, Reason: fmt.Sprintf(
			"the gateway's refund %s of %d fits a request sent for this cancel (its amount, the balance it was made at and its time)",
			r.TransactionKey, r.Amount)}
	}
	return RefundMatch{Verdict: RefundUndecided, Reason: fmt.Sprintf(
		"%d refunds in the gateway's list could each be this cancel; its balance %d is neither ours nor what the cancel leaves",
		len(fits), balance)}
}

// fits reports whether refund r, made when the gateway held at, can be the
// request s of c.
func (c Cancel) fits(r GatewayRefund, at int64, s SentCancel, skew time.Duration) bool {
	if !r.At.IsZero() && r.At.Before(s.SentAt.Add(-skew)) {
		return false
	}
	if s.Refundable > 0 && at != s.Refundable {
		return false
	}
	switch {
	case c.Amount > 0:
		return r.Amount == c.Amount
	case s.Refundable > 0:
		return r.Amount == s.Refundable
	}
	// A whole cancel sent at a balance not recorded: any amount may be it.
	return true
}

// ApplyMatchedRefund records c as performed by the gateway's refund r (see
// MatchRefund): the payment takes the gateway's balance, which may include
// refunds made elsewhere, and the cancel the refund's own amount.
func (p *Payment) ApplyMatchedRefund(c *Cancel, r GatewayRefund, balance int64, now time.Time) {
	p.BalanceAmount = balance
	p.CanceledAmount = p.ApprovedAmount - balance
	if balance == 0 {
		p.Status = StatusCanceled
	} else {
		p.Status = StatusPartiallyCanceled
	}
	c.Status = CancelDone
	c.CanceledAmount = r.Amount
	c.TransactionKey = r.TransactionKey
	c.FailureCode, c.FailureMessage = "", ""
	c.CompletedAt = &now
}

// CancelDecision is what a person decided about a cancel in unknown after
// checking the gateway (SettleUnknownCancel). The values are sent by
// operators and written on audit rows, so they never change meaning.
type CancelDecision string

// The decisions.
const (
	// CancelDecisionDone: the cancel was performed; the gateway's record
	// must show a refund that can be it.
	CancelDecisionDone CancelDecision = "done"
	// CancelDecisionResend: the cancel was not performed; it is sent again
	// under a new key against the gateway's balance.
	CancelDecisionResend CancelDecision = "resend"
	// CancelDecisionAbandon: the customer is not to get it (refunded by
	// other means, say); the cancel fails and the payment stands where the
	// gateway's balance puts it. Nothing is sent.
	CancelDecisionAbandon CancelDecision = "abandon"
)

// CancelDecisions returns every decision, in the order the docs list them.
func CancelDecisions() []CancelDecision {
	return []CancelDecision{CancelDecisionDone, CancelDecisionResend, CancelDecisionAbandon}
}

// ValidateCancelDecision checks a decision against CancelDecisions.
func ValidateCancelDecision(d CancelDecision) error {
	for _, v := range CancelDecisions() {
		if d == v {
			return nil
		}
	}
	return Errorf(KindInvalid, CodeInvalidRequest, "decision must be one of done, resend, abandon")
}

// GatewayView is the part of a fresh lookup a person's decision on a cancel
// is checked against: the gateway's balance and its list of refunds.
type GatewayView struct {
	Balance int64
	Refunds []GatewayRefund
	// Known are the transaction keys of the payment's other cancels
	// recorded done.
	Known []string
}

// SettleUnknownCancel carries out a person's decision on a cancel in
// unknown, against the gateway's record as a lookup just read it: nothing a
// person says sets a status the record does not show. done needs a refund in
// the record that can be the cancel (of its amount, or any for a whole
// cancel, not one of our other cancels, not made elsewhere); resend needs a
// balance the cancel fits, and goes under a new key (the request differs:
// the balance it carries is the gateway's); abandon fails the cancel and
// puts the payment where the balance does. It returns what was done, for
// the audit row; an error changes nothing.
func (p *Payment) SettleUnknownCancel(c *Cancel, d CancelDecision, g GatewayView, now time.Time) (string, error) {
	if c.Status != CancelUnknown {
		return "", Errorf(KindConflict, CodeInvalidState, "cancel %s is %s, not unknown: the relay settles it", c.ID, c.Status)
	}
	switch d {
	case CancelDecisionDone:
		known := make(map[string]bool, len(g.Known))
		for _, k := range g.Known {
			known[k] = true
		}
		for i := len(g.Refunds) - 1; i >= 0; i-- {
			r := g.Refunds[i]
			if r.Elsewhere || known[r.TransactionKey] || (c.Amount > 0 && r.Amount != c.Amount) {
				continue
			}
			p.ApplyMatchedRefund(c, r, g.Balance, now)
			return fmt.Sprintf("recorded done by the gateway's refund %s of %d; balance %d", r.TransactionKey, r.Amount, g.Balance), nil
		}
		return "", Errorf(KindConflict, CodeInvalidState,
			"the gateway's record shows no refund that can be cancel %s (of %d): it cannot be recorded done", c.ID, c.Amount)
	case CancelDecisionResend:
		if code, msg := c.Misfit(g.Balance); code != "" {
			return "", Errorf(KindConflict, CodeInvalidState, "cancel %s cannot be sent again: %s (%s)", c.ID, msg, code)
		}
		p.AdoptBalance(g.Balance)
		old, next := p.ResendCancel(c, true)
		return fmt.Sprintf("sent again under key %s (was %s) with refundableAmount %d", next, old, g.Balance), nil
	case CancelDecisionAbandon:
		p.FailCancelForBalance(c, g.Balance, CodeAbandonedByOperator, "given up by an operator after checking the gateway", now)
		return fmt.Sprintf("given up; the payment stands at the gateway's balance %d", g.Balance), nil
	}
	return "", ValidateCancelDecision(d)
}
