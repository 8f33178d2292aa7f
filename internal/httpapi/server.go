// Package httpapi is the payment outbox's HTTP API: the Echo routes, the
// request and response types, and the one place that maps domain errors to
// HTTP statuses. It also mounts the operators' console (internal/console)
// at /console, lending it the api's key check, logger, error mapping and
// open-route admission through the seams the console declares
// (console.go); the console's pages, sessions and templates are its own.
//
// Every write a handler makes (the payment row, a cancel row and the outbox
// job that tells the relay to call the gateway) happens in one Postgres
// transaction the handler owns. The API never calls the gateway itself, and
// nothing leaves the process while a transaction is open. The one write
// outside that transaction is a client's Idempotency-Key marker, which must
// be visible before the handler runs (see idempotent).
package httpapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// Defaults for the optional Config fields.
const (
	// DefaultBodyLimit bounds a request body. The largest legitimate body (a
	// create with a 100-character order name) is well under 1 KiB; 64 KiB
	// leaves room for clients that pretty-print while keeping a flood of
	// oversized bodies cheap to refuse.
	DefaultBodyLimit int64 = 64 << 10
	// DefaultReadyTimeout bounds the database ping behind GET /readyz, so a
	// hung database answers "not ready" rather than hanging the probe.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds a request's database work. A checkout
	// waiting longer than this has given up; holding its connection and row
	// lock any longer only queues the requests behind it.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultKeyCacheTTL is how long a verified API key is trusted without
	// asking the database again, and so how long a revoked key may keep
	// working on an API process that saw it just before.
	DefaultKeyCacheTTL = 10 * time.Second
	// DefaultIdempotencyTTL is how long an Idempotency-Key's answer is
	// kept for replays: long enough for any client's retry loop.
	DefaultIdempotencyTTL = 24 * time.Hour
	// DefaultMaxWaiters bounds the requests waiting at once (GET ?wait=) in
	// one api process; more get 429 too_many_waiters. A waiter costs a
	// goroutine and an open HTTP connection, not a database connection.
	DefaultMaxWaiters = 1000
	// MaxWait is the longest ?wait= a request may ask for. Longer would
	// outlast the proxies and load balancers between a checkout and us;
	// a client that wants longer asks again.
	MaxWait = 30 * time.Second
)

// Inserter is the outbox the api's use cases enqueue on: payflow.Outbox,
// the one door to it (every enqueue goes through payflow). It is satisfied
// by *river.Client[pgx.Tx]; tests substitute a failing one to show that the
// payment row and its job commit or roll back together.
type Inserter = payflow.Outbox

