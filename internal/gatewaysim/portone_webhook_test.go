package gatewaysim

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

var testWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("gatewaysim-portone-webhook-test"))

// webhookDelivery is one POST the receiver took.
type webhookDelivery struct {
	id       string
	verified bool
	event    portOneWebhook
}

// webhookReceiver is a PortOne webhook endpoint that checks each delivery's
// signature with the Standard Webhooks library and answers with the status
// answer returns for the delivery's attempt number under its webhook-id
// (1 for the first).
type webhookReceiver struct {
	t      *testing.T
	secret *standardwebhooks.Webhook
	answer func(attempt int) int

	mu         sync.Mutex
	deliveries []webhookDelivery
	attempts   map[string]int
}

func newWebhookReceiver(t *testing.T, answer func(attempt int) int) (*webhookReceiver, *httptest.Server) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testWebhookSecret)
	require.NoError(t, err)
	rc := &webhookReceiver{t: t, secret: wh, answer: answer, attempts: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := webhookDelivery{id: r.Header.Get("webhook-id"), verified: rc.secret.Verify(body, r.Header) == nil}
	if err := json.Unmarshal(body, &d.event); err != nil {
		rc.t.Errorf("webhook body %q is not JSON: %v", body, err)
	}
	rc.mu.Lock()
	rc.deliveries = append(rc.deliveries, d)
	rc.attempts[d.id]++
	attempt := rc.attempts[d.id]
	rc.mu.Unlock()
	w.WriteHeader(rc.answer(attempt))
}

// waitFor returns the deliveries once there are n of them.
func (rc *webhookReceiver) waitFor(n int) []webhookDelivery {
	rc.t.Helper()
	var got []webhookDelivery
	require.Eventually(rc.t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		got = append([]webhookDelivery(nil), rc.deliveries...)
		return len(got) >= n
	}, 5*time.Second, 10*time.Millisecond, "want %d webhook deliveries", n)
	return got
}

func newWebhookSim(t *testing.T, url string) (*Simulator, *httptest.Server) {
	t.Helper()
	sim, srv := newPortOneSim(t)
	require.NoError(t, sim.SetConfig(Config{PortOneWebhookURL: url, PortOneWebhookSecret: testWebhookSecret}))
	return sim, srv
}

func TestPortOneWebhookOnEveryStatusChange(t *testing.T) {
	t.Parallel()
	rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusOK })
	sim, srv := newWebhookSim(t, hook.URL)

	_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-0001", OrderID: "order-wh-0001", Amount: 15000})
	require.NoError(t, err)
	// Each event is waited for before the next change, so they arrive in
	// order (deliveries run concurrently).
	paid := rc.waitFor(1)[0]
	status, c := portOneCall(t, srv, http.MethodPost, "/payments/pay-wh-0001/cancel", "webhook-cancel-0001", `{"reason":"one returned","amount":5000}`)
	require.Equal(t, http.StatusOK, status, c)
	partial := rc.waitFor(2)[1]
	status, c = portOneCall(t, srv, http.MethodPost, "/payments/pay-wh-0001/cancel", "webhook-cancel-0002", `{"reason":"rest returned"}`)
	require.Equal(t, http.StatusOK, status, c)
	cancelled := rc.waitFor(3)[2]
	_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-0002", OrderID: "order-wh-0002", Amount: 9000, Status: PortOneFailed})
	require.NoError(t, err)
	failed := rc.waitFor(4)[3]

	for _, d := range []webhookDelivery{paid, partial, cancelled, failed} {
		require.True(t, d.verified, "signature of %s verifies with the secret", d.event.Type)
		require.NotEmpty(t, d.id)
		require.Equal(t, DefaultPortOneStoreID, d.event.Data.StoreID)
		_, err := time.Parse(time.RFC3339, d.event.Timestamp)
		require.NoError(t, err)
	}
	require.Equal(t, "Transaction.Paid", paid.event.Type)
	require.Equal(t, "pay-wh-0001", paid.event.Data.PaymentID)
	require.Empty(t, paid.event.Data.CancellationID)
	require.Equal(t, "Transaction.PartialCancelled", partial.event.Type)
	require.NotEmpty(t, partial.event.Data.CancellationID)
	require.Equal(t, "Transaction.Cancelled", cancelled.event.Type)
	require.Equal(t, "pay-wh-0001", cancelled.event.Data.PaymentID)
	// The cancellation the cancel call answered with.
	require.Equal(t, c["cancellation"].(map[string]any)["id"], cancelled.event.Data.CancellationID)
	require.Equal(t, "Transaction.Failed", failed.event.Type)
	require.Equal(t, "pay-wh-0002", failed.event.Data.PaymentID)
	require.Len(t, map[string]bool{paid.id: true, partial.id: true, cancelled.id: true, failed.id: true}, 4, "one webhook-id per event")

	// Paying again for a payment already paid changes nothing, so it sends
	// nothing: the next event the receiver sees is the next change.
	_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-0002", OrderID: "order-wh-0002", Amount: 9000, Status: PortOneFailed})
	require.NoError(t, err)
	_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-0003", OrderID: "order-wh-0003", Amount: 1000})
	require.NoError(t, err)
	next := rc.waitFor(5)[4]
	require.Equal(t, "pay-wh-0003", next.event.Data.PaymentID)
}

