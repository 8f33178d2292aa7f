package payment

import (
	"strconv"
	"time"
)

// RequestConfirm moves a ready payment to confirming with the gateway's
// paymentKey. It reports whether anything changed: a repeat with the same
// paymentKey is the same request and changes nothing (so no second job).
func (p *Payment) RequestConfirm(paymentKey string, amount int64, now time.Time) (bool, error) {
	if amount != p.Amount {
		// Checked before anything else: a client whose amount differs from the
		// intent has been tampered with, and the gateway must not be asked.
		return false, Errorf(KindUnprocessable, CodeAmountMismatch,
			"amount %d differs from the payment's amount %d", amount, p.Amount)
	}
	if p.PaymentKey != "" && p.PaymentKey != paymentKey && p.Status == StatusReady {
		// Bound at create (a gateway that charges before our confirm): the
		// gateway payment under any other id is not this order's, whatever
		// its amount, and must never be booked against it.
		return false, Errorf(KindConflict, CodePaymentKeyConflict,
			"payment's paymentKey was bound at create; confirm must name that same id")
	}
	if p.Status != StatusReady {
		if p.PaymentKey == paymentKey {
			// The same request again, or a confirm that comes after the
			// payment moved on without it (a PortOne intent the shop
			// canceled, or the relay found paid): answered with the
			// payment as it stands, whatever it is.
			return false, nil
		}
		if p.PaymentKey != "" {
			return false, Errorf(KindConflict, CodePaymentKeyConflict,
				"payment was already confirmed with another paymentKey")
		}
		return false, Errorf(KindConflict, CodeInvalidState, "payment is %s and cannot be confirmed", p.Status)
	}
	p.Status = StatusConfirming
	p.PaymentKey = paymentKey
	p.ConfirmKeyGeneration = 1
	p.ConfirmIdempotencyKey = ConfirmIdempotencyKey(p.ID, p.ConfirmKeyGeneration)
	p.ConfirmRequestedAt = &now
	return true, nil
}

// CancelPlan is what a cancel request turns into.
type CancelPlan struct {
	// Cancel is the request to record.
	Cancel Cancel
	// Enqueue says whether a cancel job goes into the outbox now. It is false
	// for a payment never sent to the gateway (nothing to refund) and for one
	// whose confirm is in flight (the confirm worker enqueues it when the
	// confirm resolves).
	Enqueue bool
	// LookUp says a lookup of the payment goes into the outbox now: the
	// cancel waits for a confirm whose outcome is unknown, and only the
	// gateway's record can settle it.
	LookUp bool
	// SendHeld says the request names the refund account a held
	// compensation waits for (WaitsForRefundAccount): no cancel is
	// recorded; the held one is sent to that account instead.
	SendHeld bool
}

