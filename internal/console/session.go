package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// SessionCookie and LoginCookie are the console's cookies: the session
// after signing in, and the sign-in form's CSRF token (its login CSRF
// guard). Their names are part of what a browser and a proxy see.
const (
	SessionCookie = "po_console"
	LoginCookie   = "po_console_login"
)

// Console cookies and lifetimes.
const (
	consoleCookie      = SessionCookie
	consoleLoginCookie = LoginCookie
	consolePath        = Path
	// consoleSessionTTL is one working day: long enough for a shift,
	// short enough that a forgotten laptop's session ends by itself.
	consoleSessionTTL = 8 * time.Hour
)

// consoleCSP allows nothing but the console's own stylesheet and script,
// and forms that post back to it.
const consoleCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleSession is the signed-in user of a console request.
type consoleSession struct {
	id   Identity
	csrf string
}

// operator is the session's key as payflow's Operator, the one an action's
// audit row names.
func (cs consoleSession) operator() payflow.Operator {
	return payflow.Operator{KeyID: cs.id.KeyID, KeyName: cs.id.Name}
}

// ctxKeyConsole holds the consoleSession of a signed-in request.
const ctxKeyConsole = "console.session"

// consoleHeaders sets the security headers of every console answer.
func (s *Console) consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.development {
			// The console is only ever to be reached over https (docs/design.md,
			// section 21): a browser that once saw it there never again tries
			// plain http for this host, where a session cookie could be read.
			h.Set("Strict-Transport-Security", consoleHSTS)
		}
		// Forms are small; the API's body limit bounds them too.
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, s.bodyLimit)
		if !strings.HasPrefix(c.Path(), consolePath+"/static") {
			// Pages carry payments and a CSRF token: never cached.
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// consoleAuth lets a request through only with a live session; a page
// request without one is sent to the sign-in page.
func (s *Console) consoleAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(consoleCookie)
		if err != nil || ck.Value == "" {
			return c.Redirect(http.StatusSeeOther, consolePath+"/login")
		}
		hash := sha256.Sum256([]byte(ck.Value))
		sess, err := s.store.ConsoleSessionByHash(c.Request().Context(), s.pool, hash[:], s.now())
		if errors.Is(err, apikey.ErrNotFound) {
			return c.Redirect(http.StatusSeeOther, consolePath+"/login")
		}
		if err != nil {
			return fmt.Errorf("error reading console session: %w", err)
		}
		cs := consoleSession{id: Identity{KeyID: sess.Key.ID, Name: sess.Key.Name, Scope: sess.Key.Scope, Owner: payment.Owner(sess.Key.Owner)}, csrf: sess.CSRFToken}
		c.Set(ctxKeyConsole, cs)
		s.auth.SignedIn(c, cs.id)
		if c.Request().Method == http.MethodPost && !validCSRF(c, cs.csrf) {
			return s.consoleError(c, http.StatusForbidden, "This form is missing its security token or it is stale. Go back, reload the page and try again.")
		}
		return next(c)
	}
}