// Config is what a Server needs. Pool and Outbox are required; the rest have
// defaults.
type Config struct {
	// Pool is the database the handlers read and open transactions on.
	Pool *pgxpool.Pool
	// Store runs the SQL. Default: store.New().
	Store *store.Store
	// Outbox enqueues confirm and cancel jobs. It must write on the
	// transaction it is given (an insert-only River client does).
	Outbox Inserter
	// Logger receives one access line per request and every internal error.
	// Default: a logger that discards everything.
	Logger *slog.Logger
	// Now is the clock used for the times the domain records (confirm and
	// cancel requests), Idempotency-Key expiry and the API key cache.
	// Default: time.Now.
	Now func() time.Time
	// BodyLimit is the largest request body accepted, in bytes; larger
	// bodies get 413 body_too_large. Default: DefaultBodyLimit.
	BodyLimit int64
	// ReadyTimeout bounds the database ping behind GET /readyz. Default:
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// RequestTimeout bounds each request's context; a request that runs out
	// gets 503 timeout and its transaction rolls back. Default:
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// KeyCacheTTL is how long a verified API key is trusted before the
	// database is asked again. Default: DefaultKeyCacheTTL.
	KeyCacheTTL time.Duration
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept.
	// Default: DefaultIdempotencyTTL.
	IdempotencyTTL time.Duration
	// Metrics counts the requests answered, by route template, method and
	// status. Default: nil, counting nothing.
	Metrics *metrics.HTTP
	// MetricsHandler, when set, is served at GET /metrics to an operator
	// or readonly API key: cmd/api sets it only when no metrics listener
	// of its own is configured (API_METRICS_ADDR). Default: no /metrics
	// route.
	MetricsHandler http.Handler
	// WebhookAllowPrivate accepts webhook endpoint URLs on loopback,
	// private and link-local addresses: for development and tests only.
	WebhookAllowPrivate bool
	// Resolver looks up the host names of webhook endpoint URLs. Default:
	// net.DefaultResolver.
	Resolver webhook.Resolver
	// MaxWebhookEndpoints caps the active webhook endpoints of one owner;
	// a registration past it gets 422 webhook_endpoint_limit. Default:
	// webhook.DefaultMaxEndpoints.
	MaxWebhookEndpoints int
	// MaxWaiters bounds the requests waiting at once for a payment to
	// change (GET /v1/payments/{id}?wait=). Default: DefaultMaxWaiters.
	MaxWaiters int
	// MaxInFlight caps the requests in flight at once in this process;
	// more are answered 503 overloaded with Retry-After (see admit).
	// Default: 0, no cap (cmd/api applies DefaultMaxInFlight).
	MaxInFlight int
	// MaxUnauthenticatedInFlight caps the unauthenticated requests (gateway
	// webhooks, console sign-in) at work at once, once their bodies are in;
	// more are answered 503 overloaded (see openBody). They never count
	// against MaxInFlight. Default: 0, no cap (cmd/api applies
	// DefaultMaxUnauthenticatedInFlight).
	MaxUnauthenticatedInFlight int
	// UnauthenticatedBodyTimeout bounds the time an unauthenticated request
	// takes to send its body; a slower one is answered 408 body_timeout.
	// Default: DefaultUnauthenticatedBodyTimeout.
	UnauthenticatedBodyTimeout time.Duration
	// Gateways are the gateways a payment may be created for: the ones the
	// relays are configured to serve. Default: DefaultGateway alone.
	Gateways []string
	// PortOneConfirmMode is the deployment's PORTONE_CONFIRM_MODE (browser
	// when empty): in manual, a PortOne confirm must carry the paymentToken
	// PortOne's browser SDK returned.
	PortOneConfirmMode payment.PortOneConfirmMode
	// WebhookLookupInterval is the deployment's WEBHOOK_LOOKUP_INTERVAL:
	// gateway webhooks make at most one lookup of a payment per interval
	// (payflow.RequestLookup); payflow.DefaultWebhookLookupInterval when
	// zero.
	WebhookLookupInterval time.Duration
	// DefaultGateway is the gateway of a payment whose create names none.
	// Default: payment.GatewayToss.
	DefaultGateway string
	// PortOneWebhookSecret verifies PortOne's signed webhooks (Standard
	// Webhooks, "whsec_…"); empty refuses every PortOne webhook. Check it
	// with CheckPortOneWebhookSecret first: New panics on a bad one.
	PortOneWebhookSecret string
	// Development marks an api on a developer's machine, reached over
	// plain http (API_DEV): the console's cookies are then not Secure and
	// it sends no Strict-Transport-Security. Default: false, production.
	Development bool
	// MaxAmount is the largest amount a create or a cancel may ask for;
	// larger ones get 400 invalid_request. Default (and upper bound):
	// payment.MaxAmount, 2^53 - 1.
	MaxAmount int64
}

// CheckPortOneWebhookSecret reports whether secret can verify Standard
// Webhooks signatures: "whsec_" and base64, or base64 alone.
func CheckPortOneWebhookSecret(secret string) error {
	if _, err := standardwebhooks.NewWebhook(secret); err != nil {
		return fmt.Errorf("not a Standard Webhooks secret (whsec_ and base64): %w", err)
	}
	return nil
}

