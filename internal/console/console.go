// Package console is the operators' web UI, mounted by the api at /console:
// server-rendered html/template pages (no JavaScript build step; one small
// static script shows times in the viewer's zone), a session cookie after
// signing in with an operator or readonly key, a CSRF token in every form,
// a sign-in throttle, and a strict Content-Security-Policy
// (docs/design.md, sections 3 and 12).
//
// It reads what the JSON API reads, through the store, and takes the
// operator actions through the same payflow scripts, so every action is
// audited the same way whichever door it came through. It never calls the
// gateway: the gateway's side of a payment is what the relay's newest call
// for it brought back (kept on the attempt row); "Look up now" enqueues a
// lookup, and the page shows its answer once the relay has made it.
//
// What it needs of the api process around it is two small seams it
// declares itself: Auth (whose key is this, and mark the request as made by
// it) and Host (the request's logger, the open-route admission for the
// sign-in form, and the api's reading of a domain error). The files are
// split by concern: session.go and throttle.go (sign-in, cookies, CSRF,
// throttle), pages.go (the handlers) and views.go (the view models).
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Path is where the console is mounted: Register expects the group of this
// prefix, and its redirects and cookies name it.
const Path = "/console"

//go:embed templates/*.html static/*
var files embed.FS

// Identity is who a console request is made by: the API key it signed in
// with, and the owner that key belongs to.
type Identity struct {
	KeyID string
	Name  string
	Scope apikey.Scope
	Owner payment.Owner
}

// Auth is the console's seam to the api's authentication. The console keeps
// its sessions itself (store); a key presented at sign-in, and the
// attribution of a signed-in request, are the api's: one key check (its
// cache, its "last used" bookkeeping) and one access log for every door.
type Auth interface {
	// Authenticate returns the identity of an active API key, or an error
	// wrapping apikey.ErrNotFound when none matches.
	Authenticate(c echo.Context, key string) (Identity, error)
	// SignedIn marks the request as made by id, so its access line and
	// anything else of the api that asks who made it see the session's key.
	SignedIn(c echo.Context, id Identity)
}

// Host is what the api process the console is mounted in lends it besides
// authentication.
type Host interface {
	// Logger is the request's logger (carrying its request id).
	Logger(c echo.Context) *slog.Logger
	// NamePayment names the payment a request is about, for its log lines.
	NamePayment(c echo.Context, paymentID string)
	// Problem reads err as the status and detail the api answers it with;
	// ok is false for an internal error, whose detail is not to be shown.
	Problem(err error) (status int, detail string, ok bool)
	// OpenPOST registers an unauthenticated POST route on g, under the
	// api's rules for open routes: its own budget and body deadline
	// (docs/design.md, "Overload"). The sign-in form is one.
	OpenPOST(g *echo.Group, path string, h echo.HandlerFunc)
}

// Config is what a Console needs; every field but Metrics and Now is
// required.
type Config struct {
	// Pool is the database the pages read and the actions write on.
	Pool *pgxpool.Pool
	// Store runs the SQL.
	Store *store.Store
	// Flow holds the operator actions' scripts.
	Flow *payflow.Flow
	// Auth checks sign-in keys and attributes signed-in requests.
	Auth Auth
	// Host is the api process around the console.
	Host Host
	// Metrics counts throttled sign-ins and operator actions (the same
	// counters as the JSON API's). Default: nil, counting nothing.
	Metrics *metrics.HTTP
	// Now is the clock of sessions, the throttle and the pages. Default:
	// time.Now.
	Now func() time.Time
	// BodyLimit bounds a form's body, in bytes.
	BodyLimit int64
	// Development marks an api reached over plain http (API_DEV): the
	// cookies are then not Secure and no Strict-Transport-Security is sent.
	Development bool
}

// Console serves the operators' pages.
type Console struct {
	pool        *pgxpool.Pool
	store       *store.Store
	flow        *payflow.Flow
	auth        Auth
	host        Host
	metrics     *metrics.HTTP
	now         func() time.Time
	bodyLimit   int64
	development bool
	tmpl        *template.Template
	// signIns throttles failed sign-ins (throttle.go).
	signIns *signInThrottle
}

// New returns a Console for cfg. It panics when a required field is
// missing: that is a wiring mistake, and failing at startup beats failing
// on the first sign-in.
func New(cfg Config) *Console {
	if cfg.Pool == nil || cfg.Store == nil || cfg.Flow == nil || cfg.Auth == nil || cfg.Host == nil || cfg.BodyLimit <= 0 {
		panic("console: Config.Pool, Store, Flow, Auth, Host and BodyLimit are required")
	}
	s := &Console{
		pool: cfg.Pool, store: cfg.Store, flow: cfg.Flow, auth: cfg.Auth, host: cfg.Host, metrics: cfg.Metrics,
		now: cfg.Now, bodyLimit: cfg.BodyLimit, development: cfg.Development, signIns: newSignInThrottle(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tmpl = template.Must(template.New("").Funcs(consoleFuncs).ParseFS(files, "templates/*.html"))
	return s
}

// staticFiles are the stylesheet and the script.
func staticFiles() fs.FS {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic("console: static files: " + err.Error())
	}
	return static
}
