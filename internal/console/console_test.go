package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleClient is a browser without a browser: it keeps the console's
// cookies and reads the CSRF token off the last page.
type consoleClient struct {
	b       *testBundle
	cookies map[string]*http.Cookie
	csrf    string
}

func (b *testBundle) console() *consoleClient {
	return &consoleClient{b: b.as("", ""), cookies: map[string]*http.Cookie{}}
}

func (cc *consoleClient) do(t *testing.T, method, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	body := ""
	if form != nil {
		body = form.Encode()
	}
	req := cc.b.request(t, method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cc.cookies {
		req.AddCookie(c)
	}
	rec := cc.b.serve(req)
	for _, c := range rec.Result().Cookies() {
		cc.cookies[c.Name] = c
	}
	if m := csrfField.FindStringSubmatch(rec.Body.String()); m != nil {
		cc.csrf = m[1]
	}
	return rec
}

func (cc *consoleClient) signIn(t *testing.T, key string) *httptest.ResponseRecorder {
	t.Helper()
	cc.do(t, http.MethodGet, "/console/login", nil)
	return cc.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {cc.csrf}, "key": {key}})
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	b := setup(t)

	cc := b.console()
	rec := cc.do(t, http.MethodGet, "/console", nil)
	require.Equal(t, http.StatusSeeOther, rec.Code, "no session: to the sign-in page")
	require.Equal(t, "/console/login", rec.Header().Get("Location"))
	rec = cc.do(t, http.MethodGet, "/console/login", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	csp := rec.Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))

	// A checkout key cannot sign in; neither can a forged form.
	checkoutKey, _ := b.createScopedKey(t, "checkout", apikey.ScopeCheckout)
	require.Equal(t, http.StatusForbidden, b.console().signIn(t, checkoutKey).Code)
	forged := b.console()
	rec = forged.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {"guess"}, "key": {b.apiKey}})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.NotContains(t, forged.cookies, consoleCookie)

	rec = cc.signIn(t, b.apiKey)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	session := cc.cookies[consoleCookie]
	require.NotNil(t, session)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)
	require.NotContains(t, session.Value, b.apiKey, "the key never goes into the cookie")
	rec = cc.do(t, http.MethodGet, "/console", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "test client")

	// Signing out ends the session on the server, not only in the browser.
	stale := *session
	cc.do(t, http.MethodPost, "/console/logout", url.Values{"csrf": {cc.csrf}})
	cc.cookies[consoleCookie] = &stale
	require.Equal(t, http.StatusSeeOther, cc.do(t, http.MethodGet, "/console", nil).Code)
}

func TestConsoleActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.refusedCompensation(t, "order-console-1")

	// The attention list reads the server's clock (b.now).
	_, err := b.pool.Exec(t.Context(), "UPDATE payments SET updated_at = $2 WHERE id = $1", p.ID, b.now.Add(-time.Hour))
	require.NoError(t, err)
	cc := b.console()
	cc.signIn(t, b.apiKey)
	rec := cc.do(t, http.MethodGet, "/console/attention", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "compensating cancel refused (NOT_CANCELABLE_PAYMENT)")
	rec = cc.do(t, http.MethodGet, "/console/payments/"+p.ID, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Send the refused cancel again")

	act := url.Values{"action": {"resend_cancel"}, "reason": {"bank lifted the block"}}
	// Without its CSRF token the form is refused, and nothing changes.
	rec = cc.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act", act)
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "security token")
	act.Set("csrf", cc.csrf)
	// The first post asks to confirm; only the second acts.
	rec = cc.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act", act)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Confirm: resend_cancel")
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	act.Set("confirmed", "yes")
	rec = cc.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act", act)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, payment.StatusCanceling, b.status(t, p.ID))
	require.Equal(t, 1, b.countActions(t))

	// A readonly key looks, and cannot act.
	readonlyKey, _ := b.createScopedKey(t, "auditor", apikey.ScopeReadonly)
	ro := b.console()
	require.Equal(t, http.StatusSeeOther, ro.signIn(t, readonlyKey).Code)
	rec = ro.do(t, http.MethodGet, "/console/payments/"+p.ID, nil)
	require.Contains(t, rec.Body.String(), "Signed in read-only")
	rec = ro.do(t, http.MethodPost, "/console/payments/"+p.ID+"/act",
		url.Values{"csrf": {ro.csrf}, "action": {"acknowledge"}, "reason": {"x"}, "confirmed": {"yes"}})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Equal(t, 1, b.countActions(t))
}

func TestConsoleEscapes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"orderId":"order-xss-1","amount":1000,"orderName":"<script>alert(1)</script>"}`
	rec := b.postJSON(t, "/v1/payments", body)
	require.Equal(t, http.StatusCreated, rec.Code)
	p := decode[paymentResponse](t, rec)
	cc := b.console()
	cc.signIn(t, b.apiKey)
	page := cc.do(t, http.MethodGet, "/console/payments/"+p.ID, nil).Body.String()
	for _, l := range b.logs.lines(t) {
		require.NotEqual(t, "request failed", l["msg"], l["error"])
	}
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.NotContains(t, page, "<script>alert")
	require.Equal(t, 1, strings.Count(page, "<script"), "only the console's own script")
}
