package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Record is what a lookup read from the gateway's record of a payment, in
// the domain's words.
type Record struct {
	// Approved: the gateway charged the payment (DONE, CANCELED or
	// PARTIAL_CANCELED); Approval says for what, and BalanceAmount is what
	// it still holds.
	Approved bool
	Approval payment.Approval
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
	Account        *payment.VirtualAccount
	Secret         string
	AccountExpired bool
	// Refunds are the gateway's own list of the payment's performed
	// refunds, in its order, for a balance we cannot explain.
	Refunds []payment.GatewayRefund
}

// SettleOptions carries what the relay decided about the lookup.
type SettleOptions struct {
	// LookupAttempt is the lookup's attempt row, where a decision it
	// justifies is noted.
	LookupAttempt int64
	// RotateCancelKey says the key rule lets a cancel the relay gave up on
	// be sent again under a new key (its old key is certainly done); when
	// false it is sent again under the same key, which replays whatever
	// the gateway did with it.
	RotateCancelKey bool
}

// Settle makes our record of a payment agree with the gateway's, whatever
// state ours is in: the lookup worker's whole job. The gateway's record is
// the truth about money; ours is brought to it and never the other way. The
// caller has checked that our row did not change since the lookup was sent
// (a lookup older than a recorded outcome could undo it).
func (f *Flow) Settle(ctx context.Context, tx pgx.Tx, p *payment.Payment, r Record, opts SettleOptions) (Change, error) {
	ch := Change{From: p.Status, To: p.Status}
	cancels, err := f.store.Cancels(ctx, tx, p.ID)
	if err != nil {
		return ch, err
	}
	var open []payment.Cancel // waiting or pending, for the confirm's outcome
	for _, c := range cancels {
		if c.Status == payment.CancelWaiting || c.Status == payment.CancelPending {
			open = append(open, c)
		}
	}
	var active *payment.Cancel // the cancel with the gateway, or given up on
	for i := range cancels {
		if cancels[i].Status == payment.CancelPending || cancels[i].Status == payment.CancelUnknown {
			active = &cancels[i]
		}
	}

	switch {
	case p.AwaitsDeposit() && p.Status == payment.StatusCanceling:
		// The shop's close of the account is with the gateway: its cancel
		// job settles the payment from the close's answer and a lookup
		// (RecordAccountClose); a deposit seen here is seen there too.
		return ch, nil

	case p.Status == payment.StatusWaitingForDeposit:
		return f.settleWaiting(ctx, tx, p, r)

	case p.AwaitsConfirm() && p.Status != payment.StatusCanceling && !r.Approved && r.Account != nil && r.Unpaid:
		// A confirm that gave up (or a lookup during it) finds the account
		// issued: it waits for its deposit, not for us.
		return f.applyAccountIssued(ctx, tx, p, open, *r.Account, r.Secret)

	case p.AwaitsConfirm() && p.Status == payment.StatusCanceling:
		// The cancel of a ready intent of a gateway that charges before
		// our confirm, waiting for this lookup: refund what was paid
		// (the approval runs the waiting cancel, or a compensation), or
		// void it if nothing was.
		switch {
		case r.Approved:
			return f.applyApproval(ctx, tx, p, open, r.Approval)
		case r.Unpaid:
			return f.voidUnpaid(ctx, tx, p, open)
		}
		return ch, nil

	case p.AwaitsConfirm():
		switch {
		case r.Approved:
			return f.applyApproval(ctx, tx, p, open, r.Approval)
		case r.Aborted:
			return f.applyRefusal(ctx, tx, p, open, payment.StatusFailed, "ABORTED", "the gateway aborted the payment")
		case r.Expired:
			return f.applyRefusal(ctx, tx, p, open, payment.StatusExpired, "EXPIRED", "the payment session expired at the gateway")
		}
		// READY / IN_PROGRESS: not confirmed yet. A confirm job may still be
		// at it (the reconciler re-enqueues one that is gone); once the
		// session lapses the gateway says EXPIRED.
		return ch, nil

	case p.Status == payment.StatusReady && r.Approved:
		// Paid at the gateway (in PortOne's browser SDK) and never
		// confirmed with us: the checkout crashed or the customer closed
		// the browser after paying. The charge is adopted as if confirmed,
		// and refunded by compensation when it is not the intent's.
		ch.Note = "the gateway shows the intent paid, though no confirm came; adopted the charge"
		out, err := f.applyApproval(ctx, tx, p, nil, r.Approval)
		out.Note = ch.Note
		return out, err

	case p.Status == payment.StatusCanceled && p.ApprovedAt == nil && r.Approved:
		// Canceled on our word before any charge was seen, and charged
		// after all: the shop no longer wants it, so it goes back.
		return f.applyUnwantedCharge(ctx, tx, p, r.Approval,
			"the gateway charged a payment the shop had canceled before any charge was seen")

	case (p.Status == payment.StatusFailed || p.Status == payment.StatusExpired) && r.Approved:
		// We said no charge and the gateway says charged: the customer's
		// money is what counts (the caller logs it at error level). Kept,
		// unless the shop canceled the payment meanwhile: its cancel was
		// voided on our guess, and is not forgotten now.
		if voidedByCustomer(cancels) {
			return f.applyUnwantedCharge(ctx, tx, p, r.Approval,
				"the gateway charged a payment we had recorded "+string(p.Status)+" after the shop canceled it")
		}
		return f.applyApproval(ctx, tx, p, open, r.Approval)

	case active != nil && r.Approved:
		switch balance := r.Approval.BalanceAmount; {
		case balance == active.BalanceAfter(p.BalanceAmount) && balance < p.BalanceAmount:
			// Only one cancel is with the gateway at a time, and each
			// carries the balance it expects, so a drop to what it leaves
			// is it.
			p.ApplyCancelResult(active, balance, r.TransactionKey, f.now())
		case balance != p.BalanceAmount:
			// Neither ours nor what the cancel leaves: the gateway's list
			// of refunds decides, or a person (docs/design.md, "A balance
			// we cannot explain").
			return f.settleUnexplained(ctx, tx, p, active, r, opts)
		case active.Status == payment.CancelUnknown:
			// Its job gave up and the gateway refunded nothing: the customer
			// still wants it, so it goes back to work.
			return f.resend(ctx, tx, p, active, r, opts)
		default:
			return ch, nil // pending: its job is still at it
		}
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
		if err := f.store.SaveCancel(ctx, tx, active); err != nil {
			return ch, err
		}
		ch.To, ch.Applied = p.Status, true
		return ch, nil

	case p.Status == payment.StatusUnknown && active == nil && r.Approved && r.Approval.BalanceAmount < p.BalanceAmount:
		// Approved, no cancel at work, yet unknown: a compensation the
		// gateway refused (the domain sends it to a person). The gateway now
		// shows money went back that we did not send: all of it settles the
		// payment as canceled; part of it only corrects our balance, and
		// the rest is still owed, so it stays unknown for the person.
		balance := r.Approval.BalanceAmount
		ch.Note = fmt.Sprintf("gateway shows a refund the relay did not make: balance %d, ours was %d", balance, p.BalanceAmount)
		if balance == 0 {
			p.AdoptRefund(balance)
		} else {
			p.AdoptBalance(balance)
			ch.Note += "; the rest of the compensation is still owed"
		}
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
		ch.To, ch.Applied = p.Status, true
		return ch, nil

	case (p.Status == payment.StatusConfirmed || p.Status == payment.StatusPartiallyCanceled) &&
		r.Approved && r.Approval.BalanceAmount < p.BalanceAmount:
		// Refunded outside the relay (the gateway's console, say).
		ch.Note = fmt.Sprintf("gateway shows a refund the relay did not make: balance %d, ours was %d",
			r.Approval.BalanceAmount, p.BalanceAmount)
		p.AdoptRefund(r.Approval.BalanceAmount)
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
		ch.To, ch.Applied = p.Status, true
		return ch, nil
	}
	return ch, nil
}

