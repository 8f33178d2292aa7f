package gatewaysim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tossCallbacks is a Toss webhook endpoint that keeps every
// DEPOSIT_CALLBACK it is sent.
type tossCallbacks struct {
	mu  sync.Mutex
	got []tossDepositCallback
}

func newTossCallbacks(t *testing.T) (*tossCallbacks, *httptest.Server) {
	t.Helper()
	rc := &tossCallbacks{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var cb tossDepositCallback
		require.NoError(t, json.Unmarshal(body, &cb))
		rc.mu.Lock()
		rc.got = append(rc.got, cb)
		rc.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return rc, srv
}

// depositWithCallback issues a Toss virtual account on sim, whose config
// is cfg with its webhook URL, and pays into it.
func depositWithCallback(t *testing.T, url string, cfg Config) *Simulator {
	t.Helper()
	sim, err := New(Options{})
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	cfg.TossWebhookURL = url
	require.NoError(t, sim.SetConfig(cfg))
	auth, err := sim.Authorize(AuthorizeRequest{OrderID: "order-va-hook", Amount: 15000, Method: MethodVirtualAccount})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	body, err := json.Marshal(map[string]any{"paymentKey": auth.PaymentKey, "orderId": "order-va-hook", "amount": 15000})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/payments/confirm", bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(DefaultSecretKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = sim.Deposit(DepositRequest{PaymentKey: auth.PaymentKey})
	require.NoError(t, err)
	return sim
}

// TestTossDepositCallbackFaults: the DEPOSIT_CALLBACK is subject to the
// Toss webhook faults, counted apart from PortOne's.
func TestTossDepositCallbackFaults(t *testing.T) {
	t.Parallel()

	t.Run("Delivered", func(t *testing.T) {
		t.Parallel()
		rc, hook := newTossCallbacks(t)
		sim := depositWithCallback(t, hook.URL, Config{})
		require.Eventually(t, func() bool { return sim.TossWebhookStats().Delivered == 1 }, 5*time.Second, 10*time.Millisecond)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Len(t, rc.got, 1)
		require.Equal(t, StatusDone, rc.got[0].Status)
		require.NotEmpty(t, rc.got[0].Secret)
		require.Equal(t, WebhookStats{}, sim.WebhookStats(), "PortOne's counts are apart")
	})

	t.Run("Dropped", func(t *testing.T) {
		t.Parallel()
		rc, hook := newTossCallbacks(t)
		sim := depositWithCallback(t, hook.URL, Config{TossWebhookDropRate: 1})
		require.Equal(t, WebhookStats{Events: 1, Dropped: 1}, sim.TossWebhookStats())
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Empty(t, rc.got)
	})

	t.Run("Duplicated", func(t *testing.T) {
		t.Parallel()
		rc, hook := newTossCallbacks(t)
		sim := depositWithCallback(t, hook.URL, Config{TossWebhookDuplicateRate: 1, TossWebhookDelayJitter: Duration(50 * time.Millisecond)})
		require.Eventually(t, func() bool { return sim.TossWebhookStats().Delivered == 2 }, 5*time.Second, 10*time.Millisecond)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Len(t, rc.got, 2)
		require.Equal(t, rc.got[0], rc.got[1])
	})

	t.Run("BadConfigRefused", func(t *testing.T) {
		t.Parallel()
		for name, cfg := range map[string]Config{
			"tossWebhookDropRate":      {TossWebhookDropRate: 1.5},
			"tossWebhookDuplicateRate": {TossWebhookDuplicateRate: -0.1},
			"tossWebhookDelay":         {TossWebhookDelay: Duration(-time.Second)},
			"tossWebhookURL":           {TossWebhookURL: "ftp://x"},
		} {
			require.ErrorContains(t, cfg.Validate(), name)
		}
	})
}
