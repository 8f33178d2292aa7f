package gatewaysim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testClock is an injectable clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

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

type testBundle struct {
	sim     *Simulator
	clock   *testClock
	baseURL string
	control *Client
	// http never reuses connections: Go's transport silently retries a
	// request carrying an Idempotency-Key when a reused connection dies, which
	// would hide the lost responses these tests provoke.
	http *http.Client
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	clock := &testClock{now: time.Date(2024, 2, 13, 12, 18, 14, 0, kst)}
	sim, err := New(Options{Now: clock.Now})
	require.NoError(t, err)
	server := httptest.NewServer(sim)
	t.Cleanup(server.Close)
	t.Cleanup(sim.Close) // runs first: cuts any scripted sleep short
	httpClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	return &testBundle{
		sim:     sim,
		clock:   clock,
		baseURL: server.URL,
		control: NewClient(server.URL, httpClient),
		http:    httpClient,
	}
}

// answer is a /v1 response.
type answer struct {
	status int
	body   []byte
}

func (a answer) payment(t *testing.T) Payment {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var p Payment
	require.NoError(t, json.Unmarshal(a.body, &p))
	return p
}

func (a answer) requireError(t *testing.T, status int, code string) {
	t.Helper()
	require.Equal(t, status, a.status, "body: %s", a.body)
	var e Error
	require.NoError(t, json.Unmarshal(a.body, &e))
	require.Equal(t, code, e.Code)
	require.NotEmpty(t, e.Message)
}

// send makes a /v1 call with the given Authorization header value (none when
// empty) and returns the transport error instead of failing on it.
func (b *testBundle) send(t *testing.T, method, path, authorization, idempotencyKey string, body any) (answer, error) {
	t.Helper()
	return b.sendContext(context.Background(), t, method, path, authorization, idempotencyKey, body)
}

// sendContext is send under ctx, so a test can give up on a call the way a
// client whose timeout fired does.
func (b *testBundle) sendContext(ctx context.Context, t *testing.T, method, path, authorization, idempotencyKey string, body any) (answer, error) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		require.NoError(t, err)
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.baseURL+path, reader)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := b.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: res.StatusCode, body: data}, nil
}

// toss makes a correctly authenticated /v1 call that must get an answer.
func (b *testBundle) toss(t *testing.T, method, path, idempotencyKey string, body any) answer {
	t.Helper()
	a, err := b.send(t, method, path, AuthorizationHeader(DefaultSecretKey), idempotencyKey, body)
	require.NoError(t, err)
	return a
}

func (b *testBundle) confirm(t *testing.T, auth Authorization, idempotencyKey string) answer {
	t.Helper()
	return b.toss(t, http.MethodPost, "/v1/payments/confirm", idempotencyKey, map[string]any{
		"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount,
	})
}

func (b *testBundle) cancel(t *testing.T, paymentKey, idempotencyKey string, body map[string]any) answer {
	t.Helper()
	return b.toss(t, http.MethodPost, "/v1/payments/"+paymentKey+"/cancel", idempotencyKey, body)
}

func (b *testBundle) authorize(t *testing.T, orderID string, amount int64) Authorization {
	t.Helper()
	auth, err := b.control.Authorize(context.Background(), AuthorizeRequest{OrderID: orderID, Amount: amount})
	require.NoError(t, err)
	return auth
}

// approved authorizes and confirms a payment.
func (b *testBundle) approved(t *testing.T, orderID string, amount int64) Authorization {
	t.Helper()
	auth := b.authorize(t, orderID, amount)
	require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-"+orderID).payment(t).Status)
	return auth
}

func (b *testBundle) ledgerEntry(t *testing.T, paymentKey string) LedgerEntry {
	t.Helper()
	entry, err := b.control.LedgerEntry(context.Background(), paymentKey)
	require.NoError(t, err)
	return entry
}

func (b *testBundle) outcomes(t *testing.T, paymentKey string) []string {
	t.Helper()
	records, err := b.control.Requests(context.Background(), paymentKey)
	require.NoError(t, err)
	outcomes := make([]string, 0, len(records))
	for _, rec := range records {
		outcomes = append(outcomes, rec.Outcome)
	}
	return outcomes
}

func (b *testBundle) setConfig(t *testing.T, cfg Config) {
	t.Helper()
	require.NoError(t, b.control.SetConfig(context.Background(), cfg))
}

