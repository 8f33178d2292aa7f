package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
)

// fastRecheck looks again within a test's patience.
var fastRecheck = payment.Recheck{Window: time.Hour, First: 50 * time.Millisecond, MaxGap: 100 * time.Millisecond}

// newReadyPortOne creates a PortOne intent as the api does (its paymentId
// bound at create) and has the customer in PortOne's browser SDK do pay (a
// zero Status pays; "" PaymentID leaves the customer away).
func (b *testBundle) newReadyPortOne(t *testing.T, amount int64) payment.Payment {
	t.Helper()
	p, _ := b.newPortOnePayment(t, amount, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneReady})
	return p
}

// pay is the customer paying in PortOne's browser SDK for an intent.
func (b *testBundle) pay(t *testing.T, p payment.Payment, paid int64) {
	t.Helper()
	_, err := b.sim.PortOnePay(gatewaysim.PortOnePayRequest{PaymentID: p.PaymentKey, OrderID: p.OrderID, Amount: p.Amount, PaidAmount: paid})
	require.NoError(t, err)
}

// requestLookup does what a gateway webhook does: asks for a lookup.
func (b *testBundle) requestLookup(t *testing.T, id string) bool {
	t.Helper()
	flow, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.client, WebhookLookupInterval: testLookupInterval})
	require.NoError(t, err)
	var inserted bool
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		p, err := b.store.PaymentForUpdate(context.Background(), tx, id)
		if err != nil {
			return err
		}
		inserted, err = flow.RequestLookup(context.Background(), tx, p)
		return err
	}))
	return inserted
}

// TestPortOnePaidNeverConfirmed: with PortOne the customer pays in the
// browser before our server hears of it. A checkout that never confirms
// (the browser closed after paying, the checkout crashed) must not leave the
// customer charged for ever while we say ready; a cancel of such an intent
// must refund, not void; and a confirm that comes late is answered with
// what happened, not 409.
func TestPortOnePaidNeverConfirmed(t *testing.T) {
	t.Parallel()

	t.Run("SweepAdoptsTheCharge", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Millisecond, recheck: fastRecheck})
		p, _ := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{})
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Equal(t, int64(15000), got.BalanceAmount)
		e := b.ledger(t, p.PaymentKey)
		require.Equal(t, 1, e.Approvals)
		require.Empty(t, e.Refunds)
		require.Nil(t, got.RecheckUntil, "a charged payment is not rechecked")

		// The checkout's confirm, late: the same payment, as it stands.
		b.requestConfirm(t, p.ID, p.PaymentKey, 15000, nil)
		require.Equal(t, payment.StatusConfirmed, b.waitStatus(t, p.ID, payment.StatusConfirmed).Status)
	})

	t.Run("SweepRefundsAnotherAmount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Millisecond, recheck: fastRecheck})
		p, _ := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{PaidAmount: 1000})
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, "approval_mismatch", got.FailureCode)
		e := b.ledger(t, p.PaymentKey)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, int64(1000), e.Refunds[0].Amount)
	})

	t.Run("CancelOfAPaidIntentRefunds", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, _ := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{})
		b.requestCancel(t, p.ID, 0)
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Zero(t, got.BalanceAmount)
		e := b.ledger(t, p.PaymentKey)
		require.Len(t, e.Refunds, 1, "the customer paid: the cancel must give it back")
		require.Equal(t, int64(15000), e.Refunds[0].Amount)

		// A confirm after the cancel is answered with its outcome.
		b.requestConfirm(t, p.ID, p.PaymentKey, 15000, nil)
		require.Equal(t, payment.StatusCanceled, b.waitStatus(t, p.ID, payment.StatusCanceled).Status)
	})

	t.Run("VoidedThenPaidIsRefunded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Hour, recheck: fastRecheck})
		p := b.newReadyPortOne(t, 15000)
		c := b.requestCancel(t, p.ID, 0)
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, c.ID, got.Cancels[0].ID)
		require.Equal(t, payment.CancelVoid, got.Cancels[0].Status, "nothing was paid: void")
		require.NotNil(t, got.RecheckUntil, "a void on our side is provisional")

		// The customer's browser was still open: they pay under the id.
		b.pay(t, p, 0)
		require.Eventually(t, func() bool {
			e, ok := b.sim.LedgerEntry(p.PaymentKey)
			return ok && len(e.Refunds) == 1
		}, 15*time.Second, 20*time.Millisecond, "the late charge is refunded")
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Zero(t, got.BalanceAmount)
		require.Equal(t, payment.CodeChargeUnwanted, got.FailureCode)
		b.waitDrained(t)
		require.Len(t, b.ledger(t, p.PaymentKey).Refunds, 1, "once")
	})
}

