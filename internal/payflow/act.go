package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Act takes the payment action named action on the caller's transaction:
// the one dispatch the JSON API's operator routes and the console share, so
// an action does the same whichever door it came through. It takes lookup,
// resolve, retry, resend_cancel and acknowledge; retry_job and
// settle_cancel carry more than a payment and a reason (RetryJob,
// SettleCancel).
func (f *Flow) Act(ctx context.Context, tx pgx.Tx, op Operator, action payment.Action, paymentID, cancelID, reason string) (payment.OperatorAction, error) {
	switch action {
	case payment.ActionLookup:
		return f.Lookup(ctx, tx, op, paymentID, reason)
	case payment.ActionResolve:
		return f.Resolve(ctx, tx, op, paymentID, reason)
	case payment.ActionRetry:
		return f.Retry(ctx, tx, op, paymentID, reason)
	case payment.ActionResendCancel:
		return f.ResendCancel(ctx, tx, op, paymentID, cancelID, reason)
	case payment.ActionAcknowledge:
		return f.Acknowledge(ctx, tx, op, paymentID, reason)
	}
	return payment.OperatorAction{}, fmt.Errorf("unknown operator action %q", action)
}
