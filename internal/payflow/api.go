package payflow

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// Confirm moves a ready payment to confirming and puts its confirm job into
// the outbox: the relay can only see a job whose payment says confirming,
// and a payment can only say confirming if its job exists. A repeat with the
// same paymentKey changes nothing and adds no job (a second job would be a
// second charge attempt). It returns the payment as the client should see it.
//
// reach is the caller's (payment.Reach): a payment out of it is not found,
// and nothing is written or locked (docs/design.md, "Owners").
//
// paymentToken is PortOne's manual-confirm token, required or refused by the
// deployment's PortOne confirm mode (payment.CheckPaymentToken); it is kept
// with the payment until the confirm is settled.
func (f *Flow) Confirm(ctx context.Context, tx pgx.Tx, reach payment.Reach, paymentID, paymentKey string, amount int64, paymentToken string) (payment.Payment, error) {
	p, err := f.store.ReachablePaymentForUpdate(ctx, tx, reach, paymentID)
	if err != nil {
		return payment.Payment{}, err
	}
	if err := p.CheckPaymentToken(f.portOneMode, paymentToken); err != nil {
		return p, err
	}
	changed, err := p.RequestConfirm(paymentKey, amount, f.now())
	if err != nil {
		return p, err
	}
	if changed {
		p.PaymentToken = payment.Token(paymentToken)
	}
	if !changed {
		return f.store.PaymentWithHistory(ctx, tx, reach, p.ID)
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return p, err
	}
	if err := f.enqueue(ctx, tx, paymentjob.ConfirmArgs{PaymentID: p.ID}); err != nil {
		return p, err
	}
	// A payment leaving ready was never sent to the gateway (no attempts)
	// and never canceled (a cancel from ready ends it), so its history is
	// empty: the saved row is the whole answer, three round trips sooner.
	return p, nil
}

// Cancel records a customer's cancel request and puts into the outbox what
// it needs: its cancel job when the gateway holds money for the payment, or
// a lookup when it waits on a confirm whose outcome is unknown. A payment the
// gateway never saw is canceled on the spot. It returns the payment with its
// history. A payment out of reach is not found, as in Confirm. refund is
// the customer's refund account, which a deposited virtual-account payment
// needs and every other refuses (payment.Payment.RequestCancelTo).
func (f *Flow) Cancel(ctx context.Context, tx pgx.Tx, reach payment.Reach, paymentID, cancelID, reason string, amount int64, refund *payment.RefundAccount) (payment.Payment, error) {
	// The cancels are read under the payment's lock (in the same round
	// trip), so two cancels racing for one payment see each other.
	p, open, err := f.store.ReachablePaymentForUpdateWithOpenCancels(ctx, tx, reach, paymentID)
	if err != nil {
		return payment.Payment{}, err
	}
	plan, err := p.RequestCancelTo(cancelID, reason, amount, refund, open, f.now())
	if err != nil {
		return p, err
	}
	if plan.SendHeld {
		// The account a held compensation waits for: it goes out now.
		if _, err := f.sendHeld(ctx, tx, &p, "", *refund); err != nil {
			return p, err
		}
		return f.store.PaymentWithHistory(ctx, tx, reach, p.ID)
	}
	if err := f.savePayment(ctx, tx, &p); err != nil {
		return p, err
	}
	c, err := f.store.InsertCancel(ctx, tx, plan.Cancel)
	if err != nil {
		return p, err
	}
	if plan.Enqueue {
		if err := f.enqueueCancel(ctx, tx, c); err != nil {
			return p, err
		}
	}
	if plan.LookUp {
		if err := f.enqueue(ctx, tx, paymentjob.LookupArgs{PaymentID: p.ID}); err != nil {
			return p, err
		}
	}
	return f.store.PaymentWithHistory(ctx, tx, reach, p.ID)
}