func TestPortOneWebhookRetries(t *testing.T) {
	t.Parallel()

	t.Run("UntilAccepted", func(t *testing.T) {
		t.Parallel()
		// Two failures, then a 2xx: three attempts of the same message.
		rc, hook := newWebhookReceiver(t, func(attempt int) int {
			if attempt < 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		sim, _ := newWebhookSim(t, hook.URL)
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-retry", OrderID: "order-wh-retry", Amount: 1000})
		require.NoError(t, err)
		got := rc.waitFor(3)
		for _, d := range got {
			require.True(t, d.verified, "each attempt is signed afresh and verifies")
			require.Equal(t, got[0].id, d.id, "a retry keeps the webhook-id")
			require.Equal(t, got[0].event, d.event, "and the body, timestamp included")
		}
		// Accepted on the third: no fourth attempt follows.
		time.Sleep(4 * portOneWebhookBackoff)
		require.Len(t, rc.waitFor(3), 3)
	})

	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusInternalServerError })
		sim, _ := newWebhookSim(t, hook.URL)
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-down", OrderID: "order-wh-down", Amount: 1000})
		require.NoError(t, err)
		rc.waitFor(portOneWebhookAttempts)
		// Longer than the next backoff would be, had there been one.
		time.Sleep(time.Duration(1<<portOneWebhookAttempts) * portOneWebhookBackoff)
		require.Len(t, rc.waitFor(portOneWebhookAttempts), portOneWebhookAttempts)
	})
}

func TestPortOneWebhookNeverHoldsUpTheCall(t *testing.T) {
	t.Parallel()
	// A receiver that takes its time: the pay and the lookup still answer
	// at once, because the delivery runs in the background without the
	// payment's lock.
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- struct{}{}
		<-release
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) })
	sim, srv := newWebhookSim(t, hook.URL)

	done := make(chan error, 1)
	go func() {
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-slow", OrderID: "order-wh-slow", Amount: 1000})
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("PortOnePay waited for the webhook receiver")
	}
	<-received
	// The receiver is still holding the delivery; the payment is not locked.
	status, p := portOneCall(t, srv, http.MethodGet, "/payments/pay-wh-slow", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, PortOnePaid, p["status"])
}

func TestPortOneWebhookFaults(t *testing.T) {
	t.Parallel()
	faulty := func(t *testing.T, url string, cfg Config) *Simulator {
		t.Helper()
		sim, _ := newPortOneSim(t)
		cfg.PortOneWebhookURL, cfg.PortOneWebhookSecret = url, testWebhookSecret
		require.NoError(t, sim.SetConfig(cfg))
		return sim
	}

	t.Run("Dropped", func(t *testing.T) {
		t.Parallel()
		rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusOK })
		sim := faulty(t, hook.URL, Config{PortOneWebhookDropRate: 1})
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-drop", OrderID: "order-wh-drop", Amount: 1000})
		require.NoError(t, err)
		// Counted before PortOnePay returns: nothing was sent, nor will be.
		require.Equal(t, WebhookStats{Events: 1, Dropped: 1}, sim.WebhookStats())
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Empty(t, rc.deliveries)
	})

	t.Run("Duplicated", func(t *testing.T) {
		t.Parallel()
		rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusOK })
		sim := faulty(t, hook.URL, Config{PortOneWebhookDuplicateRate: 1})
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-dup", OrderID: "order-wh-dup", Amount: 1000})
		require.NoError(t, err)
		got := rc.waitFor(2)
		require.Equal(t, got[0].id, got[1].id, "a duplicate is the same message")
		require.Equal(t, got[0].event, got[1].event)
		for _, d := range got {
			require.True(t, d.verified)
		}
		require.Eventually(t, func() bool { return sim.WebhookStats().Delivered == 2 }, 5*time.Second, 10*time.Millisecond)
		require.Equal(t, WebhookStats{Events: 1, Duplicated: 1, Delivered: 2}, sim.WebhookStats())
	})

	t.Run("DelayedUntilClose", func(t *testing.T) {
		t.Parallel()
		rc, hook := newWebhookReceiver(t, func(int) int { return http.StatusOK })
		// Held back for an hour: only Close, which cuts every wait short,
		// lets it go, so its arrival proves it was waiting.
		sim := faulty(t, hook.URL, Config{PortOneWebhookDelay: Duration(time.Hour), PortOneWebhookDelayJitter: Duration(time.Minute)})
		_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-wh-late", OrderID: "order-wh-late", Amount: 1000})
		require.NoError(t, err)
		require.Equal(t, WebhookStats{Events: 1, Delayed: 1}, sim.WebhookStats())
		sim.Close()
		d := rc.waitFor(1)[0]
		require.Equal(t, "Transaction.Paid", d.event.Type)
	})

	t.Run("BadRatesRefused", func(t *testing.T) {
		t.Parallel()
		for name, cfg := range map[string]Config{
			"portOneWebhookDropRate":      {PortOneWebhookDropRate: 1.5},
			"portOneWebhookDuplicateRate": {PortOneWebhookDuplicateRate: -0.1},
			"portOneWebhookDelay":         {PortOneWebhookDelay: Duration(-time.Second)},
		} {
			err := cfg.Validate()
			require.ErrorContains(t, err, name)
		}
	})
}
