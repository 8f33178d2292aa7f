package relay_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// operator takes actions the way the api does for an operator key.
func (b *testBundle) operator(t *testing.T) (*payflow.Flow, payflow.Operator) {
	t.Helper()
	f, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.client, Retrier: b.client})
	require.NoError(t, err)
	var keyID string
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`INSERT INTO api_keys (id, name, display_prefix, key_hash, scope)
		 VALUES (gen_random_uuid(), 'on call', 'po_test', sha256(gen_random_uuid()::text::bytea), 'operator')
		 RETURNING id::text`).Scan(&keyID))
	return f, payflow.Operator{KeyID: keyID, KeyName: "on call"}
}

// act runs one operator action in its own transaction.
func act(t *testing.T, b *testBundle, fn func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error)) payment.OperatorAction {
	t.Helper()
	ctx := context.Background()
	var a payment.OperatorAction
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		a, err = fn(ctx, tx)
		return err
	}))
	return a
}

// waitOutcome waits for the relay to record what an action's lookup found.
func (b *testBundle) waitOutcome(t *testing.T, paymentID string, actionID int64) payment.OperatorAction {
	t.Helper()
	var found payment.OperatorAction
	require.Eventually(t, func() bool {
		actions, err := b.store.OperatorActions(context.Background(), b.pool, paymentID)
		require.NoError(t, err)
		for _, a := range actions {
			if a.ID == actionID && a.CompletedAt != nil {
				found = a
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond)
	return found
}

func TestOperatorActions(t *testing.T) {
	t.Parallel()

	// The case the issue names: a compensating cancel the gateway refused
	// left the payment unknown for ever. Sent again by an operator, it goes
	// through the outbox under a new key and the money goes back once.
	t.Run("ResendRefusedCompensation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{wrap: func(g relay.Gateway) relay.Gateway { return approvesOtherAmount{g} }})
		p, key := b.newPayment(t, 15000, nil)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "NOT_CANCELABLE_PAYMENT"))
		b.requestConfirm(t, p.ID, key, 15000, nil)
		got := b.waitStatus(t, p.ID, payment.StatusUnknown)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelFailed, got.Cancels[0].Status)
		require.Equal(t, int64(15000), b.ledger(t, key).BalanceAmount, "the gateway still holds the money")
		rc := newReceiver(t)
		hook := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusCanceling), webhook.EventType(payment.StatusCanceled))
		rc.setSecret(hook.Secret)

		f, op := b.operator(t)
		a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
			return f.ResendCancel(ctx, tx, op, p.ID, "", "card company lifted the block")
		})
		require.Equal(t, payment.StatusCanceling, a.StatusAfter)

		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		e := b.ledger(t, key)
		require.Equal(t, int64(0), e.BalanceAmount, "the whole approval went back")
		require.Len(t, e.Refunds, 1, "once")
		// The operator's move to canceling is a status change like any
		// other: the checkout hears of it, then of the refund.
		require.Equal(t, []string{"unknown → canceling", "canceling → canceled"}, b.changesDelivered(t, hook.ID))
	})

	// A confirm given up on (unknown) that the gateway approved: resolve
	// settles it to the gateway's record, and the audit row says so.
	t.Run("ResolveGivenUpConfirm", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 17000, nil)
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: p.OrderID, Amount: 17000}, "confirm-elsewhere")
		require.NotNil(t, res.Payment, "approved at the gateway")
		b.force(t, p.ID, func(p *payment.Payment) { _, _ = p.RequestConfirm(key, 17000, time.Now()) })
		b.force(t, p.ID, func(p *payment.Payment) { p.GiveUpConfirm("no_answer", "retry budget spent") })

		f, op := b.operator(t)
		a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
			return f.Resolve(ctx, tx, op, p.ID, "customer sent a card statement")
		})
		require.Equal(t, payment.StatusUnknown, a.StatusAfter, "the request itself settles nothing")

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(17000), got.BalanceAmount)
		done := b.waitOutcome(t, p.ID, a.ID)
		require.Equal(t, payment.StatusConfirmed, done.OutcomeStatus)
		require.Contains(t, done.Outcome, "gateway DONE")
		require.Contains(t, done.Outcome, "unknown → confirmed")
		last := got.Attempts[len(got.Attempts)-1]
		require.Equal(t, payment.OperationLookup, last.Operation)
		require.NotNil(t, last.Gateway, "the gateway's record is kept with the call")
		require.Equal(t, "DONE", last.Gateway.Status)
		require.Equal(t, int64(17000), last.Gateway.BalanceAmount)
	})

	// A refused compensation that someone refunded at the gateway's own
	// console: a lookup adopts the refund and the payment is canceled.
	t.Run("LookupAdoptsRefundOfRefusedCompensation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{wrap: func(g relay.Gateway) relay.Gateway { return approvesOtherAmount{g} }})
		p, key := b.newPayment(t, 15000, nil)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "NOT_CANCELABLE_PAYMENT"))
		b.requestConfirm(t, p.ID, key, 15000, nil)
		b.waitStatus(t, p.ID, payment.StatusUnknown)
		res := b.gw.Cancel(context.Background(), key, gateway.CancelRequest{Reason: "refunded by hand", RefundableAmount: 15000}, "cancel-by-hand")
		require.NotNil(t, res.Payment, "refunded at the gateway: %s", res.Code)
		rc := newReceiver(t)
		hook := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusCanceled))
		rc.setSecret(hook.Secret)

		f, op := b.operator(t)
		a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
			return f.Lookup(ctx, tx, op, p.ID, "finance refunded it in the gateway's console")
		})
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, int64(0), got.BalanceAmount)
		done := b.waitOutcome(t, p.ID, a.ID)
		require.Contains(t, done.Outcome, "unknown → canceled")
		require.Contains(t, done.Outcome, "did not make")
		require.Equal(t, []string{"unknown → canceled"}, b.changesDelivered(t, hook.ID),
			"an adopted refund is a status change: the checkout hears of it")
	})
}

// changesDelivered returns the status changes the deliveries to an endpoint
// report ("from → to"), oldest first.
func (b *testBundle) changesDelivered(t *testing.T, endpointID string) []string {
	t.Helper()
	ds := b.deliveries(t, endpointID)
	out := make([]string, len(ds))
	for i, d := range ds {
		var ev webhook.Event
		require.NoError(t, json.Unmarshal(d.Payload, &ev))
		out[len(ds)-1-i] = ev.Data.PreviousStatus + " → " + ev.Data.Status
	}
	return out
}