func (b *testBundle) script(t *testing.T, paymentKey string, op Operation, steps ...Step) {
	t.Helper()
	_, err := b.control.Script(context.Background(), Script{PaymentKey: paymentKey, Operation: op, Steps: steps})
	require.NoError(t, err)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()

	b := setup(t)
	auth := b.authorize(t, "order-auth-1", 10_000)
	body := map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount}

	for name, header := range map[string]string{
		"missing":           "",
		"wrong key":         AuthorizationHeader("test_sk_someone_else"),
		"not basic":         "Bearer " + DefaultSecretKey,
		"not base64":        "Basic !!!",
		"no colon":          "Basic " + base64.StdEncoding.EncodeToString([]byte(DefaultSecretKey)),
		"password not used": "Basic " + base64.StdEncoding.EncodeToString([]byte(DefaultSecretKey+":x")),
	} {
		a, err := b.send(t, http.MethodPost, "/v1/payments/confirm", header, "key-"+name, body)
		require.NoError(t, err, name)
		a.requireError(t, http.StatusUnauthorized, CodeUnauthorizedKey)
	}
	a, err := b.send(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", "", nil)
	require.NoError(t, err)
	a.requireError(t, http.StatusUnauthorized, CodeUnauthorizedKey)

	require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)
	records := b.sim.Requests(auth.PaymentKey)
	require.Len(t, records, 7)
	for _, rec := range records {
		require.False(t, rec.AuthorizationOK)
		require.Equal(t, OutcomeRejected, rec.Outcome)
		require.Equal(t, CodeUnauthorizedKey, rec.Code)
	}

	// A rejected key stored nothing, so the real call with it still works.
	require.Equal(t, StatusDone, b.confirm(t, auth, "key-missing").payment(t).Status)
}

func TestCustomSecretKey(t *testing.T) {
	t.Parallel()

	sim, err := New(Options{SecretKey: "test_sk_custom"})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/v1/payments/unknown", nil)
	req.Header.Set("Authorization", AuthorizationHeader("test_sk_custom"))
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.JSONEq(t, `{"code":"NOT_FOUND_PAYMENT","message":"no such payment"}`, rec.Body.String())
}

func TestAuthorizeControl(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := context.Background()

	auth := b.authorize(t, "order-authz-1", 5_000)
	require.Regexp(t, `^tgen_\d{14}[A-Za-z0-9]{12}$`, auth.PaymentKey)
	require.Equal(t, "order-authz-1", auth.OrderID)
	require.EqualValues(t, 5_000, auth.Amount)
	require.True(t, auth.ExpiresAt.Equal(b.clock.Now().Add(DefaultSessionTTL)))

	// The same order and amount again: the same session.
	again, err := b.control.Authorize(ctx, AuthorizeRequest{OrderID: "order-authz-1", Amount: 5_000})
	require.NoError(t, err)
	require.Equal(t, auth.PaymentKey, again.PaymentKey)

	// The same order with another amount: 409.
	_, err = b.control.Authorize(ctx, AuthorizeRequest{OrderID: "order-authz-1", Amount: 6_000})
	requireSimError(t, err, http.StatusConflict, CodeDuplicatedOrderID)

	for name, body := range map[string]string{
		"bad json":        `{"orderId":`,
		"unknown field":   `{"orderId":"order-authz-2","amount":100,"amout":100}`,
		"zero amount":     `{"orderId":"order-authz-2","amount":0}`,
		"negative amount": `{"orderId":"order-authz-2","amount":-1}`,
		"missing orderId": `{"amount":100}`,
		"short orderId":   `{"orderId":"abc","amount":100}`,
		"bad orderId":     `{"orderId":"order/authz/2","amount":100}`,
		"fractional":      `{"orderId":"order-authz-2","amount":10.5}`,
	} {
		res, err := b.http.Post(b.baseURL+"/sim/v1/authorize", "application/json", bytes.NewReader([]byte(body)))
		require.NoError(t, err, name)
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", name, data)
		require.Contains(t, string(data), CodeInvalidRequest, name)
	}
	require.Len(t, b.sim.Ledger().Payments, 1)

	// Created answers 201.
	res, err := b.http.Post(b.baseURL+"/sim/v1/authorize", "application/json",
		bytes.NewReader([]byte(`{"orderId":"order-authz-3","amount":100,"orderName":"티셔츠"}`)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
}

func TestReset(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := context.Background()
	b.setConfig(t, Config{Latency: Duration(time.Millisecond)})
	auth := b.approved(t, "order-reset-1", 1_000)
	pending := b.authorize(t, "order-reset-2", 1_000)
	b.script(t, pending.PaymentKey, OperationConfirm, Step{Kind: StepOK})

	require.NoError(t, b.control.Reset(ctx))

	ledger, err := b.control.Ledger(ctx)
	require.NoError(t, err)
	require.Empty(t, ledger.Payments)
	records, err := b.control.Requests(ctx, "")
	require.NoError(t, err)
	require.Empty(t, records)
	cfg, err := b.control.Config(ctx)
	require.NoError(t, err)
	require.Equal(t, Duration(time.Millisecond), cfg.Latency)

	// The stored response went too: the key now reaches the (empty) gateway.
	b.confirm(t, auth, "confirm-order-reset-1").requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)
	_, err = b.control.LedgerEntry(ctx, auth.PaymentKey)
	requireSimError(t, err, http.StatusNotFound, CodeNotFoundPayment)
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()

	b := setup(t)
	a := b.toss(t, http.MethodGet, "/v2/payments", "", nil)
	a.requireError(t, http.StatusNotFound, CodeNotFound)
}

func requireSimError(t *testing.T, err error, status int, code string) {
	t.Helper()
	require.Error(t, err)
	var simErr *Error
	require.ErrorAs(t, err, &simErr)
	require.Equal(t, status, simErr.Status, simErr.Message)
	require.Equal(t, code, simErr.Code)
}
