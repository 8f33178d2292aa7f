// Package e2e drives the real api, relay and gatewaysim binaries over HTTP
// against a real Postgres, and checks the money invariants against the
// gateway's ledger.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const secretKey = "test_sk_e2e_only"

// system is the three binaries running against one database.
type system struct {
	apiURL string
	// apiMetricsURL is the api's metrics listener (API_METRICS_ADDR).
	apiMetricsURL string
	// apiKey is the key `api keys create` made for the test, sent with every
	// API call.
	apiKey string
	sim    *gatewaysim.Client
	// relayURLs serve each relay's probes and metrics.
	relayURLs []string
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped in -short")
	}
	sys := start(t, 2)
	ctx := context.Background()

	// Random faults on top of the scripted ones below: transient errors and
	// responses lost after the gateway acted.
	require.NoError(t, sys.sim.SetConfig(ctx, gatewaysim.Config{
		Seed:             7,
		ErrorRates:       map[string]float64{"PROVIDER_ERROR": 0.1, "FAILED_INTERNAL_SYSTEM_PROCESSING": 0.05},
		LostResponseRate: 0.05,
	}))

	type want struct {
		status  string
		balance int64
	}
	var (
		mu    sync.Mutex
		wants = map[string]want{} // payment id → expected final state
		keys  = map[string]string{}
	)
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			amount := int64(1000 + 100*i)
			orderID := fmt.Sprintf("e2e-%d-%s", i, uuid.NewString()[:8])
			p := sys.create(t, orderID, amount)
			auth, err := sys.sim.Authorize(ctx, gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: amount, OrderName: "e2e"})
			require.NoError(t, err)

			w := want{status: "confirmed", balance: amount}
			switch i % 6 {
			case 1: // declined by the card company
				_, err = sys.sim.Script(ctx, gatewaysim.Script{PaymentKey: auth.PaymentKey, Operation: gatewaysim.OperationConfirm,
					Steps: []gatewaysim.Step{{Kind: gatewaysim.StepError, Code: "REJECT_CARD_COMPANY"}}})
				require.NoError(t, err)
				w = want{status: "failed"}
			case 2: // charged, answer lost
				_, err = sys.sim.Script(ctx, gatewaysim.Script{PaymentKey: auth.PaymentKey, Operation: gatewaysim.OperationConfirm,
					Steps: []gatewaysim.Step{{Kind: gatewaysim.StepLost}}})
				require.NoError(t, err)
			}
			confirm := map[string]any{"paymentKey": auth.PaymentKey, "amount": amount}
			status := sys.post(t, "/v1/payments/"+p+"/confirm", confirm, "Idempotency-Key", "confirm-"+orderID)
			require.Equal(t, http.StatusAccepted, status)
			// The same confirm again (a checkout retrying its request), under
			// its Idempotency-Key and without one.
			status = sys.post(t, "/v1/payments/"+p+"/confirm", confirm, "Idempotency-Key", "confirm-"+orderID)
			require.Equal(t, http.StatusAccepted, status)
			status = sys.post(t, "/v1/payments/"+p+"/confirm", confirm)
			require.Equal(t, http.StatusAccepted, status)
			// Webhooks that lie about the outcome, delivered twice: each
			// only makes the relay ask the gateway.
			for range 2 {
				require.Equal(t, http.StatusOK, sys.webhook(t, auth.PaymentKey, orderID, "CANCELED"))
			}

			if w.status == "confirmed" && i%6 >= 3 {
				sys.waitStatus(t, p, "confirmed")
				switch i % 6 {
				case 3: // full refund
					require.Equal(t, http.StatusAccepted, sys.post(t, "/v1/payments/"+p+"/cancel", map[string]any{"reason": "customer asked"}))
					w = want{status: "canceled"}
				case 4: // partial refund
					require.Equal(t, http.StatusAccepted, sys.post(t, "/v1/payments/"+p+"/cancel", map[string]any{"reason": "one item back", "amount": 500}, "Idempotency-Key", "partial-"+p))
					w = want{status: "partially_canceled", balance: amount - 500}
				}
			}
			mu.Lock()
			wants[p] = w
			keys[p] = auth.PaymentKey
			mu.Unlock()
		}()
	}
	wg.Wait()

	// Every payment reaches the state its script implies, and ours agrees
	// with the gateway's ledger: no payment lost, no double charge.
	require.Len(t, wants, n)
	for id, w := range wants {
		got := sys.waitStatus(t, id, w.status)
		require.Equal(t, w.balance, got.BalanceAmount, "payment %s: %s", id, sys.raw(t, id))
	}
	ledger, err := sys.sim.Ledger(ctx)
	require.NoError(t, err)
	byKey := map[string]gatewaysim.LedgerEntry{}
	for _, e := range ledger.Payments {
		require.LessOrEqual(t, e.Approvals, 1, "double charge on %s", e.PaymentKey)
		byKey[e.PaymentKey] = e
	}
	gatewayStatus := map[string]string{
		"confirmed": "DONE", "failed": "IN_PROGRESS", "canceled": "CANCELED", "partially_canceled": "PARTIAL_CANCELED",
	}
	for id, w := range wants {
		e := byKey[keys[id]]
		require.Equal(t, gatewayStatus[w.status], e.Status, "payment %s", id)
		if w.status == "failed" {
			// Never charged; the gateway's balance of an unapproved payment
			// is its authorised amount and means nothing.
			require.Zero(t, e.Approvals, "payment %s", id)
			continue
		}
		require.Equal(t, 1, e.Approvals, "payment %s", id)
		require.Equal(t, w.balance, e.BalanceAmount, "payment %s", id)
	}

	// The binaries serve what the dashboard and the alerts read, without an
	// API key, on listeners the public API is not on.
	api := scrape(t, sys.apiMetricsURL+"/metrics")
	require.Contains(t, api, fmt.Sprintf(`payment_outbox_http_requests_total{method="POST",route="/v1/payments",status="201"} %d`, n))
	require.Contains(t, api, `payment_outbox_db_stats_up 1`)
	require.Contains(t, api, `payment_outbox_payments_unknown 0`)
	for _, u := range sys.relayURLs {
		relay := scrape(t, u+"/metrics")
		require.Contains(t, relay, "payment_outbox_breaker_state ")
		require.Contains(t, relay, `payment_outbox_gateway_calls_total{class="success",operation="confirm"}`)
		require.Contains(t, relay, `payment_outbox_db_stats_up 1`)
	}
	require.Contains(t, scrape(t, sys.apiURL+"/openapi.json"), `"openapi": "3.1.0"`)
}