// validCSRF compares a form's token with the session's in constant time.
// The token is read from the form body only: one in the query string would
// sit in the address bar, the history, the access logs of every proxy on
// the way and the Referer of the next page.
func validCSRF(c echo.Context, want string) bool {
	got := formValue(c, "csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// formValue is a field of a posted form's body, never of the query string
// (echo's FormValue reads both): a console form posts everything it sends,
// and a key or reason in a URL would be logged and kept in histories.
func formValue(c echo.Context, name string) string {
	return c.Request().PostFormValue(name)
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("error reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// consoleHSTS keeps browsers on https for the console's host for a year.
// No includeSubDomains or preload: which other hosts share the domain is
// the operator's business, not the api's.
const consoleHSTS = "max-age=31536000"

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, and Secure
// unless the api runs in development (Config.Development), whatever the
// request came over. Deciding from the request (TLS, X-Forwarded-Proto)
// would let one plain-http request, or a proxy that forgot the header,
// hand out a session cookie a network could read.
func (s *Console) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: consolePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: !s.development,
	})
}

// consoleLoginPage shows the sign-in form. The form carries a token that
// must equal a cookie set with it, so another site cannot sign a browser in
// with a key of its choosing (login CSRF).
func (s *Console) consoleLoginPage(c echo.Context) error {
	return s.renderLogin(c, http.StatusOK, "")
}

func (s *Console) renderLogin(c echo.Context, status int, problem string) error {
	token, err := randomToken()
	if err != nil {
		return err
	}
	s.setCookie(c, consoleLoginCookie, token, 600)
	return s.render(c, status, "login.html", map[string]any{"CSRF": token, "Problem": problem})
}

// signInClient is what a sign-in's failures are counted under: the
// connection's address (not X-Forwarded-For, which the client writes) and
// the key's display prefix, the part of a key that is shown in lists and
// logs ("-" for a key that is not even well-formed, which has none).
func signInClient(c echo.Context, key string) (addr, prefix string) {
	addr = c.Request().RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	prefix = "-"
	if apikey.WellFormed(key) {
		prefix = apikey.DisplayPrefix(key)
	}
	return addr, prefix
}

// consoleLogin signs in with an operator or readonly key.
func (s *Console) consoleLogin(c echo.Context) error {
	ck, err := c.Cookie(consoleLoginCookie)
	if err != nil || !validCSRF(c, ck.Value) {
		return s.renderLogin(c, http.StatusForbidden, "The sign-in form was stale. Try again.")
	}
	key := strings.TrimSpace(formValue(c, "key"))
	addr, prefix := signInClient(c, key)
	if wait, ok := s.signIns.blocked(s.now(), addr, prefix); ok {
		s.metrics.SignInThrottled()
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return s.renderLogin(c, http.StatusTooManyRequests, "Too many failed sign-ins. Wait a minute and try again.")
	}
	if !apikey.WellFormed(key) {
		s.signIns.failed(s.now(), addr, prefix)
		return s.renderLogin(c, http.StatusUnauthorized, "That is not a valid API key.")
	}
	cl, err := s.auth.Authenticate(c, key)
	if errors.Is(err, apikey.ErrNotFound) {
		s.signIns.failed(s.now(), addr, prefix)
		return s.renderLogin(c, http.StatusUnauthorized, "That key is not valid or has been revoked.")
	}
	if err != nil {
		return fmt.Errorf("error signing in: %w", err)
	}
	if cl.Scope != apikey.ScopeOperator && cl.Scope != apikey.ScopeReadonly {
		return s.renderLogin(c, http.StatusForbidden, "The console needs an operator or readonly key; this one is "+string(cl.Scope)+".")
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(token))
	ctx := c.Request().Context()
	// Sessions past their time are swept at each sign-in: rare enough to
	// cost nothing, often enough that the table stays small.
	if err := s.store.DeleteExpiredConsoleSessions(ctx, s.pool, s.now()); err != nil {
		return err
	}
	if err := s.store.InsertConsoleSession(ctx, s.pool, hash[:], cl.KeyID, csrf, s.now().Add(consoleSessionTTL)); err != nil {
		return err
	}
	s.host.Logger(c).Info("console sign-in", slog.String("api_key_id", cl.KeyID), slog.String("scope", string(cl.Scope)))
	s.setCookie(c, consoleLoginCookie, "", -1)
	s.setCookie(c, consoleCookie, token, int(consoleSessionTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, consolePath)
}

func (s *Console) consoleLogout(c echo.Context) error {
	if ck, err := c.Cookie(consoleCookie); err == nil {
		hash := sha256.Sum256([]byte(ck.Value))
		if err := s.store.DeleteConsoleSession(c.Request().Context(), s.pool, hash[:]); err != nil {
			return err
		}
	}
	s.setCookie(c, consoleCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, consolePath+"/login")
}