// RequestCancel decides what a customer's cancel does to the payment. open
// are the payment's cancels not yet finished (waiting or pending).
func (p *Payment) RequestCancel(cancelID, reason string, amount int64, open []Cancel, now time.Time) (CancelPlan, error) {
	if err := ValidateCancel(reason, amount); err != nil {
		return CancelPlan{}, err
	}
	if len(open) > 0 {
		return CancelPlan{}, Errorf(KindConflict, CodeCancelInProgress,
			"a cancel for this payment is already in progress")
	}
	c := Cancel{
		ID:             cancelID,
		PaymentID:      p.ID,
		Kind:           CancelByCustomer,
		Amount:         amount,
		Reason:         reason,
		IdempotencyKey: CancelIdempotencyKey(cancelID),
		CreatedAt:      now,
	}
	switch p.Status {
	case StatusReady:
		if amount != 0 && amount != p.Amount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeInvalidState,
				"a payment that was never confirmed can only be canceled whole")
		}
		if ChargesBeforeConfirm(p.Gateway) {
			// The customer may have paid already, without us hearing of
			// it: only the gateway's record can say whether there is
			// anything to refund, so the cancel waits for a lookup (void
			// if nothing was paid, refunded if it was).
			p.Status = StatusCanceling
			c.Status = CancelWaiting
			return CancelPlan{Cancel: c, LookUp: true}, nil
		}
		// Toss charges only at our confirm, which was never sent: nothing
		// to refund.
		p.Status = StatusCanceled
		c.Status = CancelVoid
		c.CompletedAt = &now
		return CancelPlan{Cancel: c}, nil
	case StatusConfirming:
		if amount != 0 && amount > p.Amount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeCancelExceeds,
				"cancel amount %d exceeds the payment's amount %d", amount, p.Amount)
		}
		c.Status = CancelWaiting
		return CancelPlan{Cancel: c}, nil
	case StatusUnknown:
		if p.WaitsForRefundAccount() {
			return CancelPlan{}, Errorf(KindInvalid, CodeRefundAccountRequired,
				"the payment holds %d deposited into its virtual account that must go back, and its refund needs refundReceiveAccount {bank, accountNumber, holderName}: cancel it whole with the customer's account", p.BalanceAmount)
		}
		if p.ApprovedAt != nil {
			// A cancel or a compensation the relay gave up on: the gateway's
			// balance is not known, so no refund can be computed against it
			// until a lookup has settled the payment.
			return CancelPlan{}, Errorf(KindConflict, CodePaymentUnknown,
				"the payment's last refund has no known outcome yet; the relay is asking the gateway, try again once the payment has settled")
		}
		if amount != 0 && amount > p.Amount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeCancelExceeds,
				"cancel amount %d exceeds the payment's amount %d", amount, p.Amount)
		}
		// The confirm's outcome is unknown: the cancel waits for the lookup
		// that settles it, which the caller enqueues with the cancel
		// (LookUp), so it is never parked without work ahead of it.
		c.Status = CancelWaiting
		return CancelPlan{Cancel: c, LookUp: true}, nil
	case StatusWaitingForDeposit:
		if amount != 0 && amount != p.Amount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeInvalidState,
				"a payment waiting for its deposit can only be canceled whole")
		}
		// Nothing was paid: the gateway closes the account, through the
		// outbox like every gateway call, and refunds nothing.
		p.Status = StatusCanceling
		c.Status = CancelPending
		return CancelPlan{Cancel: c, Enqueue: true}, nil
	case StatusConfirmed, StatusPartiallyCanceled:
		if amount > p.BalanceAmount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeCancelExceeds,
				"cancel amount %d exceeds the refundable balance %d", amount, p.BalanceAmount)
		}
		p.Status = StatusCanceling
		c.Status = CancelPending
		return CancelPlan{Cancel: c, Enqueue: true}, nil
	}
	return CancelPlan{}, Errorf(KindConflict, CodeInvalidState, "payment is %s and cannot be canceled", p.Status)
}

// RequestCancelTo is RequestCancel with the customer's refund account,
// which a deposited virtual-account payment needs and every other payment
// refuses: checked before anything changes, so a refused request writes
// nothing and sends nothing.
func (p *Payment) RequestCancelTo(cancelID, reason string, amount int64, refund *RefundAccount, open []Cancel, now time.Time) (CancelPlan, error) {
	deposited := p.VirtualAccount != nil && p.ApprovedAt != nil
	switch {
	case refund != nil && p.VirtualAccount == nil:
		return CancelPlan{}, Errorf(KindInvalid, CodeInvalidRequest,
			"refundReceiveAccount is only for a virtual-account payment whose deposit arrived; this payment's refund goes back the way it was paid")
	case refund != nil && !deposited:
		return CancelPlan{}, Errorf(KindInvalid, CodeInvalidRequest,
			"refundReceiveAccount is only for a deposited virtual-account payment; nothing was deposited, so nothing is refunded")
	case refund == nil && deposited && (p.Status == StatusConfirmed || p.Status == StatusPartiallyCanceled):
		return CancelPlan{}, Errorf(KindInvalid, CodeRefundAccountRequired,
			"a refund of a deposited virtual-account payment needs refundReceiveAccount {bank, accountNumber, holderName}: the customer's account to send the money back to")
	}
	if refund != nil {
		if err := ValidateRefundAccount(p.Gateway, *refund); err != nil {
			return CancelPlan{}, err
		}
	}
	if refund != nil && p.WaitsForRefundAccount() {
		// The deposit cannot be kept and its compensation waits for
		// this very account: the checkout's cancel sends it, whole, and
		// records no cancel of its own (the caller resends the held
		// compensation, ResendFailedCancelTo).
		if err := ValidateCancel(reason, amount); err != nil {
			return CancelPlan{}, err
		}
		if amount != 0 && amount != p.BalanceAmount {
			return CancelPlan{}, Errorf(KindUnprocessable, CodeInvalidState,
				"a deposit that cannot be kept goes back whole: %d, not %d", p.BalanceAmount, amount)
		}
		return CancelPlan{SendHeld: true}, nil
	}
	plan, err := p.RequestCancel(cancelID, reason, amount, open, now)
	if err != nil {
		return plan, err
	}
	if refund != nil {
		a := *refund
		plan.Cancel.RefundAccount = &a
		plan.Cancel.RefundBank, plan.Cancel.RefundLast4 = a.Bank, a.Last4()
	}
	return plan, nil
}

