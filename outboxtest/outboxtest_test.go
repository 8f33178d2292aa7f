package outboxtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/outboxtest"
)

func TestMain(m *testing.M) { outboxtest.Main(m) }

// TestPaymentConfirmed takes one payment through the containers from intent
// to confirmed, as the README's walk-through does by hand.
func TestPaymentConfirmed(t *testing.T) {
	t.Parallel()
	b := setup(t, outboxtest.Options{})
	ctx := t.Context()

	if b.sys.APIKey != "" {
		status, _ := b.api.call(ctx, http.MethodGet, "/v1/payments?orderId=nobody-ordered-this", nil, nil, false)
		require.Equal(t, http.StatusUnauthorized, status, "a call without the key")
	}

	id, key := b.newConfirmedPayment(t, "single", 15000)
	p := b.api.waitStatus(t, id, "confirmed", time.Minute)
	require.Equal(t, int64(15000), p.ApprovedAmount)
	require.Len(t, p.Attempts, 1, "one gateway call")
	require.NotNil(t, p.Attempts[0].HTTPStatus)
	require.Equal(t, http.StatusOK, *p.Attempts[0].HTTPStatus)

	entry, err := b.sim.LedgerEntry(ctx, key)
	require.NoError(t, err)
	require.Equal(t, 1, entry.Approvals)
	require.Equal(t, "DONE", entry.Status)
}

// TestRollingRestartUnderLoad restarts each of two relays in turn, the way
// a rolling deploy does (SIGTERM, wait, start the new one), while payments
// keep coming, and checks that nothing is lost and nothing is charged twice.
func TestRollingRestartUnderLoad(t *testing.T) {
	t.Parallel()
	b := setup(t, outboxtest.Options{
		Relays: 2,
		// Some latency, so a relay is stopped with calls in flight.
		GatewaySimEnv: map[string]string{"SIM_LATENCY": "150ms", "SIM_LATENCY_JITTER": "100ms"},
	})
	ctx := t.Context()

	load := b.startLoad(t, 4)
	for _, r := range b.sys.Relays() {
		load.waitFor(t, 10) // payments keep coming between the restarts
		start := time.Now()
		code, err := r.Stop(ctx, 0)
		require.NoError(t, err)
		require.Zero(t, code, "%s exits 0 on SIGTERM (not killed) after %s", r.Name, time.Since(start))
		require.Less(t, time.Since(start), 30*time.Second, "%s stops within RELAY_SHUTDOWN_TIMEOUT", r.Name)
		logs, err := r.Logs(ctx)
		require.NoError(t, err)
		require.False(t, strings.Contains(logs, "grace period over"), "%s drained within RELAY_SHUTDOWN_TIMEOUT", r.Name)

		load.waitFor(t, 10) // the other relay alone works the outbox
		require.NoError(t, r.Start(ctx))
	}
	load.waitFor(t, 10)
	payments := load.stop(t)
	require.GreaterOrEqual(t, len(payments), 40)

	for id := range payments {
		b.api.waitStatus(t, id, "confirmed", 2*time.Minute)
	}
	b.requireOneApprovalEach(t, payments)
}

