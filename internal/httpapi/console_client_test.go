package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"

	"github.com/payment-outbox/payment-outbox/internal/console"
)

// The console (internal/console) is mounted by the api; these tests of the
// api's own rules (its open routes, the pages that show what the JSON API
// shows) drive it as a browser would. The console's own tests are in its
// package.

// The console's path and sign-in cookie, as the tests send them.
const (
	consolePath        = console.Path
	consoleLoginCookie = console.LoginCookie
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
