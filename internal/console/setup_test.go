package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/console"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// The console is tested as the api serves it: mounted by httpapi, on a
// fresh migrated database, through HTTP. This file is the tests' setup,
// the part of httpapi's test bundle the console's tests use.

func TestMain(m *testing.M) {
	os.Exit(dbtest.Run(m))
}

// Config is the api's Config, which a test adjusts (setup, with).
type Config = httpapi.Config

// The console's names the tests check answers against.
const (
	consoleCookie           = console.SessionCookie
	consoleLoginCookie      = console.LoginCookie
	signInFailuresPerWindow = console.SignInFailuresPerWindow
)

// testBundle is what a test needs to drive the api and look behind it.
type testBundle struct {
	pool    *pgxpool.Pool
	store   *store.Store
	handler http.Handler
	logs    *syncBuffer
	now     time.Time
	cfg     Config
	// metrics is the registry the server counts in and serves at /metrics.
	metrics *metrics.Registry
	// apiKey is sent as Authorization: Bearer on every request (see as).
	apiKey   string
	apiKeyID string
}

// setup returns an api, console mounted, on a fresh migrated database with
// a real, insert-only River client as its outbox. opts adjust the Config
// before the server is built.
func setup(t *testing.T, opts ...func(*Config)) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	b := &testBundle{
		pool:    pool,
		store:   store.New(),
		logs:    &syncBuffer{},
		now:     time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		metrics: metrics.NewRegistry(nil),
	}
	b.cfg = Config{
		Pool:           pool,
		Store:          b.store,
		Outbox:         outbox,
		Logger:         slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            func() time.Time { return b.now },
		Metrics:        metrics.NewHTTP(b.metrics),
		MetricsHandler: b.metrics.Handler(),
	}
	b.apiKey, b.apiKeyID = b.createAPIKey(t, "test client")
	return b.with(opts...)
}

// createAPIKey stores a new operator API key the way `api keys create`
// does and returns the key and its id.
func (b *testBundle) createAPIKey(t *testing.T, name string) (key, id string) {
	t.Helper()
	return b.createScopedKey(t, name, apikey.ScopeOperator)
}

// createScopedKey is createAPIKey for a key of the given scope, of the
// default owner.
func (b *testBundle) createScopedKey(t *testing.T, name string, scope apikey.Scope) (key, id string) {
	t.Helper()
	_, err := b.store.InsertOwner(t.Context(), b.pool, payment.DefaultOwner)
	require.NoError(t, err)
	key, err = apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	k, err := b.store.InsertAPIKey(t.Context(), b.pool, uuid.NewString(), name, apikey.DisplayPrefix(key), hash[:], scope, payment.DefaultOwner)
	require.NoError(t, err)
	return key, k.ID
}

// as returns a copy of b that sends key as its API key ("" for none).
func (b *testBundle) as(key, id string) *testBundle {
	nb := *b
	nb.apiKey, nb.apiKeyID = key, id
	return &nb
}

// with returns a copy of b whose server is built from b's Config adjusted
// by opts; it shares b's database and logs.
func (b *testBundle) with(opts ...func(*Config)) *testBundle {
	nb := *b
	for _, o := range opts {
		o(&nb.cfg)
	}
	nb.handler = httpapi.New(nb.cfg).Handler()
	return &nb
}

// do sends a request; headers are name, value pairs.
func (b *testBundle) do(t *testing.T, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return b.serve(b.request(t, method, path, body, headers...))
}

// request builds a request as do sends it, for a test to adjust.
func (b *testBundle) request(t *testing.T, method, path, body string, headers ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, path, r)
	if b.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+b.apiKey)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// serve runs a request through the server.
func (b *testBundle) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

// postJSON sends a JSON body.
func (b *testBundle) postJSON(t *testing.T, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, path, body, "Content-Type", "application/json")
}

// paymentResponse is the part of the JSON API's payment the tests read.
type paymentResponse struct {
	ID string `json:"id"`
}

// createPayment creates a payment for orderID through the JSON API.
func (b *testBundle) createPayment(t *testing.T, orderID string, amount int64) paymentResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "amount": amount, "orderName": "Blue shirt"})
	require.NoError(t, err)
	rec := b.postJSON(t, "/v1/payments", string(body))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[paymentResponse](t, rec)
}

// confirmPayment confirms a payment through the JSON API.
func (b *testBundle) confirmPayment(t *testing.T, id, paymentKey string, amount int64) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"paymentKey": paymentKey, "amount": amount})
	require.NoError(t, err)
	rec := b.postJSON(t, "/v1/payments/"+id+"/confirm", string(body))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
}

// status is a payment's stored status.
func (b *testBundle) status(t *testing.T, id string) payment.Status {
	t.Helper()
	p, err := b.store.Payment(t.Context(), b.pool, id)
	require.NoError(t, err)
	return p.Status
}

// flow returns the use cases on the bundle's database, for putting payments
// into the states the relay would leave them in.
func (b *testBundle) flow(t *testing.T) *payflow.Flow {
	t.Helper()
	outbox, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	f, err := payflow.New(payflow.Config{Store: b.store, Outbox: outbox})
	require.NoError(t, err)
	return f
}

// inTx runs fn in a transaction on the bundle's database.
func (b *testBundle) inTx(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(t.Context(), b.pool, fn))
}

// refusedCompensation returns a payment the way the relay leaves one whose
// compensating cancel the gateway refused: the gateway approved another
// amount than the intent, the relay sent the money back, and the gateway
// said no. It sits in unknown for a person.
func (b *testBundle) refusedCompensation(t *testing.T, orderID string) paymentResponse {
	t.Helper()
	p := b.createPayment(t, orderID, 15000)
	b.confirmPayment(t, p.ID, "pk_"+orderID, 15000)
	f := b.flow(t)
	var compensation *payment.Cancel
	b.inTx(t, func(tx pgx.Tx) error {
		ch, err := f.RecordApproval(t.Context(), tx, p.ID, payment.Approval{
			OrderID: orderID, TotalAmount: 16000, BalanceAmount: 16000, Method: "카드", ApprovedAt: b.now,
		})
		compensation = ch.Compensation
		return err
	})
	require.NotNil(t, compensation, "an approval of another amount is compensated")
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := f.RecordCancelRefusal(t.Context(), tx, p.ID, compensation.ID, "NOT_CANCELABLE_PAYMENT", "not cancelable now")
		return err
	})
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	return p
}

// countActions is how many operator actions are audited.
func (b *testBundle) countActions(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM operator_actions").Scan(&n))
	return n
}

// decode reads a JSON response body.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// lines returns the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), string(l))
		out = append(out, m)
	}
	return out
}
