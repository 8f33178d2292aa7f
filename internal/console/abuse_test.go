package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

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