// Approval is what the gateway reported for a successful confirm.
type Approval struct {
	OrderID string
	// Currency is the approval's currency; empty when the gateway's record
	// does not say (then it is not compared).
	Currency      string
	TotalAmount   int64
	BalanceAmount int64
	Method        string
	ApprovedAt    time.Time
}

// ApplyApproval records the gateway's approval. When the approval cannot be
// kept (the gateway approved another amount or order, or a cancel arrived
// while the confirm was in flight) it returns the cancel to run: the payment
// moves to canceling and the money goes back.
//
// waiting is the customer's cancel recorded during the confirm, if any; the
// caller persists the returned cancel (new or updated) and enqueues its job
// when it is pending. An approval already refunded in whole or part at the
// gateway (seen on a lookup) lands in canceled or partially_canceled.
func (p *Payment) ApplyApproval(a Approval, waiting *Cancel, compensationID string, now time.Time) *Cancel {
	p.recordApproval(a, now)

	var reason string
	switch {
	case a.TotalAmount != p.Amount:
		reason = compensationApprovedPrefix + "amount " + strconv.FormatInt(a.TotalAmount, 10) + ", intent was " + strconv.FormatInt(p.Amount, 10)
	case a.OrderID != "" && a.OrderID != p.OrderID:
		reason = compensationApprovedPrefix + "order " + a.OrderID + ", intent was " + p.OrderID
	case a.Currency != "" && a.Currency != p.Currency:
		reason = compensationApprovedPrefix + "currency " + a.Currency + ", intent was " + p.Currency
	}
	if a.BalanceAmount == 0 {
		// Refunded in full at the gateway already (seen on a lookup): the
		// gateway's word is the state and there is nothing left to give
		// back, neither to the customer nor by compensation.
		p.Status = StatusCanceled
		if reason != "" {
			p.FailureCode = "approval_mismatch"
			p.FailureMessage = reason
		}
		if waiting != nil {
			waiting.Status = CancelVoid
			waiting.CompletedAt = &now
			return waiting
		}
		return nil
	}
	if reason != "" {
		// The whole approval goes back, whatever the customer asked: an
		// approval for the wrong amount is not one we may keep any part of.
		p.FailureCode = "approval_mismatch"
		p.FailureMessage = reason
		if waiting != nil {
			waiting.Status = CancelVoid
			waiting.CompletedAt = &now
		}
		return p.compensation(compensationID, reason, now)
	}
	if waiting != nil {
		if waiting.Amount > p.BalanceAmount {
			waiting.Status = CancelFailed
			waiting.FailureCode = CodeCancelExceeds
			waiting.FailureMessage = "cancel amount exceeds the approved balance"
			waiting.CompletedAt = &now
			return waiting
		}
		p.Status = StatusCanceling
		waiting.Status = CancelPending
		return waiting
	}
	if a.BalanceAmount < a.TotalAmount {
		// Partly refunded at the gateway already (seen on a lookup).
		p.Status = StatusPartiallyCanceled
	}
	return nil
}

// compensationApprovedPrefix starts the reason of a compensation for an
// approval that differs from the intent.
const compensationApprovedPrefix = "compensation: gateway approved "

// recordApproval writes the gateway's approval onto the payment, which is
// then confirmed until the caller decides otherwise.
func (p *Payment) recordApproval(a Approval, now time.Time) {
	p.Status = StatusConfirmed
	p.ApprovedAmount = a.TotalAmount
	p.BalanceAmount = a.BalanceAmount
	p.CanceledAmount = a.TotalAmount - a.BalanceAmount
	p.Method = a.Method
	at := a.ApprovedAt
	if at.IsZero() {
		at = now
	}
	p.ApprovedAt = &at
	p.FailureCode, p.FailureMessage = "", ""
}

