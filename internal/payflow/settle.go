package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

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
// state ours is in: the lookup worker's whole job. The domain decides
// (payment.Payment.SettlePlan); Settle reads the payment's cancels under the
// lock the caller holds, applies the plan, saves what changed and enqueues
// what it sends. The caller has checked that our row did not change since
// the lookup was sent (a lookup older than a recorded outcome could undo
// it).
func (f *Flow) Settle(ctx context.Context, tx pgx.Tx, p *payment.Payment, r payment.Record, opts SettleOptions) (Change, error) {
	ch := Change{From: p.Status, To: p.Status}
	cancels, err := f.store.Cancels(ctx, tx, p.ID)
	if err != nil {
		return ch, err
	}
	plan := p.SettlePlan(r, cancels, f.now(), f.deposit.Grace)
	return f.applySettlePlan(ctx, tx, p, plan, r, opts)
}

// applySettlePlan applies a SettlePlan to a payment locked by the caller:
// the step's domain method, then the saves and the enqueues it calls for.
func (f *Flow) applySettlePlan(ctx context.Context, tx pgx.Tx, p *payment.Payment, plan payment.SettlePlan, r payment.Record, opts SettleOptions) (Change, error) {
	ch := Change{From: p.Status, To: p.Status}
	switch plan.Step {
	case payment.SettleAccountIssued:
		return f.applyAccountIssued(ctx, tx, p, plan.Waiting, *r.Account, r.Secret)
	case payment.SettleApproval:
		out, err := f.applyApproval(ctx, tx, p, plan.Waiting, plan.Approval)
		if plan.Note != "" {
			out.Note = plan.Note
		}
		return out, err
	case payment.SettleRefusal:
		return f.applyRefusal(ctx, tx, p, plan.Waiting, plan.Status, plan.Code, plan.Message)
	case payment.SettleVoidUnpaid:
		return f.voidUnpaid(ctx, tx, p, plan.Waiting, plan.Note)
	case payment.SettleUnwantedCharge:
		return f.applyUnwantedCharge(ctx, tx, p, plan.Approval, plan.Note)
	case payment.SettleCancelResult:
		p.ApplyCancelResult(plan.Cancel, plan.Balance, plan.TransactionKey, f.now())
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
		if err := f.store.SaveCancel(ctx, tx, plan.Cancel); err != nil {
			return ch, err
		}
	case payment.SettleUnexplained:
		return f.settleUnexplained(ctx, tx, p, plan.Cancel, r, opts)
	case payment.SettleResend:
		return f.resend(ctx, tx, p, plan.Cancel, r, opts)
	case payment.SettleAdoptRefund, payment.SettleAdoptBalance:
		ch.Note = plan.Note
		if plan.Step == payment.SettleAdoptRefund {
			p.AdoptRefund(plan.Balance)
		} else {
			p.AdoptBalance(plan.Balance)
		}
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
	case payment.SettleExpireDeposit:
		p.ExpireUndeposited(plan.Code, plan.Message)
		if err := f.savePayment(ctx, tx, p); err != nil {
			return ch, err
		}
	default:
		return ch, nil
	}
	ch.To, ch.Applied = p.Status, true
	return ch, nil
}

// resend puts a cancel the relay had given up on (unknown) back into the
// outbox, after a lookup showed the gateway never refunded it: under a new
// key only when the key rule allows, else under the same one.
func (f *Flow) resend(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, r payment.Record, opts SettleOptions) (Change, error) {
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
func (f *Flow) settleUnexplained(ctx context.Context, tx pgx.Tx, p *payment.Payment, c *payment.Cancel, r payment.Record, opts SettleOptions) (Change, error) {
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

// voidUnpaid ends a ready intent's cancel whose lookup showed nothing paid
// (payment.VoidUnpaid): canceled on our word, and looked up again for a
// while, as the customer may still pay under its id.
func (f *Flow) voidUnpaid(ctx context.Context, tx pgx.Tx, p *payment.Payment, waiting *payment.Cancel, note string) (Change, error) {
	ch := Change{From: p.Status, Applied: true}
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
	ch.Note = note
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
