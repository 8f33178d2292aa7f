package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) {
	code := dbtest.Run(m)
	// Once every test has run: the statuses they saw must be documented
	// (see servedStatuses).
	if code == 0 && !checkServedStatusesDocumented(os.Stderr) {
		code = 1
	}
	os.Exit(code)
}

// testBundle is what a test needs to drive the API and look behind it.
type testBundle struct {
	pool    *pgxpool.Pool
	store   *store.Store
	handler http.Handler
	// server is the Server behind handler.
	server *Server
	logs   *syncBuffer
	now    time.Time
	cfg    Config
	// metrics is the registry the server counts its requests in and serves
	// at /metrics.
	metrics *metrics.Registry
	// apiKey is sent as Authorization: Bearer on every request (see as);
	// apiKeyID is its id, the client idempotency keys are scoped to.
	apiKey   string
	apiKeyID string
}

// setup returns a server on a fresh migrated database with a real,
// insert-only River client as its outbox. opts adjust the Config before the
// server is built.
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
	servedStatuses.add(b.metrics)
	cfg := Config{
		Pool:           pool,
		Store:          b.store,
		Outbox:         outbox,
		Logger:         slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            func() time.Time { return b.now },
		Metrics:        metrics.NewHTTP(b.metrics),
		MetricsHandler: b.metrics.Handler(),
	}
	b.cfg = cfg
	b.apiKey, b.apiKeyID = b.createAPIKey(t, "test client")
	return b.with(opts...)
}

// createAPIKey stores a new operator API key (every call allowed) the way
// `api keys create` does and returns the key and its id.
func (b *testBundle) createAPIKey(t *testing.T, name string) (key, id string) {
	t.Helper()
	return b.createScopedKey(t, name, apikey.ScopeOperator)
}

// createScopedKey is createAPIKey for a key of the given scope, of the
// default owner.
func (b *testBundle) createScopedKey(t *testing.T, name string, scope apikey.Scope) (key, id string) {
	t.Helper()
	return b.createOwnedKey(t, name, scope, payment.DefaultOwner)
}

// createOwnedKey is createScopedKey for a key of owner, which it adds if
// it does not exist yet.
func (b *testBundle) createOwnedKey(t *testing.T, name string, scope apikey.Scope, owner payment.Owner) (key, id string) {
	t.Helper()
	_, err := b.store.InsertOwner(t.Context(), b.pool, owner)
	require.NoError(t, err)
	key, err = apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	k, err := b.store.InsertAPIKey(t.Context(), b.pool, uuid.NewString(), name, apikey.DisplayPrefix(key), hash[:], scope, owner)
	require.NoError(t, err)
	return key, k.ID
}

// as returns a copy of b that sends key as its API key ("" for none); it
// shares b's server, database and logs.
func (b *testBundle) as(key, id string) *testBundle {
	nb := *b
	nb.apiKey, nb.apiKeyID = key, id
	return &nb
}

// with returns a copy of b whose server is built from b's Config adjusted by
// opts; it shares b's database and logs.
func (b *testBundle) with(opts ...func(*Config)) *testBundle {
	nb := *b
	for _, o := range opts {
		o(&nb.cfg)
	}
	nb.server = New(nb.cfg)
	nb.handler = nb.server.Handler()
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

// createPayment creates a payment for orderID and returns it.
func (b *testBundle) createPayment(t *testing.T, orderID string, amount int64) paymentResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "amount": amount, "orderName": "Blue shirt"})
	require.NoError(t, err)
	rec := b.postJSON(t, "/v1/payments", string(body))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[paymentResponse](t, rec)
}

// confirmPayment confirms a payment through the API.
func (b *testBundle) confirmPayment(t *testing.T, id, paymentKey string, amount int64) paymentResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"paymentKey": paymentKey, "amount": amount})
	require.NoError(t, err)
	rec := b.postJSON(t, "/v1/payments/"+id+"/confirm", string(body))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	return decode[paymentResponse](t, rec)
}