// compensation is the cancel that gives a whole approval back, with the
// payment moved to where it waits for it: canceling, or, for deposited
// virtual-account money, unknown until a person names the customer's
// refund account (HoldForRefundAccount).
func (p *Payment) compensation(id, reason string, now time.Time) *Cancel {
	c := &Cancel{
		ID:             id,
		PaymentID:      p.ID,
		Kind:           CancelCompensation,
		Reason:         reason,
		Status:         CancelPending,
		IdempotencyKey: CancelIdempotencyKey(id),
		CreatedAt:      now,
	}
	p.Status = StatusCanceling
	if p.VirtualAccount != nil {
		p.HoldForRefundAccount(c)
	}
	return c
}

// HoldForRefundAccount keeps a compensation of deposited virtual-account
// money from being sent: the gateway refunds such money only to an account
// the customer names (Toss refundReceiveAccount, PortOne refundAccount),
// and nobody has named one. The cancel is recorded failed with
// refund_account_required, never having been sent, and the payment waits
// in unknown, on the attention list and the alert, until an operator
// supplies the account (ResendFailedCancelTo) or the checkout cancels with
// one (docs/design.md section 19).
func (p *Payment) HoldForRefundAccount(c *Cancel) {
	c.Status = CancelFailed
	c.FailureCode = CodeRefundAccountRequired
	c.FailureMessage = "not sent: a refund of deposited virtual-account money needs the customer's refund account, and none was given"
	c.RefundAccount = nil
	p.Status = StatusUnknown
	p.FailureCode = CodeRefundAccountRequired
	p.FailureMessage = c.Reason + "; its refund waits for the customer's refund account (refundReceiveAccount)"
}

// WaitsForRefundAccount reports whether the payment holds deposited money
// we must give back and cannot until someone names the customer's refund
// account (HoldForRefundAccount).
func (p Payment) WaitsForRefundAccount() bool {
	return p.Status == StatusUnknown && p.ApprovedAt != nil && p.FailureCode == CodeRefundAccountRequired
}

// ApplyUnwantedCharge records a charge the gateway shows for a payment the
// shop no longer wants: one we canceled before any charge was seen (a
// PortOne intent whose lookup found nothing paid, then the customer paid
// under its id), or one whose customer cancel was voided because we had
// recorded it failed or expired. The charge is recorded as the gateway
// holds it and all of it goes back by a compensating cancel, returned for
// the caller to save and enqueue; already refunded in full at the gateway,
// the payment is canceled and nothing is left to send.
func (p *Payment) ApplyUnwantedCharge(a Approval, compensationID, why string, now time.Time) *Cancel {
	p.recordApproval(a, now)
	if a.BalanceAmount == 0 {
		p.Status = StatusCanceled
		return nil
	}
	p.FailureCode = CodeChargeUnwanted
	p.FailureMessage = why
	return p.compensation(compensationID, "compensation: "+why, now)
}

// AwaitsConfirm reports whether the payment still waits for the gateway to
// say whether it was charged: confirming; unknown with no approval recorded
// (a confirm that spent its retry budget); or canceling with no approval (a
// cancel of a ready intent of a gateway that charges before our confirm,
// waiting for the lookup that says whether there is anything to refund).
func (p Payment) AwaitsConfirm() bool {
	switch p.Status {
	case StatusConfirming:
		return true
	case StatusUnknown, StatusCanceling:
		return p.ApprovedAt == nil
	}
	return false
}

// ConfirmPending reports whether the payment's confirm job still has work:
// confirming, or unknown with no approval recorded (a confirm that spent
// its retry budget). Unlike AwaitsConfirm it leaves out a canceling ready
// intent: its confirm was never sent and is no longer wanted; the lookup,
// not the confirm, settles it.
func (p Payment) ConfirmPending() bool {
	return p.Status == StatusConfirming || (p.Status == StatusUnknown && p.ApprovedAt == nil)
}

// CanRetry reports whether an operator's retry may find a job to run
// again: a confirm still pending (ConfirmPending) or a payment canceling
// (whose pending cancel, if any, is sent again). The operator action checks
// the job itself; this is the rule the console offers the action by.
func (p Payment) CanRetry() bool {
	return p.ConfirmPending() || p.Status == StatusCanceling
}