// TestRelayDrainsOnSIGTERM stops the only relay while its gateway calls are
// in flight (the simulator takes 2s to answer) and checks that it finishes
// them and records their outcomes before it exits: with no relay left
// running, only the stopping one can have written them.
func TestRelayDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	const latency = 2 * time.Second
	b := setup(t, outboxtest.Options{
		Relays:        1,
		GatewaySimEnv: map[string]string{"SIM_LATENCY": latency.String()},
	})
	ctx := t.Context()

	payments := map[string]string{}
	for i := range 5 {
		id, key := b.newConfirmedPayment(t, fmt.Sprintf("drain-%d", i), int64(1000*(i+1)))
		payments[id] = key
	}
	// In flight: the relay has recorded the call's start and not its end.
	require.Eventually(t, func() bool {
		for id := range payments {
			if !b.api.get(t, id).callInFlight() {
				return false
			}
		}
		return true
	}, latency, 20*time.Millisecond, "every confirm has its gateway call in flight")

	relay := b.sys.Relays()[0]
	start := time.Now()
	code, err := relay.Stop(ctx, 0)
	took := time.Since(start)
	require.NoError(t, err)
	require.Zero(t, code, "the relay exits 0 on SIGTERM (not killed)")
	require.Less(t, took, 30*time.Second, "within RELAY_SHUTDOWN_TIMEOUT")
	t.Logf("the relay stopped %s after SIGTERM", took.Round(time.Millisecond))

	logs, err := relay.Logs(ctx)
	require.NoError(t, err)
	require.True(t, strings.Contains(logs, "finishing in-flight jobs"), "the relay logged its soft stop")
	require.False(t, strings.Contains(logs, "grace period over"), "the relay drained within RELAY_SHUTDOWN_TIMEOUT")
	// River cancels running jobs when the context given to Client.Start
	// ends, whatever Stop does afterwards: a relay that starts River with
	// its signal context cuts its gateway calls off at SIGTERM, and they
	// fail with the signal as their cause.
	require.False(t, strings.Contains(logs, "signal received"), "SIGTERM cancelled the in-flight gateway calls instead of letting "+
		"them finish: the relay must start River with a context the signal does not cancel "+
		"(cmd/relay: client.Start(context.WithoutCancel(ctx)), then client.Stop on the signal)")

	for id := range payments {
		p := b.api.get(t, id)
		require.Equal(t, "confirmed", p.Status, "payment %s was recorded by the stopping relay", id)
		require.Len(t, p.Attempts, 1)
		require.NotNil(t, p.Attempts[0].HTTPStatus, "the attempt's answer is recorded")
		require.Equal(t, http.StatusOK, *p.Attempts[0].HTTPStatus)
	}
	b.requireOneApprovalEach(t, payments)
}

// testBundle is what each test works with.
type testBundle struct {
	sys *outboxtest.System
	api *apiClient
	sim *gatewaysim.Client
}

func setup(t *testing.T, opts outboxtest.Options) *testBundle {
	t.Helper()
	if testing.Short() {
		t.Skip("starts containers; skipped in -short")
	}
	if err := outboxtest.Available(t.Context()); err != nil {
		// The one reason to skip: no Docker engine. Missing images fail.
		t.Skipf("no Docker engine answers, so the container tests cannot run: %v", err)
	}
	opts.Logger = tclog.TestLogger(t)

	sys, err := outboxtest.Start(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			for name, out := range sys.Logs(ctx) {
				t.Logf("--- %s log (tail) ---\n%s", name, tail(out, 6000))
			}
		}
		require.NoError(t, sys.Terminate(ctx))
	})
	return &testBundle{
		sys: sys,
		api: &apiClient{base: sys.APIURL, key: sys.APIKey, http: &http.Client{Timeout: 10 * time.Second}},
		sim: gatewaysim.NewClient(sys.GatewaySimURL, nil),
	}
}

// newConfirmedPayment creates a payment, has the simulator authorize it as
// the customer's checkout would, and asks the api to confirm it. It returns
// the payment's id and paymentKey.
func (b *testBundle) newConfirmedPayment(t *testing.T, prefix string, amount int64) (string, string) {
	t.Helper()
	id, key, err := b.pay(t.Context(), prefix, amount)
	require.NoError(t, err)
	return id, key
}

// pay is newConfirmedPayment for goroutines: it returns errors.
func (b *testBundle) pay(ctx context.Context, prefix string, amount int64) (string, string, error) {
	orderID := fmt.Sprintf("%s-%d-%08x", prefix, time.Now().UnixNano(), rand.Uint32())
	var p payment
	status, err := b.api.call(ctx, http.MethodPost, "/v1/payments",
		map[string]any{"orderId": orderID, "amount": amount, "orderName": "outboxtest"}, &p, true)
	if err != nil || status != http.StatusCreated {
		return "", "", fmt.Errorf("creating %s: %d %v", orderID, status, err)
	}
	auth, err := b.sim.Authorize(ctx, gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: amount, OrderName: "outboxtest"})
	if err != nil {
		return "", "", fmt.Errorf("authorizing %s: %w", orderID, err)
	}
	status, err = b.api.call(ctx, http.MethodPost, "/v1/payments/"+p.ID+"/confirm",
		map[string]any{"paymentKey": auth.PaymentKey, "amount": amount}, nil, true)
	if err != nil || status != http.StatusAccepted {
		return "", "", fmt.Errorf("confirming %s: %d %v", p.ID, status, err)
	}
	return p.ID, auth.PaymentKey, nil
}

