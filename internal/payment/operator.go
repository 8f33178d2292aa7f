package payment

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Action is something an operator did to a payment or an outbox job. The
// values are stored in the audit table, so they never change meaning.
type Action string

// The operator actions. None of them sets a status from an operator's word:
// the ones that touch the gateway go through the outbox, and a status only
// ever moves to what the gateway's record shows.
const (
	// ActionLookup asks the gateway now (a lookup job).
	ActionLookup Action = "lookup"
	// ActionRetry runs the payment's confirm or cancel job again now, under
	// the same Idempotency-Key.
	ActionRetry Action = "retry"
	// ActionResendCancel sends a refused cancel again under a new key.
	ActionResendCancel Action = "resend_cancel"
	// ActionResolve settles the payment from a fresh lookup of the
	// gateway's record, and records what it found.
	ActionResolve Action = "resolve"
	// ActionAcknowledge takes an unknown payment off the alert list,
	// keeping its status.
	ActionAcknowledge Action = "acknowledge"
	// ActionRetryJob runs one outbox job again now (River's JobRetry).
	ActionRetryJob Action = "retry_job"
	// ActionSettleCancel carries out a person's decision on a cancel the
	// relay could not settle (an unexplained balance), through a lookup of
	// the gateway's record that checks it (Payment.SettleUnknownCancel).
	ActionSettleCancel Action = "settle_cancel"
	// ActionRefundAccount sends a refund of deposited virtual-account
	// money that waits for the customer's refund account (or that the
	// gateway refused with the account it had) to the account the
	// operator names, through the outbox (Payment.ResendFailedCancelTo).
	ActionRefundAccount Action = "refund_account"
)

// Actions returns every operator action.
func Actions() []Action {
	return []Action{ActionLookup, ActionRetry, ActionResendCancel, ActionResolve, ActionAcknowledge, ActionRetryJob, ActionSettleCancel,
		ActionRefundAccount}
}

// OperatorReasonMaxLen bounds an operator's reason.
const OperatorReasonMaxLen = 500

// ValidateReason checks an operator's reason for an action: required,
// because the audit trail is for the next person to understand what
// happened.
func ValidateReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return Errorf(KindInvalid, CodeInvalidRequest, "reason is required: say why, for the audit trail")
	case utf8.RuneCountInString(reason) > OperatorReasonMaxLen:
		return Errorf(KindInvalid, CodeInvalidRequest, "reason must be at most %d characters", OperatorReasonMaxLen)
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		return Errorf(KindInvalid, CodeInvalidRequest, "reason must be valid UTF-8 without control characters")
	}
	return nil
}

// OperatorAction is one audited operator action: who, what, why, the
// payment's status before and after, and, for a lookup or resolve, what the
// gateway's record turned out to say.
type OperatorAction struct {
	ID        int64
	PaymentID string
	CancelID  string
	KeyID     string
	KeyName   string
	Action    Action
	Reason    string
	// StatusBefore and StatusAfter are the payment's status around the
	// action's own transaction.
	StatusBefore Status
	StatusAfter  Status
	// JobID is the outbox job the action enqueued or retried, if any.
	JobID  int64
	Detail string
	// Outcome and OutcomeStatus are what the relay's lookup for the action
	// found and the status it left; empty until it ran (CompletedAt).
	Outcome       string
	OutcomeStatus Status
	CompletedAt   *time.Time
	CreatedAt     time.Time
}

// Acknowledge takes an unknown payment off the alert list, keeping its
// status: a person has looked at it and taken it on (a refund made by phone,
// say). The status stays what the gateway's record supports; any later move
// ends the acknowledgement.
func (p *Payment) Acknowledge(now time.Time) error {
	if p.Status != StatusUnknown {
		return Errorf(KindConflict, CodeInvalidState,
			"payment is %s: only a payment in unknown is on the alert list to be acknowledged", p.Status)
	}
	p.AcknowledgedAt = &now
	return nil
}

// Acknowledged reports whether an operator acknowledged the payment in its
// current status.
func (p *Payment) Acknowledged() bool {
	return p.AcknowledgedAt != nil
}

// EndStaleAcknowledgement clears an acknowledgement given in a status the
// payment is leaving: it was about that state of affairs, and a payment
// that comes back to unknown later must page again. The store calls it on
// every save.
func (p *Payment) EndStaleAcknowledgement() {
	if p.StoredStatus != "" && p.Status != p.StoredStatus {
		p.AcknowledgedAt = nil
	}
}

// ResendFailedCancel puts a cancel the gateway refused back to work under a
// new Idempotency-Key: the old key's answer is a definite refusal the gateway
// would only replay. The relay sends it with refundableAmount set to our
// balance, so if some earlier request did refund after all, the gateway
// refuses this one instead of refunding twice.
func (p *Payment) ResendFailedCancel(c *Cancel) (old, next string, err error) {
	if p.refundsDeposit() {
		// The account a refused refund named was cleared with its
		// refusal, and a held compensation never had one: the gateway
		// would refuse it again, or refund nowhere.
		return "", "", Errorf(KindInvalid, CodeRefundAccountRequired,
			"a refund of deposited virtual-account money needs the customer's refund account: send it again with refund-account {reason, refundReceiveAccount}")
	}
	return p.resendFailedCancel(c)
}