// approve records the gateway's approval of a confirming payment the way the
// relay would, so cancel tests can start from confirmed.
func (b *testBundle) approve(t *testing.T, id string) {
	t.Helper()
	ctx := t.Context()
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := b.store.PaymentForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if c := p.ApplyApproval(payment.Approval{
			OrderID: p.OrderID, TotalAmount: p.Amount, BalanceAmount: p.Amount, Method: "카드", ApprovedAt: b.now,
		}, nil, "", b.now); c != nil {
			return errors.New("approval unexpectedly asked for a cancel")
		}
		return b.store.SavePayment(ctx, tx, &p)
	})
	require.NoError(t, err)
}

func (b *testBundle) countPayments(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM payments").Scan(&n))
	return n
}

func (b *testBundle) countCancels(t *testing.T, paymentID string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(),
		"SELECT count(*) FROM payment_cancels WHERE payment_id = $1::uuid", paymentID).Scan(&n))
	return n
}

// countJobs counts the outbox jobs of a kind for a payment.
func (b *testBundle) countJobs(t *testing.T, kind, paymentID string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(),
		"SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'paymentId' = $2", kind, paymentID).Scan(&n))
	return n
}

// countIdempotencyRecords counts the Idempotency-Key records of every
// client.
func (b *testBundle) countIdempotencyRecords(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM idempotency_keys").Scan(&n))
	return n
}

func (b *testBundle) status(t *testing.T, id string) payment.Status {
	t.Helper()
	p, err := b.store.Payment(t.Context(), b.pool, id)
	require.NoError(t, err)
	return p.Status
}

// decode reads a JSON response body.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

// requireProblem checks that rec is a problem details answer with status and
// code, and returns it.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) problem {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	require.Equal(t, problemContentType, rec.Header().Get("Content-Type"))
	var p problem
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), rec.Body.String())
	require.Equal(t, code, p.Code, rec.Body.String())
	require.Equal(t, status, p.Status)
	require.Equal(t, problemTypeBase+code, p.Type)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Detail)
	require.NotEmpty(t, p.Instance)
	return p
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
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
	var out []map[string]any
	for _, l := range s.rawLines() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), string(l))
		out = append(out, m)
	}
	return out
}

// rawLines returns the log lines written so far as written, for checks a
// decoded map cannot make (a key written twice).
func (s *syncBuffer) rawLines() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(s.buf.Bytes()), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, bytes.Clone(l))
		}
	}
	return out
}

// failingOutbox is an Outbox that refuses every job.
type failingOutbox struct{}

func (failingOutbox) InsertTx(context.Context, pgx.Tx, river.JobArgs, *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return nil, errors.New("outbox exploded: secret-internal-detail")
}

// blockingOutbox holds every insert until the request's deadline.
type blockingOutbox struct{}

func (blockingOutbox) InsertTx(ctx context.Context, _ pgx.Tx, _ river.JobArgs, _ *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("error inserting job: %w", ctx.Err())
}

// panickingOutbox panics instead of inserting.
type panickingOutbox struct{}

func (panickingOutbox) InsertTx(context.Context, pgx.Tx, river.JobArgs, *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	panic("outbox panicked: secret-internal-detail")
}