// VoidUnpaid ends a payment whose cancel waited for a lookup of a ready
// intent (AwaitsConfirm in canceling) that showed nothing paid: canceled, and
// the cancel void. It is our word, not the gateway's: the customer may still
// pay under the paymentId, which is why a canceled payment of such a gateway
// keeps being looked up for a while (RestsOnAbsence) and a charge found then
// is given back (ApplyUnwantedCharge).
func (p *Payment) VoidUnpaid(waiting *Cancel, now time.Time) {
	p.Status = StatusCanceled
	if waiting != nil {
		waiting.Status = CancelVoid
		waiting.CompletedAt = &now
	}
}

// RestsOnAbsence reports whether our record of the payment says "no money"
// only because we have not seen any, at a gateway that can take the
// customer's money without our confirm: a PortOne payment recorded failed,
// expired or canceled with no approval. Such a record is provisional; the
// relay keeps looking the payment up (PlanRecheck) so that money arriving
// after it is settled, never ignored.
func (p Payment) RestsOnAbsence() bool {
	if !ChargesBeforeConfirm(p.Gateway) || p.ApprovedAt != nil {
		return false
	}
	switch p.Status {
	case StatusFailed, StatusExpired, StatusCanceled:
		return true
	}
	return false
}

// Recheck is how the relay keeps looking up payments whose record is
// provisional (RestsOnAbsence) and ready intents of gateways that charge
// before our confirm.
type Recheck struct {
	// Window is how long after the record came to rest the relay keeps
	// looking: long enough for money that arrives late.
	Window time.Duration
	// First is how soon the first lookup comes, and the shortest gap
	// between two.
	First time.Duration
	// MaxGap is the longest gap between two lookups.
	MaxGap time.Duration
}

// DefaultRecheck looks for a day: first after five minutes, then at gaps
// of half the time since the record came to rest, at most two hours (about
// fifteen lookups over the day).
var DefaultRecheck = Recheck{Window: 24 * time.Hour, First: 5 * time.Minute, MaxGap: 2 * time.Hour}

// Next is when to look again after a lookup at now, for a record that came
// to rest at since: the gap grows with its age, as late money grows rarer.
func (r Recheck) Next(since, now time.Time) time.Time {
	gap := now.Sub(since) / 2
	gap = max(gap, r.First)
	if r.MaxGap > 0 {
		gap = min(gap, r.MaxGap)
	}
	return now.Add(gap)
}

// PlanRecheck keeps the payment's recheck schedule in step with its
// status: a record that came to rest on absence starts a window (a new
// status, or none running), any other record has none.
func (p *Payment) PlanRecheck(now time.Time, r Recheck) {
	if !p.RestsOnAbsence() {
		p.NextRecheckAt, p.RecheckUntil = nil, nil
		return
	}
	if p.RecheckUntil != nil && p.StoredStatus == p.Status {
		return
	}
	until, next := now.Add(r.Window), now.Add(r.First)
	p.RecheckUntil, p.NextRecheckAt = &until, &next
}

// ApplyRefusal records a definite refusal of the confirm; a waiting cancel has
// nothing to refund.
func (p *Payment) ApplyRefusal(status Status, code, message string, waiting *Cancel, now time.Time) {
	p.Status = status
	p.FailureCode = code
	p.FailureMessage = message
	if waiting != nil {
		waiting.Status = CancelVoid
		waiting.CompletedAt = &now
	}
}

// ApplyCancelResult records the gateway's balance after a cancel succeeded.
func (p *Payment) ApplyCancelResult(c *Cancel, balance int64, transactionKey string, now time.Time) {
	before := p.BalanceAmount
	p.BalanceAmount = balance
	p.CanceledAmount = p.ApprovedAmount - balance
	if balance == 0 {
		p.Status = StatusCanceled
	} else {
		p.Status = StatusPartiallyCanceled
	}
	c.Status = CancelDone
	c.CanceledAmount = before - balance
	c.TransactionKey = transactionKey
	c.CompletedAt = &now
	c.RefundAccount = nil
}

// ApplyCancelRefusal records a definite refusal of a cancel: the payment
// keeps what the gateway holds. A refused compensation is money we must give
// back and could not, so the payment goes to unknown for a person.
func (p *Payment) ApplyCancelRefusal(c *Cancel, code, message string, now time.Time) {
	switch {
	case p.ApprovedAt == nil && p.VirtualAccount != nil:
		// The gateway refused to close an undeposited account (a deposit
		// may have come first): it still waits, and a lookup decides.
		p.Status = StatusWaitingForDeposit
	case c.Kind == CancelCompensation:
		p.Status = StatusUnknown
	case p.CanceledAmount > 0:
		p.Status = StatusPartiallyCanceled
	default:
		p.Status = StatusConfirmed
	}
	c.Status = CancelFailed
	c.FailureCode = code
	c.FailureMessage = message
	c.CompletedAt = &now
	c.RefundAccount = nil
}

