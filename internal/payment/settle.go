package payment

import (
	"fmt"
	"time"
)

// Record is what a lookup read from the gateway's record of a payment, in
// the domain's words: every gateway's record is read into one (by its
// phase), so every gateway's payments settle by the same rules (SettlePlan).
type Record struct {
	// Approved: the gateway charged the payment (DONE, CANCELED or
	// PARTIAL_CANCELED); Approval says for what, and BalanceAmount is what
	// it still holds.
	Approved bool
	Approval Approval
	// Aborted and Expired: the gateway will never charge it.
	Aborted, Expired bool
	// Unpaid: the gateway's record (or its answer that it has none) shows
	// no money taken yet: not started, pending, failed or expired. The
	// customer may still pay later at a gateway that charges before our
	// confirm, so what is decided from it there is provisional.
	Unpaid bool
	// TransactionKey names the gateway's newest cancel transaction.
	TransactionKey string
	// Account is the virtual account the gateway issued and Secret the
	// deposit secret it gave (Toss), for a payment waiting for its
	// deposit; AccountExpired is the gateway's word that the account takes
	// no deposit any more.
	Account        *VirtualAccount
	Secret         string
	AccountExpired bool
	// Refunds are the gateway's own list of the payment's performed
	// refunds, in its order, for a balance we cannot explain.
	Refunds []GatewayRefund
}

// SettleStep names the change a lookup's record calls for: which of the
// domain's methods the use case applies, on what.
type SettleStep int

// The steps of SettlePlan. Each names the method that applies it.
const (
	// SettleNothing: our record already agrees, or waits on someone else
	// (a confirm or cancel job still at it, a person).
	SettleNothing SettleStep = iota
	// SettleAccountIssued: ApplyAccountIssued with Waiting (the confirm
	// gave up, but the gateway issued the virtual account).
	SettleAccountIssued
	// SettleApproval: ApplyApproval with Waiting; the approval may run the
	// waiting cancel or a compensation, to insert and enqueue.
	SettleApproval
	// SettleRefusal: ApplyRefusal(Status, Code, Message) with Waiting.
	SettleRefusal
	// SettleVoidUnpaid: VoidUnpaid with Waiting.
	SettleVoidUnpaid
	// SettleUnwantedCharge: ApplyUnwantedCharge, Note being the why; its
	// compensation, if any, is inserted and enqueued.
	SettleUnwantedCharge
	// SettleCancelResult: ApplyCancelResult on Cancel with the gateway's
	// balance; payment and cancel are saved.
	SettleCancelResult
	// SettleUnexplained: the unexplained-balance rule on Cancel (its
	// requests read, then Cancel.MatchRefund decides).
	SettleUnexplained
	// SettleResend: ResendCancel on Cancel, which goes back into the
	// outbox.
	SettleResend
	// SettleAdoptRefund: AdoptRefund of the gateway's balance.
	SettleAdoptRefund
	// SettleAdoptBalance: AdoptBalance of the gateway's balance (the rest
	// of a refused compensation is still owed).
	SettleAdoptBalance
	// SettleExpireDeposit: ExpireUndeposited(Code, Message).
	SettleExpireDeposit
)

// SettlePlan is what a lookup's record does to a payment (Payment.SettlePlan):
// the step to apply and what it applies to. The use case applies it, saves
// what changed and enqueues what the step sends.
type SettlePlan struct {
	Step SettleStep
	// Waiting is the customer's cancel waiting for the confirm's outcome
	// that the step settles with it (approval, refusal, issued account,
	// void), nil when there is none or the step leaves cancels alone. It
	// points into the cancels given to SettlePlan.
	Waiting *Cancel
	// Cancel is the cancel with the gateway, or given up on, that the step
	// works on (cancel result, unexplained balance, resend); it points into
	// the cancels given to SettlePlan.
	Cancel *Cancel
	// Approval is the gateway's charge as the record reads (approval,
	// unwanted charge); Balance its balance (cancel result, adoptions).
	Approval Approval
	Balance  int64
	// TransactionKey is the gateway's newest cancel transaction (cancel
	// result).
	TransactionKey string
	// Status, Code and Message are the refusal's (SettleRefusal) or the
	// expiry's (SettleExpireDeposit).
	Status        Status
	Code, Message string
	// Note says why, for the caller's log line: an adopted charge or
	// refund, a voided cancel, an arrived deposit; an unwanted charge's why
	// is also its compensation's reason.
	Note string
}