// scrape GETs url without credentials and returns the body of its 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

// start builds the binaries, migrates a fresh database and starts gatewaysim,
// the given number of relays and the api.
func start(t *testing.T, relays int) *system {
	t.Helper()
	ctx := context.Background()
	root, err := systest.RepoRoot()
	require.NoError(t, err)
	bin, err := systest.Build(ctx, root, t.TempDir())
	require.NoError(t, err)
	dbURL := dbtest.URL(t)

	// The test database is migrated already; this checks that the command
	// agrees, on the database the binaries use.
	require.NoError(t, systest.Migrate(ctx, bin, dbURL))
	// A key made the way an operator makes one: stdout is the key alone.
	apiKey, err := systest.CreateAPIKey(ctx, bin, dbURL, "e2e")
	require.NoError(t, err)

	sys := &system{apiKey: apiKey}
	db := "DATABASE_URL=" + dbURL
	simAddr := sys.run(t, "gatewaysim", bin.GatewaySim, "SIM_ADDR", db, "SIM_SECRET_KEY="+secretKey)
	simURL := "http://" + simAddr
	require.NoError(t, systest.WaitHTTP(ctx, simURL+"/healthz", 30*time.Second))
	sys.sim = gatewaysim.NewClient(simURL, nil)

	for i := range relays {
		addr := sys.run(t, "relay"+strconv.Itoa(i), bin.Relay, "RELAY_ADDR", db,
			"TOSS_API_BASE_URL="+simURL, "TOSS_SECRET_KEY="+secretKey,
			"RELAY_BACKOFF_INITIAL=50ms", "RELAY_BACKOFF_MAX=500ms", "RELAY_FETCH_POLL_INTERVAL=50ms",
			"DATABASE_MAX_CONNS=10")
		require.NoError(t, systest.WaitHTTP(ctx, "http://"+addr+"/readyz", 30*time.Second))
		sys.relayURLs = append(sys.relayURLs, "http://"+addr)
	}
	metricsAddr, err := systest.FreeAddr()
	require.NoError(t, err)
	sys.apiMetricsURL = "http://" + metricsAddr
	sys.apiURL = "http://" + sys.run(t, "api", bin.API, "API_ADDR", db, "DATABASE_MAX_CONNS=10", "API_METRICS_ADDR="+metricsAddr)
	require.NoError(t, systest.WaitHTTP(ctx, sys.apiURL+"/readyz", 30*time.Second))
	return sys
}