// resend puts a cancel the relay had given up on (unknown) back into the
// outbox, after a lookup showed the gateway never refunded it: under a new
// key only when the key rule allows, else under the same one.
func (f *Flow) resend(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, r Record, opts SettleOptions) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
	old, next := p.ResendCancel(c, opts.RotateCancelKey)
	ch.KeyRotated = old != next
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	if err := f.store.SaveCancel(ctx, tx, c); err != nil {
		return ch, err
	}
	if old == next {
		ch.Note = fmt.Sprintf("gateway balance %d shows no refund for cancel %s; sent again under the same key %s (its last answers do not show the gateway done with it)",
			r.Approval.BalanceAmount, c.ID, old)
	} else {
		ch.Note = fmt.Sprintf("gateway balance %d shows no refund for cancel %s; sent again under %s (was %s)",
			r.Approval.BalanceAmount, c.ID, next, old)
	}
	if err := f.store.AddAttemptNote(ctx, tx, opts.LookupAttempt, ch.Note); err != nil {
		return ch, err
	}
	if err := f.enqueueCancel(ctx, tx, *c); err != nil {
		return ch, err
	}
	ch.To = p.Status
	return ch, nil
}

// settleUnexplained is Settle's side of the unexplained-balance rule (see
// unexplained): it saves what the rule decided, notes it on the lookup's
// attempt row and enqueues a cancel it sent back to work.
func (f *Flow) settleUnexplained(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, r Record, opts SettleOptions) (Change, error) {
	ch := Change{From: p.Status, To: p.Status}
	out, err := f.unexplained(ctx, tx, p, c, r)
	if err != nil || !out.changed {
		return ch, err
	}
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	if err := f.store.SaveCancel(ctx, tx, c); err != nil {
		return ch, err
	}
	if err := f.store.AddAttemptNote(ctx, tx, opts.LookupAttempt, out.note); err != nil {
		return ch, err
	}
	if out.resend {
		if err := f.enqueueCancel(ctx, tx, *c); err != nil {
			return ch, err
		}
	}
	ch.To, ch.Applied, ch.Note, ch.KeyRotated = p.Status, true, out.note, out.rotated
	return ch, nil
}