// SettlePlan decides what the gateway's record rec does to our record of
// the payment, whatever state ours is in: the lookup worker's whole job
// (docs/design.md section 3). The gateway's record is the truth about
// money; ours is brought to it and never the other way. cancels are all the
// payment's cancels, read under its lock; now and grace (the deposit
// schedule's) judge an account past its due date.
func (p Payment) SettlePlan(rec Record, cancels []Cancel, now time.Time, grace time.Duration) SettlePlan {
	waiting := WaitingCancel(cancels)
	var active *Cancel // the cancel with the gateway, or given up on
	for i := range cancels {
		if cancels[i].Status == CancelPending || cancels[i].Status == CancelUnknown {
			active = &cancels[i]
		}
	}
	balance := rec.Approval.BalanceAmount
	approval := func(w *Cancel, note string) SettlePlan {
		return SettlePlan{Step: SettleApproval, Waiting: w, Approval: rec.Approval, Note: note}
	}

	switch {
	case p.AwaitsDeposit() && p.Status == StatusCanceling:
		// The shop's close of the account is with the gateway: its cancel
		// job settles the payment from the close's answer and a lookup
		// (RecordAccountClose); a deposit seen here is seen there too.
		return SettlePlan{}

	case p.Status == StatusWaitingForDeposit:
		// The deposit is recorded as an approval (refunded by compensation
		// when it is not the intent's amount); an account the gateway shows
		// expired, or one past its due date and grace with no deposit, ends
		// expired. Our clock alone never ends it: only a lookup's answer of
		// no deposit does.
		switch {
		case rec.Approved:
			return approval(nil, "the customer's deposit arrived")
		case rec.Aborted || rec.Expired || (rec.Unpaid && (rec.AccountExpired || p.DepositOverdue(now, grace))):
			return SettlePlan{Step: SettleExpireDeposit, Code: "DEPOSIT_EXPIRED",
				Message: fmt.Sprintf("no deposit arrived by the virtual account's due date %s; the gateway shows none",
					p.VirtualAccount.DueDate.Format("2006-01-02T15:04:05Z07:00"))}
		}
		return SettlePlan{}

	case p.AwaitsConfirm() && p.Status != StatusCanceling && !rec.Approved && rec.Account != nil && rec.Unpaid:
		// A confirm that gave up (or a lookup during it) finds the account
		// issued: it waits for its deposit, not for us.
		return SettlePlan{Step: SettleAccountIssued, Waiting: waiting}

	case p.AwaitsConfirm() && p.Status == StatusCanceling:
		// The cancel of a ready intent of a gateway that charges before
		// our confirm, waiting for this lookup: refund what was paid
		// (the approval runs the waiting cancel, or a compensation), or
		// void it if nothing was.
		switch {
		case rec.Approved:
			return approval(waiting, "")
		case rec.Unpaid:
			return SettlePlan{Step: SettleVoidUnpaid, Waiting: waiting,
				Note: "the gateway shows nothing paid; the cancel is void (looked up again for late money)"}
		}
		return SettlePlan{}

	case p.AwaitsConfirm():
		switch {
		case rec.Approved:
			return approval(waiting, "")
		case rec.Aborted:
			return SettlePlan{Step: SettleRefusal, Waiting: waiting, Status: StatusFailed, Code: "ABORTED", Message: "the gateway aborted the payment"}
		case rec.Expired:
			return SettlePlan{Step: SettleRefusal, Waiting: waiting, Status: StatusExpired, Code: "EXPIRED", Message: "the payment session expired at the gateway"}
		}
		// READY / IN_PROGRESS: not confirmed yet. A confirm job may still be
		// at it (the reconciler re-enqueues one that is gone); once the
		// session lapses the gateway says EXPIRED.
		return SettlePlan{}

	case p.Status == StatusReady && rec.Approved:
		// Paid at the gateway (in PortOne's browser SDK) and never
		// confirmed with us: the checkout crashed or the customer closed
		// the browser after paying. The charge is adopted as if confirmed,
		// and refunded by compensation when it is not the intent's.
		return approval(nil, "the gateway shows the intent paid, though no confirm came; adopted the charge")

	case p.Status == StatusCanceled && p.ApprovedAt == nil && rec.Approved:
		// Canceled on our word before any charge was seen, and charged
		// after all: the shop no longer wants it, so it goes back.
		return SettlePlan{Step: SettleUnwantedCharge, Approval: rec.Approval,
			Note: "the gateway charged a payment the shop had canceled before any charge was seen"}

	case (p.Status == StatusFailed || p.Status == StatusExpired) && rec.Approved:
		// We said no charge and the gateway says charged: the customer's
		// money is what counts (the caller logs it at error level). Kept,
		// unless the shop canceled the payment meanwhile: its cancel was
		// voided on our guess, and is not forgotten now.
		if voidedByCustomer(cancels) {
			return SettlePlan{Step: SettleUnwantedCharge, Approval: rec.Approval,
				Note: "the gateway charged a payment we had recorded " + string(p.Status) + " after the shop canceled it"}
		}
		return approval(waiting, "")

	case active != nil && rec.Approved:
		switch {
		case balance == active.BalanceAfter(p.BalanceAmount) && balance < p.BalanceAmount:
			// Only one cancel is with the gateway at a time, and each
			// carries the balance it expects, so a drop to what it leaves
			// is it.
			return SettlePlan{Step: SettleCancelResult, Cancel: active, Balance: balance, TransactionKey: rec.TransactionKey}
		case balance != p.BalanceAmount:
			// Neither ours nor what the cancel leaves: the gateway's list
			// of refunds decides, or a person (docs/design.md, "A balance
			// we cannot explain").
			return SettlePlan{Step: SettleUnexplained, Cancel: active, Balance: balance}
		case active.Status == CancelUnknown:
			// Its job gave up and the gateway refunded nothing: the customer
			// still wants it, so it goes back to work.
			return SettlePlan{Step: SettleResend, Cancel: active, Balance: balance}
		}
		return SettlePlan{} // pending: its job is still at it

	case p.Status == StatusUnknown && active == nil && rec.Approved && balance < p.BalanceAmount:
		// Approved, no cancel at work, yet unknown: a compensation the
		// gateway refused (the domain sends it to a person). The gateway now
		// shows money went back that we did not send: all of it settles the
		// payment as canceled; part of it only corrects our balance, and
		// the rest is still owed, so it stays unknown for the person.
		note := fmt.Sprintf("gateway shows a refund the relay did not make: balance %d, ours was %d", balance, p.BalanceAmount)
		if balance == 0 {
			return SettlePlan{Step: SettleAdoptRefund, Balance: balance, Note: note}
		}
		return SettlePlan{Step: SettleAdoptBalance, Balance: balance, Note: note + "; the rest of the compensation is still owed"}

	case (p.Status == StatusConfirmed || p.Status == StatusPartiallyCanceled) && rec.Approved && balance < p.BalanceAmount:
		// Refunded outside the relay (the gateway's console, say).
		return SettlePlan{Step: SettleAdoptRefund, Balance: balance,
			Note: fmt.Sprintf("gateway shows a refund the relay did not make: balance %d, ours was %d", balance, p.BalanceAmount)}
	}
	return SettlePlan{}
}

// WaitingCancel returns the cancel of cancels that waits for the confirm's
// outcome, or nil: a payment has one open cancel at a time (RequestCancel),
// so there is at most one. It points into cancels.
func WaitingCancel(cancels []Cancel) *Cancel {
	for i := range cancels {
		if cancels[i].Status == CancelWaiting {
			return &cancels[i]
		}
	}
	return nil
}

// voidedByCustomer reports whether a customer's cancel of the payment was
// voided: it found nothing to refund because no charge was known then.
func voidedByCustomer(cancels []Cancel) bool {
	for _, c := range cancels {
		if c.Kind == CancelByCustomer && c.Status == CancelVoid {
			return true
		}
	}
	return false
}
