package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/client"
	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// system is the real api and a relay, in process, against one database and
// the gateway simulator: what the client talks to in production.
type system struct {
	pool   *pgxpool.Pool
	sim    *gatewaysim.Simulator
	apiURL string
	apiKey string
}

// startSystem starts it; wrap, when set, stands between the client and the
// api (a network that loses answers, say).
func startSystem(t *testing.T, wrap func(http.Handler) http.Handler) *system {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	sim, err := gatewaysim.New(gatewaysim.Options{})
	require.NoError(t, err)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	t.Cleanup(sim.Close)
	gw, err := toss.New(toss.Config{BaseURL: simSrv.URL, SecretKey: gatewaysim.DefaultSecretKey, Timeout: 5 * time.Second})
	require.NoError(t, err)

	fast := relay.Schedule{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	workers := river.NewWorkers()
	require.NoError(t, relay.AddWorkers(workers, relay.Config{
		Pool: pool, Store: st, Gateways: map[string]relay.Gateway{"toss": gw}, Schedule: fast, KeyQuiet: 300 * time.Millisecond,
		// The test's webhook receivers listen on loopback.
		Webhooks: relay.WebhookConfig{AllowPrivate: true, Schedule: fast},
	}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: map[string]river.QueueConfig{
			paymentjob.Queue:        {MaxWorkers: 10},
			paymentjob.WebhookQueue: {MaxWorkers: 5},
		},
		Workers: workers, FetchPollInterval: 20 * time.Millisecond, FetchCooldown: 10 * time.Millisecond, TestOnly: true,
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, rc.Stop(stopCtx))
	})

	api := httpapi.New(httpapi.Config{Pool: pool, Store: st, Outbox: rc, WebhookAllowPrivate: true})
	var h http.Handler = api.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	apiSrv := httptest.NewServer(h)
	t.Cleanup(apiSrv.Close)
	t.Cleanup(api.Close)

	key, err := apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	_, err = st.InsertAPIKey(ctx, pool, uuid.NewString(), "client test", apikey.DisplayPrefix(key), hash[:], apikey.ScopeCheckout, payment.DefaultOwner)
	require.NoError(t, err)
	return &system{pool: pool, sim: sim, apiURL: apiSrv.URL, apiKey: key}
}

func (s *system) client(opts ...client.Option) *client.Client {
	return client.New(s.apiURL, s.apiKey, opts...)
}

// authorize plays the customer in the gateway's checkout widget.
func (s *system) authorize(t *testing.T, orderID string, amount int64) string {
	t.Helper()
	auth, err := s.sim.Authorize(gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: amount, OrderName: "Coffee beans"})
	require.NoError(t, err)
	return auth.PaymentKey
}