// run starts a binary listening on a free loopback address, which it is
// told in the addrVar environment variable and which run returns. The
// process is stopped at the end of the test, and its output shown if the
// test failed.
func (s *system) run(t *testing.T, name, path, addrVar string, env ...string) string {
	t.Helper()
	addr, err := systest.FreeAddr()
	require.NoError(t, err)
	p := systest.NewProcess(name, path, append(env, addrVar+"="+addr))
	require.NoError(t, p.Start())
	t.Cleanup(func() {
		_ = p.Stop(20 * time.Second)
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", name, p.Output().Tail(4000))
		}
	})
	return addr
}

type paymentBody struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	BalanceAmount int64  `json:"balanceAmount"`
}

// call sends an API request with the test's key; body, if not nil, is
// sent as JSON.
func (s *system) call(t *testing.T, method, path string, body any, headers ...string) *http.Response {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		b, err = json.Marshal(body)
		require.NoError(t, err)
	}
	return s.send(t, func() *http.Request {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, s.apiURL+path, r)
		require.NoError(t, err)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	})
}

// send sends the request newReq makes. A 503 overloaded (the api's
// in-flight cap: 60 flows at once against a pool of 10) is sent again after
// its Retry-After, as a checkout and a gateway's webhook retries do: the api
// refused it before doing anything.
func (s *system) send(t *testing.T, newReq func() *http.Request) *http.Response {
	t.Helper()
	for {
		resp, err := http.DefaultClient.Do(newReq())
		require.NoError(t, err)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return resp
		}
		var problem struct {
			Code string `json:"code"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&problem)
		resp.Body.Close()
		require.Equal(t, "overloaded", problem.Code, "a 503 other than the in-flight cap's")
		wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err, "a 503 overloaded carries Retry-After")
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func (s *system) create(t *testing.T, orderID string, amount int64) string {
	t.Helper()
	resp := s.call(t, http.MethodPost, "/v1/payments", map[string]any{"orderId": orderID, "amount": amount, "orderName": "e2e order"})
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var p paymentBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, "ready", p.Status)
	return p.ID
}

// post posts v as JSON; headers are name, value pairs.
func (s *system) post(t *testing.T, path string, v any, headers ...string) int {
	t.Helper()
	resp := s.call(t, http.MethodPost, path, v, headers...)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// webhook posts a PAYMENT_STATUS_CHANGED event as the gateway would:
// unsigned, without our API key.
func (s *system) webhook(t *testing.T, paymentKey, orderID, status string) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"eventType": "PAYMENT_STATUS_CHANGED",
		"createdAt": time.Now().In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05.000000"),
		"data":      map[string]any{"paymentKey": paymentKey, "orderId": orderID, "status": status},
	})
	require.NoError(t, err)
	resp := s.send(t, func() *http.Request {
		req, err := http.NewRequest(http.MethodPost, s.apiURL+"/v1/webhooks/toss", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		return req
	})
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *system) get(t *testing.T, id string) paymentBody {
	t.Helper()
	resp := s.call(t, http.MethodGet, "/v1/payments/"+id, nil)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p paymentBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}

// raw returns the api's JSON for a payment, for failure messages.
func (s *system) raw(t *testing.T, id string) string {
	t.Helper()
	resp := s.call(t, http.MethodGet, "/v1/payments/"+id, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (s *system) waitStatus(t *testing.T, id, want string) paymentBody {
	t.Helper()
	var p paymentBody
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p = s.get(t, id)
		if p.Status == want {
			return p
		}
		time.Sleep(25 * time.Millisecond)
	}
	require.Failf(t, "payment did not settle", "payment %s is %s, want %s", id, p.Status, want)
	return p
}