// ResendFailedCancelTo is ResendFailedCancel for deposited virtual-account
// money, sent to the refund account a person names: a compensation held
// for want of one (HoldForRefundAccount), or a refund the gateway refused
// with the account it had. The account is checked first, before the
// payment's state; a bad one changes nothing.
func (p *Payment) ResendFailedCancelTo(c *Cancel, a RefundAccount) (old, next string, err error) {
	if err := ValidateRefundAccount(p.Gateway, a); err != nil {
		return "", "", err
	}
	if !p.refundsDeposit() {
		return "", "", Errorf(KindConflict, CodeInvalidState,
			"payment is not a deposited virtual-account payment: its refund goes back the way it was paid, with no refund account (resend-cancel)")
	}
	old, next, err = p.resendFailedCancel(c)
	if err != nil {
		return old, next, err
	}
	c.RefundAccount = &a
	c.RefundBank, c.RefundLast4 = a.Bank, a.Last4()
	return old, next, nil
}

// refundsDeposit reports whether a refund of the payment is a refund of
// money deposited into its virtual account, which needs the customer's
// refund account.
func (p Payment) refundsDeposit() bool {
	return p.VirtualAccount != nil && p.ApprovedAt != nil
}

func (p *Payment) resendFailedCancel(c *Cancel) (old, next string, err error) {
	if c.Status != CancelFailed {
		return "", "", Errorf(KindConflict, CodeInvalidState,
			"cancel %s is %s: only a cancel the gateway refused is sent again by hand", c.ID, c.Status)
	}
	switch {
	case p.Status == StatusUnknown && p.ApprovedAt != nil && c.Kind == CancelCompensation:
		// A refused compensation: the payment waits for a person.
	case p.Status == StatusConfirmed || p.Status == StatusPartiallyCanceled:
	default:
		return "", "", Errorf(KindConflict, CodeInvalidState,
			"payment is %s: a refused cancel is sent again only from confirmed, partially_canceled, or unknown after a refused compensation", p.Status)
	}
	if p.BalanceAmount <= 0 {
		return "", "", Errorf(KindConflict, CodeInvalidState, "the payment has no balance left to refund")
	}
	if c.Amount > p.BalanceAmount {
		return "", "", Errorf(KindUnprocessable, CodeCancelExceeds,
			"cancel amount %d exceeds the refundable balance %d", c.Amount, p.BalanceAmount)
	}
	p.Status = StatusCanceling
	p.FailureCode, p.FailureMessage = c.failureOnPayment(p)
	c.Status = CancelPending
	c.FailureCode, c.FailureMessage = "", ""
	c.CompletedAt = nil
	old, next = c.RotateKey()
	return old, next, nil
}

// failureOnPayment is the failure the payment keeps once c is sent again:
// a hold for the refund account is over, and the payment says again why
// its money goes back (the compensation's reason, which this package
// wrote); any other failure stays.
func (c Cancel) failureOnPayment(p *Payment) (string, string) {
	if p.FailureCode != CodeRefundAccountRequired {
		return p.FailureCode, p.FailureMessage
	}
	if strings.HasPrefix(c.Reason, compensationApprovedPrefix) {
		return "approval_mismatch", c.Reason
	}
	return CodeChargeUnwanted, strings.TrimPrefix(c.Reason, "compensation: ")
}

// AttentionReason says in one line why a payment in confirming, canceling
// or unknown needs a person, from its newest cancel and newest gateway call
// (either may be nil).
func AttentionReason(p Payment, last *Cancel, lastAttempt *Attempt) string {
	answer := ""
	if lastAttempt != nil {
		switch {
		case lastAttempt.GatewayCode != "":
			answer = fmt.Sprintf("; last %s answer %s", lastAttempt.Operation, lastAttempt.GatewayCode)
		case lastAttempt.Error != "":
			answer = fmt.Sprintf("; last %s failed: %s", lastAttempt.Operation, lastAttempt.Error)
		case lastAttempt.Classification == "":
			answer = fmt.Sprintf("; last %s has no recorded answer", lastAttempt.Operation)
		}
	}
	switch p.Status {
	case StatusUnknown:
		switch {
		case p.ApprovedAt == nil:
			return "confirm gave up without a definite answer: the gateway may have charged" + answer
		case p.WaitsForRefundAccount():
			return fmt.Sprintf("refund_account_required: the gateway holds %d deposited into the virtual account that we must give back, "+
				"and its refund needs the customer's bank account; supply it with refund-account%s", p.BalanceAmount, answer)
		case last != nil && last.Kind == CancelCompensation && last.Status == CancelFailed:
			return fmt.Sprintf("compensating cancel refused (%s): the gateway holds %d we must give back%s",
				last.FailureCode, p.BalanceAmount, answer)
		case last != nil && last.Status == CancelUnknown:
			return "cancel gave up without a definite answer: refunded or not is unknown" + answer
		}
		return "no definite answer from the gateway" + answer
	case StatusConfirming:
		return "confirm still in flight" + answer
	case StatusCanceling:
		return "cancel still in flight" + answer
	}
	return string(p.Status) + answer
}
