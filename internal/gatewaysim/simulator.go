// Package gatewaysim is a payment gateway simulator that speaks two APIs: the
// Toss Payments core API v1 subset the relay uses (confirm, cancel, lookup
// under /v1) and PortOne's V2 (lookup, cancel and manual confirm under
// /payments), each with its gateway's authentication, idempotency and error
// semantics, over one book of payments and one ledger, with the same fault
// injection. A control
// API under /sim/v1 authorizes Toss payments and pays PortOne ones (the
// customer's checkout step), injects faults and reads the ledger. It is the
// gateway in every test.
package gatewaysim

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSecretKey is the secret key the simulator accepts unless told
// otherwise.
const DefaultSecretKey = "test_sk_gatewaysim_local"

// Options configures a Simulator. The zero value is usable.
type Options struct {
	// SecretKey is the one secret key /v1 calls must authenticate with;
	// empty means DefaultSecretKey.
	SecretKey string
	// PortOneSecret is the API secret PortOne calls must authenticate with
	// ("Authorization: PortOne <secret>"); empty means DefaultPortOneSecret.
	PortOneSecret string
	// PortOneStoreID is the one store the PortOne API serves; empty means
	// DefaultPortOneStoreID.
	PortOneStoreID string
	// Config is the initial fault config.
	Config Config
	// Now is the clock; nil means time.Now. Session expiry, downtime windows
	// and idempotency retention all read it. Sleeps (latency, delay steps)
	// use real time.
	Now func() time.Time
	// Logger receives one record per /v1 call (debug; info for injected
	// and lost calls); nil discards.
	Logger *slog.Logger
	// RequestLogLimit caps the request log; zero means
	// DefaultRequestLogLimit.
	RequestLogLimit int
}

// Simulator is the gateway: an http.Handler serving the Toss API under /v1 and
// the control API under /sim/v1. It is safe for concurrent use.
type Simulator struct {
	secretKey      string
	portOneSecret  string
	portOneStoreID string
	now            func() time.Time
	logger         *slog.Logger

	faults   *faultInjector
	payments *paymentBook
	idem     *idempotencyStore
	scripts  *scriptQueues
	requests *requestLog
	cancels  *consecutiveCancels
	mux      *http.ServeMux

	// resetMu makes Reset and the performing of a call exclusive, and epoch
	// counts resets, so that a call which arrived before a Reset and was
	// still waiting (latency, a delay step, a hold) performs nothing in the
	// fresh gateway. Calls take it shared, so they do not serialise.
	resetMu sync.RWMutex
	epoch   atomic.Uint64
	// holding counts the calls being held right now (Config.HoldRate).
	holding atomic.Int64
	// webhooks counts what became of the PortOne webhooks, tossWebhooks
	// of Toss's DEPOSIT_CALLBACKs.
	webhooks     webhookCounters
	tossWebhooks webhookCounters

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a Simulator, or an error when opts.Config is invalid.
func New(opts Options) (*Simulator, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("error validating config: %w", err)
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.PortOneSecret == "" {
		opts.PortOneSecret = DefaultPortOneSecret
	}
	if opts.PortOneStoreID == "" {
		opts.PortOneStoreID = DefaultPortOneStoreID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RequestLogLimit <= 0 {
		opts.RequestLogLimit = DefaultRequestLogLimit
	}
	s := &Simulator{
		secretKey:      opts.SecretKey,
		portOneSecret:  opts.PortOneSecret,
		portOneStoreID: opts.PortOneStoreID,
		now:            opts.Now,
		logger:         opts.Logger,
		faults:         newFaultInjector(opts.Config),
		payments:       newPaymentBook(),
		scripts:        newScriptQueues(),
		requests:       newRequestLog(opts.RequestLogLimit),
		cancels:        newConsecutiveCancels(),
		mux:            http.NewServeMux(),
		closed:         make(chan struct{}),
	}
	s.idem = newIdempotencyStore(func(gateway string) time.Duration { return s.faults.current().keyRetention(gateway) })
	s.routes()
	return s, nil
}

func (s *Simulator) routes() {
	s.mux.HandleFunc("POST /v1/payments/confirm", s.handleConfirm)
	s.mux.HandleFunc("POST /v1/payments/{paymentKey}/cancel", s.handleCancel)
	s.mux.HandleFunc("GET /v1/payments/{paymentKey}", s.handleLookupByKey)
	s.mux.HandleFunc("GET /v1/payments/orders/{orderId}", s.handleLookupByOrder)
	s.mux.HandleFunc("GET /v1/transactions", s.handleTransactions)

	s.mux.HandleFunc("GET /payments/{paymentId}", s.handlePortOneLookup)
	s.mux.HandleFunc("POST /payments/{paymentId}/cancel", s.handlePortOneCancel)
	s.mux.HandleFunc("POST /payments/{paymentId}/confirm", s.handlePortOneConfirm)
	s.mux.HandleFunc("GET /payments-by-cursor", s.handlePortOneList)
	s.mux.HandleFunc("POST /sim/v1/portone/pay", s.handlePortOnePay)
	s.mux.HandleFunc("POST /payments/{paymentId}/virtual-account/close", s.handlePortOneCloseAccount)
	s.mux.HandleFunc("POST /sim/v1/deposit", s.handleDeposit)

	s.mux.HandleFunc("POST /sim/v1/authorize", s.handleAuthorize)
	s.mux.HandleFunc("POST /sim/v1/console/cancel", s.handleConsoleCancel)
	s.mux.HandleFunc("GET /sim/v1/config", s.handleGetConfig)
	s.mux.HandleFunc("PUT /sim/v1/config", s.handlePutConfig)
	s.mux.HandleFunc("POST /sim/v1/script", s.handleScript)
	s.mux.HandleFunc("GET /sim/v1/ledger", s.handleLedger)
	s.mux.HandleFunc("GET /sim/v1/ledger/{paymentKey}", s.handleLedgerEntry)
	s.mux.HandleFunc("GET /sim/v1/requests", s.handleRequests)
	s.mux.HandleFunc("GET /sim/v1/webhooks", s.handleWebhookStats)
	s.mux.HandleFunc("GET /sim/v1/webhooks/toss", s.handleTossWebhookStats)
	s.mux.HandleFunc("POST /sim/v1/reset", s.handleReset)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("/", s.handleNotFound)
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Config returns a copy of the current fault config.
func (s *Simulator) Config() Config {
	return s.faults.config()
}

// SetConfig validates and installs cfg, reseeding the random faults. An
// invalid config is returned as an *Error with status 400 and changes nothing.
func (s *Simulator) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "invalid config: %v", err)
	}
	s.faults.set(cfg)
	return nil
}

