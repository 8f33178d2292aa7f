package gatewaysim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConsoleCancel(t *testing.T) {
	t.Parallel()

	t.Run("TossPartialThenRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		auth := b.approved(t, "order-console-1", 10_000)
		res, err := b.control.ConsoleCancel(context.Background(), ConsoleCancelRequest{PaymentKey: auth.PaymentKey, Amount: 2_000, Reason: "staff refund"})
		require.NoError(t, err)
		require.Equal(t, ConsoleCancelResult{PaymentKey: auth.PaymentKey, Gateway: GatewayToss, Status: StatusPartialCanceled,
			BalanceAmount: 8_000, TransactionKey: res.TransactionKey}, res)
		require.NotEmpty(t, res.TransactionKey)

		// The lookup lists it among the payment's cancels.
		p := b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t)
		require.Equal(t, int64(8_000), p.BalanceAmount)
		require.Len(t, p.Cancels, 1)
		require.Equal(t, res.TransactionKey, p.Cancels[0].TransactionKey)
		require.Equal(t, int64(2_000), p.Cancels[0].CancelAmount)
		require.Equal(t, "staff refund", p.Cancels[0].CancelReason)

		// Amount 0 is the whole balance.
		res, err = b.control.ConsoleCancel(context.Background(), ConsoleCancelRequest{PaymentKey: auth.PaymentKey})
		require.NoError(t, err)
		require.Equal(t, StatusCanceled, res.Status)
		require.Zero(t, res.BalanceAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 2)
		for _, r := range entry.Refunds {
			require.True(t, r.Console)
			require.Empty(t, r.IdempotencyKey)
		}
		require.Equal(t, []int64{2_000, 8_000}, []int64{entry.Refunds[0].Amount, entry.Refunds[1].Amount})
		// Nothing went through the merchant's API.
		require.Equal(t, []string{OutcomeProcessed, OutcomeProcessed}, b.outcomes(t, auth.PaymentKey), "the confirm and the lookup")
	})

	t.Run("APIRefundIsNotConsole", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		auth := b.approved(t, "order-console-2", 10_000)
		b.cancel(t, auth.PaymentKey, "cancel-console-2", map[string]any{"cancelReason": "api", "cancelAmount": 1_000}).payment(t)
		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.False(t, entry.Refunds[0].Console)
		require.Equal(t, "cancel-console-2", entry.Refunds[0].IdempotencyKey)
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		auth := b.approved(t, "order-console-3", 10_000)
		unpaid := b.authorize(t, "order-console-4", 10_000)
		ctx := context.Background()
		for name, tc := range map[string]struct {
			req    ConsoleCancelRequest
			status int
		}{
			"no paymentKey":   {ConsoleCancelRequest{Amount: 1}, http.StatusBadRequest},
			"negative amount": {ConsoleCancelRequest{PaymentKey: auth.PaymentKey, Amount: -1}, http.StatusBadRequest},
			"unknown payment": {ConsoleCancelRequest{PaymentKey: "tgen_nosuchpayment"}, http.StatusNotFound},
			"above balance":   {ConsoleCancelRequest{PaymentKey: auth.PaymentKey, Amount: 10_001}, http.StatusConflict},
			"never charged":   {ConsoleCancelRequest{PaymentKey: unpaid.PaymentKey}, http.StatusConflict},
		} {
			_, err := b.control.ConsoleCancel(ctx, tc.req)
			var simErr *Error
			require.ErrorAs(t, err, &simErr, name)
			require.Equal(t, tc.status, simErr.Status, name)
		}
		// An unknown field is refused too.
		res, err := http.Post(b.baseURL+"/sim/v1/console/cancel", "application/json",
			strings.NewReader(`{"paymentKey":"`+auth.PaymentKey+`","amont":1}`))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Equal(t, int64(10_000), entry.BalanceAmount)
		require.Empty(t, entry.Refunds)
		require.Equal(t, StatusInProgress, b.ledgerEntry(t, unpaid.PaymentKey).Status)
	})

	t.Run("PortOneListedAndWebhooked", func(t *testing.T) {
		t.Parallel()
		rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusOK })
		sim, srv := newWebhookSim(t, hook.URL)
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-console-0001", OrderID: "order-console-5", Amount: 10_000})
		require.NoError(t, err)
		rc.waitFor(1)

		res, err := sim.ConsoleCancel(ConsoleCancelRequest{PaymentKey: "pay-console-0001", Amount: 2_000})
		require.NoError(t, err)
		require.Equal(t, PortOnePartialCancelled, res.Status)
		require.Equal(t, int64(8_000), res.BalanceAmount)
		ev := rc.waitFor(2)[1]
		require.Equal(t, "Transaction.PartialCancelled", ev.event.Type)
		require.Equal(t, res.TransactionKey, ev.event.Data.CancellationID)

		status, p := portOneCall(t, srv, http.MethodGet, "/payments/pay-console-0001", "", "")
		require.Equal(t, http.StatusOK, status)
		cancellations := p["cancellations"].([]any)
		require.Len(t, cancellations, 1)
		c := cancellations[0].(map[string]any)
		require.Equal(t, res.TransactionKey, c["id"])
		require.Equal(t, float64(2_000), c["totalAmount"])
		require.Equal(t, "CONSOLE", c["trigger"])
		require.Equal(t, float64(2_000), p["amount"].(map[string]any)["cancelled"])

		entry, ok := sim.LedgerEntry("pay-console-0001")
		require.True(t, ok)
		require.Len(t, entry.Refunds, 1)
		require.True(t, entry.Refunds[0].Console)
		require.Empty(t, entry.Refunds[0].IdempotencyKey)
	})
}

