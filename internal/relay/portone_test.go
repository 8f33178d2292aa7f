package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// newPortOnePayment creates a PortOne intent and has the customer pay for it
// in the (simulated) browser SDK as pay says; it returns the payment and the
// paymentId the checkout gave PortOne, not yet confirmed with us.
func (b *testBundle) newPortOnePayment(t *testing.T, amount int64, pay gatewaysim.PortOnePayRequest) (payment.Payment, string) {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Test order", Amount: amount, Gateway: payment.GatewayPortOne}
	require.NoError(t, in.Validate())
	p, created, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	require.True(t, created)
	// The paymentId is the one bound to the intent at create.
	pay.PaymentID, pay.OrderID, pay.Amount = p.PaymentKey, orderID, amount
	_, err = b.sim.PortOnePay(pay)
	require.NoError(t, err)
	return p, pay.PaymentID
}

// portOneConfirmed is a PortOne payment the relay confirmed.
func (b *testBundle) portOneConfirmed(t *testing.T, amount int64) (payment.Payment, string) {
	t.Helper()
	p, id := b.newPortOnePayment(t, amount, gatewaysim.PortOnePayRequest{})
	b.requestConfirm(t, p.ID, id, amount, nil)
	return b.waitStatus(t, p.ID, payment.StatusConfirmed), id
}

func TestPortOneConfirm(t *testing.T) {
	t.Parallel()

	t.Run("Paid", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.portOneConfirmed(t, 15000)
		require.Equal(t, payment.GatewayPortOne, p.Gateway)
		require.Equal(t, int64(15000), p.ApprovedAmount)
		require.Equal(t, int64(15000), p.BalanceAmount)
		require.Equal(t, "PaymentMethodCard", p.Method)
		require.Len(t, p.Attempts, 1)
		require.Equal(t, string(gateway.ClassSuccess), p.Attempts[0].Classification)

		e := b.ledger(t, id)
		require.Equal(t, gatewaysim.GatewayPortOne, e.Gateway)
		require.Equal(t, 1, e.Approvals)
		reqs := b.sim.Requests(id)
		require.Len(t, reqs, 1)
		require.Equal(t, "GET", reqs[0].Method, "PortOne's confirm is a lookup: nothing is sent that could charge")
		require.Equal(t, gatewaysim.GatewayPortOne, reqs[0].Gateway)
	})

	// The checkout was tampered with and the customer paid another amount:
	// the approval is refunded in full by a compensating cancel, as a Toss
	// approval for another amount is.
	t.Run("OtherAmountIsRefunded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{PaidAmount: 1000})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, "approval_mismatch", got.FailureCode)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelCompensation, got.Cancels[0].Kind)
		require.Equal(t, int64(1000), got.Cancels[0].CanceledAmount)

		e := b.ledger(t, id)
		require.Equal(t, 1, e.Approvals)
		require.Zero(t, e.BalanceAmount)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, got.Cancels[0].IdempotencyKey, e.Refunds[0].IdempotencyKey)
		require.Equal(t, int64(1000), e.Refunds[0].Amount)
	})

	t.Run("Failed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneFailed})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		got := b.waitStatus(t, p.ID, payment.StatusFailed)
		require.Equal(t, "FAILED", got.FailureCode)
		require.Contains(t, got.FailureMessage, "거절")
		require.Zero(t, b.ledger(t, id).Approvals)
	})

	// The customer opened PortOne's window and walked away: asked again
	// until the open deadline, then expired.
	t.Run("ReadyUntilTheDeadline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{openDeadline: 300 * time.Millisecond})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneReady})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		got := b.waitStatus(t, p.ID, payment.StatusExpired)
		require.Equal(t, "READY", got.FailureCode)
		pending := 0
		for _, a := range got.Attempts {
			if a.Classification == string(gateway.ClassPending) {
				pending++
			}
		}
		require.Greater(t, pending, 1, "asked again before giving up")
		require.Zero(t, b.ledger(t, id).Approvals)
	})

	// A relay that does not serve PortOne leaves its payments waiting for
	// one that does: nothing is failed for our deployment's gap.
	t.Run("GatewayNotServed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{tossOnly: true})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		// Worked and snoozed, more than once, and never given up on.
		require.Eventually(t, func() bool {
			var snoozes int
			require.NoError(t, b.pool.QueryRow(context.Background(),
				"SELECT coalesce((metadata->>'snoozes')::int, 0) FROM river_job WHERE kind = 'payment_confirm'").Scan(&snoozes))
			return snoozes >= 2
		}, 10*time.Second, 10*time.Millisecond)
		var state string
		require.NoError(t, b.pool.QueryRow(context.Background(),
			"SELECT state FROM river_job WHERE kind = 'payment_confirm'").Scan(&state))
		require.NotContains(t, []string{"completed", "discarded", "cancelled"}, state)
		got, err := b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusConfirming, got.Status)
		require.Empty(t, got.Attempts, "no gateway was called")
		require.Empty(t, b.sim.Requests(id))
	})
}