// Reset forgets every payment, stored idempotent response, pending script
// step, logged request, recent cancel (ConsecutiveCancelWindow) and webhook
// count (WebhookStats). The
// fault config is kept.
//
// A call that arrived before the Reset and is still waiting when it happens
// (latency, a delay step, a hold) is dropped when it resumes: it performs
// nothing, is answered 503 FAILED_INTERNAL_SYSTEM_PROCESSING and is not
// logged. Otherwise a held confirm from one test could charge a payment in
// the next (with AutoAuthorize it would create one).
func (s *Simulator) Reset() {
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	s.epoch.Add(1)
	s.payments.reset()
	s.idem.reset()
	s.scripts.reset()
	s.requests.reset()
	s.cancels.reset()
	s.webhooks.reset()
	s.tossWebhooks.reset()
}

// Requests returns the logged /v1 calls for paymentKey (every call when
// empty), oldest first.
func (s *Simulator) Requests(paymentKey string) []RequestRecord {
	return s.requests.list(paymentKey)
}

// Close cuts short every latency sleep, delay step and hold in progress (the
// calls then proceed at once, so held operations are still performed), so a
// server shutdown does not wait them out. The Simulator keeps serving after
// Close, with no sleeps or holds.
func (s *Simulator) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// sleep waits d in real time or until Close. It deliberately ignores the
// request's context: a gateway keeps processing a call whose client gave up,
// which is exactly the "timed out but charged" case the relay must survive.
func (s *Simulator) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.closed:
	}
}

// AuthorizationHeader returns the Authorization header value Toss expects for
// secretKey: "Basic " + base64(secretKey + ":").
func AuthorizationHeader(secretKey string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(secretKey+":"))
}

// authorized reports whether r carries the configured secret key in Toss's
// Basic format (the key as user name, an empty password).
func (s *Simulator) authorized(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok || password != "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(user), []byte(s.secretKey)) == 1
}