// requireOneApprovalEach checks the gateway's ledger: every payment (id →
// paymentKey) approved exactly once, and no payment anywhere approved twice.
func (b *testBundle) requireOneApprovalEach(t *testing.T, payments map[string]string) {
	t.Helper()
	ledger, err := b.sim.Ledger(t.Context())
	require.NoError(t, err)
	byKey := map[string]gatewaysim.LedgerEntry{}
	for _, e := range ledger.Payments {
		require.LessOrEqual(t, e.Approvals, 1, "double charge on %s", e.PaymentKey)
		byKey[e.PaymentKey] = e
	}
	for id, key := range payments {
		e, ok := byKey[key]
		require.True(t, ok, "payment %s (%s) is not in the gateway's ledger", id, key)
		require.Equal(t, 1, e.Approvals, "payment %s (%s)", id, key)
		require.Equal(t, "DONE", e.Status, "payment %s (%s)", id, key)
	}
}

// load pushes payments through the api from several goroutines until
// stopped.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	payments map[string]string // id → paymentKey
	err      error
}

func (b *testBundle) startLoad(t *testing.T, workers int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	l := &load{cancel: cancel, payments: map[string]string{}}
	for w := range workers {
		l.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				id, key, err := b.pay(ctx, fmt.Sprintf("roll-%d-%d", w, n), 1000+rand.Int64N(49000))
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				if err != nil {
					l.err = err
					l.mu.Unlock()
					return
				}
				l.payments[id] = key
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { cancel(); l.wg.Wait() })
	return l
}

// waitFor returns once the api has accepted the confirms of n more payments.
func (l *load) waitFor(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := len(l.payments) + n
	l.mu.Unlock()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.err != nil || len(l.payments) >= target
	}, time.Minute, 20*time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NoError(t, l.err)
}

func (l *load) stop(t *testing.T) map[string]string {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	require.NoError(t, l.err)
	return l.payments
}

// apiClient calls the api with the system's API key.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

// call sends body as JSON and decodes a 2xx answer into out (if not nil).
// withKey false leaves the Authorization header out.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any, withKey bool) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withKey && c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

func (c *apiClient) get(t *testing.T, id string) payment {
	t.Helper()
	var p payment
	status, err := c.call(t.Context(), http.MethodGet, "/v1/payments/"+id, nil, &p, true)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	return p
}

// waitStatus polls the payment until it is in want; a terminal state other
// than want fails at once.
func (c *apiClient) waitStatus(t *testing.T, id, want string, timeout time.Duration) payment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := c.get(t, id)
		if p.Status == want {
			return p
		}
		switch p.Status {
		case "failed", "expired", "unknown", "canceled":
			require.Failf(t, "payment settled wrong", "payment %s is %s, want %s: %+v", id, p.Status, want, p)
		}
		if time.Now().After(deadline) {
			require.Failf(t, "payment did not settle", "payment %s is %s after %s, want %s", id, p.Status, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// payment is the part of the api's payment this test reads.
type payment struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	ApprovedAmount int64     `json:"approvedAmount"`
	Attempts       []attempt `json:"attempts"`
}

type attempt struct {
	Operation  string     `json:"operation"`
	HTTPStatus *int       `json:"httpStatus"`
	FinishedAt *time.Time `json:"finishedAt"`
}

// callInFlight reports whether the payment's latest gateway call has started
// and not yet been answered.
func (p payment) callInFlight() bool {
	return len(p.Attempts) > 0 && p.Attempts[len(p.Attempts)-1].FinishedAt == nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