func TestPortOneCancel(t *testing.T) {
	t.Parallel()

	t.Run("Partial", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.portOneConfirmed(t, 15000)
		c := b.requestCancel(t, p.ID, 5000)
		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, int64(10000), got.BalanceAmount)
		require.Equal(t, int64(5000), got.CanceledAmount)

		e := b.ledger(t, id)
		require.Equal(t, int64(10000), e.BalanceAmount)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
		require.Equal(t, got.Cancels[0].TransactionKey, e.Refunds[0].TransactionKey)
	})

	// Someone refunded part of the payment in PortOne's console: our cancel
	// carries the balance we expect, PortOne refuses it
	// (CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN) and refunds nothing, a lookup
	// shows the balance that moved, its list of cancels shows none of them
	// is ours, and the cancel goes out again against it under a new key.
	t.Run("CancellableAmountMismatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.portOneConfirmed(t, 15000)
		res := b.po.Cancel(context.Background(), id,
			gateway.CancelRequest{Reason: "refunded in the PortOne console", Amount: 3000, RefundableAmount: 15000}, "console-refund-0000001")
		require.NoError(t, res.Err)

		c := b.requestCancel(t, p.ID, 5000)
		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, int64(7000), got.BalanceAmount)

		e := b.ledger(t, id)
		require.Equal(t, int64(7000), e.BalanceAmount, "our state is the gateway's")
		require.Len(t, e.Refunds, 2, "the console's and ours, once")
		require.Equal(t, int64(5000), e.Refunds[1].Amount)
		require.Equal(t, payment.NextCancelIdempotencyKey(c.ID, c.IdempotencyKey), e.Refunds[1].IdempotencyKey)
		broken := 0
		for _, a := range got.Attempts {
			if a.GatewayCode == "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN" {
				broken++
				require.Equal(t, string(gateway.ClassUnclear), a.Classification)
			}
		}
		// The console's refund cannot be ours (another amount), so the
		// cancel goes out against the new balance under a new key at once:
		// another balance is another request (docs/design.md, "A balance
		// we cannot explain").
		require.Equal(t, 1, broken, "refused once; the resend is another request, under a new key")
	})

	// PortOne holds the cancel past the relay's timeout and performs it
	// later, answering IDEMPOTENCY_OUTSTANDING_REQUEST to the same key
	// meanwhile: one cancel, one refund, one key.
	t.Run("Held", func(t *testing.T) {
		t.Parallel()
		hold := time.Second
		b := setup(t, setupOpts{gatewayTimeout: 200 * time.Millisecond})
		p, id := b.portOneConfirmed(t, 15000)
		cfg := b.sim.Config()
		cfg.HoldRate, cfg.HoldFor = 1, gatewaysim.Duration(hold)
		require.NoError(t, b.sim.SetConfig(cfg))

		c := b.requestCancel(t, p.ID, 0)
		b.waitStatus(t, p.ID, payment.StatusCanceled)
		time.Sleep(2 * hold)

		e := b.ledger(t, id)
		require.Len(t, e.Refunds, 1, "one refund for one cancel")
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
		require.Zero(t, e.BalanceAmount)
		got, err := b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
		require.NoError(t, err)
		require.Zero(t, got.BalanceAmount)
		outstanding := 0
		for _, a := range got.Attempts {
			if a.Operation == payment.OperationCancel {
				require.Equal(t, c.IdempotencyKey, a.IdempotencyKey, "never a second key while a request may still run")
				if a.GatewayCode == "IDEMPOTENCY_OUTSTANDING_REQUEST" {
					outstanding++
				}
			}
		}
		require.GreaterOrEqual(t, outstanding, 1)
	})
}