func TestHealth(t *testing.T) {
	t.Parallel()

	t.Run("LivePool", func(t *testing.T) {
		t.Parallel()
		b := setup(t)

		rec := b.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

		rec = b.do(t, http.MethodGet, "/readyz", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{"status":"ready"}`, rec.Body.String())
	})

	t.Run("ClosedPool", func(t *testing.T) {
		t.Parallel()
		pool, err := pgxpool.New(t.Context(), dbtest.URL(t))
		require.NoError(t, err)
		pool.Close()
		b := setup(t, func(cfg *Config) { cfg.Pool = pool })

		rec := b.do(t, http.MethodGet, "/readyz", "")
		requireProblem(t, rec, http.StatusServiceUnavailable, codeNotReady)

		// Liveness does not depend on the database.
		rec = b.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, rec.Code)
	})
}

func TestProblemDetails(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("UnknownRoute", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v2/nothing", "")
		p := requireProblem(t, rec, http.StatusNotFound, codeNotFound)
		require.Equal(t, "/v2/nothing", p.Instance)
		require.Equal(t, "Not found", p.Title)
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodDelete, "/v1/payments", "")
		requireProblem(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed)
		require.Contains(t, rec.Header().Get("Allow"), http.MethodPost)
	})

	t.Run("RawShape", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+"0190a0c8-0000-7000-8000-000000000000", "")
		require.Equal(t, http.StatusNotFound, rec.Code)
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		require.Equal(t, map[string]any{
			"type":     "tag:payment-outbox,2026:problem:payment_not_found",
			"title":    "Payment not found",
			"status":   float64(404),
			"detail":   "payment not found",
			"code":     "payment_not_found",
			"instance": "/v1/payments/0190a0c8-0000-7000-8000-000000000000",
		}, m)
	})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("FromClient", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id", "client-req-42")
		require.Equal(t, "client-req-42", rec.Header().Get("X-Request-Id"))
		requireLogged(t, b, "client-req-42")
	})

	for name, id := range map[string]string{
		"Missing":  "",
		"TooLong":  strings.Repeat("a", maxRequestIDLen+1),
		"Space":    "two words",
		"Control":  "line\nbreak",
		"NonASCII": "요청-1",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id", id)
			got := rec.Header().Get("X-Request-Id")
			require.NotEqual(t, id, got)
			require.Len(t, got, 36) // a UUID
			requireLogged(t, b, got)
		})
	}

	t.Run("MaxLength", func(t *testing.T) {
		t.Parallel()
		id := strings.Repeat("b", maxRequestIDLen)
		rec := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id", id)
		require.Equal(t, id, rec.Header().Get("X-Request-Id"))
	})

	t.Run("OnErrors", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/nowhere", "", "X-Request-Id", "err-req-7")
		require.Equal(t, http.StatusNotFound, rec.Code)
		require.Equal(t, "err-req-7", rec.Header().Get("X-Request-Id"))
	})
}

// requireLogged checks that an access line was written for requestID.
func requireLogged(t *testing.T, b *testBundle, requestID string) map[string]any {
	t.Helper()
	for _, l := range b.logs.lines(t) {
		if l["msg"] == "request" && l["request_id"] == requestID {
			return l
		}
	}
	require.FailNow(t, "no access line for request id "+requestID)
	return nil
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-log-1", 15000)

	rec := b.do(t, http.MethodPost, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_log_1","amount":15000}`,
		"Content-Type", "application/json", "X-Request-Id", "log-req-1")
	require.Equal(t, http.StatusAccepted, rec.Code)

	l := requireLogged(t, b, "log-req-1")
	require.Equal(t, "INFO", l["level"])
	require.Equal(t, http.MethodPost, l["method"])
	require.Equal(t, "/v1/payments/:id/confirm", l["route"])
	require.Equal(t, float64(http.StatusAccepted), l["status"])
	require.Equal(t, p.ID, l["payment_id"])
	require.Contains(t, l, "latency_ms")
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()

	require.PanicsWithValue(t, "httpapi: Config.Pool is required", func() { New(Config{Outbox: failingOutbox{}}) })

	s := New(Config{Pool: &pgxpool.Pool{}, Outbox: failingOutbox{}})
	require.NotNil(t, s.store)
	require.NotNil(t, s.logger)
	require.NotNil(t, s.now)
	require.Equal(t, DefaultBodyLimit, s.bodyLimit)
	require.Equal(t, DefaultReadyTimeout, s.readyTimeout)
	require.Equal(t, DefaultIdempotencyTTL, s.idempotencyTTL)
	require.Equal(t, DefaultKeyCacheTTL, s.keys.ttl)
	require.Greater(t, s.idempotencyStaleAfter, s.reqTimeout)
}

// testClock is a clock a test moves by hand; safe for concurrent reads.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock(now time.Time) *testClock { return &testClock{now: now} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
