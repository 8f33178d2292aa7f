package httpapi

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// The probes of an attacker or a careless client that found holes once
// (issue 17's smaller findings), kept as tests: each bad input gets a clear
// 400 and writes nothing.

// TestAmountCeiling sends creates and cancels past the amount ceiling: the
// default, 2^53 - 1, and a deployment's lower one. Each is 400 and nothing
// is written; the ceiling itself is accepted.
func TestAmountCeiling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	over := strconv.FormatInt(payment.MaxAmount+1, 10)

	for _, amount := range []string{over, "9223372036854775807"} {
		rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-ceil-1","amount":`+amount+`,"orderName":"x"}`)
		p := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		require.Contains(t, p.Detail, "at most 9007199254740991")
	}
	require.Equal(t, 0, b.countPayments(t))

	atCeiling := b.createPayment(t, "order-ceil-2", payment.MaxAmount)
	require.EqualValues(t, payment.MaxAmount, atCeiling.Amount)

	confirmed := b.createPayment(t, "order-ceil-3", 15000)
	b.confirmPayment(t, confirmed.ID, "pk_ceil_3", 15000)
	b.approve(t, confirmed.ID)
	rec := b.do(t, http.MethodPost, "/v1/payments/"+confirmed.ID+"/cancel", `{"reason":"r","amount":`+over+`}`,
		"Content-Type", "application/json", "Idempotency-Key", "ceil-cancel-1")
	requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
	require.Equal(t, 0, b.countCancels(t, confirmed.ID))
	require.Equal(t, 0, b.countJobs(t, kindCancel, confirmed.ID))

	// A deployment's own, lower ceiling (API_MAX_AMOUNT).
	low := b.with(func(c *Config) { c.MaxAmount = 1_000_000 })
	rec = low.postJSON(t, "/v1/payments", `{"orderId":"order-ceil-4","amount":1000001,"orderName":"x"}`)
	p := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
	require.Contains(t, p.Detail, "at most 1000000")
	rec = low.do(t, http.MethodPost, "/v1/payments/"+confirmed.ID+"/cancel", `{"reason":"r","amount":1000001}`,
		"Content-Type", "application/json", "Idempotency-Key", "ceil-cancel-2")
	requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
	require.Equal(t, 0, b.countCancels(t, confirmed.ID))
	low.createPayment(t, "order-ceil-5", 1_000_000)
	require.Equal(t, 3, b.countPayments(t))
}

// TestFormatCharactersRefused sends an orderName and a cancel reason holding
// invisible format characters (Unicode category Cf) that make text read as
// something else: 400, nothing written.
func TestFormatCharactersRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	confirmed := b.createPayment(t, "order-cf-0", 15000)
	b.confirmPayment(t, confirmed.ID, "pk_cf_0", 15000)
	b.approve(t, confirmed.ID)

	for _, text := range []string{
		`invoice\u202Efdp.exe`,  // RIGHT-TO-LEFT OVERRIDE: shows as "invoiceexe.pdf"
		`Blue\u200Bshirt`,       // ZERO WIDTH SPACE
		`\uFEFFBlue shirt`,      // ZERO WIDTH NO-BREAK SPACE (BOM)
		`Blue\u2066shirt`,       // LEFT-TO-RIGHT ISOLATE
		`Blue\u00ADshirt`,       // SOFT HYPHEN
		`Blue\u2060shirt`,       // WORD JOINER
		`Blue\uDB40\uDC41shirt`, // TAG LATIN CAPITAL LETTER A
	} {
		rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-cf-1","amount":100,"orderName":"`+text+`"}`)
		p := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		require.Contains(t, p.Detail, "format characters")

		rec = b.postJSON(t, "/v1/payments/"+confirmed.ID+"/cancel", `{"reason":"`+text+`"}`)
		requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
	}
	require.Equal(t, 1, b.countPayments(t))
	require.Equal(t, 0, b.countCancels(t, confirmed.ID))

	// Korean, a single emoji and ordinary punctuation stay welcome (an
	// emoji sequence joined by U+200D ZERO WIDTH JOINER does not: the
	// joiner is a format character too).
	b.createPayment(t, "order-cf-2", 100)
	rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-cf-3","amount":100,"orderName":"파란 셔츠 👕 (L) – 1개"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
}

// TestWebhookEndpointURLAbuse registers the endpoint URLs a client could use
// to reach the operator's own network or send payment data in the clear:
// plain http, and IPv6 forms that carry a private or metadata IPv4 address,
// literal or behind a name. Each is refused and nothing is stored; in
// development (API_WEBHOOK_ALLOW_PRIVATE) plain http to loopback is fine.
func TestWebhookEndpointURLAbuse(t *testing.T) {
	t.Parallel()
	b := setup(t, withResolver("64:ff9b::a9fe:a9fe"))
	for url, code := range map[string]string{
		"http://93.184.215.14/hooks":         payment.CodeInvalidRequest,
		"http://shop.example/hooks":          payment.CodeInvalidRequest,
		"https://[64:ff9b::a9fe:a9fe]/":      webhook.CodeURLRefused, // NAT64 of 169.254.169.254
		"https://[64:ff9b::10.0.0.1]/":       webhook.CodeURLRefused,
		"https://[2002:a9fe:a9fe::1]/":       webhook.CodeURLRefused, // 6to4
		"https://[2001:0:a00:1::1]/":         webhook.CodeURLRefused, // Teredo server 10.0.0.1
		"https://[::127.0.0.1]/":             webhook.CodeURLRefused, // IPv4-compatible
		"https://[::ffff:169.254.169.254]/":  webhook.CodeURLRefused,
		"https://192.0.2.10/":                webhook.CodeURLRefused, // documentation
		"https://198.18.0.1/":                webhook.CodeURLRefused, // benchmarking
		"https://240.0.0.1/":                 webhook.CodeURLRefused, // reserved
		"https://[2001:db8::1]/":             webhook.CodeURLRefused,
		"https://[fd00:ec2::254]/":           webhook.CodeURLRefused, // unique local (a cloud's metadata)
		"https://metadata.shop.example/hook": webhook.CodeURLRefused, // resolves to NAT64 of 169.254.169.254
	} {
		status := http.StatusBadRequest
		if code == webhook.CodeURLRefused {
			status = http.StatusUnprocessableEntity
		}
		requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints", `{"url":"`+url+`"}`), status, code)
	}
	es, err := b.store.WebhookEndpoints(t.Context(), b.pool, payment.Everyone())
	require.NoError(t, err)
	require.Empty(t, es)

	dev := b.with(func(c *Config) { c.WebhookAllowPrivate = true })
	dev.createEndpoint(t, `{"url":"http://127.0.0.1:9000/hooks"}`)
}
