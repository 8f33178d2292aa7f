package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
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

// TestConsoleFormsReadTheBodyOnly posts console forms whose CSRF token, or
// whose other fields, ride in the query string (where a link, a history or
// a proxy log would carry them): they are refused, and nothing is done.
func TestConsoleFormsReadTheBodyOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.refusedCompensation(t, "order-console-csrf")
	cc := b.console()
	require.Equal(t, http.StatusSeeOther, cc.signIn(t, b.apiKey).Code)
	// The payment's page, for the session's token.
	require.Equal(t, http.StatusOK, cc.do(t, http.MethodGet, "/console/payments/"+p.ID, nil).Code)
	fields := url.Values{"action": {"acknowledge"}, "reason": {"seen"}, "confirmed": {"yes"}}

	// The token in the query string, the fields in the body.
	rec := cc.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act?csrf="+url.QueryEscape(cc.csrf), fields)
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "security token")

	// The token in the body, the fields in the query string.
	rec = cc.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act?"+fields.Encode(), url.Values{"csrf": {cc.csrf}})
	require.NotEqual(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, 0, b.countActions(t))
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))

	// Signing in: the token, and the key, only from the body.
	login := b.console()
	login.do(t, http.MethodGet, "/console/login", nil)
	rec = login.do(t, http.MethodPost, "/console/login?csrf="+url.QueryEscape(login.csrf), url.Values{"key": {b.apiKey}})
	require.Equal(t, http.StatusForbidden, rec.Code)
	rec = login.do(t, http.MethodPost, "/console/login?key="+url.QueryEscape(b.apiKey), url.Values{"csrf": {login.csrf}})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.NotContains(t, login.cookies, consoleCookie)
}

// TestConsoleTransportSecurity: outside development the console's cookies
// are Secure and its pages carry Strict-Transport-Security, whatever the
// request came over (a proxy that forgets X-Forwarded-Proto must not make
// them readable); in development (API_DEV) neither, so plain http works.
func TestConsoleTransportSecurity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, tb := range map[string]*testBundle{"production": b, "development": b.with(func(c *Config) { c.Development = true })} {
		dev := name == "development"
		cc := tb.console()
		rec := cc.do(t, http.MethodGet, "/console/login", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		if dev {
			require.Empty(t, rec.Header().Get("Strict-Transport-Security"), name)
		} else {
			require.Equal(t, "max-age=31536000", rec.Header().Get("Strict-Transport-Security"), name)
		}
		require.Equal(t, !dev, cc.cookies[consoleLoginCookie].Secure, name)
		rec = cc.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {cc.csrf}, "key": {b.apiKey}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Equal(t, !dev, cc.cookies[consoleCookie].Secure, name)
		require.True(t, cc.cookies[consoleCookie].HttpOnly)
	}
}

// signInFrom signs in to the console from a client address, as a browser
// would: the sign-in page, then the form.
func signInFrom(t *testing.T, b *testBundle, addr, key string) *httptest.ResponseRecorder {
	t.Helper()
	cc := b.console()
	page := cc.b.request(t, http.MethodGet, "/console/login", "")
	page.RemoteAddr = addr
	rec := cc.b.serve(page)
	ck := rec.Result().Cookies()
	m := csrfField.FindStringSubmatch(rec.Body.String())
	require.NotNil(t, m)
	req := cc.b.request(t, http.MethodPost, "/console/login", url.Values{"csrf": {m[1]}, "key": {key}}.Encode())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = addr
	for _, c := range ck {
		req.AddCookie(c)
	}
	return cc.b.serve(req)
}

// TestConsoleSignInThrottle guesses console keys: past five failures in a
// minute from one address, or for one key prefix from any address, a
// sign-in is answered 429 with Retry-After before its key is even looked up
// (a right key too), and counted; other addresses and prefixes are not
// held up, and the next minute starts afresh.
func TestConsoleSignInThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 12, 0, 10, 0, time.UTC)
	b := setup(t, func(c *Config) { c.Now = func() time.Time { return now } })
	wrong := func() string {
		k, err := apikey.Generate()
		require.NoError(t, err)
		return k
	}

	// One address guessing.
	for range signInFailuresPerWindow {
		require.Equal(t, http.StatusUnauthorized, signInFrom(t, b, "203.0.113.7:5000", wrong()).Code)
	}
	rec := signInFrom(t, b, "203.0.113.7:5001", b.apiKey)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	require.Equal(t, "50", rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), "Too many failed sign-ins")
	for _, c := range rec.Result().Cookies() {
		require.NotEqual(t, consoleCookie, c.Name, "no session for a throttled sign-in")
	}
	require.Equal(t, http.StatusSeeOther, signInFrom(t, b, "198.51.100.8:5000", b.apiKey).Code, "another address signs in")

	// One key prefix guessed from many addresses (a leaked prefix, the rest
	// guessed).
	victim, _ := b.createAPIKey(t, "victim")
	prefix := apikey.DisplayPrefix(victim)
	for i := range signInFailuresPerWindow {
		guess := prefix + wrong()[len(prefix):]
		require.Equal(t, http.StatusUnauthorized, signInFrom(t, b, fmt.Sprintf("192.0.2.%d:5000", i+1), guess).Code)
	}
	require.Equal(t, http.StatusTooManyRequests, signInFrom(t, b, "192.0.2.99:5000", victim).Code)

	rec = b.as("", "").do(t, http.MethodGet, "/metrics", "", "Authorization", "Bearer "+b.apiKey)
	require.Contains(t, rec.Body.String(), "payment_outbox_console_signin_throttled_total 2")

	// A minute later both may try again.
	now = now.Add(time.Minute)
	require.Equal(t, http.StatusSeeOther, signInFrom(t, b, "203.0.113.7:5002", b.apiKey).Code)
	require.Equal(t, http.StatusSeeOther, signInFrom(t, b, "192.0.2.99:5000", victim).Code)
}

// TestSignInThrottleMemoryIsBounded floods the throttle with failures from
// more addresses than it tracks: it holds at most signInMaxTracked counts
// (plus the shared one), the newcomers share that count and are held up
// together, an address counted before the flood keeps its own, and a new
// window forgets everything.
func TestSignInThrottleMemoryIsBounded(t *testing.T) {
	t.Parallel()
	th := newSignInThrottle()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	th.failed(now, "198.51.100.1", "po_live_known")
	for i := range 3 * signInMaxTracked {
		th.failed(now, fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), "-")
	}
	require.LessOrEqual(t, th.tracked(), signInMaxTracked+1)
	_, blocked := th.blocked(now, "10.200.0.1", "po_live_abcdefgh")
	require.True(t, blocked, "a newcomer past the bound shares the flood's count")
	_, blocked = th.blocked(now, "198.51.100.1", "po_live_known")
	require.False(t, blocked, "an address and prefix counted before the flood keep their own count")
	th.roll(now.Add(signInWindow))
	require.Zero(t, th.tracked())
}