// receiver is a checkout's webhook endpoint: it verifies each delivery with
// client.VerifyWebhook and answers 401 to one that does not verify.
type receiver struct {
	srv    *httptest.Server
	events chan *client.Event
	mu     sync.Mutex
	secret string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{events: make(chan *client.Event, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		secret := rc.secret
		rc.mu.Unlock()
		ev, err := client.VerifyWebhook(secret, r.Header, body)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rc.events <- ev
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *receiver) next(t *testing.T) *client.Event {
	t.Helper()
	select {
	case ev := <-rc.events:
		return ev
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook arrived")
		return nil
	}
}

// TestCheckout is what a checkout does: pay, learn the outcome with one
// wait, get the signed webhook; refund part, likewise.
func TestCheckout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startSystem(t, nil)
	c := s.client()
	rc := newReceiver(t)

	ep, err := c.CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointRequest{
		URL:    rc.srv.URL + "/payments",
		Events: []string{client.EventType(client.StatusConfirmed), client.EventType(client.StatusPartiallyCanceled)},
	})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(ep.Secret, "whsec_"))
	rc.setSecret(ep.Secret)

	p, err := c.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: "order-client-0001", Amount: 15000, OrderName: "Coffee beans"})
	require.NoError(t, err)
	require.Equal(t, client.StatusReady, p.Status)

	key := s.authorize(t, p.OrderID, 15000)
	p, err = c.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: key, Amount: 15000})
	require.NoError(t, err)
	require.Equal(t, client.StatusConfirming, p.Status)

	p, err = c.WaitPayment(ctx, p.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StatusConfirmed, p.Status)
	require.Equal(t, int64(15000), p.BalanceAmount)

	ev := s.nextFor(t, rc, p.ID)
	require.Equal(t, "payment.confirmed", ev.Type)
	require.Equal(t, client.StatusConfirmed, ev.Data.Status)
	require.Equal(t, client.StatusConfirming, ev.Data.PreviousStatus)
	require.Equal(t, p.Version, ev.Data.Version)
	require.True(t, strings.HasPrefix(ev.ID, "evt_"))

	p, err = c.CancelPayment(ctx, p.ID, client.CancelRequest{Reason: "one bag returned", Amount: 5000})
	require.NoError(t, err)
	require.Equal(t, client.StatusCanceling, p.Status)
	p, err = c.WaitPayment(ctx, p.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StatusPartiallyCanceled, p.Status)
	require.Equal(t, int64(10000), p.BalanceAmount)
	ev = s.nextFor(t, rc, p.ID)
	require.Equal(t, "payment.partially_canceled", ev.Type)
	require.Equal(t, p.Version, ev.Data.Version)

	byOrder, err := c.GetPaymentByOrderID(ctx, p.OrderID)
	require.NoError(t, err)
	require.Equal(t, p.ID, byOrder.ID)

	// The relay records a delivery once the receiver has answered it.
	var ds []client.WebhookDelivery
	require.Eventually(t, func() bool {
		ds, err = c.ListWebhookDeliveries(ctx, ep.ID, 0)
		require.NoError(t, err)
		return len(ds) == 2 && ds[0].Status == "succeeded" && ds[1].Status == "succeeded"
	}, 10*time.Second, 20*time.Millisecond, "deliveries: %+v", ds)
	d, err := c.RedeliverWebhook(ctx, ep.ID, ds[1].ID)
	require.NoError(t, err)
	require.Equal(t, "pending", d.Status)
	again := s.nextFor(t, rc, p.ID)
	require.Equal(t, ds[1].EventID, again.ID, "a redelivery keeps the webhook-id")

	rotated, err := c.RotateWebhookSecret(ctx, ep.ID)
	require.NoError(t, err)
	require.NotEqual(t, ep.Secret, rotated.Secret)
	list, err := c.ListWebhookEndpoints(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Empty(t, list[0].Secret)
	disabled, err := c.DisableWebhookEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.NotNil(t, disabled.DisabledAt)
}

// nextFor returns the next webhook, which must be about paymentID.
func (s *system) nextFor(t *testing.T, rc *receiver, paymentID string) *client.Event {
	t.Helper()
	ev := rc.next(t)
	require.Equal(t, paymentID, ev.Data.PaymentID)
	return ev
}

// TestErrors: problem answers are typed errors with the API's code, and are
// not retried.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var requests countingHandler
	s := startSystem(t, requests.wrap)
	c := s.client()

	p, err := c.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: "order-client-0002", Amount: 1000, OrderName: "Tea"})
	require.NoError(t, err)
	before := requests.count()
	_, err = c.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: "pk_whatever_1", Amount: 999})
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusUnprocessableEntity, e.StatusCode)
	require.Equal(t, client.CodeAmountMismatch, e.Code)
	require.NotEmpty(t, e.Detail)
	require.NotEmpty(t, e.RequestID)
	require.Equal(t, before+1, requests.count(), "a 4xx is not retried")

	_, err = c.GetPayment(ctx, uuid.NewString())
	require.Equal(t, client.CodePaymentNotFound, client.ErrorCode(err))
	page, err := c.ListAttempts(ctx, p.ID, 0, 10)
	require.NoError(t, err)
	require.Equal(t, &client.AttemptPage{Attempts: []client.Attempt{}}, page, "no gateway call yet")
	_, err = c.ListAttempts(ctx, uuid.NewString(), 0, 0)
	require.Equal(t, client.CodePaymentNotFound, client.ErrorCode(err))
	_, err = client.New(s.apiURL, "po_wrong").GetPayment(ctx, p.ID)
	require.Equal(t, client.CodeUnauthorized, client.ErrorCode(err))
	_, err = c.CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointRequest{URL: "gopher://x"})
	require.Equal(t, client.CodeInvalidRequest, client.ErrorCode(err))
}

type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// flaky answers POSTs to paths ending in suffix badly, in the ways a
// network and a busy api do, before letting them through; it records the
// Idempotency-Key of every one.
type flaky struct {
	suffix string
	mu     sync.Mutex
	faults []func(w http.ResponseWriter, r *http.Request, next http.Handler)
	keys   []string
}