// voidedByCustomer reports whether a customer's cancel of the payment was
// voided: it found nothing to refund because no charge was known then.
func voidedByCustomer(cancels []payment.Cancel) bool {
	for _, c := range cancels {
		if c.Kind == payment.CancelByCustomer && c.Status == payment.CancelVoid {
			return true
		}
	}
	return false
}

// voidUnpaid ends a ready intent's cancel whose lookup showed nothing paid
// (payment.VoidUnpaid): canceled on our word, and looked up again for a
// while, as the customer may still pay under its id.
func (f *Flow) voidUnpaid(ctx context.Context, tx pgx.Tx, p *payment.Payment, open []payment.Cancel) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
	var waiting *payment.Cancel
	for i := range open {
		if open[i].Status == payment.CancelWaiting {
			waiting = &open[i]
			break
		}
	}
	p.VoidUnpaid(waiting, f.now())
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	if waiting != nil {
		if err := f.store.SaveCancel(ctx, tx, waiting); err != nil {
			return ch, err
		}
	}
	ch.To = p.Status
	ch.Note = "the gateway shows nothing paid; the cancel is void (looked up again for late money)"
	return ch, nil
}

// applyUnwantedCharge records a charge the shop no longer wants and puts
// its compensating cancel into the outbox (payment.ApplyUnwantedCharge).
func (f *Flow) applyUnwantedCharge(ctx context.Context, tx pgx.Tx, p *payment.Payment, a payment.Approval, why string) (Change, error) {
	ch := Change{From: p.Status, Applied: true, Note: why}
	comp := p.ApplyUnwantedCharge(a, f.newID(), why, f.now())
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	ch.To = p.Status
	if comp == nil {
		return ch, nil
	}
	c, err := f.store.InsertCancel(ctx, tx, *comp)
	if err != nil {
		return ch, err
	}
	ch.Compensation = &c
	if c.Status != payment.CancelPending {
		// Held for the customer's refund account (docs/design.md
		// section 19): nothing goes to the gateway yet.
		return ch, nil
	}
	return ch, f.enqueueCancel(ctx, tx, c)
}