// Server serves the payment API.
type Server struct {
	pool         *pgxpool.Pool
	store        *store.Store
	outbox       Inserter
	logger       *slog.Logger
	now          func() time.Time
	bodyLimit    int64
	readyTimeout time.Duration
	reqTimeout   time.Duration
	keys         *keyCache
	flow         *payflow.Flow
	echo         *echo.Echo
	metrics      *metrics.HTTP
	// routePaths are the route templates; a request whose c.Path() is not
	// one of them is counted as routeUnmatched.
	routePaths map[string]bool

	idempotencyTTL time.Duration
	// idempotencyStaleAfter is the age past which an in-progress
	// Idempotency-Key marker was abandoned: older than any live request.
	idempotencyStaleAfter time.Duration
	// lastSweep is when expired Idempotency-Key records were last swept,
	// in Unix nanoseconds of the Server's clock.
	lastSweep atomic.Int64
	// sweeping is true while a sweep runs; sweeps are its goroutines, and
	// sweepCtx ends them (Close).
	sweeping    atomic.Bool
	sweeps      sync.WaitGroup
	sweepCtx    context.Context
	cancelSweep context.CancelFunc

	webhookAllowPrivate bool
	resolver            webhook.Resolver
	maxWebhookEndpoints int
	waiter              *waiter

	// checkout is the budget of every request but the probes' and the
	// unauthenticated routes' (nil: no cap); see admit.
	checkout *budget
	// unauthenticated is the budget of the unauthenticated routes' work
	// (nil: no cap), openRoutes those routes ("POST /v1/webhooks/toss"),
	// and openBodyTimeout the deadline their bodies are read within; see
	// openBody.
	unauthenticated *budget
	openRoutes      map[string]bool
	openBodyTimeout time.Duration

	gateways       []string
	defaultGateway string
	// maxAmount: see Config.MaxAmount.
	maxAmount int64
	// development: see Config.Development.
	development bool
	// portOneHooks verifies PortOne's webhooks; nil when no secret is
	// configured.
	portOneHooks *standardwebhooks.Webhook
}