func (f *flaky) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, f.suffix) {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		var fault func(http.ResponseWriter, *http.Request, http.Handler)
		if len(f.faults) > 0 {
			fault, f.faults = f.faults[0], f.faults[1:]
		}
		f.mu.Unlock()
		if fault == nil {
			next.ServeHTTP(w, r)
			return
		}
		fault(w, r, next)
	})
}

// lostAnswer lets the request do its work and then loses the answer: the
// checkout sees a 502 from a proxy.
func lostAnswer(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(httptest.NewRecorder(), r)
	w.WriteHeader(http.StatusBadGateway)
}

// inProgress is the api's answer to a repeat while the first still runs.
func inProgress(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Retry-After", "0")
	w.WriteHeader(http.StatusConflict)
	_, _ = io.WriteString(w, `{"type":"tag:payment-outbox,2026:problem:idempotency_request_in_progress","title":"in progress","status":409,"detail":"","code":"idempotency_request_in_progress","instance":"/"}`)
}

// TestRetries: a lost answer, a 409 in progress and a 503 are retried with
// the call's one Idempotency-Key, so a partial refund is made once however
// often it is sent.
func TestRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &flaky{suffix: "/cancel"}
	s := startSystem(t, f.wrap)
	c := s.client(client.WithRetry(client.RetryPolicy{MaxAttempts: 5, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}))

	p, err := c.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: "order-client-0003", Amount: 9000, OrderName: "Mugs"})
	require.NoError(t, err)
	_, err = c.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: s.authorize(t, p.OrderID, 9000), Amount: 9000})
	require.NoError(t, err)
	p, err = c.WaitPayment(ctx, p.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StatusConfirmed, p.Status)

	f.mu.Lock()
	f.faults = append(f.faults, lostAnswer, inProgress, func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f.mu.Unlock()
	p, err = c.CancelPayment(ctx, p.ID, client.CancelRequest{Reason: "one mug broken", Amount: 3000})
	require.NoError(t, err)
	require.Len(t, p.Cancels, 1)

	f.mu.Lock()
	keys := append([]string(nil), f.keys...)
	f.mu.Unlock()
	require.Len(t, keys, 4)
	for _, k := range keys {
		require.Equal(t, keys[0], k, "one Idempotency-Key for every retry of the call")
	}
	p, err = c.WaitPayment(ctx, p.ID, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, client.StatusPartiallyCanceled, p.Status)
	require.Equal(t, int64(6000), p.BalanceAmount, "refunded once")
	require.Len(t, p.Cancels, 1)

	// A second call is a second refund, under a key of its own.
	_, err = c.CancelPayment(ctx, p.ID, client.CancelRequest{Reason: "another mug broken", Amount: 3000})
	require.NoError(t, err)
	f.mu.Lock()
	require.NotEqual(t, keys[0], f.keys[len(f.keys)-1])
	f.mu.Unlock()

	// Out of attempts: the last answer is the error.
	f.mu.Lock()
	for range 5 {
		f.faults = append(f.faults, inProgress)
	}
	f.mu.Unlock()
	_, err = c.CancelPayment(ctx, p.ID, client.CancelRequest{Reason: "third"})
	require.Equal(t, client.CodeIdempotencyRequestInProgress, client.ErrorCode(err))
}

// TestWaitTimesOut: WaitPayment answers with the payment still in flight
// when the outcome takes longer than asked.
func TestWaitTimesOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startSystem(t, nil)
	c := s.client()
	p, err := c.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: "order-client-0004", Amount: 1000, OrderName: "Tea"})
	require.NoError(t, err)
	key := s.authorize(t, p.OrderID, 1000)
	// The gateway holds the confirm for longer than we wait.
	cfg := s.sim.Config()
	cfg.Latency = gatewaysim.Duration(3 * time.Second)
	require.NoError(t, s.sim.SetConfig(cfg))
	_, err = c.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: key, Amount: 1000})
	require.NoError(t, err)
	start := time.Now()
	p, err = c.WaitPayment(ctx, p.ID, 500*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, client.StatusConfirming, p.Status)
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
	require.True(t, p.Status.InFlight())

	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.WaitPayment(ctx, p.ID, 10*time.Second)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}
