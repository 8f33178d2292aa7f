package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// SettleCancel records a person's decision on a cancel in unknown (the
// relay could not tell from the gateway's record whether it was performed:
// an unexplained balance, or a retry budget spent) and enqueues the lookup
// that carries it out against a fresh read of the gateway's record
// (ApplyCancelDecision): the decision never sets a status on its own word.
// cancelID "" picks the payment's cancel in unknown.
func (f *Flow) SettleCancel(ctx context.Context, tx pgx.Tx, op Operator, paymentID, cancelID string, d payment.CancelDecision, reason string) (payment.OperatorAction, error) {
	if err := payment.ValidateReason(reason); err != nil {
		return payment.OperatorAction{}, err
	}
	if err := payment.ValidateCancelDecision(d); err != nil {
		return payment.OperatorAction{}, err
	}
	p, err := f.PaymentForUpdate(ctx, tx, paymentID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	cancels, err := f.store.Cancels(ctx, tx, p.ID)
	if err != nil {
		return payment.OperatorAction{}, err
	}
	var c *payment.Cancel
	for i := range cancels {
		if (cancelID == "" && cancels[i].Status == payment.CancelUnknown) || (cancelID != "" && cancels[i].ID == cancelID) {
			c = &cancels[i]
		}
	}
	switch {
	case c == nil && cancelID != "":
		return payment.OperatorAction{}, payment.Errorf(payment.KindNotFound, payment.CodeNotFound, "payment %s has no cancel %s", p.ID, cancelID)
	case c == nil:
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState, "payment %s has no cancel in unknown", p.ID)
	case c.Status != payment.CancelUnknown:
		return payment.OperatorAction{}, payment.Errorf(payment.KindConflict, payment.CodeInvalidState,
			"cancel %s is %s, not unknown: the relay settles it", c.ID, c.Status)
	}
	a, err := f.store.InsertOperatorAction(ctx, tx, payment.OperatorAction{
		PaymentID: p.ID, CancelID: c.ID, KeyID: op.KeyID, KeyName: op.KeyName, Action: payment.ActionSettleCancel,
		Reason: reason, StatusBefore: p.Status, StatusAfter: p.Status,
		Detail: fmt.Sprintf("decision %q on cancel %s (unknown: %s %s); a lookup checks it against the gateway's record and notes here what it did",
			d, c.ID, c.FailureCode, c.FailureMessage),
	})
	if err != nil {
		return a, err
	}
	res, err := f.outbox.InsertTx(ctx, tx, paymentjob.LookupArgs{PaymentID: p.ID, ActionID: a.ID, CancelID: c.ID, Decision: string(d)}, nil)
	if err != nil {
		return a, fmt.Errorf("error enqueuing lookup job: %w", err)
	}
	a.JobID = res.Job.ID
	return a, f.store.SetOperatorActionJob(ctx, tx, a.ID, a.JobID)
}

// ApplyCancelDecision carries out a person's decision on a cancel in unknown
// against the gateway's record a lookup just read (see
// payment.Payment.SettleUnknownCancel), on the lookup's transaction with the
// payment locked: done needs a refund in the record that can be the cancel,
// resend a balance it fits (sent under a new key), abandon nothing. A
// decision the record does not bear out changes nothing; outcome says why,
// for the audit row.
func (f *Flow) ApplyCancelDecision(ctx context.Context, tx pgx.Tx, p *payment.Payment, cancelID string, d payment.CancelDecision, r payment.Record, lookupAttempt int64) (Change, string, error) {
	ch := Change{From: p.Status, To: p.Status}
	if !r.Approved {
		return ch, "the gateway's record shows no charge to refund from; nothing settled", nil
	}
	c, err := f.store.CancelForUpdate(ctx, tx, cancelID)
	if err != nil {
		return ch, "", err
	}
	if c.PaymentID != p.ID {
		return ch, "", payment.Errorf(payment.KindNotFound, payment.CodeNotFound, "payment %s has no cancel %s", p.ID, cancelID)
	}
	_, known, err := f.cancelHistory(ctx, tx, p.ID, c.ID)
	if err != nil {
		return ch, "", err
	}
	detail, err := p.SettleUnknownCancel(&c, d, payment.GatewayView{Balance: r.Approval.BalanceAmount, Refunds: r.Refunds, Known: known}, f.now())
	if err != nil {
		// The record does not bear the decision out: nothing changes, and
		// the audit row says why.
		return ch, "decision not carried out: " + payment.ErrorOf(err).Message, nil
	}
	if err := f.savePayment(ctx, tx, p); err != nil {
		return ch, "", err
	}
	if err := f.store.SaveCancel(ctx, tx, &c); err != nil {
		return ch, "", err
	}
	note := fmt.Sprintf("operator decision %q on cancel %s: %s", d, c.ID, detail)
	if err := f.store.AddAttemptNote(ctx, tx, lookupAttempt, note); err != nil {
		return ch, "", err
	}
	if c.Status == payment.CancelPending {
		if err := f.enqueueCancel(ctx, tx, c); err != nil {
			return ch, "", err
		}
		ch.KeyRotated = true
	}
	ch.To, ch.Applied, ch.Note = p.Status, true, note
	return ch, detail, nil
}
