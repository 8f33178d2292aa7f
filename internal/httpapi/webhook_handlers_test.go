package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

const kindLookup = "payment_lookup"

const webhookPath = "/v1/webhooks/toss"

// tossEventBody is a PAYMENT_STATUS_CHANGED body the way Toss sends it,
// with a few of the Payment object's many members.
func tossEventBody(paymentKey, orderID, status, createdAt string) string {
	return fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":%q,"data":{"mId":"tosspayments",`+
		`"version":"2022-11-16","paymentKey":%q,"orderId":%q,"orderName":"Blue shirt","status":%q,`+
		`"requestedAt":"2026-11-21T21:00:00+09:00","approvedAt":null,"totalAmount":15000,"balanceAmount":15000,`+
		`"card":{"number":"43301234****123*"},"cancels":null}}`, createdAt, paymentKey, orderID, status)
}

// postWebhook posts a webhook body without an API key, as Toss does.
func (b *testBundle) postWebhook(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	return b.as("", "").postJSON(t, webhookPath, body)
}

// requireWebhookOK checks the one answer every accepted webhook gets.
func requireWebhookOK(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
}

func TestTossWebhook(t *testing.T) {
	t.Parallel()

	t.Run("DuplicatesAndReorderingsMakeOneLookup", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-1", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_1", 15000)
		before := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String()

		// What a gateway retrying deliveries, and delivering them out of
		// order, looks like: the same event many times, and a later status
		// arriving before an earlier one.
		bodies := []string{
			tossEventBody("pk_wh_1", "order-wh-1", "DONE", "2026-11-21T21:00:05.123456"),
			tossEventBody("pk_wh_1", "order-wh-1", "CANCELED", "2026-11-21T21:09:00+09:00"),
			tossEventBody("pk_wh_1", "order-wh-1", "IN_PROGRESS", "2026-11-21T21:00:00.1"),
			tossEventBody("pk_wh_1", "order-wh-1", "DONE", "2026-11-21T12:00:05Z"),
		}
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { requireWebhookOK(t, b.postWebhook(t, bodies[i%len(bodies)])) })
		}
		wg.Wait()

		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
		var args paymentjob.LookupArgs
		require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT args FROM river_job WHERE kind = $1", kindLookup).Scan(&args))
		// The lookup of this interval (the test's clock stands still).
		require.Equal(t, paymentjob.LookupArgs{PaymentID: p.ID, Period: b.now.Truncate(payflow.DefaultWebhookLookupInterval).Format(time.RFC3339)}, args)
		// The payment is exactly as it was: the webhook said DONE and
		// CANCELED, and neither is taken on its word.
		require.Equal(t, before, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String())
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
	})

	t.Run("FallsBackToOrderID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-2", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_2", 15000)
		requireWebhookOK(t, b.postWebhook(t, tossEventBody("pk_not_ours", "order-wh-2", "DONE", "")))
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
	})

	t.Run("PaymentNotYetConfirmedWithUs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-3", 15000)
		requireWebhookOK(t, b.postWebhook(t, tossEventBody("pk_wh_3", "order-wh-3", "READY", "")))
		require.Equal(t, 0, b.countJobs(t, kindLookup, p.ID))
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
	})

	t.Run("StrangersLearnNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-4", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_4", 15000)
		ours := b.postWebhook(t, tossEventBody("pk_wh_4", "", "DONE", ""))
		for name, body := range map[string]string{
			"UnknownKey":       tossEventBody("pk_nobody", "", "DONE", ""),
			"UnknownOrder":     tossEventBody("", "order-nobody", "DONE", ""),
			"SQLKey":           tossEventBody("' OR 1=1; --", "x'); DROP TABLE payments; --", "DONE", ""),
			"NULKey":           `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk\u0000x","orderId":"order\u0000x"}}`,
			"UnicodeOrder":     tossEventBody("", "주문-123456", "DONE", ""),
			"HugeKey":          tossEventBody(strings.Repeat("k", 10_000), "", "DONE", ""),
			"InvalidUTF8":      "{\"eventType\":\"PAYMENT_STATUS_CHANGED\",\"data\":{\"paymentKey\":\"\xff\xfe\"}}",
			"UnknownEventType": `{"eventType":"DEPOSIT_CALLBACK","data":{"paymentKey":"pk_wh_4"}}`,
			"NoEventType":      `{"data":{"paymentKey":"pk_wh_4"}}`,
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postWebhook(t, body)
				requireWebhookOK(t, rec)
				require.Equal(t, ours.Body.String(), rec.Body.String())
			})
		}
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
		var lookups int
		require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM river_job WHERE kind = $1", kindLookup).Scan(&lookups))
		require.Equal(t, 1, lookups)
		require.Equal(t, payment.StatusConfirming, b.status(t, p.ID))

		// One line each, the access line, at debug: a flood of these must
		// not fill the logs. The metric is where they show.
		var unknown, ignored []map[string]any
		for _, l := range b.logs.lines(t) {
			if l["payment_key"] == "pk_nobody" {
				unknown = append(unknown, l)
			}
			if l["event_type"] == "DEPOSIT_CALLBACK" {
				ignored = append(ignored, l)
			}
		}
		require.Len(t, unknown, 1, "an unknown payment writes one line")
		require.Equal(t, "DEBUG", unknown[0]["level"])
		require.Equal(t, "request", unknown[0]["msg"])
		require.Equal(t, metrics.WebhookUnknownPayment, unknown[0]["webhook_outcome"])
		require.Len(t, ignored, 1, "an ignored event type writes one line")
		require.Equal(t, "DEBUG", ignored[0]["level"])
		require.Equal(t, metrics.WebhookIgnored, ignored[0]["webhook_outcome"])
		// UnknownKey, UnknownOrder, SQLKey, NULKey, UnicodeOrder, HugeKey
		// and InvalidUTF8 name nothing we have.
		require.Equal(t, 7.0, b.webhookCount(t, payment.GatewayToss, metrics.WebhookUnknownPayment))
	})

	t.Run("Malformed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-5", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_5", 15000)
		for _, tt := range []struct {
			name, body, code string
		}{
			{"Empty", ``, codeInvalidJSON},
			{"Truncated", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk_wh_5"`, codeInvalidJSON},
			{"Array", `[]`, codeInvalidJSON},
			{"Null", `null`, codeInvalidJSON},
			{"String", `"PAYMENT_STATUS_CHANGED"`, codeInvalidJSON},
			{"TrailingGarbage", `{"eventType":"x"} {`, codeInvalidJSON},
			{"EventTypeNumber", `{"eventType":7}`, payment.CodeInvalidRequest},
			{"DataString", `{"eventType":"PAYMENT_STATUS_CHANGED","data":"pk_wh_5"}`, payment.CodeInvalidRequest},
			{"KeyNumber", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":5}}`, payment.CodeInvalidRequest},
			{"NoData", `{"eventType":"PAYMENT_STATUS_CHANGED"}`, payment.CodeInvalidRequest},
			{"NoIdentifiers", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"status":"DONE"}}`, payment.CodeInvalidRequest},
		} {
			t.Run(tt.name, func(t *testing.T) {
				requireProblem(t, b.postWebhook(t, tt.body), http.StatusBadRequest, tt.code)
			})
		}
		big := tossEventBody("pk_wh_5", "order-wh-5", "DONE", "") + strings.Repeat(" ", int(DefaultBodyLimit))
		requireProblem(t, b.postWebhook(t, big), http.StatusRequestEntityTooLarge, codeBodyTooLarge)
		require.Equal(t, 0, b.countJobs(t, kindLookup, p.ID))
	})

	t.Run("AnyContentTypeAndNoKeyNeeded", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-6", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_6", 15000)
		rec := b.as("", "").do(t, http.MethodPost, webhookPath, tossEventBody("pk_wh_6", "", "DONE", ""),
			"Content-Type", "text/plain", "Authorization", "Bearer nonsense")
		requireWebhookOK(t, rec)
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
	})

	t.Run("OutboxFailureIs500", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-wh-7", 15000)
		b.confirmPayment(t, p.ID, "pk_wh_7", 15000)
		failing := b.with(func(cfg *Config) { cfg.Outbox = failingOutbox{} })
		// A 5xx makes the gateway deliver again later, which is what we want.
		rec := failing.as("", "").postJSON(t, webhookPath, tossEventBody("pk_wh_7", "", "DONE", ""))
		requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
		require.Equal(t, 0, b.countJobs(t, kindLookup, p.ID))
	})
}

func TestParseTossTime(t *testing.T) {
	t.Parallel()
	kstNoon := time.Date(2022, 1, 1, 12, 0, 0, 0, kst)
	for raw, want := range map[string]time.Time{
		`"2022-01-01T12:00:00"`:              kstNoon,
		`"2022-01-01T12:00:00.000000"`:       kstNoon,
		`"2022-01-01 12:00:00"`:              kstNoon,
		`"2022-01-01T12:00:00.5"`:            kstNoon.Add(500 * time.Millisecond),
		`"2022-01-01T12:00:00.123456789123"`: kstNoon.Add(123456789),
		`"2022-01-01T12:00:00+09:00"`:        kstNoon,
		`"2022-01-01T12:00:00.25+0900"`:      kstNoon.Add(250 * time.Millisecond),
		`"2022-01-01T03:00:00Z"`:             kstNoon,
		`"2022-01-01T03:00:00.000001Z"`:      kstNoon.Add(time.Microsecond),
		`"2021-12-31T22:00:00-05:00"`:        kstNoon,
		`  "2022-01-01T12:00:00"  `:          kstNoon,
		`null`:                               {},
		`""`:                                 {},
		`"yesterday"`:                        {},
		`"2022-13-01T12:00:00"`:              {},
		`20220101`:                           {},
		`{"at":"2022-01-01T12:00:00"}`:       {},
		``:                                   {},
	} {
		got := parseTossTime(json.RawMessage(raw))
		require.True(t, want.Equal(got), "%s: got %v, want %v", raw, got, want)
	}
}

// FuzzParseTossEvent holds the webhook parser to its promises whatever a
// stranger posts: no panic; a refusal is a 400 problem with an input code;
// an accepted payment event names a payment; and the body it accepted is a
// JSON object.
func FuzzParseTossEvent(f *testing.F) {
	for _, seed := range []string{
		tossEventBody("pk_1", "order-0001", "DONE", "2022-01-01T00:00:00.000000"),
		`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"orderId":"order-0001"}}`,
		`{"eventType":"DEPOSIT_CALLBACK","secret":"x","status":"DONE"}`,
		`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":7,"data":{"paymentKey":"k"}}`,
		`{"eventType":"PAYMENT_STATUS_CHANGED","data":null}`,
		`{"eventType":null,"data":{"paymentKey":null}}`,
		`{"data":{"paymentKey":"a","paymentKey":"b"}}`,
		`{}`, `[]`, `null`, ``, `{`, "\xff", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"\ud800"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseTossEvent(body)
		if err != nil {
			var pe *problemError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, http.StatusBadRequest, pe.status)
			require.Contains(t, []string{codeInvalidJSON, payment.CodeInvalidRequest}, pe.code)
			require.NotEmpty(t, pe.detail)
			return
		}
		require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &members), "accepted a non-object %q", body)
		if ev.EventType == tossEventPaymentStatusChanged {
			require.True(t, ev.PaymentKey != "" || ev.OrderID != "")
		}
	})
}