// New returns a Server for cfg. It panics when Pool or Outbox is missing:
// that is a wiring mistake, and failing at startup beats failing on the first
// payment.
func New(cfg Config) *Server {
	if cfg.Pool == nil {
		panic("httpapi: Config.Pool is required")
	}
	if cfg.Outbox == nil {
		panic("httpapi: Config.Outbox is required")
	}
	s := &Server{
		pool:         cfg.Pool,
		store:        cfg.Store,
		outbox:       cfg.Outbox,
		logger:       cfg.Logger,
		now:          cfg.Now,
		bodyLimit:    cfg.BodyLimit,
		readyTimeout: cfg.ReadyTimeout,
		reqTimeout:   cfg.RequestTimeout,
		metrics:      cfg.Metrics,
		checkout:     newBudget(cfg.MaxInFlight),

		unauthenticated: newBudget(cfg.MaxUnauthenticatedInFlight),
		openBodyTimeout: cfg.UnauthenticatedBodyTimeout,

		idempotencyTTL: cfg.IdempotencyTTL,

		webhookAllowPrivate: cfg.WebhookAllowPrivate,
		resolver:            cfg.Resolver,
	}
	s.sweepCtx, s.cancelSweep = context.WithCancel(context.Background())
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	s.maxAmount = cfg.MaxAmount
	s.development = cfg.Development
	if s.maxAmount <= 0 || s.maxAmount > payment.MaxAmount {
		s.maxAmount = payment.MaxAmount
	}
	s.maxWebhookEndpoints = cfg.MaxWebhookEndpoints
	if s.maxWebhookEndpoints <= 0 {
		s.maxWebhookEndpoints = webhook.DefaultMaxEndpoints
	}
	s.defaultGateway = cfg.DefaultGateway
	if s.defaultGateway == "" {
		s.defaultGateway = payment.GatewayToss
	}
	s.gateways = cfg.Gateways
	if len(s.gateways) == 0 {
		s.gateways = []string{s.defaultGateway}
	}
	if cfg.PortOneWebhookSecret != "" {
		wh, err := standardwebhooks.NewWebhook(cfg.PortOneWebhookSecret)
		if err != nil {
			panic("httpapi: PortOneWebhookSecret: " + err.Error())
		}
		s.portOneHooks = wh
	}

	maxWaiters := cfg.MaxWaiters
	if maxWaiters <= 0 {
		maxWaiters = DefaultMaxWaiters
	}
	if s.store == nil {
		s.store = store.New()
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.waiter = newWaiter(func(ctx context.Context, ids []string) ([]string, error) {
		return s.store.PaymentsLeft(ctx, s.pool, ids, inFlightStatuses)
	}, waitPollEvery, maxWaiters, s.logger)
	if s.now == nil {
		s.now = time.Now
	}
	if s.bodyLimit <= 0 {
		s.bodyLimit = DefaultBodyLimit
	}
	if s.openBodyTimeout <= 0 {
		s.openBodyTimeout = DefaultUnauthenticatedBodyTimeout
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = DefaultReadyTimeout
	}
	if s.reqTimeout <= 0 {
		s.reqTimeout = DefaultRequestTimeout
	}
	if s.idempotencyTTL <= 0 {
		s.idempotencyTTL = DefaultIdempotencyTTL
	}
	s.idempotencyStaleAfter = s.reqTimeout + finishTimeout + staleMargin
	// The operator actions retry jobs through the same River client that
	// enqueues them; a test's stand-in outbox may not, and then they fail.
	retrier, _ := s.outbox.(payflow.JobRetrier)
	flow, err := payflow.New(payflow.Config{Store: s.store, Outbox: s.outbox, Now: s.now, Retrier: retrier, PortOneConfirmMode: cfg.PortOneConfirmMode,
		WebhookLookupInterval: cfg.WebhookLookupInterval})
	if err != nil {
		panic("httpapi: " + err.Error())
	}
	s.flow = flow
	keyTTL := cfg.KeyCacheTTL
	if keyTTL <= 0 {
		keyTTL = DefaultKeyCacheTTL
	}
	s.keys = &keyCache{
		lookup: s.store,
		db:     s.pool,
		now:    s.now,
		ttl:    keyTTL,
		valid:  make(map[[sha256.Size]byte]cachedKey),
	}
	s.echo = s.routes(cfg.MetricsHandler)
	s.routePaths = make(map[string]bool)
	for _, r := range s.echo.Routes() {
		s.routePaths[r.Path] = true
	}
	return s
}

// Close ends every wait in progress (those requests answer with the
// payment as it stands) and closes the LISTEN connection behind them, and
// stops a sweep of expired Idempotency-Key records. Call it
// when shutting down, before http.Server.Shutdown, so waiting requests do not
// hold the shutdown up; the Server keeps serving, without waiting.
func (s *Server) Close() {
	s.waiter.close()
	// A sweep of expired Idempotency-Key records stops between batches.
	s.cancelSweep()
	s.sweeps.Wait()
}

// Handler returns the http.Handler serving every route (the *echo.Echo).
func (s *Server) Handler() http.Handler {
	return s.echo
}

// Paths of the routes that are not the payment API's.
const (
	routeMetrics = "/metrics"
	routeOpenAPI = "/openapi.json"
)

func (s *Server) routes(metricsHandler http.Handler) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Order matters: the request id comes first so every later log line
	// carries it; the access log wraps the recovery so a panic is logged as
	// the 500 it turns into, and the admission cap so a refusal is counted;
	// the cap comes before everything that costs (Echo runs these after
	// routing, so the cap sees the route), and after closeUnread, so that
	// even a refusal does not wait for a body it will not read.
	e.Use(s.requestID, s.accessLog, s.closeUnread, s.admit, s.recoverPanic, s.timeout)
	s.openRoutes = map[string]bool{}

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// Open like the probes: the document describes the API.
	e.GET(routeOpenAPI, s.openAPI)
	if metricsHandler != nil {
		// Behind a key: the metrics reveal volumes (requests, payments by
		// status, sign-ins refused) to whoever reaches the public listener.
		// Their own listener (API_METRICS_ADDR) is the usual home, where
		// Prometheus scrapes without one (docs/design.md, section 21).
		e.GET(routeMetrics, echo.WrapHandler(metricsHandler), s.scoped(scopesAudit))
	}

	// Unsigned and open: the gateway cannot present our API key. It only
	// ever enqueues a lookup, so a forged one costs a gateway call, no more.
	// Open routes read their body on a budget of their own (openPOST).
	s.openPOST(e, "/v1/webhooks/toss", s.tossWebhook, nil)
	// Signed (Standard Webhooks) and open: still only a reason to ask. The
	// signature's headers are judged before the body is read.
	s.openPOST(e, "/v1/webhooks/portone", s.portOneWebhook, s.checkPortOneHeaders)

	// Authentication per route rather than on a group: a group's middleware
	// also catches its unknown paths, which would turn routing's 404 and
	// 405 answers into 401s. Authentication runs before idempotency,
	// whose keys are scoped per client.
	e.POST("/v1/payments", s.createPayment, s.scoped(scopesWrite), s.idempotent)
	e.GET("/v1/payments", s.getPaymentByOrderID, s.scoped(scopesRead))
	e.GET("/v1/payments/attention", s.listAttention, s.scoped(scopesOps))
	e.GET("/v1/payments/:id", s.getPayment, s.scoped(scopesRead))
	e.GET("/v1/payments/:id/attempts", s.listAttempts, s.scoped(scopesRead))
	e.POST("/v1/payments/:id/confirm", s.confirmPayment, s.scoped(scopesWrite), s.idempotent)
	e.POST("/v1/payments/:id/cancel", s.cancelPayment, s.scoped(scopesWrite), s.idempotent)

	e.POST("/v1/webhook-endpoints", s.createWebhookEndpoint, s.scoped(scopesWebhooks))
	e.GET("/v1/webhook-endpoints", s.listWebhookEndpoints, s.scoped(scopesWebhooks))
	e.POST("/v1/webhook-endpoints/:id/disable", s.disableWebhookEndpoint, s.scoped(scopesWebhooks))
	e.POST("/v1/webhook-endpoints/:id/rotate-secret", s.rotateWebhookSecret, s.scoped(scopesWebhooks))
	e.GET("/v1/webhook-endpoints/:id/deliveries", s.listWebhookDeliveries, s.scoped(scopesWebhooks))
	e.POST("/v1/webhook-endpoints/:id/deliveries/:deliveryId/redeliver", s.redeliverWebhook, s.scoped(scopesWebhooks))

	s.opsRoutes(e)
	s.mountConsole(e)
	return e
}

