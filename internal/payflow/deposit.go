package payflow

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// RecordAccountIssued records that the confirm issued a virtual account
// (docs/design.md section 19): the payment waits for its deposit, its
// deposit sweep is scheduled, and the confirm is done (the caller
// completes the confirm job in the same transaction). A cancel the shop
// made during the confirm is enqueued now to close the account.
func (f *Flow) RecordAccountIssued(ctx context.Context, tx pgx.Tx, paymentID string, acct payment.VirtualAccount, secret string) (Change, error) {
	p, open, err := f.lockWithOpenCancels(ctx, tx, paymentID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if !p.ConfirmPending() {
		return ch, nil
	}
	return f.applyAccountIssued(ctx, tx, &p, payment.WaitingCancel(open), acct, secret)
}

// applyAccountIssued is RecordAccountIssued on a payment already locked.
func (f *Flow) applyAccountIssued(ctx context.Context, tx pgx.Tx, p *payment.Payment, waiting *payment.Cancel, acct payment.VirtualAccount, secret string) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
	now := f.now()
	toRun := p.ApplyAccountIssued(acct, payment.Token(secret), waiting)
	next := f.deposit.Next(acct.DueDate, now)
	p.DepositNextLookAt = &next
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, err
	}
	ch.To = p.Status
	if toRun == nil {
		return ch, nil
	}
	if err := f.store.SaveCancel(ctx, tx, toRun); err != nil {
		return ch, err
	}
	return ch, f.enqueueCancel(ctx, tx, *toRun)
}

// RecordAccountClose settles the shop's cancel of a payment waiting for
// its deposit, from the close's answer (closed: the gateway answered 2xx)
// and the lookup that followed it (r). A deposit the lookup shows came
// first: the payment is confirmed with it and the cancel fails, since its
// refund needs the customer's refund account (the shop cancels again with
// one); an approval it cannot keep is refunded by compensation as any.
// Otherwise a close the gateway performed cancels the payment with nothing
// refunded, and one it refused puts it back to waiting.
func (f *Flow) RecordAccountClose(ctx context.Context, tx pgx.Tx, paymentID, cancelID string, closed bool, r payment.Record) (Change, error) {
	p, c, err := f.lockWithCancel(ctx, tx, paymentID, cancelID)
	if err != nil {
		return Change{}, err
	}
	ch := Change{From: p.Status, To: p.Status}
	if c.Status != payment.CancelPending || !p.AwaitsDeposit() {
		return ch, nil
	}
	now := f.now()
	ch.Applied = true
	var comp *payment.Cancel
	switch {
	case r.Approved:
		comp = p.ApplyApproval(r.Approval, nil, f.newID(), now)
		c.Status, c.CompletedAt = payment.CancelFailed, &now
		c.FailureCode = payment.CodeRefundAccountRequired
		c.FailureMessage = "the deposit arrived before the account was closed; cancel again with refundReceiveAccount to refund it"
		c.RefundAccount = nil
		ch.Note = "the deposit arrived before the close"
	case closed:
		p.ApplyAccountClosed(&c, now)
	default:
		p.ApplyCancelRefusal(&c, "CLOSE_REFUSED", "the gateway did not close the virtual account; it still waits for the deposit", now)
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return ch, err
	}
	if err := f.store.SaveCancel(ctx, tx, &c); err != nil {
		return ch, err
	}
	ch.To = p.Status
	if comp != nil {
		ins, err := f.store.InsertCancel(ctx, tx, *comp)
		if err != nil {
			return ch, err
		}
		ch.Compensation = &ins
		if ins.Status != payment.CancelPending {
			// Held for the customer's refund account.
			return ch, nil
		}
		if err := f.enqueueCancel(ctx, tx, ins); err != nil {
			return ch, err
		}
	}
	return ch, nil
}
