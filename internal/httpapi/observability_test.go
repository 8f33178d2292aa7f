package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-metrics-1", 15000)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Code)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/v1/payments/"+uuid.NewString(), "").Code)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/no/such/"+p.ID, "").Code)
	b.do(t, "BREW", "/v1/payments", "")

	// On the public listener the metrics need an operator or readonly key
	// (their own listener, API_METRICS_ADDR, needs none: cmd/api).
	requireProblem(t, b.as("", "").do(t, http.MethodGet, "/metrics", ""), http.StatusUnauthorized, codeUnauthorized)
	checkoutKey, checkoutID := b.createScopedKey(t, "checkout", apikey.ScopeCheckout)
	requireProblem(t, b.as(checkoutKey, checkoutID).do(t, http.MethodGet, "/metrics", ""), http.StatusForbidden, codeInsufficientScope)
	readonlyKey, readonlyID := b.createScopedKey(t, "prometheus", apikey.ScopeReadonly)
	scraper := b.as(readonlyKey, readonlyID)
	rec := scraper.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	body := rec.Body.String()

	for _, want := range []string{
		`payment_outbox_http_requests_total{method="POST",route="/v1/payments",status="201"} 1`,
		`payment_outbox_http_requests_total{method="GET",route="/v1/payments/:id",status="200"} 1`,
		`payment_outbox_http_requests_total{method="GET",route="/v1/payments/:id",status="404"} 1`,
		`payment_outbox_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`payment_outbox_http_requests_total{method="other",route="/v1/payments",status="405"} 1`,
		`payment_outbox_http_request_duration_seconds_bucket{method="GET",route="/v1/payments/:id",le="+Inf"} 2`,
		`payment_outbox_http_request_duration_seconds_count{method="POST",route="/v1/payments"} 1`,
		"go_goroutines ",
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, p.ID, "a raw path never becomes a label")
	require.NotContains(t, body, "/no/such")

	// Scrapes are counted, and logged at debug only (a refused one is
	// logged as any refusal is).
	scraper.do(t, http.MethodGet, "/metrics", "")
	rec = scraper.do(t, http.MethodGet, "/metrics", "")
	require.Contains(t, rec.Body.String(), `payment_outbox_http_requests_total{method="GET",route="/metrics",status="200"} 2`)
	for _, l := range b.logs.lines(t) {
		if l["msg"] == "request" && l["route"] == "/metrics" && l["status"] == float64(http.StatusOK) {
			require.Equal(t, "DEBUG", l["level"])
		}
	}
}

func TestNoMetricsRouteWithoutHandler(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *Config) { cfg.MetricsHandler, cfg.Metrics = nil, nil })
	requireProblem(t, b.do(t, http.MethodGet, "/metrics", ""), http.StatusNotFound, codeNotFound)
	require.Equal(t, http.StatusCreated, b.postJSON(t, "/v1/payments", `{"orderId":"order-nometrics","amount":1,"orderName":"x"}`).Code)
}

// requestLines returns the log lines of the request with requestID, as
// decoded maps and as written.
func requestLines(t *testing.T, b *testBundle, requestID string) ([]map[string]any, [][]byte) {
	t.Helper()
	var decoded []map[string]any
	var raw [][]byte
	for _, l := range b.logs.rawLines() {
		if !bytes.Contains(l, []byte(`"request_id":"`+requestID+`"`)) {
			continue
		}
		raw = append(raw, l)
	}
	for _, l := range b.logs.lines(t) {
		if l["request_id"] == requestID {
			decoded = append(decoded, l)
		}
	}
	require.NotEmpty(t, decoded, "no log line for request %s", requestID)
	require.Len(t, raw, len(decoded))
	return decoded, raw
}

// requireAllNamePayment checks that every log line of a request names the
// payment, exactly once per line.
func requireAllNamePayment(t *testing.T, b *testBundle, requestID, paymentID string, wantMsgs ...string) {
	t.Helper()
	lines, raw := requestLines(t, b, requestID)
	var msgs []string
	for i, l := range lines {
		require.Equal(t, paymentID, l["payment_id"], "line %s", raw[i])
		require.Equal(t, 1, strings.Count(string(raw[i]), `"payment_id"`), "payment_id once: %s", raw[i])
		msgs = append(msgs, l["msg"].(string))
	}
	for _, m := range wantMsgs {
		require.Contains(t, msgs, m)
	}
}

// TestLogLinesNameThePayment: every line a request about a payment logs,
// not only its access line, carries request_id and payment_id.
func TestLogLinesNameThePayment(t *testing.T) {
	t.Parallel()

	t.Run("ErrorInHandler", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-logs-1", 15000)
		failing := b.with(func(cfg *Config) { cfg.Outbox = failingOutbox{} })
		rec := failing.do(t, http.MethodPost, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_logs_1","amount":15000}`,
			"Content-Type", "application/json", "X-Request-Id", "logs-req-1")
		require.Equal(t, http.StatusInternalServerError, rec.Code)
		requireAllNamePayment(t, b, "logs-req-1", p.ID, "request failed", "request")
	})

	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rec := b.do(t, http.MethodPost, "/v1/payments", `{"orderId":"order-logs-2","amount":1000,"orderName":"Socks"}`,
			"Content-Type", "application/json", "X-Request-Id", "logs-req-2", "Idempotency-Key", "logs-key-2")
		require.Equal(t, http.StatusCreated, rec.Code)
		p := decode[paymentResponse](t, rec)
		requireAllNamePayment(t, b, "logs-req-2", p.ID, "request")

		// A replay never runs the handler; it still names the payment.
		rec = b.do(t, http.MethodPost, "/v1/payments", `{"orderId":"order-logs-2","amount":1000,"orderName":"Socks"}`,
			"Content-Type", "application/json", "X-Request-Id", "logs-req-3", "Idempotency-Key", "logs-key-2")
		require.Equal(t, "true", rec.Header().Get("Idempotent-Replayed"))
		requireAllNamePayment(t, b, "logs-req-3", p.ID, "request")
	})

	t.Run("Webhook", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-logs-4", 15000)
		b.confirmPayment(t, p.ID, "pk_logs_4", 15000)
		rec := b.as("", "").do(t, http.MethodPost, webhookPath, tossEventBody("pk_logs_4", "order-logs-4", "DONE", ""),
			"Content-Type", "application/json", "X-Request-Id", "logs-req-4")
		requireWebhookOK(t, rec)
		requireAllNamePayment(t, b, "logs-req-4", p.ID, "gateway webhook: lookup enqueued", "request")
	})

	t.Run("PathNamesThePayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := uuid.NewString()
		// Refused before any handler ran: the line still says which payment
		// the request was about.
		rec := b.as("", "").do(t, http.MethodGet, "/v1/payments/"+strings.ToUpper(id), "", "X-Request-Id", "logs-req-5")
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		requireAllNamePayment(t, b, "logs-req-5", id, "request")

		// Not a payment id: no payment_id.
		rec = b.do(t, http.MethodGet, "/v1/payments/not-an-id", "", "X-Request-Id", "logs-req-6")
		require.Equal(t, http.StatusNotFound, rec.Code)
		lines, _ := requestLines(t, b, "logs-req-6")
		for _, l := range lines {
			require.NotContains(t, l, "payment_id")
		}
	})
}