func TestKeyRetention(t *testing.T) {
	t.Parallel()

	t.Run("PortOneDefaultIsThreeHours", func(t *testing.T) {
		t.Parallel()
		clock := &testClock{now: time.Date(2024, 2, 13, 12, 0, 0, 0, kst)}
		sim, err := New(Options{Now: clock.Now})
		require.NoError(t, err)
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		t.Cleanup(sim.Close)
		_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-retention-0001", OrderID: "order-retention-1", Amount: 10_000})
		require.NoError(t, err)

		const key = "cancel-retention-0001"
		body := `{"reason":"returned","amount":3000}`
		status, first := portOneCall(t, srv, http.MethodPost, "/payments/pay-retention-0001/cancel", key, body)
		require.Equal(t, http.StatusOK, status, first)
		// Within three hours the key replays the first answer.
		clock.Advance(3*time.Hour - time.Second)
		status, again := portOneCall(t, srv, http.MethodPost, "/payments/pay-retention-0001/cancel", key, body)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, first, again)
		// Past them it is forgotten: the repeat is a fresh cancel.
		clock.Advance(time.Second)
		status, fresh := portOneCall(t, srv, http.MethodPost, "/payments/pay-retention-0001/cancel", key, body)
		require.Equal(t, http.StatusOK, status, fresh)
		require.NotEqual(t, first, fresh)

		entry, _ := sim.LedgerEntry("pay-retention-0001")
		require.Equal(t, int64(4_000), entry.BalanceAmount)
		require.Len(t, entry.Refunds, 2)
	})

	t.Run("ScaledDown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.setConfig(t, Config{TossKeyRetention: Duration(time.Minute), PortOneKeyRetention: Duration(time.Second)})
		auth := b.approved(t, "order-retention-2", 10_000)
		body := map[string]any{"cancelReason": "returned", "cancelAmount": 1_000}
		first := b.cancel(t, auth.PaymentKey, "cancel-retention-2", body)
		b.clock.Advance(time.Minute - time.Second)
		require.Equal(t, first, b.cancel(t, auth.PaymentKey, "cancel-retention-2", body))
		b.clock.Advance(time.Second)
		require.NotEqual(t, first, b.cancel(t, auth.PaymentKey, "cancel-retention-2", body))
		require.Equal(t, int64(8_000), b.ledgerEntry(t, auth.PaymentKey).BalanceAmount)

		cfg, err := b.control.Config(context.Background())
		require.NoError(t, err)
		require.Equal(t, Duration(time.Minute), cfg.TossKeyRetention)
		require.Equal(t, Duration(time.Second), cfg.PortOneKeyRetention)
	})

	t.Run("NegativeRefused", func(t *testing.T) {
		t.Parallel()
		require.Error(t, Config{TossKeyRetention: Duration(-time.Second)}.Validate())
		require.Error(t, Config{PortOneKeyRetention: Duration(-time.Second)}.Validate())
	})
}