// statusResponse is the body of the health endpoints.
type statusResponse struct {
	Status string `json:"status"`
}

// healthz answers whether the process is alive. It deliberately does not
// touch the database: a database outage must not make an orchestrator
// restart every API process, which would not fix it.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusResponse{Status: "ok"})
}

// readyz answers whether this process can serve payments now: its checkout
// budget is not saturated (held, not turning over; see saturatedAfter), and
// the database answers.
func (s *Server) readyz(c echo.Context) error {
	if held, ok := s.checkout.saturated(s.now()); ok {
		loggerOf(c, s.logger).Warn("readiness check failed: the checkout budget is saturated",
			slog.Int("held", held), slog.Int("max_in_flight", cap(s.checkout.free)))
		return &problemError{status: http.StatusServiceUnavailable, code: codeNotReady,
			detail: fmt.Sprintf("saturated: %d of the %d requests this process works on at once (API_MAX_IN_FLIGHT) have been in flight for more than %s", held, cap(s.checkout.free), saturatedAfter)}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readyTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		loggerOf(c, s.logger).Warn("readiness check failed", slog.String("error", err.Error()))
		return &problemError{status: http.StatusServiceUnavailable, code: codeNotReady, detail: "the database is not reachable"}
	}
	return c.JSON(http.StatusOK, statusResponse{Status: "ready"})
}
