package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// approveThroughFlow records the gateway's approval the way the relay does
// (payflow). Nothing tells the waiter: its poll finds the change.
func (b *testBundle) approveThroughFlow(t *testing.T, id string) {
	t.Helper()
	flow, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.cfg.Outbox})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := b.store.Payment(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = flow.RecordApproval(ctx, tx, id, payment.Approval{
			OrderID: p.OrderID, TotalAmount: p.Amount, BalanceAmount: p.Amount, Method: "카드", ApprovedAt: time.Now(),
		})
		return err
	}))
}

func (b *testBundle) confirming(t *testing.T, orderID string) paymentResponse {
	t.Helper()
	p := b.createPayment(t, orderID, 3000)
	return b.confirmPayment(t, p.ID, "pk_"+orderID, 3000)
}

func TestWait(t *testing.T) {
	t.Parallel()

	t.Run("answers as soon as the payment settles", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		t.Cleanup(b.server.Close)
		p := b.confirming(t, "order-wait-0001")

		go func() {
			time.Sleep(300 * time.Millisecond)
			b.approveThroughFlow(t, p.ID)
		}()
		start := time.Now()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=20s", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "confirmed", decode[paymentResponse](t, rec).Status)
		require.Less(t, time.Since(start), 10*time.Second, "woken by the change, not the timeout")
	})

	t.Run("answers with the payment as it stands when the time is up", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		t.Cleanup(b.server.Close)
		p := b.confirming(t, "order-wait-0002")
		start := time.Now()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=300ms", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "confirming", decode[paymentResponse](t, rec).Status)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	})

	t.Run("does not wait for a payment that is not in flight", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		t.Cleanup(b.server.Close)
		p := b.createPayment(t, "order-wait-0003", 1000)
		start := time.Now()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=30s", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "ready", decode[paymentResponse](t, rec).Status)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("bad waits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wait-0004", 1000)
		for _, q := range []string{"wait=31s", "wait=-1s", "wait=soon", "wait=1s&wait=2s"} {
			requireProblem(t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?"+q, ""), http.StatusBadRequest, payment.CodeInvalidRequest)
		}
	})

	t.Run("too many waiters get 429; Close ends the waits", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) { c.MaxWaiters = 1 })
		p := b.confirming(t, "order-wait-0005")

		first := make(chan *httptest.ResponseRecorder, 1)
		go func() { first <- b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=25s", "") }()
		require.Eventually(t, func() bool {
			b.server.waiter.mu.Lock()
			defer b.server.waiter.mu.Unlock()
			return b.server.waiter.n == 1
		}, 5*time.Second, 5*time.Millisecond)

		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=1s", "")
		requireProblem(t, rec, http.StatusTooManyRequests, codeTooManyWaiters)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		// Reading without waiting still works.
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Code)

		start := time.Now()
		b.server.Close()
		select {
		case rec := <-first:
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "confirming", decode[paymentResponse](t, rec).Status)
			require.Less(t, time.Since(start), 5*time.Second)
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not end the wait")
		}
	})
}

// TestAcceptedHeaders: a 202 says where to read the payment and when, and a
// replay says the same.
func TestAcceptedHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-accepted-1", 3000)

	body := `{"paymentKey":"pk_accepted_1","amount":3000}`
	for range 2 {
		rec := b.do(t, http.MethodPost, "/v1/payments/"+p.ID+"/confirm", body,
			"Content-Type", "application/json", headerIdempotencyKey, "confirm-"+p.ID)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Equal(t, "/v1/payments/"+p.ID, rec.Header().Get("Location"))
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
	}

	b.approve(t, p.ID)
	rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"returned"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, "/v1/payments/"+p.ID, rec.Header().Get("Location"))
	require.Equal(t, "1", rec.Header().Get("Retry-After"))

	// A cancel that is done at once is no 202 and has nothing to wait for.
	ready := b.createPayment(t, "order-accepted-2", 3000)
	rec = b.postJSON(t, "/v1/payments/"+ready.ID+"/cancel", `{"reason":"changed my mind"}`)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Header().Get("Retry-After"))
}