// GiveUpConfirm records that the confirm's retry budget is spent without a
// definite answer: unknown, never failed by guess, because the gateway may
// have charged. The reconciler keeps asking.
func (p *Payment) GiveUpConfirm(code, message string) {
	p.Status = StatusUnknown
	p.FailureCode = code
	p.FailureMessage = message
}

// GiveUpCancel records that a cancel's retry budget is spent without a
// definite answer: both go to unknown until a lookup settles them.
func (p *Payment) GiveUpCancel(c *Cancel, code, message string) {
	p.Status = StatusUnknown
	c.Status = CancelUnknown
	c.FailureCode = code
	c.FailureMessage = message
}

// RotateConfirmKey moves the confirm to its next Idempotency-Key. Only the
// key rule in internal/gateway (KeyAbandonable) decides that it may.
func (p *Payment) RotateConfirmKey() (old, next string) {
	old = p.ConfirmIdempotencyKey
	p.ConfirmKeyGeneration++
	p.ConfirmIdempotencyKey = ConfirmIdempotencyKey(p.ID, p.ConfirmKeyGeneration)
	return old, p.ConfirmIdempotencyKey
}

// RotateKey moves a cancel to its next Idempotency-Key; see
// Payment.RotateConfirmKey.
func (c *Cancel) RotateKey() (old, next string) {
	old = c.IdempotencyKey
	c.IdempotencyKey = NextCancelIdempotencyKey(c.ID, c.IdempotencyKey)
	return old, c.IdempotencyKey
}

// ResendCancel puts a cancel the relay gave up on back to work, after a
// lookup showed the gateway never refunded it: under its next key when the
// key rule says the gateway is done with the old one (rotate), else under the
// same key, which replays whatever the gateway did with it.
func (p *Payment) ResendCancel(c *Cancel, rotate bool) (old, next string) {
	p.Status = StatusCanceling
	c.Status = CancelPending
	c.FailureCode, c.FailureMessage = "", ""
	if !rotate {
		return c.IdempotencyKey, c.IdempotencyKey
	}
	return c.RotateKey()
}

// BalanceAfter is the balance the gateway holds once c is refunded, from a
// payment balance of before.
func (c Cancel) BalanceAfter(before int64) int64 {
	if c.Amount == 0 {
		return 0
	}
	return before - c.Amount
}

// AdoptBalance corrects our record of the gateway's balance while a cancel is
// pending, when a lookup shows neither the balance we expected nor the one
// our cancel would leave (a refund made elsewhere, or an approval whose
// amounts we recorded wrongly). The cancel is then sent with the gateway's
// balance as its refundableAmount; the status does not move.
func (p *Payment) AdoptBalance(balance int64) {
	p.BalanceAmount = balance
	p.CanceledAmount = p.ApprovedAmount - balance
}

// AdoptRefund records a refund the gateway shows and the relay did not make
// (from the gateway's console, say): the gateway's balance is the truth.
func (p *Payment) AdoptRefund(balance int64) {
	p.BalanceAmount = balance
	p.CanceledAmount = p.ApprovedAmount - balance
	if balance == 0 {
		p.Status = StatusCanceled
	} else {
		p.Status = StatusPartiallyCanceled
	}
}

// CheckTransition reports whether the payment's status may be saved over the
// one it was read with. A new payment (no StoredStatus) may start anywhere
// the constructors put it.
func (p *Payment) CheckTransition() error {
	if p.StoredStatus == "" || CanTransition(p.StoredStatus, p.Status) {
		return nil
	}
	return Errorf(KindInternal, CodeStaleWrite, "payment %s may not move from %s to %s", p.ID, p.StoredStatus, p.Status)
}

// CheckTransition reports whether the cancel's status may be saved over the
// one it was read with; see Payment.CheckTransition.
func (c *Cancel) CheckTransition() error {
	if c.StoredStatus == "" || CanCancelTransition(c.StoredStatus, c.Status) {
		return nil
	}
	return Errorf(KindInternal, CodeStaleWrite, "cancel %s may not move from %s to %s", c.ID, c.StoredStatus, c.Status)
}