// TestGuessedStatesAreRechecked: states we decided on our own clock
// (expired after the open deadline) are provisional at a gateway that
// charges before our confirm. A customer who pays after that is charged
// while we say expired unless we look again.
func TestGuessedStatesAreRechecked(t *testing.T) {
	t.Parallel()

	t.Run("LatePaymentAfterExpiredIsAdopted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Hour, recheck: fastRecheck, openDeadline: time.Millisecond})
		p := b.newReadyPortOne(t, 15000)
		b.requestConfirm(t, p.ID, p.PaymentKey, 15000, nil)
		b.waitStatus(t, p.ID, payment.StatusExpired)

		b.pay(t, p, 0)
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.BalanceAmount)
		require.Equal(t, 1, b.ledger(t, p.PaymentKey).Approvals)
	})

	t.Run("LatePaymentAfterAVoidedCancelIsRefunded", func(t *testing.T) {
		t.Parallel()
		// Paused, so the cancel is surely recorded while the confirm waits.
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Hour, recheck: fastRecheck, openDeadline: time.Millisecond, paused: true})
		p := b.newReadyPortOne(t, 15000)
		b.requestConfirm(t, p.ID, p.PaymentKey, 15000, nil)
		b.requestCancel(t, p.ID, 0) // waits for the confirm
		b.start(t)
		got := b.waitStatus(t, p.ID, payment.StatusExpired)
		require.Equal(t, payment.CancelVoid, got.Cancels[0].Status)

		b.pay(t, p, 0)
		require.Eventually(t, func() bool {
			e, ok := b.sim.LedgerEntry(p.PaymentKey)
			return ok && len(e.Refunds) == 1
		}, 15*time.Second, 20*time.Millisecond, "the shop canceled: the late charge goes back")
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, payment.CodeChargeUnwanted, got.FailureCode)
	})
}

// heldLookups is a PortOne gateway whose lookups, while armed, read the
// gateway and then wait before answering: a slow answer, whose record is
// older than what the gateway holds by the time it arrives.
type heldLookups struct {
	relay.Gateway
	mu      sync.Mutex
	armed   bool
	read    chan struct{}
	release chan struct{}
}

func (h *heldLookups) Lookup(ctx context.Context, paymentKey string) gateway.Result {
	res := h.Gateway.Lookup(ctx, paymentKey)
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if armed {
		close(h.read)
		<-h.release
	}
	return res
}

// TestLookupRequestsAreNeverLost: a webhook that asks for a lookup while
// one is running (unique lookups skip it as a duplicate) must still be
// answered by a lookup that reads the gateway after it; and a request whose
// lookup was lost must be found again.
func TestLookupRequestsAreNeverLost(t *testing.T) {
	t.Parallel()

	t.Run("AskedWhileOneRuns", func(t *testing.T) {
		t.Parallel()
		h := &heldLookups{read: make(chan struct{}), release: make(chan struct{}), armed: true}
		b := setup(t, setupOpts{wrapPortOne: func(g relay.Gateway) relay.Gateway { h.Gateway = g; return h }})
		p := b.newReadyPortOne(t, 15000)
		require.True(t, b.requestLookup(t, p.ID))
		<-h.read // the running lookup has read READY

		b.pay(t, p, 0)
		require.True(t, b.requestLookup(t, p.ID), "the running lookup makes the new one wait for the next interval")
		close(h.release)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.BalanceAmount)
		b.waitDrained(t)
		got, err := b.store.Payment(context.Background(), b.pool, p.ID)
		require.NoError(t, err)
		require.Nil(t, got.LookupWantedAt, "answered")
	})

	t.Run("LostLookupIsFoundAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, readySweepAfter: time.Hour, recheck: fastRecheck})
		p, _ := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{})
		// A webhook's request whose lookup job is gone (discarded after its
		// attempts, say): only the request is left.
		_, err := b.pool.Exec(context.Background(), "UPDATE payments SET lookup_wanted_at = now() - interval '1 hour' WHERE id = $1", p.ID)
		require.NoError(t, err)
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.BalanceAmount)
	})
}
