package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMaxInFlight fills the in-flight cap with requests held on a row lock
// and sees the next one refused at once with 503 overloaded and Retry-After,
// counted, and having written nothing; the probes, /metrics and a waiting
// read are not held back by the cap, and once the held requests finish the
// api takes work again.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxInFlight = 2 })
	ctx := t.Context()

	held := b.createPayment(t, "order-held", 15000)
	waited := b.createPayment(t, "order-waited", 15000)
	b.confirmPayment(t, waited.ID, "pk_waited", 15000)

	// A read waiting for the confirming payment to settle stops counting
	// once it waits: it must not take a slot for up to 30s.
	waitDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { waitDone <- b.do(t, http.MethodGet, "/v1/payments/"+waited.ID+"?wait=20s", "") }()
	require.Eventually(t, func() bool {
		b.server.waiter.mu.Lock()
		defer b.server.waiter.mu.Unlock()
		return b.server.waiter.n == 1
	}, 5*time.Second, 5*time.Millisecond, "the read is waiting")
	require.Eventually(t, func() bool { return b.server.checkout.inFlight() == 0 }, 5*time.Second, time.Millisecond,
		"a waiting read holds no slot")

	// Two confirms of a payment the test holds locked fill the cap.
	lockTx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lockTx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = lockTx.Exec(ctx, "SELECT 1 FROM payments WHERE id = $1::uuid FOR UPDATE", held.ID)
	require.NoError(t, err)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			codes <- b.postJSON(t, "/v1/payments/"+held.ID+"/confirm", `{"paymentKey":"pk_held","amount":15000}`).Code
		})
	}
	require.Eventually(t, func() bool { return b.server.checkout.inFlight() == 2 }, 5*time.Second, time.Millisecond)

	// The third request: refused before it did anything, Idempotency-Key
	// and all.
	start := time.Now()
	rec := b.do(t, http.MethodPost, "/v1/payments", `{"orderId":"order-refused","amount":15000,"orderName":"Blue shirt"}`,
		"Content-Type", "application/json", headerIdempotencyKey, "refused-1")
	requireProblem(t, rec, http.StatusServiceUnavailable, codeOverloaded)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Less(t, time.Since(start), 3*time.Second, "refused at once, not queued behind the held requests")
	require.Equal(t, 2, b.countPayments(t), "the refused create wrote no payment")
	require.Equal(t, 0, b.countIdempotencyRecords(t), "nor an Idempotency-Key record")
	// A confirm is refused the same way, and enqueues nothing.
	rec = b.postJSON(t, "/v1/payments/"+held.ID+"/confirm", `{"paymentKey":"pk_held","amount":15000}`)
	requireProblem(t, rec, http.StatusServiceUnavailable, codeOverloaded)
	require.Equal(t, 0, b.countJobs(t, kindConfirm, held.ID))

	// The probes and the metrics answer regardless, and do not count.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "").Code)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/readyz", "").Code)
	rec = b.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "\npayment_outbox_http_overloaded_total 2\n")
	require.Contains(t, rec.Body.String(), `payment_outbox_http_requests_total{method="POST",route="/v1/payments",status="503"} 1`)
	require.Equal(t, 2, b.server.checkout.inFlight())

	// Let the held confirms through: one confirms, the other repeats it.
	require.NoError(t, lockTx.Rollback(ctx))
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusAccepted, c)
	}
	require.Equal(t, 0, b.server.checkout.inFlight())
	require.Equal(t, 1, b.countJobs(t, kindConfirm, held.ID))
	b.createPayment(t, "order-after", 15000)

	// The waiting read is still waiting, and answers when its payment
	// settles.
	select {
	case rec := <-waitDone:
		t.Fatalf("the waiting read answered early: %d %s", rec.Code, rec.Body.String())
	default:
	}
	b.approve(t, waited.ID)
	select {
	case rec := <-waitDone:
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.True(t, strings.Contains(rec.Body.String(), `"status":"confirmed"`), rec.Body.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting read did not answer")
	}
	require.Equal(t, 0, b.server.checkout.inFlight())
}
